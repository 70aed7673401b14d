// A pbm ring in host memory, driven by the same algorithm the kernels run (pbm/detail/ring.cuh),
// reported as a pbm::MailboxInfo: lets exporter tests push and pop real records without a GPU.
#pragma once

#include <pbm/detail/ring.cuh>
#include <pbm/registry.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace pbm::exporters::testing {

class HostRing {
 public:
  HostRing(std::string name, std::uint64_t capacity, std::uint32_t stride)
      : name_(std::move(name)),
        header_storage_(pbm::header_bytes(capacity) / 8 + 32),
        payload_storage_(capacity * stride / 8 + 16) {
    auto* h = reinterpret_cast<pbm::RingHeader*>(align(header_storage_.data(), 128));
    view_ = pbm::detail::RingView{h,
                                  reinterpret_cast<std::uint64_t*>(reinterpret_cast<unsigned char*>(h) +
                                                                   sizeof(pbm::RingHeader)),
                                  static_cast<unsigned char*>(align(payload_storage_.data(), 16)),
                                  capacity, stride, 0};
    pbm::detail::initialize(view_);
  }

  /// Pushes n records (one reservation), counted as one call of `cls`. Returns how many went in.
  std::uint64_t push(void const* records, std::uint64_t n, StreamClass cls = StreamClass::focus) {
    push_calls_[static_cast<int>(cls)].fetch_add(1, std::memory_order_relaxed);
    return pbm::detail::push_n(view_, records, n);
  }
  /// Pops up to max records into dst, counted as one call of `cls`. Returns how many.
  std::uint64_t pop(void* dst, std::uint64_t max, StreamClass cls = StreamClass::peripheral) {
    pop_calls_[static_cast<int>(cls)].fetch_add(1, std::memory_order_relaxed);
    return pbm::detail::pop_bulk(view_, dst, max);
  }

  /// What pbm::mailboxes() would report for a device mailbox.
  MailboxInfo info() const {
    pbm::detail::Counters const c = pbm::detail::read_counters(*view_.header);
    MailboxInfo m;
    m.name = name_;
    m.device = -1;  // host memory
    m.stats.pushed = c.reserve - view_.origin;
    m.stats.popped = c.release - view_.origin;
    m.stats.dropped = c.dropped;
    m.stats.pop_calls = c.pop_calls;
    m.stats.occupancy = m.stats.pushed - m.stats.popped;
    m.stats.capacity = view_.capacity;
    m.stats.stride = view_.stride;
    for (int i = 0; i < 2; ++i) {
      m.push_calls[i] = push_calls_[i].load(std::memory_order_relaxed);
      m.pop_calls[i] = pop_calls_[i].load(std::memory_order_relaxed);
    }
    return m;
  }
  std::uint32_t stride() const { return view_.stride; }

 private:
  static void* align(void* p, std::uintptr_t a) {
    auto v = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<void*>((v + a - 1) / a * a);
  }
  std::string name_;
  std::vector<std::uint64_t> header_storage_;
  std::vector<std::uint64_t> payload_storage_;
  pbm::detail::RingView view_{};
  std::atomic<std::uint64_t> push_calls_[2] = {0, 0};
  std::atomic<std::uint64_t> pop_calls_[2] = {0, 0};
};

}  // namespace pbm::exporters::testing
