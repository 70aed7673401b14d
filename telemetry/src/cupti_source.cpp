// The CUPTI source: one subscriber per process, the API callbacks pbm enables (copies and syncs)
// and their dispatch, NVTX callbacks (nvtx_names.cpp), and activity records into a bounded buffer
// pool (activity_buffers.cpp). Static CUPTIAPI trampolines forward to the single CuptiSource.
#include "activity_buffers.hpp"
#include "classify.hpp"
#include "cupti_api.hpp"
#include "decoder.hpp"
#include "environment.hpp"
#include "graphs.hpp"
#include "nvtx_names.hpp"
#include "source.hpp"
#include "thread_state.hpp"

#include <pbm/pointer.hpp>
#include <pbm/telemetry/counters.hpp>

#include <cupti.h>  // also brings the runtime/driver parameter structs (generated_*_meta.h)

#include <atomic>
#include <chrono>
#include <cstring>
#include <dlfcn.h>
#include <optional>
#include <string>

namespace pbm::telemetry::detail {
namespace {

constexpr CUpti_ActivityKind kActivityKinds[] = {
    CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,
    CUPTI_ACTIVITY_KIND_MARKER};

constexpr CUpti_CallbackId kNvtxCallbacks[] = {
    CUPTI_CBID_NVTX_nvtxRangePushA, CUPTI_CBID_NVTX_nvtxRangePushEx, CUPTI_CBID_NVTX_nvtxRangePop,
    CUPTI_CBID_NVTX_nvtxDomainRangePushEx, CUPTI_CBID_NVTX_nvtxDomainRangePop,
    CUPTI_CBID_NVTX_nvtxDomainCreateA, CUPTI_CBID_NVTX_nvtxDomainRegisterStringA,
    CUPTI_CBID_NVTX_nvtxDomainDestroy};

/// Activity kinds. By default none: copies are judged from their API callbacks' parameters and
/// syncs at their API callbacks, which is what the policy needs; any activity kind made CUPTI trace
/// every launch (BENCHMARKS.md, figure 7). Config::activity_records: MEMCPY, MEMSET and
/// SYNCHRONIZATION records, for copies the callbacks cannot describe (3D/array/batch copies, graph
/// memcpy nodes) and memset counts. MARKER only with Config::marker_activity. PBM_CUPTI_KINDS
/// (comma-separated: memcpy, memset, sync, marker) overrides both, for measurements.
bool activity_kind_wanted(CUpti_ActivityKind kind, Settings const& settings) {
  if (!settings.cupti_kinds) {
    if (kind == CUPTI_ACTIVITY_KIND_MARKER) return settings.config.marker_activity;
    return settings.config.activity_records;
  }
  std::string const list = "," + *settings.cupti_kinds + ",";
  char const* name = kind == CUPTI_ACTIVITY_KIND_MEMCPY            ? ",memcpy,"
                     : kind == CUPTI_ACTIVITY_KIND_MEMSET          ? ",memset,"
                     : kind == CUPTI_ACTIVITY_KIND_SYNCHRONIZATION ? ",sync,"
                                                                   : ",marker,";
  return list.find(name) != std::string::npos;
}

/// Pageable (not known to CUDA), pinned (page-locked or registered host memory), device or managed:
/// core's classifier (pbm/pointer.hpp; one driver call, no runtime call), in the event model's terms.
MemoryKind memory_kind_of(void const* ptr) {
  switch (pbm::classify_pointer(ptr).kind) {
    case pbm::MemoryKind::pageable: return MemoryKind::pageable;
    case pbm::MemoryKind::pinned: return MemoryKind::pinned;
    case pbm::MemoryKind::device: return MemoryKind::device;
    case pbm::MemoryKind::managed: return MemoryKind::managed;
    case pbm::MemoryKind::array: return MemoryKind::array;
    case pbm::MemoryKind::unknown: return MemoryKind::unknown;
  }
  return MemoryKind::unknown;
}

// The loaded libcupti; set by attach() before anything below can run (callbacks come only after it).
CuptiApi const& api() noexcept { return *loaded_cupti(); }

std::string result_string(CUptiResult r) {
  char const* text = nullptr;
  if (api().GetResultString(r, &text) != CUPTI_SUCCESS || text == nullptr) return "CUPTI error " + std::to_string(r);
  return text;
}

class CuptiSource {
 public:
  static CuptiSource& instance() {
    static CuptiSource* const source = new CuptiSource();  // outlives exit-time callbacks
    return *source;
  }

  AttachResult attach(Settings const& settings);
  void detach() noexcept;
  bool attached() const noexcept { return attached_.load(std::memory_order_acquire); }
  void flush() noexcept {
    if (attached()) api().ActivityFlushAll(0);
  }
  /// Exit: the last flush, then callbacks are ignored; CUPTI itself is left as it is.
  void exit_flush() noexcept {
    bool const was_attached = attached_.exchange(false, std::memory_order_acq_rel);
    if (was_attached && !closed_.load(std::memory_order_acquire)) api().ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    closed_.store(true, std::memory_order_release);
  }
  /// A forked child: callbacks are ignored and CUPTI is never called again (its threads and locks
  /// stayed in the parent).
  void close_in_child() noexcept {
    closed_.store(true, std::memory_order_release);
    attached_.store(false, std::memory_order_release);
  }
  /// The legacy default stream rule: its callbacks (CallbackSpec::Group::legacy_rule) on or off,
  /// now if attached, and at every later attach. The facade serialises it with attach/detach.
  void set_legacy_rule(bool on) noexcept {
    legacy_rule_.store(on, std::memory_order_release);
    if (attached()) enable_group(CallbackSpec::Group::legacy_rule, on);
  }

 private:
  static void CUPTIAPI on_callback(void* self, CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* data) {
    auto* source = static_cast<CuptiSource*>(self);
    if (source->closed_.load(std::memory_order_acquire)) return;
    if (!source->time_callbacks_.load(std::memory_order_relaxed)) {
      handle(source, domain, cbid, data);
      return;
    }
    auto const t0 = std::chrono::steady_clock::now();
    ThreadState* const thread = handle(source, domain, cbid, data);
    auto const ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    if (thread != nullptr)
      count_callback(domain == CUPTI_CB_DOMAIN_NVTX ? thread->nvtx_callback_ns : thread->api_callback_ns,
                     static_cast<std::uint64_t>(ns));
  }
  /// One callback, counted; the calling thread's state, or nullptr where it could not be had.
  static ThreadState* handle(CuptiSource* source, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
                             void const* data) noexcept {
    ThreadState* thread = nullptr;
    try {  // nothing may unwind into CUPTI or the CUDA call
      thread = &this_thread();
      if (domain == CUPTI_CB_DOMAIN_NVTX) {
        count_callback(thread->nvtx_callbacks);
        on_nvtx_callback(*thread, cbid, static_cast<CUpti_NvtxData const*>(data));
      } else {
        count_callback(thread->api_callbacks);
        source->handle_api(domain, cbid, static_cast<CUpti_CallbackData const*>(data));
      }
    } catch (...) {
    }
    return thread;
  }
  static void CUPTIAPI on_buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
    instance().buffers_.take(buffer, size, max_records);
  }
  static void CUPTIAPI on_buffer_completed(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer,
                                           std::size_t /*size*/, std::size_t valid) {
    instance().buffers_.complete(ctx, stream, buffer, valid);
  }

  void handle_api(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, CUpti_CallbackData const* data);
  void bookkeeping(CallbackSpec const& spec, CUpti_CallbackDomain domain, CUpti_CallbackData const* data);
  void report_graph_replay(ApiCall const& call, void const* params, bool copies_from_call);
  CUptiResult enable_group(CallbackSpec::Group group, bool on) noexcept;
  void disable_all() noexcept;

  std::atomic<bool> attached_{false};
  std::atomic<bool> copies_from_callbacks_{true};  // no MEMCPY records: copies judged at their call
  std::atomic<bool> closed_{false};  // exiting, or a forked child: callbacks are ignored from then on
  std::atomic<bool> legacy_rule_{false};
  std::atomic<bool> driver_callbacks_{true};  // PBM_CUPTI_DRIVER_CALLBACKS=0 (measurements) turns them off
  std::atomic<bool> time_callbacks_{false};   // PBM_CUPTI_TIME_CALLBACKS=1 (measurements) turns it on
  CUpti_SubscriberHandle subscriber_{};
  ActivityBuffers buffers_;
};

AttachResult CuptiSource::attach(Settings const& settings) {
  if (attached()) return {true, false, "attached"};
  if (closed_.load(std::memory_order_acquire)) {
    return {false, false, "CUPTI not attached: the process is exiting, or this is a forked child"};
  }
  std::string load_error;
  if (load_cupti(settings.config.cupti_path, settings.cuda_home, &load_error) == nullptr) return {false, false, load_error};
  // libcupti loads without a driver but fails with CUPTI_ERROR_UNKNOWN; say what is missing.
  if (void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
    dlclose(driver);
  } else {
    return {false, false, "CUPTI unavailable: no CUDA driver (libcuda.so.1 not loadable); detection disabled"};
  }
  api().SetThreadIdType(CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM);  // marker thread ids == gettid()

  CUptiResult r = api().Subscribe(&subscriber_, &CuptiSource::on_callback, this);
  if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
    return {false, true,
            "another CUPTI client (Nsight Systems, Nsight Compute, torch.profiler/Kineto, ...) holds the "
            "subscriber: pbm telemetry steps aside (NVTX ranges still emitted)"};
  }
  if (r != CUPTI_SUCCESS) {
    return {false, false, "CUPTI unavailable: cuptiSubscribe failed (" + result_string(r) + "); no GPU or driver?"};
  }
  buffers_.allocate(settings.config.buffer_count, settings.config.buffer_size);

  auto fail = [this](std::string what, CUptiResult res) {
    disable_all();
    api().Unsubscribe(subscriber_);
    return AttachResult{false, false, "CUPTI unavailable: " + what + " failed (" + result_string(res) + ")"};
  };
  legacy_rule_.store(settings.config.legacy_stream_rule, std::memory_order_release);
  driver_callbacks_.store(settings.driver_callbacks, std::memory_order_release);
  time_callbacks_.store(settings.time_callbacks, std::memory_order_release);
  if ((r = enable_group(CallbackSpec::Group::always, true)) != CUPTI_SUCCESS) return fail("cuptiEnableCallback", r);
  if (settings.config.legacy_stream_rule && (r = enable_group(CallbackSpec::Group::legacy_rule, true)) != CUPTI_SUCCESS)
    return fail("cuptiEnableCallback (legacy default stream rule)", r);
  if (settings.nvtx_callbacks) {  // off only as an experiment: no range attribution
    for (CUpti_CallbackId cbid : kNvtxCallbacks) {
      if ((r = api().EnableCallback(1, subscriber_, CUPTI_CB_DOMAIN_NVTX, cbid)) != CUPTI_SUCCESS)
        return fail("cuptiEnableCallback(NVTX)", r);
    }
  }
  learn_pbm_domain();
  if ((r = api().ActivityRegisterCallbacks(&CuptiSource::on_buffer_requested, &CuptiSource::on_buffer_completed)) !=
      CUPTI_SUCCESS)
    return fail("cuptiActivityRegisterCallbacks", r);
  bool memcpy_records = false;
  bool any_records = false;
  for (CUpti_ActivityKind kind : kActivityKinds) {
    if (!activity_kind_wanted(kind, settings)) continue;
    if ((r = api().ActivityEnable(kind)) != CUPTI_SUCCESS) return fail("cuptiActivityEnable", r);
    memcpy_records = memcpy_records || kind == CUPTI_ACTIVITY_KIND_MEMCPY;
    any_records = any_records || kind != CUPTI_ACTIVITY_KIND_MARKER;  // markers join no call
  }
  copies_from_callbacks_.store(!memcpy_records, std::memory_order_release);
  engine().set_joins_records(any_records);
  attached_.store(true, std::memory_order_release);
  return {true, false, "attached"};
}

CUptiResult CuptiSource::enable_group(CallbackSpec::Group group, bool on) noexcept {
  CUptiResult first = CUPTI_SUCCESS;
  auto each = [&](std::vector<CallbackSpec> const& specs, CUpti_CallbackDomain domain) {
    for (CallbackSpec const& s : specs) {
      if (s.group != group) continue;
      CUptiResult const r = api().EnableCallback(on ? 1 : 0, subscriber_, domain, s.cbid);
      if (r != CUPTI_SUCCESS && first == CUPTI_SUCCESS) first = r;
    }
  };
  each(runtime_callbacks(), CUPTI_CB_DOMAIN_RUNTIME_API);
  if (driver_callbacks_.load(std::memory_order_acquire)) each(driver_callbacks(), CUPTI_CB_DOMAIN_DRIVER_API);
  return first;
}

void CuptiSource::disable_all() noexcept {
  for (CUpti_ActivityKind kind : kActivityKinds) api().ActivityDisable(kind);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_RUNTIME_API);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_DRIVER_API);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_NVTX);
}

void CuptiSource::detach() noexcept {
  if (!attached_.exchange(false, std::memory_order_acq_rel)) return;
  api().ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  disable_all();
  api().Unsubscribe(subscriber_);  // frees the one subscriber slot: torch.profiler can take it
  // No cuptiFinalize: with NVTX_INJECTION64_PATH at libcupti, NVTX calls made afterwards (at exit,
  // or by torch.profiler) jumped to a null pointer inside CUPTI (exit status 139). libcupti stays
  // loaded (never dlclose'd), so it needs none.
}

/// The capture error a call returned (cudaErrorStreamCaptureUnsupported, ...Invalidated,
/// ...Implicit and their driver twins: the same numbers), or 0.
int capture_error(bool runtime, void const* returned) noexcept {
  if (returned == nullptr) return 0;
  int const code = runtime ? static_cast<int>(*static_cast<cudaError_t const*>(returned))
                           : static_cast<int>(*static_cast<CUresult const*>(returned));
  static_assert(cudaErrorStreamCaptureUnsupported == static_cast<int>(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) &&
                    cudaErrorStreamCaptureInvalidated == static_cast<int>(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED) &&
                    cudaErrorStreamCaptureImplicit == static_cast<int>(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT),
                "runtime and driver capture errors share their numbers");
  bool const capture = code == cudaErrorStreamCaptureUnsupported || code == cudaErrorStreamCaptureInvalidated ||
                       code == cudaErrorStreamCaptureImplicit;
  return capture ? code : 0;
}

bool succeeded(bool runtime, void const* returned) noexcept {
  if (returned == nullptr) return false;
  return runtime ? *static_cast<cudaError_t const*>(returned) == cudaSuccess
                 : *static_cast<CUresult const*>(returned) == CUDA_SUCCESS;
}

bool name_has(CallbackSpec const& spec, char const* part) noexcept { return std::strstr(spec.name, part) != nullptr; }

// Graph instantiation, update and destruction; stream creation and destruction. The parameter
// structs of each family share their leading fields (runtime and driver alike), read through these.
struct InstantiateParams {
  void** exec;
  CUgraph graph;
};
struct ExecGraphParams {
  void* exec;
  CUgraph graph;
};
struct StreamCreateParams {
  CUstream* stream;
  unsigned int flags;
};

void CuptiSource::bookkeeping(CallbackSpec const& spec, CUpti_CallbackDomain domain, CUpti_CallbackData const* data) {
  void const* params = data->functionParams;
  if (params == nullptr) return;
  bool const runtime = domain == CUPTI_CB_DOMAIN_RUNTIME_API;
  if (data->callbackSite == CUPTI_API_ENTER) {
    if (name_has(spec, "GraphExecDestroy")) {
      graph_cache().erase(static_cast<ExecGraphParams const*>(params)->exec);
    } else if (name_has(spec, "StreamDestroy")) {
      stream_table().destroyed(*static_cast<CUstream const*>(params));
    }
    return;
  }
  if (!succeeded(runtime, data->functionReturnValue)) return;
  if (name_has(spec, "GraphInstantiate")) {
    auto const* p = static_cast<InstantiateParams const*>(params);
    if (p->exec == nullptr || *p->exec == nullptr) return;
    if (std::optional<GraphSummary> summary = inspect_graph(p->graph, &memory_kind_of))
      graph_cache().put(*p->exec, std::move(*summary));
  } else if (name_has(spec, "GraphExecUpdate")) {
    auto const* p = static_cast<ExecGraphParams const*>(params);
    if (std::optional<GraphSummary> summary = inspect_graph(p->graph, &memory_kind_of)) {
      graph_cache().put(p->exec, std::move(*summary));
    } else {
      graph_cache().erase(p->exec);  // what it does now is not known: report nothing rather than stale nodes
    }
  } else if (name_has(spec, "StreamCreate")) {
    auto const* p = static_cast<StreamCreateParams const*>(params);
    if (p->stream == nullptr) return;
    // cudaStreamCreate has no flags: blocking. The others carry them second.
    bool const no_flags = runtime && std::strcmp(spec.name, "cudaStreamCreate") == 0;
    unsigned int const flags = no_flags ? 0u : p->flags;
    stream_table().created(*p->stream, (flags & CU_STREAM_NON_BLOCKING) == 0);
  }
}

void CuptiSource::report_graph_replay(ApiCall const& call, void const* params, bool copies_from_call) {
  if (params == nullptr) return;
  std::shared_ptr<GraphSummary const> const summary =
      graph_cache().get(static_cast<ExecGraphParams const*>(params)->exec);  // (graphExec, stream) for both
  if (!summary) return;
  for (std::uint32_t i = 0; i < summary->host_nodes; ++i) engine().api_also(call, SyncApi::graph_host_node);
  if (!copies_from_call) return;  // MEMCPY activity records describe the nodes' copies
  for (MemcpyEvent ev : summary->copies) {
    if (call.runtime) {
      ev.runtime_correlation = call.correlation;
    } else {
      ev.correlation = call.correlation;
    }
    engine().on_memcpy(std::move(ev), /*at_call_site=*/true);
  }
}

void CuptiSource::handle_api(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, CUpti_CallbackData const* data) {
  CallbackSpec const* spec = find_callback(domain, cbid);
  if (spec == nullptr || data == nullptr) return;
  if (spec->cls == ApiCall::Class::bookkeeping) {
    bookkeeping(*spec, domain, data);
    return;
  }
  ApiCall call;
  call.runtime = domain == CUPTI_CB_DOMAIN_RUNTIME_API;
  call.correlation = data->correlationId;
  call.name = spec->name;
  call.cls = spec->cls;
  call.sync_api = spec->sync_api;
  if (data->callbackSite == CUPTI_API_EXIT) {
    if (int const error = capture_error(call.runtime, data->functionReturnValue)) engine().api_capture_failure(call, error);
    engine().api_exit(call);
    return;
  }
  if (call.runtime && (cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020 ||
                       cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000)) {
    // Same layout for both; device-to-device copies do not block the host.
    auto const* p = static_cast<cudaMemcpy_v3020_params const*>(data->functionParams);
    if (p != nullptr && p->kind == cudaMemcpyDeviceToDevice) call.cls = ApiCall::Class::memcpy_async;
  }
  if (call.cls == ApiCall::Class::sync && call.sync_api == SyncApi::memset_sync) {
    // A non-Async memset blocks the host only on pinned host or managed memory.
    std::optional<MemoryKind> const target = decode_memset_target(domain, cbid, data->functionParams, &memory_kind_of);
    if (!target || !memset_blocks_host(*target)) call.cls = ApiCall::Class::quiet;
  }
  if (call.cls == ApiCall::Class::sync && frees_nothing(domain, cbid, data->functionParams)) {
    call.cls = ApiCall::Class::quiet;  // cudaFree(0) and friends: nothing freed, nothing waited for
  }
  // Stream syncs: the CUPTI stream id, as in activity records.
  CUstream stream = nullptr;
  std::uint8_t per_thread = 0;
  bool has_stream = false;
  if (call.runtime && (cbid == CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020 ||
                       cbid == CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_ptsz_v7000)) {
    stream = static_cast<cudaStreamSynchronize_v3020_params const*>(data->functionParams)->stream;
    per_thread = cbid == CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_ptsz_v7000;
    has_stream = true;
  } else if (!call.runtime && (cbid == CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize ||
                               cbid == CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz)) {
    stream = static_cast<cuStreamSynchronize_params const*>(data->functionParams)->hStream;
    per_thread = cbid == CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz;
    has_stream = true;
  }
  if (has_stream && data->context != nullptr) {
    std::uint32_t id = 0;
    if (api().GetStreamIdEx(data->context, stream, per_thread, &id) == CUPTI_SUCCESS) call.stream = id;
  }
  if (legacy_rule_.load(std::memory_order_acquire)) {
    // Work for the legacy default stream, while a blocking stream exists that it serialises with.
    bool legacy = false;
    if (std::optional<CallStream> const s = stream_of_call(domain, cbid, data->functionParams)) {
      legacy = is_legacy_stream(s->stream, s->per_thread_api);
      if (!legacy) stream_table().used(s->stream);
    } else {
      legacy = runs_on_legacy_stream_implicitly(domain, cbid);
    }
    call.legacy_stream = legacy && stream_table().blocking() > 0;
  }
  if (call.cls == ApiCall::Class::graph_launch && graph_cache().reporting() == 0 &&
      copies_from_callbacks_.load(std::memory_order_acquire) && !engine().joins_records()) {
    // No kept graph has a memcpy or host node, and no activity record will join this call: its
    // replay reports nothing (pbm's own push and pop graphs), so it is judged as nothing, cheaply.
    call.cls = ApiCall::Class::quiet;
  }
  bool const top_level = engine().api_enter(call);
  if (!top_level) return;
  bool const from_call = copies_from_callbacks_.load(std::memory_order_acquire);
  if (call.cls == ApiCall::Class::graph_launch) {
    report_graph_replay(call, data->functionParams, from_call);
    return;
  }
  if (call.cls != ApiCall::Class::memcpy_sync && call.cls != ApiCall::Class::memcpy_async) return;
  bool const may_block = call.cls == ApiCall::Class::memcpy_async;
  if (!from_call && !may_block) return;
  std::optional<MemcpyEvent> decoded = decode_copy_call(domain, cbid, data->functionParams, &memory_kind_of);
  // An async copy the host waits for (pageable memory, host to host) is a sync too: memcpy_blocking.
  if (may_block && decoded && copy_blocks_host(*decoded)) engine().api_blocking_copy(call);
  if (!from_call) return;
  // No MEMCPY records: the copy is judged now, from the call's parameters, in the caller's scope.
  MemcpyEvent ev = decoded.value_or(MemcpyEvent{});
  ev.device = 0;
  if (call.runtime) {
    ev.runtime_correlation = call.correlation;
  } else {
    ev.correlation = call.correlation;
  }
  engine().on_memcpy(std::move(ev), /*at_call_site=*/true);
}

}  // namespace

bool source_built() noexcept { return true; }

AttachResult source_attach(Settings const& settings) noexcept {
  try {
    return CuptiSource::instance().attach(settings);
  } catch (std::exception const& e) {
    return {false, false, std::string("CUPTI unavailable: ") + e.what()};
  }
}

void source_detach() noexcept { CuptiSource::instance().detach(); }
void source_flush() noexcept { CuptiSource::instance().flush(); }
void source_exit() noexcept { CuptiSource::instance().exit_flush(); }
void source_after_fork_in_child() noexcept { CuptiSource::instance().close_in_child(); }
void source_set_legacy_rule(bool on) noexcept { CuptiSource::instance().set_legacy_rule(on); }

std::string cupti_library_path() {
  auto const [path, cuda_home] = cupti_search_from_environment();
  CuptiApi const* loaded = load_cupti(path, cuda_home, nullptr);
  return loaded != nullptr ? loaded->path : std::string();
}

void forget_library_for_testing() noexcept {
  if (!CuptiSource::instance().attached()) forget_cupti_for_testing();
}

}  // namespace pbm::telemetry::detail
