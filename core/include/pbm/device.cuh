// Device API for user kernels: push from one thread, push from a warp or a whole block with one
// reservation, bulk pop by a block. Include from .cu files compiled by nvcc.
//
// All functions are safe to call concurrently from any number of threads, warps, blocks and
// kernels on the mailbox's device, together with host-launched push/pop.
#pragma once

#include <pbm/detail/block_ops.cuh>
#include <pbm/mailbox_ref.cuh>

#include <cooperative_groups.h>

namespace pbm {

#if defined(__CUDACC__)

/// One thread pushes one record (ref.stride() bytes at rec). Returns false and counts a drop when
/// the mailbox is full; never overwrites. rec must be 4-byte aligned.
__device__ inline bool try_push(MailboxRef ref, void const* rec) { return detail::try_push(ref.view(), rec); }

/// Warp-aggregated push: the threads that call together (a coalesced group) make one reservation
/// for all active records; each thread then copies and commits its own. Threads with
/// active == false take part without pushing. Returns true for threads whose record went in.
/// When the mailbox has room for only some records, the lowest-ranked active threads get in and
/// the rest are dropped and counted. The reservation goes straight to the atomics (no load of the
/// free count first: one dependent trip to memory less per warp) unless a warp of the same block
/// recently found the mailbox short of room: then it loads the free count first, so that producers
/// hammering a full mailbox read it rather than hold its line with atomics the consumers' releases
/// must queue behind. (One 4-byte hint per block, in static shared memory, shared by every mailbox
/// the block pushes to; it only picks between two correct ways to reserve.)
__device__ inline bool warp_push(MailboxRef ref, void const* rec, bool active = true) {
  namespace cg = cooperative_groups;
  cg::coalesced_group const g = cg::coalesced_threads();
  unsigned const want = g.ballot(active);
  if (want == 0) return false;
  unsigned const rank = __popc(want & ((1u << g.thread_rank()) - 1u));  // rank among active threads
  unsigned const leader = __ffs(want) - 1;                           // first active thread's rank in g
  unsigned long long base = 0, granted = 0;
  if (g.thread_rank() == leader) {
    // Shared-memory atomics: warps of the block read and write the hint concurrently, by design.
    // Its first value is whatever the shared memory held: at worst one careful reservation.
    __shared__ unsigned s_short_of_room;
    bool const short_before = atomicOr(&s_short_of_room, 0u) != 0;
    uint64_t b = 0;
    granted = detail::reserve(ref.view(), __popc(want), &b, /*optimistic=*/!short_before);
    bool const short_now = granted < __popc(want);
    if (short_now != short_before) atomicExch(&s_short_of_room, short_now ? 1u : 0u);
    base = b;
  }
  granted = g.shfl(granted, leader);
  base = g.shfl(base, leader);
  g.sync();  // a shuffle orders no memory: the barrier puts the leader's acquire before every lane's slot writes
  bool const in = active && rank < granted;
  if (in) {
    detail::RingView const v = ref.view();
    detail::copy_record(v.record(v.slot_of(base + rank)), static_cast<unsigned char const*>(rec), v.stride);
    detail::commit(v, base + rank);
  }
  return in;
}

/// Block-aggregated push: every thread of the block calls it together and the block makes ONE
/// reservation for all its active records; each thread then copies and commits its own (ref.stride()
/// bytes at rec, 4-byte aligned; not read when active == false). Returns true for threads whose
/// record went in. When the mailbox has room for only some records, the lowest-ranked active threads
/// get in (rank: warp by warp in linear thread order, then lane order) and the rest are dropped and
/// counted. Any block shape (1-D/2-D/3-D, sizes not a multiple of 32).
/// Contains __syncthreads(): all threads of the block must reach it, like block_pop. Threads with
/// nothing to push pass active = false rather than skipping the call; in a grid-stride loop every
/// thread of the block must run the same number of iterations (loop on a block-uniform condition).
/// Uses a few hundred bytes of static shared memory. Against warp_push it trades two barriers per
/// call for blockDim / 32 times fewer atomics on the header's two contended words.
__device__ inline bool block_push(MailboxRef ref, void const* rec, bool active = true) {
  // Per-warp counts are written before the first barrier and read (by warp 0) before the second;
  // offsets, base and granted are written between the two and read after the second. Writes of the
  // next call come after a barrier that every reader of this call has passed, so consecutive calls
  // need no third barrier.
  __shared__ unsigned s_count[32];   // active threads per warp (a block has at most 32 warps)
  __shared__ unsigned s_offset[32];  // exclusive prefix of s_count: the warp's first rank
  __shared__ unsigned long long s_base;
  __shared__ unsigned s_granted;
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  unsigned const warp = t / 32, lane = t % 32;  // linear thread order is the hardware warp order
  unsigned const nwarps = (nthreads + 31) / 32;
  unsigned const lanes = nthreads - warp * 32 < 32 ? nthreads - warp * 32 : 32;  // last warp may be partial
  unsigned const mask = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
  unsigned const want = __ballot_sync(mask, active);
  unsigned const rank_in_warp = __popc(want & ((1u << lane) - 1u));
  if (lane == 0) s_count[warp] = __popc(want);
  __syncthreads();
  if (warp == 0) {  // warp 0 has a lane per warp: nwarps <= 32, and nwarps == 1 when it is partial
    unsigned const c = lane < nwarps ? s_count[lane] : 0u;
    unsigned inclusive = c;
    for (unsigned d = 1; d < 32; d <<= 1) {
      unsigned const up = __shfl_up_sync(mask, inclusive, d);
      if (lane >= d) inclusive += up;
    }
    unsigned const total = __shfl_sync(mask, inclusive, nwarps - 1);
    if (lane < nwarps) s_offset[lane] = inclusive - c;
    if (lane == 0) {
      uint64_t b = 0;
      s_granted = static_cast<unsigned>(detail::reserve(ref.view(), total, &b));  // counts the drops
      s_base = b;
    }
  }
  // Also orders the reservation's acquire (warp 0) before every thread's writes into the slots.
  __syncthreads();
  unsigned const granted = s_granted;
  unsigned const rank = s_offset[warp] + rank_in_warp;
  bool const in = active && rank < granted;
  if (in) {
    detail::RingView const v = ref.view();
    uint64_t const position = s_base + rank;
    detail::copy_record(v.record(v.slot_of(position)), static_cast<unsigned char const*>(rec), v.stride);
    detail::commit(v, position);
  }
  return in;
}

/// Block-cooperative bulk pop: every thread of the block calls it with the same arguments.
/// Claims the longest FIFO prefix of committed records (up to max_records), copies them to dst
/// with wide coalesced accesses by all threads, and releases their slots. Returns the count to
/// every thread. dst must hold max_records × stride bytes and be 4-byte aligned (16 for the
/// widest copies). Uses a few words of static shared memory; contains __syncthreads().
/// Releasing waits for earlier claims; if one is never released (its kernel was killed), it gives
/// up after about a second (detail::kReleaseWaitNs): the records returned are still valid but their
/// slots stay claimed, and `status` (when not null; every thread gets it) says
/// DeviceError::release_stalled with the position that was never released. The mailbox is then
/// stalled for good (see "Stalls" in detail/ring.cuh).
__device__ inline uint64_t block_pop(MailboxRef ref, void* dst, uint64_t max_records, PopStatus* status = nullptr) {
  __shared__ PopStatus s_status;
  detail::RingView const v = ref.view();
  uint64_t base = 0;
  uint64_t const k = detail::block_claim(v, max_records, &base);
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  detail::copy_out(v, static_cast<unsigned char*>(dst), base, 0, k, t, nthreads);
  __threadfence();
  __syncthreads();  // every read of the claimed slots is done before they are released
  if (t == 0) {
    s_status = PopStatus{DeviceError::none, 0};
    if (k != 0 && !detail::release_in_order(v, base, k, ~uint64_t{0}, detail::kReleaseWaitNs, &s_status.stalled_at))
      s_status.error = DeviceError::release_stalled;
  }
  __syncthreads();  // (a next call rewrites s_status only after block_claim's barriers)
  if (status != nullptr) *status = s_status;
  return k;
}

#endif  // __CUDACC__

}  // namespace pbm
