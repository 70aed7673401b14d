// Cooperative building blocks for kernels: copies by many threads with wide accesses, the
// block-wide scan for the committed prefix, and record-range copies that follow the ring's wrap.
#pragma once

#include <pbm/detail/ring.cuh>

namespace pbm::detail {

#if defined(__CUDACC__)

/// Copies `bytes` (a multiple of 4) from src to dst; thread `rank` of `count` threads does its share.
/// 16-byte accesses when both pointers and the size allow, 4-byte otherwise; unrolled for ILP.
__device__ inline void cooperative_copy(unsigned char* dst, unsigned char const* src, std::size_t bytes,
                                        unsigned rank, unsigned count) {
  auto const both = reinterpret_cast<cuda::std::uintptr_t>(dst) | reinterpret_cast<cuda::std::uintptr_t>(src);
  if (both % 16 == 0 && bytes % 16 == 0) {
    auto* d = reinterpret_cast<uint4*>(dst);
    auto const* s = reinterpret_cast<uint4 const*>(src);
    std::size_t const n = bytes / 16;
    std::size_t i = rank;
    for (; i + 3 * count < n; i += 4 * count) {
      uint4 const a = s[i], b = s[i + count], c = s[i + 2 * count], e = s[i + 3 * count];
      d[i] = a;
      d[i + count] = b;
      d[i + 2 * count] = c;
      d[i + 3 * count] = e;
    }
    for (; i < n; i += count) d[i] = s[i];
  } else {
    auto* d = reinterpret_cast<uint32_t*>(dst);
    auto const* s = reinterpret_cast<uint32_t const*>(src);
    std::size_t const n = bytes / 4;
    for (std::size_t i = rank; i < n; i += count) d[i] = s[i];
  }
}

/// Copies records [first, first + n) of a claim starting at position `base` out of the ring
/// into dst (dst points at record `first`), following the wrap at capacity.
__device__ inline void copy_out(RingView v, unsigned char* dst, uint64_t base, uint64_t first, uint64_t n,
                                unsigned rank, unsigned count) {
  if (n == 0) return;
  uint64_t const slot = v.slot_of(base + first);
  uint64_t const head = (v.capacity - slot) < n ? (v.capacity - slot) : n;
  cooperative_copy(dst, v.record(slot), head * v.stride, rank, count);
  if (head < n) cooperative_copy(dst + head * v.stride, v.record(0), (n - head) * v.stride, rank, count);
}

/// Copies n records from src into the ring at positions [base + first, ...), following the wrap.
__device__ inline void copy_in(RingView v, unsigned char const* src, uint64_t base, uint64_t first, uint64_t n,
                               unsigned rank, unsigned count) {
  if (n == 0) return;
  uint64_t const slot = v.slot_of(base + first);
  uint64_t const head = (v.capacity - slot) < n ? (v.capacity - slot) : n;
  cooperative_copy(v.record(slot), src, head * v.stride, rank, count);
  if (head < n) cooperative_copy(v.record(0), src + head * v.stride, (n - head) * v.stride, rank, count);
}

/// All threads of the block: finds and claims the longest committed prefix (up to max) for this
/// block. Every thread returns the same length; *base (every thread) receives its first position.
/// The scan is spread over the block, kClaimPerThread slots per thread and round: sequence words
/// are read with relaxed loads, all of a thread's loads of a round in flight together, and one
/// __syncthreads_or per round says whether any thread saw a gap. Each thread's acquire fence after
/// its loads orders the payload reads that follow the claim (here and, through the launch's
/// release/acquire publication, in the other blocks) after the producers' commits. With acquire
/// loads, 4 slots per thread and three barriers a round, a 64 MiB pop of 64-byte records spent
/// most of its time here (H100: 46 GB/s, against 1374 GB/s for a device-to-device copy).
inline constexpr unsigned kClaimPerThread = 16;

__device__ inline uint64_t block_claim(RingView v, uint64_t max, uint64_t* base) {
  __shared__ uint64_t s_from;
  __shared__ unsigned long long s_gap;
  __shared__ int s_claimed;
  if (max > v.capacity) max = v.capacity;
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  uint64_t const round = uint64_t{nthreads} * kClaimPerThread;
  for (;;) {
    if (t == 0) {
      s_from = atomic_ref<uint64_t>(v.header->consume).load(acquire);
      s_gap = ~0ull;
    }
    __syncthreads();
    uint64_t const from = s_from;
    uint64_t n = max;
    for (uint64_t off = 0; off < max; off += round) {
      bool seen = false;
      unsigned long long first_gap = ~0ull;
#pragma unroll
      for (unsigned j = 0; j < kClaimPerThread; ++j) {
        uint64_t const idx = off + j * nthreads + t;  // increasing in j: the first gap seen is this thread's lowest
        if (idx < max && !is_committed_relaxed(v, from + idx) && !seen) {
          seen = true;
          first_gap = idx;
        }
      }
      if (__syncthreads_or(seen)) {  // block-uniform
        if (seen) atomicMin(&s_gap, first_gap);
        __syncthreads();
        n = s_gap;
        break;
      }
    }
    __threadfence();  // acquire for this thread's relaxed loads of the sequence words
    if (t == 0) {
      if (n == 0)
        s_claimed = atomic_ref<uint64_t>(v.header->consume).load(acquire) == from ? 1 : 0;
      else
        s_claimed = try_claim(v, from, n) ? 1 : 0;
    }
    __syncthreads();
    int const claimed = s_claimed;
    __syncthreads();
    if (claimed) {
      *base = from;
      return n;
    }
  }
}

#endif  // __CUDACC__

}  // namespace pbm::detail
