#include "state.hpp"

#include <pbm/error.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace pbm {

namespace detail {

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
  if (snapshot_host != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaFreeHost(snapshot_host));
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

namespace {
// Never destroyed: a Mailbox that outlives static destruction still unregisters safely.
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::vector<MailboxState*>& registry() {
  static auto* r = new std::vector<MailboxState*>;
  return *r;
}
}  // namespace

void register_mailbox(MailboxState* state) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(state);
}

void MailboxStateDeleter::operator()(MailboxState* state) const noexcept {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());  // waits for a reader of it to finish
    auto& r = registry();
    r.erase(std::remove(r.begin(), r.end(), state), r.end());
  }
  delete state;  // cudaFreeHost here, on the owner's thread
}

}  // namespace detail

std::vector<MailboxInfo> mailboxes() {
  // Everything is copied under the lock: a mailbox is never freed while it is read, and a reader
  // never holds one past this call.
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  std::vector<MailboxInfo> out;
  out.reserve(detail::registry().size());
  for (detail::MailboxState* s : detail::registry()) {
    MailboxInfo info;
    info.name = s->name;
    info.device = s->device;
    info.stats = s->stats();
    for (int c = 0; c < 2; ++c) {
      info.push_calls[c] = s->push_calls[c].load(std::memory_order_relaxed);
      info.pop_calls[c] = s->pop_calls[c].load(std::memory_order_relaxed);
    }
    info.push_requested_records = s->push_requested.load(std::memory_order_relaxed);
    info.pop_requested_records = s->pop_requested.load(std::memory_order_relaxed);
    out.push_back(std::move(info));
  }
  return out;
}

StreamClass classify_stream(cudaStream_t stream) {
  int priority = 0;
  PBM_CUDA_TRY(cudaStreamGetPriority(stream, &priority));
  return stream_class_for(priority, priority_range());
}

}  // namespace pbm
