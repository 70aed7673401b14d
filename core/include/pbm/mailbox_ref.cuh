// MailboxRef: a trivially copyable, non-owning handle to a mailbox, passed to kernels by value.
// Host and device code may hold it; only device code (pbm/device.cuh) or the ring algorithm may
// use the memory it points to. Plain data: including it compiles none of the ring algorithm.
#pragma once

#include <pbm/detail/config.hpp>
#include <pbm/detail/ring_view.hpp>
#include <pbm/layout.hpp>

#include <cstdint>
#include <type_traits>

namespace pbm {

class MailboxRef {
 public:
  MailboxRef() = default;

  /// Wraps raw memory: a header (header_bytes(capacity) bytes) and a payload of capacity × stride
  /// bytes, both on one device. No check is made here; device code validates the header.
  /// `origin` is the position the header was initialised at (0 unless a test chose otherwise).
  PBM_HD MailboxRef(void* header, void* payload, std::uint64_t capacity, std::uint32_t stride,
                    std::uint64_t origin = 0) noexcept
      : view_{static_cast<RingHeader*>(header),
              reinterpret_cast<std::uint64_t*>(static_cast<unsigned char*>(header) + sizeof(RingHeader)),
              static_cast<unsigned char*>(payload), capacity, stride, origin} {}

  PBM_HD std::uint64_t capacity() const noexcept { return view_.capacity; }
  PBM_HD std::uint32_t stride() const noexcept { return view_.stride; }
  PBM_HD RingHeader* header() const noexcept { return view_.header; }
  PBM_HD void* payload() const noexcept { return view_.payload; }
  PBM_HD detail::RingView view() const noexcept { return view_; }

 private:
  detail::RingView view_{};
};

static_assert(std::is_trivially_copyable_v<MailboxRef>, "MailboxRef is passed to kernels by value");

}  // namespace pbm
