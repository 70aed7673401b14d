// RingView: where one mailbox's memory is (header, slot sequence words, payload) and its geometry.
// Plain data with inline address arithmetic, for host and device code; it includes none of the
// ring algorithm (pbm/detail/ring.cuh), so host code that holds a MailboxRef compiles no atomics.
#pragma once

#include <pbm/detail/config.hpp>
#include <pbm/layout.hpp>

#include <cstdint>

namespace pbm::detail {

/// A view of one mailbox's memory: everything the ring algorithm touches. Trivially copyable.
struct RingView {
  RingHeader* header;
  std::uint64_t* seq;          // capacity sequence words, right after the header
  unsigned char* payload;      // capacity * stride bytes
  std::uint64_t capacity;
  std::uint32_t stride;
  std::uint64_t origin;  // the header's initial_position: slots are counted from it

  /// Slot of a position. Counted from the origin so that a capacity that is not a power of two
  /// still maps p and p + capacity to one slot when positions wrap past 2^64.
  PBM_HD std::uint64_t slot_of(std::uint64_t position) const noexcept { return (position - origin) % capacity; }
  PBM_HD unsigned char* record(std::uint64_t slot) const noexcept { return payload + slot * stride; }
};

}  // namespace pbm::detail
