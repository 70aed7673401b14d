// The kernels the host API launches. One launch per operation: the first block to arrive
// reserves/claims for the whole launch, all blocks copy their share with wide accesses, the last
// block to finish publishes the result (and releases a pop's slots), in the same launch.
#pragma once

#include <pbm/detail/block_ops.cuh>
#include <pbm/detail/launch.hpp>
#include <pbm/mailbox_ref.cuh>

namespace pbm::detail {

#if defined(__CUDACC__)

/// Where a launch reports: the coordination cell, the host-visible result, and optional extras.
struct LaunchTarget {
  LaunchCell* cell;               // device memory
  ResultSlot* result;             // mapped host memory (device pointer), may be null
  std::uint64_t generation;       // written to result->done when the launch is complete
  StatsSnapshot* snapshot;        // mapped host memory (device pointer), may be null
  unsigned long long* count_out;  // device memory (e.g. a torch tensor), may be null
};

/// Thread 0 of every block: the first block runs `first` (which returns the launch's count and
/// error) and publishes; the others wait for it. Returns, in shared memory, base/count/error.
struct Published {
  unsigned long long base;
  unsigned long long count;
  std::uint32_t error;
};

__device__ inline void write_snapshot(RingView v, StatsSnapshot* snap, std::uint32_t error) {
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
}

/// The last block: publishes count/error to the host and resets the cell for the slot's next use.
__device__ inline void finish_launch(RingView v, LaunchTarget target, Published const& p) {
  write_snapshot(v, target.snapshot, p.error);
  if (target.count_out != nullptr) *target.count_out = p.count;
  LaunchCell* cell = target.cell;
  cell->arrived = 0;
  cell->finished = 0;
  cell->ready = 0;
  if (target.result != nullptr) {
    volatile ResultSlot* r = target.result;
    r->count = p.count;
    r->error = p.error;
    __threadfence_system();  // everything above (cell reset included) is visible before `done`
    r->done = target.generation;
  }
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
      Published p{0, 0, static_cast<std::uint32_t>(validate(*v.header, v.stride, v.capacity, v.origin))};
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

/// Pops up to max records into dst (device memory): one claim for the launch (the longest
/// committed FIFO prefix), copied by all blocks; the last block releases the slots in claim
/// order and publishes the count.
__global__ void pop_kernel(MailboxRef ref, unsigned char* dst, unsigned long long max, LaunchTarget target) {
  __shared__ Published s_pub;
  __shared__ unsigned s_ticket;
  RingView const v = ref.view();
  if (threadIdx.x == 0) s_ticket = atomicAdd(&target.cell->arrived, 1u);
  __syncthreads();
  if (s_ticket == 0) {  // block-uniform: the whole first block scans for the committed prefix
    __shared__ std::uint32_t s_err;
    if (threadIdx.x == 0) s_err = static_cast<std::uint32_t>(validate(*v.header, v.stride, v.capacity, v.origin));
    __syncthreads();
    uint64_t base = 0, k = 0;
    if (s_err == 0) k = block_claim(v, max, &base);
    if (threadIdx.x == 0) {
      Published const p{base, k, s_err};
      publish(target.cell, p);
      s_pub = p;
    }
  } else if (threadIdx.x == 0) {
    wait_published(target.cell, s_pub);
  }
  __syncthreads();
  Published const p = s_pub;
  unsigned long long lo = 0, hi = 0;
  block_share(p.count, lo, hi);
  copy_out(v, dst + lo * v.stride, p.base, lo, hi - lo, threadIdx.x, blockDim.x);
  __threadfence();
  __syncthreads();  // this block's reads of the claimed slots are done
  if (threadIdx.x == 0 && arrive_finished(target.cell)) {
    if (p.count != 0) release_in_order(v, p.base, p.count);
    finish_launch(v, target, p);
  }
}

/// Initialises a mailbox header and its slot words (grid-stride), positions starting at initial.
__global__ void init_kernel(MailboxRef ref) {
  RingView const v = ref.view();
  unsigned long long const initial = v.origin;
  unsigned long long const tid = blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
  unsigned long long const nthreads = gridDim.x * static_cast<unsigned long long>(blockDim.x);
  if (tid == 0) {
    RingHeader& h = *v.header;
    h.magic = kMagic;
    h.version = kLayoutVersion;
    h.stride = v.stride;
    h.reserved0 = 0;
    h.capacity = v.capacity;
    h.initial_position = initial;
    h.reserve = initial;
    h.free_slots = static_cast<long long>(v.capacity);
    h.dropped = 0;
    h.consume = initial;
    h.release = initial;
    h.pop_calls = 0;
  }
  for (unsigned long long i = tid; i < v.capacity; i += nthreads) {
    unsigned long long const p = initial + i;
    v.seq[v.slot_of(p)] = p;
  }
}

/// Writes the stats snapshot (and validates the header) without touching the ring.
__global__ void snapshot_kernel(MailboxRef ref, StatsSnapshot* snapshot) {
  RingView const v = ref.view();
  write_snapshot(v, snapshot, static_cast<std::uint32_t>(validate(*v.header, v.stride, v.capacity, v.origin)));
}

#endif  // __CUDACC__

}  // namespace pbm::detail
