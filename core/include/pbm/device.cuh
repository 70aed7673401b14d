// Device API for user kernels: push from one thread, push from a warp with one reservation,
// bulk pop by a block. Include from .cu files compiled by nvcc.
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
/// the rest are dropped and counted.
__device__ inline bool warp_push(MailboxRef ref, void const* rec, bool active = true) {
  namespace cg = cooperative_groups;
  cg::coalesced_group const g = cg::coalesced_threads();
  unsigned const want = g.ballot(active);
  if (want == 0) return false;
  unsigned const rank = __popc(want & ((1u << g.thread_rank()) - 1u));  // rank among active threads
  unsigned const leader = __ffs(want) - 1;                           // first active thread's rank in g
  unsigned long long base = 0, granted = 0;
  if (g.thread_rank() == leader) {
    uint64_t b = 0;
    granted = detail::reserve(ref.view(), __popc(want), &b);
    base = b;
  }
  granted = g.shfl(granted, leader);
  base = g.shfl(base, leader);
  bool const in = active && rank < granted;
  if (in) {
    detail::RingView const v = ref.view();
    detail::copy_record(v.record(v.slot_of(base + rank)), static_cast<unsigned char const*>(rec), v.stride);
    detail::commit(v, base + rank);
  }
  return in;
}

/// Block-cooperative bulk pop: every thread of the block calls it with the same arguments.
/// Claims the longest FIFO prefix of committed records (up to max_records), copies them to dst
/// with wide coalesced accesses by all threads, and releases their slots. Returns the count to
/// every thread. dst must hold max_records × stride bytes and be 4-byte aligned (16 for the
/// widest copies). Uses a few words of static shared memory; contains __syncthreads().
__device__ inline uint64_t block_pop(MailboxRef ref, void* dst, uint64_t max_records) {
  detail::RingView const v = ref.view();
  uint64_t base = 0;
  uint64_t const k = detail::block_claim(v, max_records, &base);
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  detail::copy_out(v, static_cast<unsigned char*>(dst), base, 0, k, t, nthreads);
  __threadfence();
  __syncthreads();  // every read of the claimed slots is done before they are released
  if (t == 0 && k != 0) detail::release_in_order(v, base, k);
  __syncthreads();
  return k;
}

#endif  // __CUDACC__

}  // namespace pbm
