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

/// Slots scanned per thread and round by block_first_gap: a thread's loads of a round are issued
/// together, then tested.
inline constexpr unsigned kClaimPerThread = 16;

/// All threads of the block: the index of the first record in [lo, hi) (counted from position
/// `from`; hi <= capacity) that is not committed, or hi when all are. Every thread returns
/// the same value. Sequence words are read with relaxed loads, kClaimPerThread per thread and
/// round, all of a round's loads in flight before any is tested, and one __syncthreads_or per round
/// says whether any thread saw a gap. Callers that read the records afterwards need a
/// __threadfence() (each thread, after this call) and a barrier: that orders every thread's
/// payload reads after the commits the scanning threads saw. Why the loads are batched:
/// BENCHMARKS.md, "Why the missed goals are missed", figure 4.
__device__ inline uint64_t block_first_gap(RingView v, uint64_t from, uint64_t lo, uint64_t hi) {
  __shared__ unsigned long long s_gap;
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  uint64_t const round = uint64_t{nthreads} * kClaimPerThread;
  uint64_t const slot0 = v.slot_of(from);  // slot of record idx: slot0 + idx, less capacity once
  if (t == 0) s_gap = ~0ull;
  __syncthreads();
  uint64_t gap = hi;
  for (uint64_t off = lo; off < hi; off += round) {
    uint64_t words[kClaimPerThread];
#pragma unroll
    for (unsigned j = 0; j < kClaimPerThread; ++j) {
      uint64_t const idx = off + j * nthreads + t;
      uint64_t slot = slot0 + (idx < hi ? idx : lo);  // past hi: a word that is read and ignored
      if (slot >= v.capacity) slot -= v.capacity;
      words[j] = atomic_ref<uint64_t>(v.seq[slot]).load(relaxed);
    }
    unsigned long long first = ~0ull;
#pragma unroll
    for (unsigned j = 0; j < kClaimPerThread; ++j) {  // idx increases with j: the first gap seen is the lowest
      uint64_t const idx = off + j * nthreads + t;
      if (first == ~0ull && idx < hi && words[j] != from + idx + 1) first = idx;
    }
    if (__syncthreads_or(first != ~0ull)) {  // block-uniform
      if (first != ~0ull) atomicMin(&s_gap, first);
      __syncthreads();
      gap = s_gap;
      break;
    }
  }
  __syncthreads();  // everyone has read s_gap before a next call resets it
  return gap;
}

/// All threads of the block: finds and claims the longest committed prefix (up to max) for this
/// block. Every thread returns the same length; *base (every thread) receives its first position.
/// With `error` not null, thread 0 also validates the header (its fields loaded beside `consume`)
/// and, when it is bad, every thread gets 0 with *error set (every thread) and nothing is claimed.
/// Each thread's acquire fence after the scan orders the payload reads that follow the claim
/// (here and, through the launch's release/acquire publication, in the other blocks) after the
/// producers' commits.
__device__ inline uint64_t block_claim(RingView v, uint64_t max, uint64_t* base, uint32_t* error = nullptr) {
  __shared__ uint64_t s_from;
  __shared__ int s_claimed;
  __shared__ uint32_t s_error;
  if (max > v.capacity) max = v.capacity;
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  for (bool first_try = true;; first_try = false) {
    if (t == 0) {
      if (error != nullptr && first_try) {
        HeaderId const id = read_id(*v.header);  // in flight together with the load of consume
        s_from = atomic_ref<uint64_t>(v.header->consume).load(acquire);
        s_error = static_cast<uint32_t>(validate(id, v.stride, v.capacity, v.origin));
      } else {
        s_from = atomic_ref<uint64_t>(v.header->consume).load(acquire);
        s_error = 0;
      }
    }
    __syncthreads();
    uint64_t const from = s_from;
    if (s_error != 0) {
      *error = s_error;
      __syncthreads();  // every thread has read s_error before anything rewrites it
      return 0;
    }
    uint64_t const n = block_first_gap(v, from, 0, max);
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
      if (error != nullptr) *error = 0;
      *base = from;
      return n;
    }
  }
}

#endif  // __CUDACC__

}  // namespace pbm::detail
