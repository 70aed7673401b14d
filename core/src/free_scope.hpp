// What pbm's own frees run under: the owner's device current (cudaFree and friends act on the
// current device's context) and the waits they imply marked as pbm's own, expected ones.
#pragma once

#include <pbm/expected.hpp>
#include <pbm/stream.hpp>

#include <optional>

namespace pbm::detail {

/// Never throws: where the device cannot be made current, the free goes ahead on the current one.
/// device < 0: leaves the current device alone.
class FreeScope {
 public:
  explicit FreeScope(int device) noexcept {
    if (device < 0) return;
    try {
      guard_.emplace(device);
    } catch (...) {
    }
  }
  FreeScope(FreeScope const&) = delete;
  FreeScope& operator=(FreeScope const&) = delete;

 private:
  ExpectedSyncScope expected_;  // cudaFree, cudaFreeHost: documented to synchronise
  std::optional<DeviceGuard> guard_;
};

}  // namespace pbm::detail
