// The bounded activity buffer pool and the walk over a completed buffer's records.
#include "activity_buffers.hpp"

#include "cupti_api.hpp"
#include "decoder.hpp"

namespace pbm::telemetry::detail {

void ActivityBuffers::allocate(std::size_t count, std::size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!storage_.empty()) return;
  buffer_size_ = size;
  for (std::size_t i = 0; i < count; ++i) {
    storage_.emplace_back(new std::uint8_t[size]);  // operator new: aligned beyond CUPTI's 8 bytes
    free_.push_back(storage_.back().get());
  }
}

void ActivityBuffers::take(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *max_records = 0;  // as many as fit
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) {
    *buffer = nullptr;  // CUPTI drops records and counts them
    *size = 0;
    engine().counters().health().buffer_pool_exhausted.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  *buffer = free_.back();
  free_.pop_back();
  *size = buffer_size_;
}

void ActivityBuffers::complete(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer, std::size_t valid) {
  CuptiApi const& api = *loaded_cupti();  // buffers exist only once CUPTI was loaded and attached
  Health& health = engine().counters().health();
  if (buffer != nullptr && valid > 0) {
    CUpti_Activity* record = nullptr;
    while (api.ActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
      try {
        ingest_record(record);
      } catch (...) {  // out of memory: lose this record, never unwind into CUPTI
      }
    }
  }
  std::size_t dropped = 0;
  if (api.ActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped != 0) {
    health.dropped_records.fetch_add(dropped, std::memory_order_relaxed);
  }
  health.buffers_processed.fetch_add(1, std::memory_order_relaxed);
  if (buffer != nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(buffer);
  }
}

}  // namespace pbm::telemetry::detail
