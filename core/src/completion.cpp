#include "completion.hpp"
#include "free_scope.hpp"

#include <pbm/error.hpp>
#include <pbm/expected.hpp>
#include <pbm/stream.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

namespace pbm::detail {

namespace {
constexpr std::size_t kChunkSize = 64;
}

bool Completion::done(std::uint64_t gen) const noexcept {
  auto const* done = static_cast<std::uint64_t const volatile*>(&host->done);
  bool const ready = done_matches(*done, gen);
  if (ready) std::atomic_thread_fence(std::memory_order_acquire);
  return ready;
}

struct CompletionPool::Chunk {
  ResultSlot* host = nullptr;
  LaunchCell* cells = nullptr;
  Completion items[kChunkSize];

  explicit Chunk(int device) {
    DeviceGuard guard(device);
    ExpectedSyncScope expected_allocations;  // pbm's own: pool growth allocates (cudaHostAlloc, cudaMalloc)
    try {
      PBM_CUDA_TRY(cudaHostAlloc(reinterpret_cast<void**>(&host), sizeof(ResultSlot) * kChunkSize,
                                 cudaHostAllocMapped | cudaHostAllocPortable));
      std::memset(static_cast<void*>(host), 0, sizeof(ResultSlot) * kChunkSize);
      ResultSlot* mapped = nullptr;
      PBM_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&mapped), host, 0));
      PBM_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&cells), sizeof(LaunchCell) * kChunkSize));
      // Zeroed before any kernel can use the cells: a rare, expected wait (pool growth only).
      cudaStream_t stream = nullptr;
      PBM_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      cudaError_t const set = cudaMemsetAsync(cells, 0, sizeof(LaunchCell) * kChunkSize, stream);
      cudaError_t const synced = cudaStreamSynchronize(stream);
      PBM_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(stream));
      PBM_CUDA_TRY(set);
      PBM_CUDA_TRY(synced);
      for (std::size_t i = 0; i < kChunkSize; ++i) {
        items[i].host = host + i;
        items[i].mapped = mapped + i;
        items[i].cell = cells + i;
        PBM_CUDA_TRY(cudaEventCreateWithFlags(&items[i].event, cudaEventDisableTiming));
      }
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Chunk() { destroy(); }

  void destroy() noexcept {
    ExpectedSyncScope expected_frees;  // pbm's own: cudaFree and cudaFreeHost wait for the device
    for (auto& item : items) {
      for (Completion::Graph& g : item.graphs) {
        if (g.exec != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaGraphExecDestroy(g.exec));
        if (g.graph != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaGraphDestroy(g.graph));
        g = Completion::Graph{};
      }
      if (item.event != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaEventDestroy(item.event));
    }
    if (cells != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaFree(cells));
    if (host != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaFreeHost(host));
    cells = nullptr;
    host = nullptr;
  }
};

CompletionPool::CompletionPool(int device) : device_(device) { grow(); }

CompletionPool::CompletionPool(std::vector<Completion*> items) : device_(-1), growable_(false), free_(std::move(items)) {}

CompletionPool::~CompletionPool() {
  FreeScope const scope(device_);  // the chunks free on the pool's device (no CUDA call for a test pool: -1)
  chunks_.clear();
}

std::size_t CompletionPool::size() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return chunks_.size() * kChunkSize;
}

void CompletionPool::grow() {
  chunks_.push_back(std::make_unique<Chunk>(device_));
  for (auto& item : chunks_.back()->items) free_.push_back(&item);
}

Completion* CompletionPool::acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (free_.empty()) {
    // Reclaim completions whose handle is gone and whose launch has published.
    auto const done = std::stable_partition(pending_.begin(), pending_.end(),
                                            [](Completion* c) { return !c->done(c->generation); });
    free_.insert(free_.end(), done, pending_.end());
    pending_.erase(done, pending_.end());
  }
  if (free_.empty()) {
    if (!growable_) throw std::runtime_error("pbm: completion pool exhausted");
    grow();
  }
  Completion* c = free_.back();
  free_.pop_back();
  ++c->generation;
  return c;
}

void CompletionPool::release(Completion* c) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (c->done(c->generation))
    free_.push_back(c);
  else
    pending_.push_back(c);
}

void CompletionPool::release_unlaunched(Completion* c) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(c);
}

}  // namespace pbm::detail
