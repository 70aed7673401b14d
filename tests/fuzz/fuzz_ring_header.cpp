// The mailbox header validator (pbm::detail::validate, the __host__ __device__ check every pbm
// kernel runs before touching a mailbox) and the ring behind it, compiled for the host.
//  1. Any 512 header bytes and any expected geometry: validate() accepts only a header whose
//     magic, version and geometry are in range and match what the caller expects.
//  2. A header initialize() wrote for a geometry validate() accepts is accepted by it.
//  3. Single-threaded pushes and pops on that ring behave like a bounded FIFO queue: a full ring
//     refuses and counts a drop, a pop returns the oldest records, nothing is lost or duplicated.
#include "fuzz_input.hpp"

#include <pbm/detail/ring.cuh>

#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

namespace {

using pbm::DeviceError;
using pbm::RingHeader;
using pbm::detail::RingView;

constexpr std::uint64_t kMaxModelCapacity = 64;
constexpr std::uint32_t kMaxModelStride = 64;

struct HostRing {
  HostRing(std::uint64_t capacity, std::uint32_t stride, std::uint64_t origin)
      : header_storage(pbm::header_bytes(capacity) / 8 + 16), payload(capacity * stride / 8 + 2) {
    auto v = reinterpret_cast<std::uintptr_t>(header_storage.data());
    auto* h = reinterpret_cast<RingHeader*>((v + 127) / 128 * 128);
    view = RingView{h, reinterpret_cast<std::uint64_t*>(h + 1), reinterpret_cast<unsigned char*>(payload.data()),
                    capacity, stride, origin};
    pbm::detail::initialize(view);
  }
  std::vector<std::uint64_t> header_storage;
  std::vector<std::uint64_t> payload;  // 8-byte aligned: copies take the 4-byte path or the 16-byte one
  RingView view{};
};

void check_validator(pbm::fuzz::Input& in) {
  alignas(RingHeader) unsigned char bytes[sizeof(RingHeader)];
  in.fill(bytes, sizeof bytes);
  RingHeader h;
  std::memcpy(&h, bytes, sizeof h);
  auto const stride = in.take<std::uint32_t>();
  auto const capacity = in.take<std::uint64_t>();
  auto const origin = in.take<std::uint64_t>();
  DeviceError const e = pbm::detail::validate(h, stride, capacity, origin);
  PBM_FUZZ_CHECK(static_cast<std::uint32_t>(e) <= static_cast<std::uint32_t>(DeviceError::bad_geometry),
                 "validate returned an unknown code");
  PBM_FUZZ_CHECK(std::strlen(pbm::to_string(e)) > 0, "every code has a name");
  if (e != DeviceError::none) {
    PBM_FUZZ_CHECK(e != DeviceError::bad_magic || h.magic != pbm::kMagic, "bad_magic with the right magic");
    return;
  }
  PBM_FUZZ_CHECK(h.magic == pbm::kMagic && h.version == pbm::kLayoutVersion, "accepted a foreign header");
  PBM_FUZZ_CHECK(h.stride != 0 && h.stride % pbm::kStrideAlignment == 0 && h.stride <= pbm::kMaxStride,
                 "accepted a stride out of range");
  PBM_FUZZ_CHECK(h.capacity != 0 && h.capacity <= pbm::kMaxCapacity, "accepted a capacity out of range");
  PBM_FUZZ_CHECK(h.stride == stride, "accepted a stride other than the caller's");
  PBM_FUZZ_CHECK(capacity == 0 || h.capacity == capacity, "accepted a capacity other than the caller's");
  PBM_FUZZ_CHECK(h.initial_position == origin, "accepted another origin");
  // What the kernels index with stays within what header_bytes() and the payload size describe.
  PBM_FUZZ_CHECK(pbm::header_bytes(h.capacity) > sizeof(RingHeader), "header_bytes overflowed");
}

void check_ring_against_a_queue(pbm::fuzz::Input& in) {
  std::uint64_t const capacity = 1 + in.pick(kMaxModelCapacity);
  std::uint32_t const stride = pbm::kStrideAlignment * (1 + static_cast<std::uint32_t>(in.pick(kMaxModelStride / 4)));
  // Positions near 0, 2^32 and 2^64 (they wrap), or anywhere.
  std::uint64_t origin = 0;
  switch (in.pick(4)) {
    case 0: origin = in.take<std::uint8_t>(); break;
    case 1: origin = (1ull << 32) - in.take<std::uint8_t>(); break;
    case 2: origin = ~0ull - in.take<std::uint8_t>(); break;
    default: origin = in.take<std::uint64_t>(); break;
  }
  HostRing ring(capacity, stride, origin);
  RingView const& v = ring.view;
  PBM_FUZZ_CHECK(pbm::detail::validate(*v.header, stride, capacity, origin) == DeviceError::none,
                 "a freshly initialised header is rejected");
  PBM_FUZZ_CHECK(pbm::detail::validate(*v.header, stride + pbm::kStrideAlignment, capacity, origin) ==
                     DeviceError::stride_mismatch,
                 "a stride mismatch is not reported");

  std::deque<std::uint32_t> model;  // record ids, FIFO
  std::uint32_t next_id = 1;
  std::uint64_t pushed = 0, dropped = 0, popped = 0, pop_calls = 0;
  std::vector<unsigned char> records, out;
  auto fill_record = [stride](unsigned char* rec, std::uint32_t id) {
    for (std::uint32_t w = 0; w < stride / 4; ++w) {
      std::uint32_t const word = id * 2654435761u + w;
      std::memcpy(rec + 4 * w, &word, 4);
    }
  };
  for (int op = 0; op < 512 && !in.empty(); ++op) {
    std::uint8_t const what = in.take<std::uint8_t>();
    std::uint64_t const n = what >> 2;  // 0..63
    if ((what & 3) != 3) {
      records.assign(n * stride, 0);
      for (std::uint64_t i = 0; i < n; ++i) fill_record(&records[i * stride], next_id + static_cast<std::uint32_t>(i));
      std::uint64_t const room = capacity - model.size();
      std::uint64_t const k = (what & 3) == 0 && n == 1 ? (pbm::detail::try_push(v, records.data()) ? 1 : 0)
                                                         : pbm::detail::push_n(v, records.data(), n);
      PBM_FUZZ_CHECK(k == (n < room ? n : room), "a push took other than what fits");
      for (std::uint64_t i = 0; i < k; ++i) model.push_back(next_id++);
      next_id += static_cast<std::uint32_t>(n - k);
      pushed += k;
      dropped += n - k;
    } else {
      out.assign((n + 1) * stride, 0);
      std::uint64_t const k = pbm::detail::pop_bulk(v, out.data(), n);
      std::uint64_t const expect = n < model.size() ? n : model.size();
      PBM_FUZZ_CHECK(k == expect, "a pop returned other than the oldest min(max, occupancy) records");
      std::vector<unsigned char> want(stride);
      for (std::uint64_t i = 0; i < k; ++i) {
        fill_record(want.data(), model.front());
        model.pop_front();
        PBM_FUZZ_CHECK(std::memcmp(want.data(), &out[i * stride], stride) == 0, "a popped record is not the one pushed");
      }
      for (std::uint64_t i = k * stride; i < out.size(); ++i)
        PBM_FUZZ_CHECK(out[i] == 0, "a pop wrote past the records it returned");
      popped += k;
      if (k != 0) ++pop_calls;
    }
  }
  pbm::detail::Counters const c = pbm::detail::read_counters(*v.header);
  PBM_FUZZ_CHECK(c.reserve - origin == pushed, "reserve position != records pushed");
  PBM_FUZZ_CHECK(c.release - origin == popped && c.consume - origin == popped, "release/consume != records popped");
  PBM_FUZZ_CHECK(c.dropped == dropped, "drops miscounted");
  PBM_FUZZ_CHECK(c.pop_calls == pop_calls, "pop calls miscounted");
  PBM_FUZZ_CHECK(v.header->free_slots == static_cast<std::int64_t>(capacity - model.size()), "free slots drifted");
  PBM_FUZZ_CHECK(pbm::detail::validate(*v.header, stride, capacity, origin) == DeviceError::none,
                 "pushes and pops corrupted the header");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  pbm::fuzz::Input in(data, size);
  // First byte picks the half: the validator on raw header bytes, or a ring against a queue.
  if (in.take<std::uint8_t>() & 1) {
    check_ring_against_a_queue(in);
  } else {
    check_validator(in);
  }
  return 0;
}
