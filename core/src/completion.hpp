// The pool of per-launch completions: a result slot in pinned mapped host memory, a launch cell
// in device memory and an event. A completion is reused only once the host has seen its last
// launch publish `done`, so concurrent launches never share a cell.
// Thread-safety: acquire/release are internally synchronised.
#pragma once

#include "launch.hpp"

#include <pbm/error.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pbm::detail {

struct Completion {
  ResultSlot* host = nullptr;    // host view of the mapped result slot
  ResultSlot* mapped = nullptr;  // device view of the same memory
  LaunchCell* cell = nullptr;    // device memory
  cudaEvent_t event = nullptr;
  std::uint64_t generation = 0;  // of the launch that uses it now (or used it last)
  /// The completion's own CUDA graphs, one per kernel (push, pop), made at its first launch of that
  /// kernel: a kernel node, then a node recording `event`. Aimed at each launch's arguments with
  /// cudaGraphExecKernelNodeSetParams and launched with cudaGraphLaunch, they cost the host less than
  /// cudaLaunchKernel + cudaEventRecord (BENCHMARKS.md, figure 2). `failed`: could not be made; the
  /// completion launches its kernels directly.
  struct Graph {
    cudaGraph_t graph = nullptr;
    cudaGraphNode_t kernel = nullptr;
    cudaGraphExec_t exec = nullptr;
    bool failed = false;
  };
  Graph graphs[2];

  /// True once the launch of `generation` has published its result. No CUDA call.
  bool done(std::uint64_t gen) const noexcept;
};

class CompletionPool {
 public:
  explicit CompletionPool(int device);
  /// For tests: a pool over completions the caller owns (host memory for their result slots), no
  /// CUDA call; it never grows, acquire() throws std::runtime_error when none is reusable.
  explicit CompletionPool(std::vector<Completion*> items);
  ~CompletionPool();
  CompletionPool(CompletionPool const&) = delete;
  CompletionPool& operator=(CompletionPool const&) = delete;

  /// A completion no launch is using, with a fresh generation. Grows the pool when all are busy.
  Completion* acquire();
  /// The handle that owned it is gone; reusable once its launch is done.
  void release(Completion* c) noexcept;
  /// Its launch never started (launch failure): reusable at once. Never for a launched kernel,
  /// even if what followed the launch failed: that one goes to release().
  void release_unlaunched(Completion* c) noexcept;

  int device() const noexcept { return device_; }
  std::size_t size() const noexcept;

 private:
  struct Chunk;
  void grow();

  int device_;
  bool growable_ = true;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::vector<Completion*> free_;
  std::vector<Completion*> pending_;  // released by their handle, launch maybe still running
};

/// One launch on a completion from `pool`: `launch(c)`, then `record(c)` (the event after the
/// kernel), each returning a cudaError_t. Returns the completion for the caller's handle. Throws
/// pbm::cuda_error when either fails. A failed launch gives the completion back at once; after a
/// successful launch the kernel will still write its result slot and cell, so when the record
/// fails it goes back as released (reused only once that kernel has published done).
template <class Launch, class Record>
Completion* launch_on_completion(CompletionPool& pool, Launch&& launch, Record&& record) {
  struct Lease {
    CompletionPool& pool;
    Completion* c;
    enum { unlaunched, launched, handed_over } state = unlaunched;
    ~Lease() {
      if (state == unlaunched) pool.release_unlaunched(c);
      if (state == launched) pool.release(c);
    }
  } lease{pool, pool.acquire()};
  cudaError_t const launched = launch(lease.c);
  if (launched != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // this launch's error is reported below, not later
    PBM_CUDA_TRY(launched);
  }
  lease.state = Lease::launched;
  PBM_CUDA_TRY(record(lease.c));
  lease.state = Lease::handed_over;
  return lease.c;
}

}  // namespace pbm::detail
