// Kernels the figures share: a record pattern that tells every record apart (so no figure times on
// zeros), fill/verify kernels, the floor kernels (empty launch, one mapped write) and a busy kernel
// that occupies every SM. Launch wrappers are host functions defined in kernels.cu.
#pragma once

#include "harness.hpp"

#include <pbm/mailbox.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pbm::bench {

/// Word `w` of the record with identity `id`: word 0 is the id's low 32 bits, the others a hash
/// of (id, w) with the low bit set, so a zeroed or stale record never passes for a real one.
__host__ __device__ inline std::uint32_t pattern_word(std::uint64_t id, std::uint32_t w) {
  // Cheap on purpose (a few integer ops): producers in figure 3 build records at > 10 G/s.
  if (w == 0) return static_cast<std::uint32_t>(id);
  std::uint32_t x = (static_cast<std::uint32_t>(id) * 0x9E3779B1u) ^ static_cast<std::uint32_t>(id >> 32) ^
                    (w * 0x85EBCA77u);
  x ^= x >> 15;
  return x | 1u;
}

/// A 64-byte record built in registers, as a producer kernel would (tile_pipeline's Tile).
struct alignas(16) Record64 {
  std::uint32_t w[16];
};

#if defined(__CUDACC__)
__device__ inline Record64 make_record(std::uint64_t id) {
  Record64 r;
#pragma unroll
  for (std::uint32_t k = 0; k < 16; ++k) r.w[k] = pattern_word(id, k);
  return r;
}
#endif

/// How every figure waits for pbm's count: spinning on mapped memory, as its rivals spin.
inline WaitPolicy spin_policy() {
  WaitPolicy p;
  p.mode = WaitMode::spin;
  return p;
}

/// Counters a verification kernel leaves in device memory.
struct CheckCounters {
  unsigned long long bad_words;     // words that differ from the pattern
  unsigned long long duplicates;    // ids seen more than once
  unsigned long long out_of_range;  // ids >= the limit
  unsigned long long records;       // records looked at
};

/// Fills n records of `stride` bytes (a multiple of 4) at dst: record k gets id first_id + k * id_step.
void fill_records(void* dst, std::uint64_t n, std::uint32_t stride, std::uint64_t first_id, std::uint64_t id_step,
                  cudaStream_t stream);

/// Compares n records at src with the pattern fill_records wrote; adds to counters->bad_words and
/// ->records. Does not synchronise.
void verify_records(void const* src, std::uint64_t n, std::uint32_t stride, std::uint64_t first_id,
                    std::uint64_t id_step, CheckCounters* counters, cudaStream_t stream);

/// Checks records whose ids are unknown in order (pushed by many threads): each must match the
/// pattern of its own id (word 0), have id < id_limit, and be seen once (seen[id], zeroed by the
/// caller). The count is read on the device from *count (e.g. a pop's device_count) when count is
/// not null, else it is n. Launches enough threads for n records. Does not synchronise.
void verify_unique(void const* src, unsigned long long const* count, std::uint64_t n, std::uint32_t stride,
                   std::uint64_t id_limit, unsigned* seen, CheckCounters* counters, cudaStream_t stream);

/// <<<1, 32>>> of a kernel that does nothing: the floor of a launch.
void launch_empty(cudaStream_t stream);

/// <<<1, 256>>> of an empty kernel taking arguments of the pop kernel's size (128 bytes in four
/// parameters), launched with cudaLaunchKernel as pbm launches its own: the floor of a pop's launch.
void launch_empty_with_args(cudaStream_t stream);

/// A CUDA graph of one empty kernel node, instantiated: what a graph-launched pop would launch.
class EmptyGraph {
 public:
  EmptyGraph();
  ~EmptyGraph();
  EmptyGraph(EmptyGraph const&) = delete;
  EmptyGraph& operator=(EmptyGraph const&) = delete;
  void launch(cudaStream_t stream);
  /// cudaGraphExecKernelNodeSetParams with one argument changed (as a pop's generation changes):
  /// what a graph-launched pop pays per call to aim the node at its destination and completion.
  void set_params();

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphNode_t node_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  cudaKernelNodeParams params_{};
  void* args_[4] = {};
  unsigned char storage_[128] = {};
};

/// <<<1, 1>>> of a kernel whose single write stores `value` to `flag` (mapped host memory).
void launch_flag_write(unsigned long long* flag, unsigned long long value, cudaStream_t stream);

/// <<<1, 1>>> of a kernel that does one piece of a pop's tail, then stores `value` to `flag` (mapped
/// host memory) as the floor does. mode 0: nothing else; 1: __threadfence_system(); 2: seven stores
/// to `mapped` (mapped host memory, like the stats snapshot); 3: 2 then 1; 4: two device atomics
/// (like the release) then __threadfence_system(); 5: the same with __threadfence().
void launch_tail_probe(unsigned long long* flag, unsigned long long value, unsigned long long* mapped,
                       unsigned long long* device_words, int mode, cudaStream_t stream);

/// <<<1, 1>>> of a kernel that holds `stream` until *flag == value (mapped host memory), or 10 s.
void launch_gate(unsigned long long const* flag, unsigned long long value, cudaStream_t stream);

/// Holds a stream while the host enqueues what is to be timed, so that CUDA-event timings measure
/// the GPU's work and not the gaps between the host's calls (nvbench's blocking kernel):
///   gate.close(s); start.record(s); <work>; stop.record(s); gate.open();
/// Only for a few enqueued operations: a full launch queue would block the host before open().
class Gate {
 public:
  Gate() : flag_(1, /*mapped=*/true) {}
  void close(cudaStream_t stream) {
    ++generation_;
    launch_gate(flag_.device_ptr(), generation_, stream);
  }
  void open() { *static_cast<unsigned long long volatile*>(flag_.host()) = generation_; }

 private:
  HostBuffer<unsigned long long> flag_;
  unsigned long long generation_ = 0;
};

/// Occupies the GPU: `blocks` blocks of 256 threads, each spinning for `ns` nanoseconds. When
/// `started` (mapped host memory) is not null, its block 0 (dispatched first) stores `value` there.
void launch_busy(unsigned blocks, std::uint64_t ns, unsigned long long* started, unsigned long long value,
                 cudaStream_t stream);
/// Blocks of the busy kernel resident per SM (occupancy).
int busy_blocks_per_sm();

}  // namespace pbm::bench
