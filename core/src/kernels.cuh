// The kernels the host API launches. One launch per operation, all blocks copying their share with
// wide accesses. A push: the first block to arrive reserves for the whole launch and publishes the
// reservation. A pop: one block does everything, or each block scans and copies its share and the
// last one claims (pop_kernel). The last block to finish publishes the result (and releases a pop's
// slots), in the same launch.
// Private to pbm::core and included by mailbox.cu alone: the kernels are not inline, so a second
// translation unit including this header would define them twice.
#pragma once

#include "launch.hpp"

#include <pbm/detail/block_ops.cuh>
#include <pbm/mailbox_ref.cuh>

namespace pbm::detail {

#if defined(__CUDACC__)

/// Where a launch reports: the coordination cell, the host-visible result, and optional extras.
struct LaunchTarget {
  LaunchCell* cell;               // device memory
  ResultSlot* result;             // mapped host memory (device pointer), may be null
  std::uint64_t generation;       // packed into result->done when the launch is complete
  StatsSnapshot* snapshot;        // mapped host memory (device pointer), may be null
  unsigned long long* count_out;  // device memory (e.g. a torch tensor), may be null
};

/// Thread 0 of every block: the first block runs `first` (which returns the launch's count and
/// error) and publishes; the others wait for it. Returns, in shared memory, base/count/error.
/// A pop also reports where a stalled release stopped (stalled_at) and where its scan stopped
/// (gap: 1 + position - origin, 0 when it took all it asked for).
struct Published {
  unsigned long long base;
  unsigned long long count;
  std::uint32_t error;
  unsigned long long stalled_at;
  unsigned long long gap;
};

__device__ inline void write_snapshot(RingView v, StatsSnapshot* snap, std::uint32_t error,
                                      unsigned long long gap = 0) {
  if (snap == nullptr) return;
  Counters const c = read_counters(*v.header);
  volatile StatsSnapshot* s = snap;
  s->reserve = c.reserve;
  s->consume = c.consume;
  s->release = c.release;
  s->dropped = c.dropped;
  s->pop_calls = c.pop_calls;
  s->initial_position = v.header->initial_position;
  if (error != 0) s->error = error;  // written, never read back: device reads of host memory are slow
  if (gap != 0) s->pop_gap = gap;
}

/// Thread 0 of a pop's last block: releases [base, base + k) (bounded: see release_in_order) and
/// says what to publish. max: what the pop asked for, capped at capacity.
__device__ inline Published release_pop(RingView v, uint64_t base, uint64_t k, uint64_t max, std::uint32_t error) {
  Published p{base, k, error, 0, 0};
  if (error != 0) return p;
  if (k < max) p.gap = base + k - v.origin + 1;
  uint64_t stalled_at = 0;
  if (k != 0 && !release_in_order(v, base, k, ~uint64_t{0}, kReleaseWaitNs, &stalled_at)) {
    p.error = static_cast<std::uint32_t>(DeviceError::release_stalled);
    p.stalled_at = stalled_at - v.origin;
  }
  return p;
}

/// Publishes count and error to the host: stalled_at (when the error says so), then the done word,
/// behind a system-scope fence that makes everything this thread wrote or released before it
/// (records' release, the stats snapshot, the cell's reset) visible first.
__device__ inline void publish_result(LaunchTarget const& target, Published const& p) {
  if (target.result == nullptr) return;
  volatile ResultSlot* r = target.result;
  if (p.error != 0) r->stalled_at = p.stalled_at;
  __threadfence_system();  // (fence.acq_rel.sys measured no faster: BENCHMARKS.md, figure 1)
  r->done = done_word(target.generation, p.count, p.error);
}

/// The last block: publishes count/error to the host and resets the cell for the slot's next use.
__device__ inline void finish_launch(RingView v, LaunchTarget target, Published const& p) {
  write_snapshot(v, target.snapshot, p.error, p.gap);
  if (target.count_out != nullptr) *target.count_out = p.count;
  LaunchCell* cell = target.cell;
  cell->arrived = 0;
  cell->finished = 0;
  cell->ready = 0;
  cell->error = 0;
  cell->gap_inverted = 0;
  cell->from_max = 0;
  cell->from_min_inverted = 0;
  publish_result(target, p);  // its fence orders the cell's reset before `done` too
}

/// Returns true in thread 0 of the block that finished last (after a fence).
__device__ inline bool arrive_finished(LaunchCell* cell) {
  __threadfence();
  unsigned const f = atomicAdd(&cell->finished, 1u);
  if (f != gridDim.x - 1) return false;
  __threadfence();
  return true;
}

/// Thread 0 of a non-first block: waits for the first block's publication.
__device__ inline void wait_published(LaunchCell* cell, Published& p) {
  while (atomic_ref<unsigned int>(cell->ready).load(acquire) == 0) backoff();
  p.base = atomic_ref<unsigned long long>(cell->base).load(relaxed);
  p.count = atomic_ref<unsigned long long>(cell->count).load(relaxed);
  p.error = atomic_ref<std::uint32_t>(cell->error).load(relaxed);
}

__device__ inline void publish(LaunchCell* cell, Published const& p) {
  atomic_ref<unsigned long long>(cell->base).store(p.base, relaxed);
  atomic_ref<unsigned long long>(cell->count).store(p.count, relaxed);
  atomic_ref<std::uint32_t>(cell->error).store(p.error, relaxed);
  atomic_ref<unsigned int>(cell->ready).store(1, release_order);
}

/// Record range [lo, hi) of `count` records handled by this block.
__device__ inline void block_share(unsigned long long count, unsigned long long& lo, unsigned long long& hi) {
  unsigned long long const per = (count + gridDim.x - 1) / gridDim.x;
  lo = per * blockIdx.x;
  hi = lo + per;
  if (lo > count) lo = count;
  if (hi > count) hi = count;
}

/// Pushes n records from src (device memory, n × stride bytes): one reservation for the launch,
/// records in src order. Drops what does not fit (counted).
__global__ void push_kernel(MailboxRef ref, unsigned char const* src, unsigned long long n, LaunchTarget target) {
  __shared__ Published s_pub;
  __shared__ unsigned s_ticket;
  RingView const v = ref.view();
  if (threadIdx.x == 0) s_ticket = atomicAdd(&target.cell->arrived, 1u);
  __syncthreads();
  if (threadIdx.x == 0) {
    if (s_ticket == 0) {
      Published p{0, 0, static_cast<std::uint32_t>(validate(*v.header, v.stride, v.capacity, v.origin)), 0, 0};
      if (p.error == 0) {
        uint64_t b = 0;
        p.count = reserve(v, n, &b);
        p.base = b;
      }
      publish(target.cell, p);
      s_pub = p;
    } else {
      wait_published(target.cell, s_pub);
    }
  }
  __syncthreads();
  Published const p = s_pub;
  unsigned long long lo = 0, hi = 0;
  block_share(p.count, lo, hi);
  copy_in(v, src + lo * v.stride, p.base, lo, hi - lo, threadIdx.x, blockDim.x);
  __threadfence();
  __syncthreads();  // the block's records are fully written before any is committed
  for (unsigned long long i = lo + threadIdx.x; i < hi; i += blockDim.x) commit(v, p.base + i);
  __syncthreads();
  if (threadIdx.x == 0 && arrive_finished(target.cell)) finish_launch(v, target, p);
}

/// A pop by a launch of one block (small pops): claim, copy, release and publish with as few
/// dependent trips to memory as the guarantees allow, and no launch cell.
///  1. Thread 0 loads the header's id, `consume`, `release` and the counters the snapshot needs, all
///     in flight together; then the block scans the sequence words from `consume`.
///  2. The records are copied straight away, speculatively, while thread 0's CAS on `consume` claims
///     them (relaxed: the copy's loads are ordered after the scan by the acquire fence, and the
///     release below orders them before any producer can rewrite a slot; a slot is rewritten only
///     after its position was claimed, and the CAS from `from` succeeding means nobody else claimed
///     it). A lost CAS starts over with block_claim.
///  3. When `release` already stood at `from` (every earlier claim released), releasing needs no wait.
///  4. The snapshot is written from the values of step 1 updated with this pop's own moves, then one
///     system fence and the packed done word.
__device__ inline void pop_one_block(RingView v, unsigned char* dst, unsigned long long max, LaunchTarget target) {
  __shared__ uint64_t s_from, s_seen, s_reserve, s_dropped, s_pop_calls;
  __shared__ std::uint32_t s_error;
  __shared__ int s_claimed;
  unsigned const t = threadIdx.x;
  if (t == 0) {
    HeaderId const id = read_id(*v.header);  // none of these loads depends on another
    s_from = atomic_ref<uint64_t>(v.header->consume).load(relaxed);
    s_seen = atomic_ref<uint64_t>(v.header->release).load(relaxed);
    s_reserve = atomic_ref<uint64_t>(v.header->reserve).load(relaxed);
    s_dropped = atomic_ref<uint64_t>(v.header->dropped).load(relaxed);
    s_pop_calls = atomic_ref<uint64_t>(v.header->pop_calls).load(relaxed);
    s_error = static_cast<std::uint32_t>(validate(id, v.stride, v.capacity, v.origin));
  }
  __syncthreads();
  uint64_t from = s_from;
  uint64_t n = 0;
  Published p{from, 0, s_error, 0, 0};
  if (p.error == 0) {
    n = block_first_gap(v, from, 0, max);
    // Acquire for this thread's relaxed loads of the sequence words; the barrier passes it on to
    // the threads that copy the records (any thread may copy a record another one scanned).
    cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
    __syncthreads();
    bool claimed = true;
    if (n != 0) {
      uint64_t expected = from;
      if (t == 0)  // in flight while the records are copied
        claimed = atomic_ref<uint64_t>(v.header->consume).compare_exchange_strong(expected, from + n, relaxed, relaxed);
      copy_out(v, dst, from, 0, n, t, blockDim.x);
    } else if (t == 0) {
      claimed = atomic_ref<uint64_t>(v.header->consume).load(acquire) == from;  // really empty then
    }
    if (t == 0) s_claimed = claimed ? 1 : 0;
    __syncthreads();
    if (!s_claimed) {  // another consumer claimed meanwhile: what was copied may be stale
      uint64_t base = 0;
      n = block_claim(v, max, &base);
      copy_out(v, dst, base, 0, n, t, blockDim.x);
      __syncthreads();
      from = base;
      p.base = base;
    }
    p.count = n;
  }
  if (t != 0) return;
  if (p.error == 0) {
    if (n < max) p.gap = from + n - v.origin + 1;
    if (n != 0) {
      // Every thread's copy (through the barrier above) is done before the slots go back.
      cuda::atomic_thread_fence(cuda::std::memory_order_acq_rel, cuda::thread_scope_device);
      if (s_claimed && s_seen == from) {  // every earlier claim is released: no wait
        atomic_ref<uint64_t>(v.header->release).store(from + n, relaxed);
        atomic_ref<int64_t>(v.header->free_slots).fetch_add(static_cast<int64_t>(n), relaxed);
        atomic_ref<uint64_t>(v.header->pop_calls).fetch_add(1, relaxed);
      } else {
        uint64_t stalled_at = 0;
        if (!release_in_order(v, from, n, ~uint64_t{0}, kReleaseWaitNs, &stalled_at)) {
          p.error = static_cast<std::uint32_t>(DeviceError::release_stalled);
          p.stalled_at = stalled_at - v.origin;
        }
      }
    }
  }
  if (target.snapshot != nullptr) {
    // Each field a value it had during this launch: the counters as read in step 1, the positions
    // this pop moved as it left them (re-reading the counters cost 0.3 us: BENCHMARKS.md, figure 1).
    // The host merges monotonic fields by max.
    bool const released = p.error == 0 && n != 0;
    volatile StatsSnapshot* snap = target.snapshot;
    snap->reserve = s_reserve;
    snap->consume = from + n;  // claimed even when the release stalled
    snap->release = released ? from + n : s_seen;
    snap->dropped = s_dropped;
    snap->pop_calls = s_pop_calls + (released ? 1 : 0);
    snap->initial_position = v.origin;
    if (p.error != 0) snap->error = p.error;
    if (p.gap != 0) snap->pop_gap = p.gap;
  }
  if (target.count_out != nullptr) *target.count_out = p.count;
  publish_result(target, p);
}

/// Pops up to max records into dst (device memory), FIFO: the longest committed prefix.
///
/// One block: pop_one_block. Several: no block waits for another. Each block reads `consume` (its
/// `from`, validating the header in the same trip) and notes it in the launch cell, scans the
/// sequence words of its share of [from, from + max) and copies its committed records up to its
/// first gap straight away, speculatively. The last block to finish takes the lowest gap any block
/// found as the count and claims [from, from + count) with one CAS on `consume`. Scanning and
/// copying are thus spread over the grid. The speculation is safe: a slot is rewritten only after its
/// record was claimed and released, and `consume` only grows, so when every block read the same
/// `from` and the CAS from it succeeds, nothing copied from [from, from + count) can have changed.
/// When the blocks read different values or the CAS fails (another consumer claimed meanwhile), the
/// last block starts over alone: claim, copy, release. Bytes of dst past the count may have been
/// written (records after a gap, or an attempt that lost).
__global__ void pop_kernel(MailboxRef ref, unsigned char* dst, unsigned long long max, LaunchTarget target) {
  RingView const v = ref.view();
  if (max > v.capacity) max = v.capacity;
  if (gridDim.x == 1) {
    pop_one_block(v, dst, max, target);
    return;
  }
  __shared__ uint64_t s_from;
  __shared__ std::uint32_t s_error;
  __shared__ int s_last;
  __shared__ unsigned long long s_count;
  __shared__ int s_claimed;
  LaunchCell* const cell = target.cell;
  if (threadIdx.x == 0) {
    HeaderId const id = read_id(*v.header);  // in flight together with the load of consume
    uint64_t const from = atomic_ref<uint64_t>(v.header->consume).load(acquire);
    s_from = from;
    s_error = static_cast<std::uint32_t>(validate(id, v.stride, v.capacity, v.origin));
    // The largest and smallest `from` of all blocks (fire-and-forget reductions, ordered before the
    // last block's reads by the arrival count below): equal when every block read the same.
    atomicMax(&cell->from_max, static_cast<unsigned long long>(from));
    atomicMax(&cell->from_min_inverted, ~static_cast<unsigned long long>(from));
    if (s_error != 0) atomicMax(&cell->error, s_error);
  }
  __syncthreads();
  uint64_t const from = s_from;
  unsigned long long lo = 0, hi = 0;
  if (s_error == 0) block_share(max, lo, hi);
  uint64_t const end = lo < hi ? block_first_gap(v, from, lo, hi) : hi;
  __threadfence();  // acquire for this thread's scan loads: the payload reads below may be any thread's
  if (threadIdx.x == 0 && end < hi) atomicMax(&cell->gap_inverted, ~static_cast<unsigned long long>(end));
  __syncthreads();
  copy_out(v, dst + lo * v.stride, from, lo, end - lo, threadIdx.x, blockDim.x);
  __threadfence();
  __syncthreads();  // this block's copy (and its notes in the cell) are done before it counts itself finished
  if (threadIdx.x == 0) s_last = arrive_finished(cell) ? 1 : 0;
  __syncthreads();
  if (!s_last) return;

  // The last block: every block's notes are in (their atomics precede their arrival, and arrive_finished fenced).
  if (threadIdx.x == 0) {
    std::uint32_t const error = atomic_ref<std::uint32_t>(cell->error).load(relaxed);
    uint64_t const launch_from = atomic_ref<unsigned long long>(cell->from_max).load(relaxed);
    bool const agreed = ~atomic_ref<unsigned long long>(cell->from_min_inverted).load(relaxed) == launch_from;
    unsigned long long const gap_inv = atomic_ref<unsigned long long>(cell->gap_inverted).load(relaxed);
    unsigned long long n = gap_inv == 0 ? max : ~gap_inv;
    if (n > max) n = max;
    int claimed = 1;
    if (error != 0)
      n = 0;
    else if (!agreed)
      claimed = 0;
    else if (n == 0)
      claimed = atomic_ref<uint64_t>(v.header->consume).load(acquire) == launch_from ? 1 : 0;  // really empty then
    else
      claimed = try_claim(v, launch_from, n) ? 1 : 0;
    s_from = launch_from;
    s_count = n;
    s_claimed = claimed;
    s_error = error;
  }
  __syncthreads();
  if (s_claimed) {
    if (threadIdx.x == 0) finish_launch(v, target, release_pop(v, s_from, s_count, max, s_error));
    return;
  }
  // Another consumer claimed meanwhile: what the blocks copied may be stale. Start over alone.
  uint64_t base = 0;
  uint64_t const k = block_claim(v, max, &base);
  copy_out(v, dst, base, 0, k, threadIdx.x, blockDim.x);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) finish_launch(v, target, release_pop(v, base, k, max, 0));
}

/// Initialises a mailbox as ring.cuh's initialize() does, positions starting at the ref's origin:
/// thread 0 writes the header, the slot words are spread over the grid (grid-stride).
__global__ void init_kernel(MailboxRef ref) {
  RingView const v = ref.view();
  unsigned long long const tid = blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
  unsigned long long const nthreads = gridDim.x * static_cast<unsigned long long>(blockDim.x);
  if (tid == 0) initialize_header(v);
  for (unsigned long long i = tid; i < v.capacity; i += nthreads) initialize_slot(v, i);
}

/// Writes the stats snapshot (and validates the header) without touching the ring.
__global__ void snapshot_kernel(MailboxRef ref, StatsSnapshot* snapshot) {
  RingView const v = ref.view();
  write_snapshot(v, snapshot, static_cast<std::uint32_t>(validate(*v.header, v.stride, v.capacity, v.origin)));
}

#endif  // __CUDACC__

}  // namespace pbm::detail
