#include "harness.hpp"
#include "kernels.cuh"

#include <algorithm>
#include <cstdio>

namespace pbm::bench {

namespace {

constexpr unsigned kThreads = 256;

unsigned blocks_for(std::uint64_t items) {
  return static_cast<unsigned>(std::clamp<std::uint64_t>((items + kThreads - 1) / kThreads, 1, 65535));
}

__global__ void fill_kernel(std::uint32_t* dst, std::uint64_t n, std::uint32_t words, std::uint64_t first_id,
                            std::uint64_t id_step) {
  std::uint64_t const total = n * words;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    std::uint64_t const rec = i / words;
    dst[i] = pattern_word(first_id + rec * id_step, static_cast<std::uint32_t>(i % words));
  }
}

__global__ void verify_kernel(std::uint32_t const* src, std::uint64_t n, std::uint32_t words, std::uint64_t first_id,
                              std::uint64_t id_step, CheckCounters* counters) {
  std::uint64_t const total = n * words;
  unsigned long long bad = 0;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    std::uint64_t const rec = i / words;
    if (src[i] != pattern_word(first_id + rec * id_step, static_cast<std::uint32_t>(i % words))) ++bad;
  }
  if (bad != 0) atomicAdd(&counters->bad_words, bad);
  if (blockIdx.x == 0 && threadIdx.x == 0) atomicAdd(&counters->records, static_cast<unsigned long long>(n));
}

__global__ void verify_unique_kernel(std::uint32_t const* src, unsigned long long const* count, std::uint64_t n,
                                     std::uint32_t words, std::uint64_t id_limit, unsigned* seen,
                                     CheckCounters* counters) {
  std::uint64_t const records = count != nullptr ? *count : n;
  unsigned long long bad = 0, dup = 0, out = 0, looked = 0;
  for (std::uint64_t r = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; r < records;
       r += static_cast<std::uint64_t>(gridDim.x) * blockDim.x) {
    std::uint32_t const* rec = src + r * words;
    std::uint64_t const id = rec[0];  // ids stay below 2^32 in every figure
    ++looked;
    for (std::uint32_t w = 1; w < words; ++w)
      if (rec[w] != pattern_word(id, w)) ++bad;
    if (id >= id_limit) {
      ++out;
      continue;
    }
    if (atomicAdd(&seen[id], 1u) != 0) ++dup;
  }
  if (bad != 0) atomicAdd(&counters->bad_words, bad);
  if (dup != 0) atomicAdd(&counters->duplicates, dup);
  if (out != 0) atomicAdd(&counters->out_of_range, out);
  if (looked != 0) atomicAdd(&counters->records, looked);
}

__global__ void empty_kernel() {}

__global__ void flag_kernel(unsigned long long* flag, unsigned long long value) {
  *static_cast<unsigned long long volatile*>(flag) = value;
}

__device__ inline std::uint64_t global_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void gate_kernel(unsigned long long const* flag, unsigned long long value) {
  std::uint64_t const start = global_ns();
  while (*static_cast<unsigned long long const volatile*>(flag) != value) {
    if (global_ns() - start > 10'000'000'000ull) {
      printf("pbm_bench: gate kernel gave up after 10 s (the host never opened it)\n");
      return;
    }
    __nanosleep(200);
  }
}

__global__ void busy_kernel(std::uint64_t ns, unsigned long long* started, unsigned long long value) {
  __shared__ std::uint64_t s_start;
  if (threadIdx.x == 0) s_start = global_ns();
  if (blockIdx.x == 0 && threadIdx.x == 0 && started != nullptr)  // block 0 is dispatched first
    *static_cast<unsigned long long volatile*>(started) = value;
  __syncthreads();
  if (threadIdx.x == 0)
    while (global_ns() - s_start < ns) __nanosleep(256);
  __syncthreads();
}

}  // namespace

void fill_records(void* dst, std::uint64_t n, std::uint32_t stride, std::uint64_t first_id, std::uint64_t id_step,
                  cudaStream_t stream) {
  if (n == 0) return;
  std::uint32_t const words = stride / 4;
  fill_kernel<<<blocks_for(n * words), kThreads, 0, stream>>>(static_cast<std::uint32_t*>(dst), n, words, first_id,
                                                                id_step);
  PBM_BENCH_LAUNCHED("fill_kernel");
}

void verify_records(void const* src, std::uint64_t n, std::uint32_t stride, std::uint64_t first_id,
                    std::uint64_t id_step, CheckCounters* counters, cudaStream_t stream) {
  if (n == 0) return;
  std::uint32_t const words = stride / 4;
  verify_kernel<<<blocks_for(n * words), kThreads, 0, stream>>>(static_cast<std::uint32_t const*>(src), n, words,
                                                                  first_id, id_step, counters);
  PBM_BENCH_LAUNCHED("verify_kernel");
}

void verify_unique(void const* src, unsigned long long const* count, std::uint64_t n, std::uint32_t stride,
                   std::uint64_t id_limit, unsigned* seen, CheckCounters* counters, cudaStream_t stream) {
  if (n == 0) return;
  verify_unique_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<std::uint32_t const*>(src), count, n,
                                                                 stride / 4, id_limit, seen, counters);
  PBM_BENCH_LAUNCHED("verify_unique_kernel");
}

void launch_empty(cudaStream_t stream) { empty_kernel<<<1, 32, 0, stream>>>(); }

namespace {
struct Args40 {
  unsigned char bytes[40];
};
struct Args72 {
  unsigned char bytes[72];
};
__global__ void args_kernel(Args40, void*, unsigned long long, Args72) {}
}  // namespace

void launch_empty_with_args(cudaStream_t stream) {
  Args40 a{};
  void* p = nullptr;
  unsigned long long n = 0;
  Args72 b{};
  void* args[] = {&a, &p, &n, &b};
  PBM_BENCH_CUDA(cudaLaunchKernel(reinterpret_cast<void const*>(args_kernel), dim3(1), dim3(256), args, 0, stream));
}

EmptyGraph::EmptyGraph() {
  PBM_BENCH_CUDA(cudaGraphCreate(&graph_, 0));
  args_[0] = storage_;
  args_[1] = storage_ + 40;
  args_[2] = storage_ + 48;
  args_[3] = storage_ + 56;
  params_.func = reinterpret_cast<void*>(args_kernel);
  params_.gridDim = dim3(1);
  params_.blockDim = dim3(256);
  params_.kernelParams = args_;
  PBM_BENCH_CUDA(cudaGraphAddKernelNode(&node_, graph_, nullptr, 0, &params_));
  PBM_BENCH_CUDA(cudaGraphInstantiate(&exec_, graph_, 0));
}

EmptyGraph::~EmptyGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
  if (graph_ != nullptr) cudaGraphDestroy(graph_);
}

void EmptyGraph::launch(cudaStream_t stream) { PBM_BENCH_CUDA(cudaGraphLaunch(exec_, stream)); }

void EmptyGraph::set_params() {
  ++*reinterpret_cast<unsigned long long*>(storage_ + 48);  // a new value each time, as a pop's generation
  PBM_BENCH_CUDA(cudaGraphExecKernelNodeSetParams(exec_, node_, &params_));
}

namespace {
/// What the end of a pop does before its done word, piece by piece (figure 1's breakdown).
__global__ void tail_probe_kernel(unsigned long long* flag, unsigned long long value, unsigned long long* mapped,
                                  unsigned long long* device_words, int mode) {
  volatile unsigned long long* m = mapped;
  switch (mode) {
    case 1: __threadfence_system(); break;
    case 2:
      for (int i = 0; i < 7; ++i) m[i] = value + i;
      break;
    case 3:
      for (int i = 0; i < 7; ++i) m[i] = value + i;
      __threadfence_system();
      break;
    case 4:
      atomicAdd(device_words, 1ull);
      atomicAdd(device_words + 16, 1ull);
      __threadfence_system();
      break;
    case 5:
      atomicAdd(device_words, 1ull);
      atomicAdd(device_words + 16, 1ull);
      __threadfence();
      break;
    default: break;
  }
  *static_cast<unsigned long long volatile*>(flag) = value;
}
}  // namespace

void launch_tail_probe(unsigned long long* flag, unsigned long long value, unsigned long long* mapped,
                       unsigned long long* device_words, int mode, cudaStream_t stream) {
  tail_probe_kernel<<<1, 1, 0, stream>>>(flag, value, mapped, device_words, mode);
}

void launch_flag_write(unsigned long long* flag, unsigned long long value, cudaStream_t stream) {
  flag_kernel<<<1, 1, 0, stream>>>(flag, value);
}

void launch_gate(unsigned long long const* flag, unsigned long long value, cudaStream_t stream) {
  gate_kernel<<<1, 1, 0, stream>>>(flag, value);
  PBM_BENCH_LAUNCHED("gate_kernel");
}

void launch_busy(unsigned blocks, std::uint64_t ns, unsigned long long* started, unsigned long long value,
                 cudaStream_t stream) {
  busy_kernel<<<blocks, kThreads, 0, stream>>>(ns, started, value);
  PBM_BENCH_LAUNCHED("busy_kernel");
}

int busy_blocks_per_sm() {
  int blocks = 0;
  PBM_BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, busy_kernel, kThreads, 0));
  return std::max(blocks, 1);
}

}  // namespace pbm::bench
