#include "completion.hpp"
#include "free_scope.hpp"
#include "kernels.cuh"
#include "mailbox_state.hpp"
#include "pointer.hpp"

#include <pbm/error.hpp>
#include <pbm/expected.hpp>
#include <pbm/mailbox.hpp>
#include <pbm/nvtx.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <utility>

namespace pbm {

namespace detail {

struct LaunchAccess {
  static OpHandle make(std::shared_ptr<CompletionPool> pool, Completion* c, std::uint64_t requested) {
    return OpHandle(std::move(pool), c, c->generation, requested);
  }
};

std::atomic<bool> kernel_launch_path{false};

/// For the benchmark's side-by-side runs: true makes pushes and pops launch their kernels directly
/// (cudaLaunchKernel + cudaEventRecord) instead of through their completion's graph.
void set_kernel_launch_path(bool direct) noexcept { kernel_launch_path.store(direct, std::memory_order_relaxed); }

namespace {
constexpr unsigned kThreads = 256;
constexpr std::uint64_t kBytesPerBlock = 64 * 1024;

unsigned grid_for(std::uint64_t bytes, int multiprocessors) {
  std::uint64_t const blocks = (bytes + kBytesPerBlock - 1) / kBytesPerBlock;
  std::uint64_t const most = 4ull * static_cast<std::uint64_t>(std::max(multiprocessors, 1));
  return static_cast<unsigned>(std::clamp<std::uint64_t>(blocks, 1, most));
}

/// The completion's graph for `kernel` (slot `which`), made at first use from `params`; null when it
/// cannot be made (the error is cleared and the completion launches directly from then on).
cudaGraphExec_t graph_for(Completion& c, int which, cudaKernelNodeParams const& params) {
  Completion::Graph& g = c.graphs[which];
  if (g.exec != nullptr || g.failed) return g.exec;
  cudaGraphNode_t record = nullptr;
  cudaError_t err = cudaGraphCreate(&g.graph, 0);
  if (err == cudaSuccess) err = cudaGraphAddKernelNode(&g.kernel, g.graph, nullptr, 0, &params);
  if (err == cudaSuccess) err = cudaGraphAddEventRecordNode(&record, g.graph, &g.kernel, 1, c.event);
  if (err == cudaSuccess) err = cudaGraphInstantiate(&g.exec, g.graph, 0);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // this call's own failure, not the caller's
    if (g.graph != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaGraphDestroy(g.graph));
    g = Completion::Graph{};
    g.failed = true;
  }
  return g.exec;
}

/// One push or pop: a completion from the pool, then its graph (kernel + event record) aimed at this
/// launch and launched; or, while the stream is being captured (`captured`, from stream_facts) or
/// where the graph cannot be made, one kernel launch and one event record. The launch's own status
/// is checked (not cudaGetLastError, which would also report an earlier failure of the caller's and
/// costs a runtime call on every operation).
template <class Data>
OpHandle launch_op(void (*kernel)(MailboxRef, Data, unsigned long long, LaunchTarget), int which, MailboxRef ref,
                   Data data, std::uint64_t records, std::uint32_t stride, int multiprocessors, cudaStream_t stream,
                   std::shared_ptr<CompletionPool> const& pool, StatsSnapshot* snapshot,
                   unsigned long long* device_count, bool captured) {
  unsigned long long count = records;
  bool const direct = captured || kernel_launch_path.load(std::memory_order_relaxed);
  bool graphed = false;
  auto const launch = [&](Completion* c) {
    LaunchTarget target{c->cell, c->mapped, c->generation, snapshot, device_count};
    void* args[] = {&ref, &data, &count, &target};
    dim3 const grid(grid_for(records * stride, multiprocessors));
    if (!direct) {
      cudaKernelNodeParams params{};
      params.func = reinterpret_cast<void*>(kernel);
      params.gridDim = grid;
      params.blockDim = dim3(kThreads);
      params.kernelParams = args;
      if (cudaGraphExec_t const exec = graph_for(*c, which, params)) {
        graphed = true;
        cudaError_t const set = cudaGraphExecKernelNodeSetParams(exec, c->graphs[which].kernel, &params);
        return set != cudaSuccess ? set : cudaGraphLaunch(exec, stream);
      }
    }
    return cudaLaunchKernel(reinterpret_cast<void const*>(kernel), grid, dim3(kThreads), args, 0, stream);
  };
  auto const record = [&](Completion* c) { return graphed ? cudaSuccess : cudaEventRecord(c->event, stream); };
  return LaunchAccess::make(pool, launch_on_completion(*pool, launch, record), records);
}
}  // namespace
}  // namespace detail

namespace {
/// With lazy module loading (CUDA's default), the first launch of a kernel loads it, and loading
/// waits for the device to be idle: a push or pop launched while a user's persistent kernel spins
/// on the mailbox would never start. Loading ours at construction avoids that.
void load_kernels() {
  cudaFuncAttributes attributes{};
  PBM_CUDA_TRY(cudaFuncGetAttributes(&attributes, detail::push_kernel));
  PBM_CUDA_TRY(cudaFuncGetAttributes(&attributes, detail::pop_kernel));
  PBM_CUDA_TRY(cudaFuncGetAttributes(&attributes, detail::snapshot_kernel));
}
}  // namespace

void validate_geometry(std::uint64_t capacity, std::uint32_t stride) {
  PBM_EXPECTS(capacity > 0, "capacity must be at least 1 record, got 0");
  PBM_EXPECTS(capacity <= kMaxCapacity, "capacity " + std::to_string(capacity) + " exceeds the maximum of " +
                                            std::to_string(kMaxCapacity) + " records");
  PBM_EXPECTS(stride > 0, "record stride must be positive, got 0");
  PBM_EXPECTS(stride % kStrideAlignment == 0,
              "record stride must be a multiple of 4 bytes, got " + std::to_string(stride));
  PBM_EXPECTS(stride <= kMaxStride, "record stride " + std::to_string(stride) + " exceeds the maximum of " +
                                        std::to_string(kMaxStride) + " bytes");
  PBM_EXPECTS(capacity * stride <= kMaxPayloadBytes,
              "capacity × stride = " + std::to_string(capacity * stride) + " bytes exceeds the maximum of " +
                  std::to_string(kMaxPayloadBytes) + " bytes");
}

// ---------------------------------------------------------------- OpHandle

OpHandle::OpHandle(std::shared_ptr<detail::CompletionPool> pool, detail::Completion* completion,
                   std::uint64_t generation, std::uint64_t requested) noexcept
    : pool_(std::move(pool)), completion_(completion), generation_(generation), requested_(requested) {}

OpHandle::~OpHandle() {
  if (completion_ != nullptr) pool_->release(completion_);
}

OpHandle::OpHandle(OpHandle&& other) noexcept
    : pool_(std::move(other.pool_)),
      completion_(std::exchange(other.completion_, nullptr)),
      generation_(other.generation_),
      requested_(other.requested_) {}

OpHandle& OpHandle::operator=(OpHandle&& other) noexcept {
  if (this != &other) {
    if (completion_ != nullptr) pool_->release(completion_);
    pool_ = std::move(other.pool_);
    completion_ = std::exchange(other.completion_, nullptr);
    generation_ = other.generation_;
    requested_ = other.requested_;
  }
  return *this;
}

void OpHandle::check_valid() const {
  if (completion_ == nullptr) throw std::logic_error("pbm: empty or moved-from OpHandle");
}

bool OpHandle::ready() const {
  check_valid();
  return completion_->done(generation_);
}

cudaEvent_t OpHandle::event() const noexcept { return completion_ != nullptr ? completion_->event : nullptr; }

void OpHandle::wait_on(cudaStream_t stream) const {
  check_valid();
  PBM_CUDA_TRY(cudaStreamWaitEvent(stream, completion_->event, 0));
}

std::uint64_t OpHandle::wait(WaitPolicy policy) const {
  check_valid();
  if (!completion_->done(generation_)) {
    PBM_NVTX_RANGE(wait, wait);
    if (policy.mode != WaitMode::block) {
      auto const start = std::chrono::steady_clock::now();
      auto const limit = std::chrono::nanoseconds(policy.spin_ns);
      for (unsigned i = 1; !completion_->done(generation_); ++i) {
        if (i % 64 != 0) continue;
        auto const elapsed = std::chrono::steady_clock::now() - start;
        if (policy.mode == WaitMode::spin_then_block && elapsed > limit) break;
        if (policy.mode == WaitMode::spin && i % (1u << 20) == 0) {
          // A kernel that faulted never publishes: look at the event now and then so a pure
          // spin cannot hang on it (a query, counted as pbm's own expected sync).
          ExpectedSyncScope expected;
          cudaError_t const status = cudaEventQuery(completion_->event);
          if (status != cudaSuccess && status != cudaErrorNotReady) PBM_CUDA_TRY(status);
          if (status == cudaSuccess) break;
        }
      }
    }
    if (!completion_->done(generation_)) {
      ExpectedSyncScope expected;  // pbm's own wait: telemetry counts it as expected
      PBM_CUDA_TRY(cudaEventSynchronize(completion_->event));
      if (!completion_->done(generation_)) {
        cudaError_t const err = cudaGetLastError();
        throw std::runtime_error(std::string("pbm: the kernel of this operation did not complete (") +
                                 cudaGetErrorName(err) + ")");
      }
    }
  }
  auto const* slot = static_cast<detail::ResultSlot const volatile*>(completion_->host);
  std::uint64_t const word = slot->done;
  std::uint64_t const count = detail::done_count(word);
  auto const error = static_cast<DeviceError>(detail::done_error(word));
  if (error == DeviceError::release_stalled) throw stall_error(count, slot->stalled_at);
  if (error != DeviceError::none) throw header_error(std::string("pbm: mailbox header invalid: ") + to_string(error));
  return count;
}

// ---------------------------------------------------------------- Mailbox

Mailbox::Mailbox(std::uint64_t capacity, std::uint32_t stride, int device, std::string name)
    : Mailbox(capacity, stride, device, std::move(name), 0) {}

Mailbox::Mailbox(std::uint64_t capacity, std::uint32_t stride, int device, std::string name,
                 std::uint64_t initial_position)
    : Mailbox(capacity, stride, device, std::move(name), initial_position, nullptr) {}

Mailbox Mailbox::adopt(void* header, void* payload, std::uint64_t capacity, std::uint32_t stride, int device,
                       std::string name, bool initialize) {
  External const external{header, payload, initialize};
  return Mailbox(capacity, stride, device, std::move(name), 0, &external);
}

Mailbox::Mailbox(std::uint64_t capacity, std::uint32_t stride, int device, std::string name,
                 std::uint64_t initial_position, External const* external)
    : name_(std::move(name)) {
  PBM_NVTX_RANGE(alloc, construct);
  validate_geometry(capacity, stride);
  if (external != nullptr) {
    // Before any CUDA call: a header short of RingHeader's alignment (alignas(128), 64-bit atomics)
    // would fault on the device with a sticky error instead of being refused here.
    detail::check_aligned(external->header, alignof(RingHeader), "mailbox header");
    detail::check_aligned(external->payload, kStrideAlignment, "mailbox payload");
  }
  int count = 0;
  PBM_CUDA_TRY(cudaGetDeviceCount(&count));
  device_ = device < 0 ? current_device() : device;
  PBM_EXPECTS(device_ < count, "no CUDA device " + std::to_string(device_) + " (" + std::to_string(count) +
                                   " visible)");
  DeviceGuard guard(device_);
  ExpectedSyncScope expected_allocations;  // cudaMalloc, cudaHostAlloc (state, completion pool): documented to synchronise
  // A throw below destroys the members made so far, which frees them (see the members in mailbox.hpp).
  PBM_CUDA_TRY(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device_));
  if (external != nullptr) {
    detail::check_device_buffer(external->header, header_bytes(capacity), device_, "mailbox header");
    detail::check_device_buffer(external->payload, capacity * stride, device_, "mailbox payload");
    header_ = DeviceMemory(external->header, detail::DeviceMemoryDeleter{device_, false});
    payload_ = DeviceMemory(external->payload, detail::DeviceMemoryDeleter{device_, false});
  } else {
    void* memory = nullptr;
    PBM_CUDA_TRY(cudaMalloc(&memory, header_bytes(capacity)));
    header_ = DeviceMemory(memory, detail::DeviceMemoryDeleter{device_, true});
    memory = nullptr;
    PBM_CUDA_TRY(cudaMalloc(&memory, capacity * stride));
    payload_ = DeviceMemory(memory, detail::DeviceMemoryDeleter{device_, true});
  }
  PBM_CUDA_TRY(cudaDeviceGetStreamPriorityRange(&priority_least_, &priority_greatest_));
  state_.reset(new detail::MailboxState(name_, device_, capacity, stride));
  ref_ = MailboxRef(header_.get(), payload_.get(), capacity, stride, initial_position);
  pool_ = std::make_shared<detail::CompletionPool>(device_);

  load_kernels();
  cudaStream_t stream = nullptr;
  PBM_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  unsigned const blocks = static_cast<unsigned>(std::clamp<std::uint64_t>((capacity + 255) / 256, 1, 1024));
  if (external == nullptr || external->initialize) detail::init_kernel<<<blocks, 256, 0, stream>>>(ref_);
  cudaError_t launched = cudaGetLastError();
  if (launched == cudaSuccess) {
    detail::snapshot_kernel<<<1, 1, 0, stream>>>(ref_, state_->snapshot_device);
    launched = cudaGetLastError();
  }
  cudaError_t synced = cudaSuccess;
  {
    ExpectedSyncScope expected;  // construction is documented to synchronise
    synced = cudaStreamSynchronize(stream);
  }
  PBM_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(stream));
  PBM_CUDA_TRY(launched);
  PBM_CUDA_TRY(synced);
  detail::register_mailbox(state_.get());
}

void detail::DeviceMemoryDeleter::operator()(void* memory) const noexcept {
  if (!owned) return;
  FreeScope const scope(device);
  PBM_CUDA_TRY_NOEXCEPT(cudaFree(memory));
}

detail::StreamFacts Mailbox::check_stream_and_pointer(void const* ptr, std::uint64_t records, cudaStream_t stream,
                                                     char const* what) const {
  PBM_EXPECTS(header_ != nullptr, "use of a moved-from Mailbox");
  PBM_EXPECTS(records <= kMaxCapacity * 64, std::string("record count ") + std::to_string(records) +
                                                " for " + what + " is absurd");
  detail::StreamFacts const facts = detail::checked_stream_facts(stream, device_);
  detail::check_device_buffer(ptr, records * stride(), device_, what);
  return facts;
}

StreamClass Mailbox::class_of(detail::StreamFacts const& facts) const noexcept {
  // A captured stream is not asked its priority (see stream_facts): counted as peripheral.
  return facts.captured ? StreamClass::peripheral
                        : stream_class_for(facts.priority, PriorityRange{priority_least_, priority_greatest_});
}

PushHandle Mailbox::push(void const* records, std::uint64_t n, cudaStream_t stream,
                         unsigned long long* device_count) {
  PBM_NVTX_RANGE(push, push);
  DeviceGuard guard(device_);
  detail::StreamFacts const facts = check_stream_and_pointer(records, n, stream, "push source");
  check_device_count(device_count);
  state_->count_push(class_of(facts), n);
  return detail::launch_op(&detail::push_kernel, 0, ref_, static_cast<unsigned char const*>(records), n, stride(),
                           multiprocessors_, stream, pool_, state_->snapshot_device, device_count, facts.captured);
}

PopHandle Mailbox::pop_bulk_async(void* dst, std::uint64_t max_records, cudaStream_t stream,
                                  unsigned long long* device_count) {
  PBM_NVTX_RANGE(pop, pop_bulk_async);
  DeviceGuard guard(device_);
  detail::StreamFacts const facts = check_stream_and_pointer(dst, max_records, stream, "pop destination");
  check_device_count(device_count);
  state_->count_pop(class_of(facts), max_records);
  return detail::launch_op(&detail::pop_kernel, 1, ref_, static_cast<unsigned char*>(dst), max_records, stride(),
                           multiprocessors_, stream, pool_, state_->snapshot_device, device_count, facts.captured);
}

std::uint64_t Mailbox::pop_bulk(void* dst, std::uint64_t max_records, cudaStream_t stream, WaitPolicy policy) {
  return pop_bulk_async(dst, max_records, stream).wait(policy);
}

void Mailbox::refresh_stats(cudaStream_t stream) {
  PBM_EXPECTS(header_ != nullptr, "use of a moved-from Mailbox");
  DeviceGuard guard(device_);
  detail::check_stream_device(stream, device_);
  PBM_NVTX_RANGE(telemetry, refresh_stats);
  detail::snapshot_kernel<<<1, 1, 0, stream>>>(ref_, state_->snapshot_device);
  PBM_CUDA_TRY(cudaGetLastError());
}

void Mailbox::check_device_count(unsigned long long const* device_count) const {
  if (device_count == nullptr) return;
  PBM_EXPECTS(reinterpret_cast<std::uintptr_t>(device_count) % alignof(unsigned long long) == 0,
              "device count is not 8-byte aligned");
  detail::check_device_buffer(device_count, sizeof(*device_count), device_, "device count");
}

Stats Mailbox::stats() const {
  PBM_EXPECTS(state_ != nullptr, "use of a moved-from Mailbox");
  return state_->stats();
}

}  // namespace pbm
