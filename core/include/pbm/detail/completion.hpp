// The pool of per-launch completions: a result slot in pinned mapped host memory, a launch cell
// in device memory and an event. A completion is reused only once the host has seen its last
// launch publish `done`, so concurrent launches never share a cell.
// Thread-safety: acquire/release are internally synchronised.
#pragma once

#include <pbm/detail/launch.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pbm::detail {

struct Completion {
  ResultSlot* host = nullptr;    // host view of the mapped result slot
  ResultSlot* mapped = nullptr;  // device view of the same memory
  LaunchCell* cell = nullptr;    // device memory
  cudaEvent_t event = nullptr;
  std::uint64_t generation = 0;  // of the launch that uses it now (or used it last)

  /// True once the launch of `generation` has published its result. No CUDA call.
  bool done(std::uint64_t gen) const noexcept;
};

class CompletionPool {
 public:
  explicit CompletionPool(int device);
  ~CompletionPool();
  CompletionPool(CompletionPool const&) = delete;
  CompletionPool& operator=(CompletionPool const&) = delete;

  /// A completion no launch is using, with a fresh generation. Grows the pool when all are busy.
  Completion* acquire();
  /// The handle that owned it is gone; reusable once its launch is done.
  void release(Completion* c) noexcept;
  /// Its launch never started (launch failure): reusable at once.
  void release_unlaunched(Completion* c) noexcept;

  int device() const noexcept { return device_; }
  std::size_t size() const noexcept;

 private:
  struct Chunk;
  void grow();

  int device_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::vector<Completion*> free_;
  std::vector<Completion*> pending_;  // released by their handle, launch maybe still running
};

}  // namespace pbm::detail
