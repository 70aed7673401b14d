// A mailbox's host-side state (mailbox_state.hpp): the stats snapshot in mapped host memory and
// the call counters.
#include "mailbox_state.hpp"
#include "free_scope.hpp"

#include <pbm/error.hpp>
#include <pbm/stream.hpp>

#include <algorithm>
#include <cstring>

namespace pbm::detail {

MailboxState::MailboxState(std::string name_, int device_, std::uint64_t capacity_, std::uint32_t stride_)
    : name(std::move(name_)), device(device_), capacity(capacity_), stride(stride_) {
  DeviceGuard guard(device);
  PBM_CUDA_TRY(cudaHostAlloc(reinterpret_cast<void**>(&snapshot_host), sizeof(StatsSnapshot),
                             cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(static_cast<void*>(snapshot_host), 0, sizeof(StatsSnapshot));
  cudaError_t const err = cudaHostGetDevicePointer(reinterpret_cast<void**>(&snapshot_device), snapshot_host, 0);
  if (err != cudaSuccess) {
    PBM_CUDA_TRY_NOEXCEPT(cudaFreeHost(snapshot_host));
    PBM_CUDA_TRY(err);
  }
}

MailboxState::~MailboxState() {
  if (snapshot_host == nullptr) return;
  FreeScope const scope(device);
  PBM_CUDA_TRY_NOEXCEPT(cudaFreeHost(snapshot_host));
}

Stats MailboxState::stats() {
  auto const* s = static_cast<StatsSnapshot const volatile*>(snapshot_host);
  std::uint64_t const initial = s->initial_position;
  Stats now{};
  now.pushed = s->reserve - initial;
  now.popped = s->release - initial;
  now.dropped = s->dropped;
  now.pop_calls = s->pop_calls;
  now.claimed = s->consume - initial;
  std::uint64_t const gap = s->pop_gap;  // 1 + the position a pop stopped at, 0: none
  std::lock_guard<std::mutex> lock(mutex_);
  last_.pushed = std::max(last_.pushed, now.pushed);
  last_.popped = std::max(last_.popped, now.popped);
  last_.dropped = std::max(last_.dropped, now.dropped);
  last_.pop_calls = std::max(last_.pop_calls, now.pop_calls);
  last_.claimed = std::max(last_.claimed, now.claimed);
  last_.occupancy = last_.pushed >= last_.popped ? last_.pushed - last_.popped : 0;
  last_.head_uncommitted = gap != 0 && gap - 1 == last_.claimed && last_.pushed > last_.claimed;
  last_.capacity = capacity;
  last_.stride = stride;
  return last_;
}

void MailboxState::count_push(StreamClass cls, std::uint64_t requested) noexcept {
  push_calls[static_cast<int>(cls)].fetch_add(1, std::memory_order_relaxed);
  push_requested.fetch_add(requested, std::memory_order_relaxed);
}

void MailboxState::count_pop(StreamClass cls, std::uint64_t requested) noexcept {
  pop_calls[static_cast<int>(cls)].fetch_add(1, std::memory_order_relaxed);
  pop_requested.fetch_add(requested, std::memory_order_relaxed);
}

}  // namespace pbm::detail
