// The ring algorithm, written once for host and device.
//
// Compiled by nvcc for the device, it serves the kernels; compiled by a host compiler it runs
// under std::thread in the CPU test suite, so the same code is tested on every CI run.
//
// Protocol (positions are 64-bit, compared only for equality or by difference, so they may
// wrap past 2^64):
//  * Producer: take k <= n slots from `free_slots` (fetch_sub; give back what was over), then
//    `reserve.fetch_add(k)` gives the base position. free_slots guarantees every position handed out
//    has a slot whose previous record was fully read. Write the records, then store seq = p + 1
//    (release) per slot: per-slot commit, so producers never wait for each other.
//    Records that found no slot are dropped and counted; nothing is overwritten.
//  * Consumer: read `consume`, count the longest prefix of committed slots (seq == p + 1, acquire)
//    up to max, claim it with one CAS on `consume`, copy, then release in claim order
//    (wait until `release` == own base, store base + k, give the slots back to free_slots).
//    In-order release is what makes free_slots a sound count of reusable slots.
//
// Stalls. Both sides assume that whoever took a position finishes with it. If a producer stops
// between reserve and commit (its kernel killed or faulted, e.g. on a peer GPU), every pop stops at
// that record for good: pops return what precedes it, then 0; producers go on until the mailbox is
// full, then drop. If a consumer stops between claim and release, `release` stops at its claim:
// later pops still claim and copy, but release_in_order cannot give their slots back. It waits at
// most kReleaseWaitNs, then returns the pop's records with DeviceError::release_stalled and
// leaves that pop's claim unreleased (its slots are never rewritten, so nothing is lost or
// duplicated). Neither stall is recoverable in place: positions past it never free, so the mailbox
// drains what it holds (each pop after a stalled release waits out the bound) and then refuses
// every push. Stats::head_uncommitted and Stats::claimed - Stats::popped show them on the host.
#pragma once

#include <pbm/detail/config.hpp>
#include <pbm/detail/ring_view.hpp>
#include <pbm/layout.hpp>

#include <cuda/atomic>
#include <cuda/std/cstdint>
#include <vector_types.h>

#if !PBM_DEVICE_CODE
#include <chrono>
#include <thread>
#endif

namespace pbm::detail {

using cuda::std::int64_t;
using cuda::std::uint32_t;
using cuda::std::uint64_t;

template <class T>
using atomic_ref = cuda::atomic_ref<T, cuda::thread_scope_device>;

inline constexpr auto relaxed = cuda::std::memory_order_relaxed;
inline constexpr auto acquire = cuda::std::memory_order_acquire;
inline constexpr auto release_order = cuda::std::memory_order_release;
inline constexpr auto acq_rel = cuda::std::memory_order_acq_rel;

/// Back off while waiting for another agent (another block or thread) to make progress.
PBM_HD inline void backoff() noexcept {
#if PBM_DEVICE_CODE
  __nanosleep(64);
#else
  std::this_thread::yield();
#endif
}

/// A clock in nanoseconds, for bounding waits: the GPU's global timer, or steady_clock on the host.
PBM_HD inline uint64_t now_ns() noexcept {
#if PBM_DEVICE_CODE
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#else
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
#endif
}

/// Writes an empty header (every byte: padding zeroed too): positions start at v.origin, every
/// slot free. Plain stores, by one thread; nothing may use the ring concurrently.
PBM_HD inline void initialize_header(RingView v) noexcept {
  uint64_t const initial_position = v.origin;
  RingHeader& h = *v.header;
  unsigned char* bytes = reinterpret_cast<unsigned char*>(&h);
  for (unsigned i = 0; i < sizeof(RingHeader); ++i) bytes[i] = 0;
  h.magic = kMagic;
  h.version = kLayoutVersion;
  h.stride = v.stride;
  h.capacity = v.capacity;
  h.initial_position = initial_position;
  h.reserve = initial_position;
  h.free_slots = static_cast<int64_t>(v.capacity);
  h.consume = initial_position;
  h.release = initial_position;
}

/// Marks the slot of the i-th position from the origin (i < capacity) free: its sequence word holds
/// that position, one short of the value a commit of it stores. Plain store; slots are independent.
PBM_HD inline void initialize_slot(RingView v, uint64_t i) noexcept {
  uint64_t const p = v.origin + i;
  v.seq[v.slot_of(p)] = p;
}

/// Initialises a mailbox in (host-accessible) memory: the header and every slot.
/// Not thread-safe; nothing may use the ring concurrently. (init_kernel does the same on the device,
/// its slots spread over the grid.)
PBM_HD inline void initialize(RingView v) noexcept {
  initialize_header(v);
  for (uint64_t i = 0; i < v.capacity; ++i) initialize_slot(v, i);
}

/// The header fields validate() checks, read together (plain loads with no test between them, so a
/// kernel has them in flight at once, and beside whatever it loads next).
struct HeaderId {
  uint32_t magic, version, stride;
  uint64_t capacity, initial_position;
};

PBM_HD inline HeaderId read_id(RingHeader const& h) noexcept {
  return HeaderId{h.magic, h.version, h.stride, h.capacity, h.initial_position};
}

/// Validates the header against the caller's expectations (DeviceError::none when all is well).
PBM_HD inline DeviceError validate(HeaderId const& h, uint32_t expected_stride, uint64_t expected_capacity,
                                   uint64_t expected_origin = 0) noexcept {
  if (h.magic != kMagic) return DeviceError::bad_magic;
  if (h.version != kLayoutVersion) return DeviceError::bad_version;
  if (h.stride == 0 || h.stride % kStrideAlignment != 0 || h.stride > kMaxStride ||
      h.capacity == 0 || h.capacity > kMaxCapacity)
    return DeviceError::bad_geometry;
  if (h.stride != expected_stride) return DeviceError::stride_mismatch;
  if (expected_capacity != 0 && h.capacity != expected_capacity) return DeviceError::bad_geometry;
  if (h.initial_position != expected_origin) return DeviceError::bad_geometry;
  return DeviceError::none;
}

PBM_HD inline DeviceError validate(RingHeader const& h, uint32_t expected_stride, uint64_t expected_capacity,
                                   uint64_t expected_origin = 0) noexcept {
  return validate(read_id(h), expected_stride, expected_capacity, expected_origin);
}

// ---------------------------------------------------------------- producer side

/// Room above which producers take slots with one fetch_sub; below it they use a CAS loop.
inline constexpr int64_t kFastPathMargin = 4096;

/// The most one request asks free_slots for: free_slots never exceeds capacity, and the signed
/// arithmetic of take_slots must not overflow whatever n a caller of the detail API passes.
inline constexpr uint64_t kMaxRequest = uint64_t{1} << 62;

/// Takes up to n slots from free_slots; returns how many (0..min(n, capacity)).
/// Plenty of room: one fetch_sub (what overshoots is given back). Little room: a CAS loop that
/// never drives the count below zero, so producers hammering a full mailbox only read it and do not
/// starve each other (docs/RELIABILITY.md, "The mailbox under load").
/// `optimistic`: skip the first load and try the fetch_sub straight away (one dependent trip to
/// memory less per reservation; a full mailbox then costs two atomics per attempt instead of a load).
PBM_HD inline uint64_t take_slots(RingView v, uint64_t n, bool optimistic = false) noexcept {
  atomic_ref<int64_t> free_slots(v.header->free_slots);
  uint64_t const most = v.capacity < kMaxRequest ? v.capacity : kMaxRequest;
  int64_t const want = static_cast<int64_t>(n < most ? n : most);
  int64_t cur = optimistic ? want + kFastPathMargin : free_slots.load(relaxed);
  if (cur >= want + kFastPathMargin) {
    // acq_rel: pairs with consumers' release of free_slots, so our writes land after their reads.
    int64_t const before = free_slots.fetch_sub(want, acq_rel);
    if (before >= want) return static_cast<uint64_t>(want);
    free_slots.fetch_add(want, relaxed);  // overshot: give back, take the careful path
    cur = free_slots.load(relaxed);
  }
  while (cur > 0) {
    int64_t const take = cur < want ? cur : want;
    if (free_slots.compare_exchange_weak(cur, cur - take, acq_rel, relaxed)) return static_cast<uint64_t>(take);
  }
  return 0;
}

/// Takes up to n slots (any n: never more than fit); returns how many (0..n) and their first
/// position in *base. The n - k records that got no slot are counted as dropped.
PBM_HD inline uint64_t reserve(RingView v, uint64_t n, uint64_t* base, bool optimistic = false) noexcept {
  if (n == 0) return 0;
  uint64_t const got = take_slots(v, n, optimistic);
  if (got < n) atomic_ref<uint64_t>(v.header->dropped).fetch_add(n - got, relaxed);
  if (got == 0) return 0;
  // acq_rel: the slot behind our position may have been freed by a release that a producer
  // reserving before us (in `reserve` order) observed; the RMW chain carries that ordering to us.
  *base = atomic_ref<uint64_t>(v.header->reserve).fetch_add(got, acq_rel);
  return got;
}

/// Publishes the record at `position` (its bytes must already be written by this thread, or be
/// ordered before this call by a fence and barrier).
PBM_HD inline void commit(RingView v, uint64_t position) noexcept {
  atomic_ref<uint64_t>(v.seq[v.slot_of(position)]).store(position + 1, release_order);
}

/// Copies one record of v.stride bytes in 4-byte words (16 when both sides are 16-byte aligned).
PBM_HD inline void copy_record(unsigned char* dst, unsigned char const* src, uint32_t stride) noexcept {
  auto const both = reinterpret_cast<cuda::std::uintptr_t>(dst) | reinterpret_cast<cuda::std::uintptr_t>(src);
  if ((both % 16) == 0 && stride % 16 == 0) {
    auto* d = reinterpret_cast<uint4*>(dst);
    auto const* s = reinterpret_cast<uint4 const*>(src);
    for (uint32_t i = 0; i < stride / 16; ++i) d[i] = s[i];
  } else {
    auto* d = reinterpret_cast<uint32_t*>(dst);
    auto const* s = reinterpret_cast<uint32_t const*>(src);
    for (uint32_t i = 0; i < stride / 4; ++i) d[i] = s[i];
  }
}

/// One thread pushes one record. Returns false (and counts a drop) when the mailbox is full.
PBM_HD inline bool try_push(RingView v, void const* rec) noexcept {
  uint64_t base = 0;
  if (reserve(v, 1, &base) == 0) return false;
  copy_record(v.record(v.slot_of(base)), static_cast<unsigned char const*>(rec), v.stride);
  commit(v, base);
  return true;
}

/// One thread pushes n consecutive records (one reservation). Returns how many went in, in order;
/// the rest are dropped and counted.
PBM_HD inline uint64_t push_n(RingView v, void const* recs, uint64_t n) noexcept {
  uint64_t base = 0;
  uint64_t const k = reserve(v, n, &base);
  auto const* src = static_cast<unsigned char const*>(recs);
  for (uint64_t i = 0; i < k; ++i)
    copy_record(v.record(v.slot_of(base + i)), src + i * v.stride, v.stride);
  for (uint64_t i = 0; i < k; ++i) commit(v, base + i);
  return k;
}

// ---------------------------------------------------------------- consumer side

/// True when the record at `position` is committed (acquire: its bytes are visible).
PBM_HD inline bool is_committed(RingView v, uint64_t position) noexcept {
  return atomic_ref<uint64_t>(v.seq[v.slot_of(position)]).load(acquire) == position + 1;
}

/// Length of the run of committed records starting at `from`, at most `max`.
PBM_HD inline uint64_t committed_prefix(RingView v, uint64_t from, uint64_t max) noexcept {
  uint64_t k = 0;
  while (k < max && is_committed(v, from + k)) ++k;
  return k;
}

/// Claims [from, from + k) by moving `consume` from `from`; false when another consumer moved it.
PBM_HD inline bool try_claim(RingView v, uint64_t from, uint64_t k) noexcept {
  uint64_t expected = from;
  return atomic_ref<uint64_t>(v.header->consume).compare_exchange_strong(expected, from + k, acq_rel, relaxed);
}

/// Claims the longest committed prefix (up to max, and never more than capacity) for this
/// consumer. Returns its length; *base receives its first position.
PBM_HD inline uint64_t claim(RingView v, uint64_t max, uint64_t* base) noexcept {
  if (max > v.capacity) max = v.capacity;
  atomic_ref<uint64_t> consume(v.header->consume);
  for (;;) {
    uint64_t const from = consume.load(acquire);
    uint64_t const k = committed_prefix(v, from, max);
    if (k == 0) {
      if (consume.load(acquire) == from) return 0;  // really empty at this instant
      continue;
    }
    if (try_claim(v, from, k)) {
      *base = from;
      return k;
    }
  }
}

/// How long release_in_order waits for earlier claims by default: about a second, and never fewer
/// than kReleaseWaitNs >> 10 backoff rounds, so a run slowed down as a whole (sanitizers) waits
/// longer rather than giving up on a claimant that is merely slow.
inline constexpr uint64_t kReleaseWaitNs = 1'000'000'000;

/// Gives the claimed slots back, in claim order: waits for earlier claims to be released first.
/// Returns true once released. The earlier claimants have claimed, so they are running and will get
/// here, unless one was killed: after wait_ns (and wait_ns >> 10 rounds) it gives up and returns
/// false without touching the ring (this claim stays unreleased: see "Stalls" above), with the
/// first position never released in *stalled_at.
/// `seen`: a value of `release` the caller loaded after its claim and ordered before this call
/// (e.g. a relaxed load followed by a fence), or anything else: when it equals base, every earlier
/// claim is released and only this claimant can move `release`, so the wait is skipped.
PBM_HD inline bool release_in_order(RingView v, uint64_t base, uint64_t k, uint64_t seen = ~uint64_t{0},
                                    uint64_t wait_ns = kReleaseWaitNs, uint64_t* stalled_at = nullptr) noexcept {
  atomic_ref<uint64_t> rel(v.header->release);
  if (seen != base || base == ~uint64_t{0}) {
    uint64_t r = rel.load(acquire);
    if (r != base) {
      uint64_t const start = now_ns();
      uint64_t const min_rounds = wait_ns >> 10;
      for (uint64_t round = 1; (r = rel.load(acquire)) != base; ++round) {
        if (round >= min_rounds && round % 64 == 0 && now_ns() - start >= wait_ns) {
          if (stalled_at != nullptr) *stalled_at = r;
          return false;
        }
        backoff();
      }
    }
  }
  rel.store(base + k, release_order);
  atomic_ref<int64_t>(v.header->free_slots).fetch_add(static_cast<int64_t>(k), release_order);
  atomic_ref<uint64_t>(v.header->pop_calls).fetch_add(1, relaxed);
  return true;
}

/// One thread pops up to max records into dst, FIFO. Returns how many. With `status`, reports
/// DeviceError::release_stalled when release_in_order gave up after wait_ns (the records returned
/// are still valid).
PBM_HD inline uint64_t pop_bulk(RingView v, void* dst, uint64_t max, PopStatus* status = nullptr,
                                uint64_t wait_ns = kReleaseWaitNs) noexcept {
  uint64_t base = 0;
  uint64_t const k = claim(v, max, &base);
  auto* out = static_cast<unsigned char*>(dst);
  for (uint64_t i = 0; i < k; ++i) copy_record(out + i * v.stride, v.record(v.slot_of(base + i)), v.stride);
  PopStatus result{DeviceError::none, 0};
  if (k != 0 && !release_in_order(v, base, k, ~uint64_t{0}, wait_ns, &result.stalled_at))
    result.error = DeviceError::release_stalled;
  if (status != nullptr) *status = result;
  return k;
}

// ---------------------------------------------------------------- observation

/// Positions and counters read with relaxed loads: each field exact, fields not mutually atomic.
struct Counters {
  uint64_t reserve, consume, release, dropped, pop_calls;
};

PBM_HD inline Counters read_counters(RingHeader& h) noexcept {
  return Counters{atomic_ref<uint64_t>(h.reserve).load(relaxed), atomic_ref<uint64_t>(h.consume).load(relaxed),
                  atomic_ref<uint64_t>(h.release).load(relaxed), atomic_ref<uint64_t>(h.dropped).load(relaxed),
                  atomic_ref<uint64_t>(h.pop_calls).load(relaxed)};
}

}  // namespace pbm::detail
