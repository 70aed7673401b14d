// CUPTI activity buffers: a bounded pool, allocated once, and the decoding of completed buffers.
// Private to telemetry/ (includes CUPTI headers).
#pragma once

#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pbm::telemetry::detail {

/// When every buffer is in flight, CUPTI is refused one and drops records; both are counted
/// (Health::buffer_pool_exhausted, Health::dropped_records). Thread-safe.
class ActivityBuffers {
 public:
  /// Allocates `count` buffers of `size` bytes the first time; later calls keep the first pool.
  void allocate(std::size_t count, std::size_t size);
  /// CUPTI's buffer request: a free buffer, or nullptr (records dropped) when none is free.
  void take(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records);
  /// CUPTI's buffer completion: every record goes to the engine, the drop count is read, and the
  /// buffer returns to the pool.
  void complete(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer, std::size_t valid);

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<std::uint8_t[]>> storage_;
  std::vector<std::uint8_t*> free_;
  std::size_t buffer_size_{0};
};

}  // namespace pbm::telemetry::detail
