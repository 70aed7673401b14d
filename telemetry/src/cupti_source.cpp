// The CUPTI source: one subscriber per process, API callbacks for copies/syncs/NVTX ranges,
// MEMCPY/MEMSET/SYNCHRONIZATION/MARKER activity into a bounded buffer pool.
// Static CUPTIAPI trampolines forward to the single CuptiSource instance.
#include "cupti_api.hpp"
#include "decoder.hpp"
#include "source.hpp"

#include <pbm/nvtx.hpp>
#include <pbm/telemetry/counters.hpp>

#include <cupti.h>  // also brings the runtime/driver parameter structs (generated_*_meta.h)
#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtCuda.h>
#include <nvtx3/nvToolsExtCudaRt.h>
#include <nvtx3/nvToolsExtSync.h>
#include <generated_nvtx_meta.h>  // not included by cupti.h

#include <atomic>
#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

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

bool env_flag(char const* name, bool fallback) {
  char const* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return !(v[0] == '0' || v[0] == 'n' || v[0] == 'N' || v[0] == 'f' || v[0] == 'F');
}

/// Activity kinds. By default none: copies are judged from their API callbacks' parameters and
/// syncs at their API callbacks, which is what the policy needs. Enabling any activity kind made
/// CUPTI trace every launch: on an H100, a push/pop loop in count mode ran 1.205x the telemetry-off
/// loop with MEMCPY/MEMSET/SYNCHRONIZATION activity and 1.066x without (same run); a launch-bound
/// PyTorch loop under pbm-guard lost about a third of its steps/s.
/// With Config::activity_records (or PBM_CUPTI_ACTIVITY=1): MEMCPY, MEMSET, SYNCHRONIZATION
/// records, for copies the callbacks cannot describe (3D/array/batch copies, graph memcpy nodes)
/// and memset counts. MARKER only when asked (Config::marker_activity or PBM_CUPTI_MARKERS=1).
/// PBM_CUPTI_KINDS (comma-separated: memcpy, memset, sync, marker) overrides, for measurements.
bool activity_kind_wanted(CUpti_ActivityKind kind, bool activity_records, bool marker_activity) {
  char const* v = std::getenv("PBM_CUPTI_KINDS");
  if (v == nullptr) {
    if (kind == CUPTI_ACTIVITY_KIND_MARKER) return marker_activity || env_flag("PBM_CUPTI_MARKERS", false);
    return activity_records || env_flag("PBM_CUPTI_ACTIVITY", false);
  }
  std::string const list = std::string(",") + v + ",";
  char const* name = kind == CUPTI_ACTIVITY_KIND_MEMCPY            ? ",memcpy,"
                     : kind == CUPTI_ACTIVITY_KIND_MEMSET          ? ",memset,"
                     : kind == CUPTI_ACTIVITY_KIND_SYNCHRONIZATION ? ",sync,"
                                                                   : ",marker,";
  return list.find(name) != std::string::npos;
}

using PointerAttributesFn = CUresult (*)(unsigned, CUpointer_attribute*, void**, CUdeviceptr);

/// cuPointerGetAttributes from the driver the process already loaded (never the runtime: this runs
/// inside CUPTI callbacks). Null where libcuda is missing.
PointerAttributesFn pointer_attributes() noexcept {
  static PointerAttributesFn const fn = [] {
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    if (driver == nullptr) driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    return driver != nullptr ? reinterpret_cast<PointerAttributesFn>(dlsym(driver, "cuPointerGetAttributes"))
                             : PointerAttributesFn{nullptr};
  }();
  return fn;
}

/// Pageable (not known to CUDA), pinned (page-locked or registered host memory), device or managed.
MemoryKind memory_kind_of(void const* ptr) {
  if (ptr == nullptr) return MemoryKind::unknown;
  PointerAttributesFn const get = pointer_attributes();
  if (get == nullptr) return MemoryKind::unknown;
  unsigned int memory_type = 0;
  unsigned int managed = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED};
  void* data[] = {&memory_type, &managed};
  if (get(2, attrs, data, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return MemoryKind::unknown;
  if (managed != 0) return MemoryKind::managed;
  switch (memory_type) {
    case 0: return MemoryKind::pageable;  // not a CUDA pointer: ordinary host memory
    case CU_MEMORYTYPE_HOST: return MemoryKind::pinned;
    case CU_MEMORYTYPE_DEVICE: return MemoryKind::device;
    case CU_MEMORYTYPE_ARRAY: return MemoryKind::array;
    case CU_MEMORYTYPE_UNIFIED: return MemoryKind::managed;
    default: return MemoryKind::unknown;
  }
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

  AttachResult attach(std::size_t buffer_count, std::size_t buffer_size, bool activity_records, bool marker_activity);
  void detach() noexcept;
  bool attached() const noexcept { return attached_; }
  void flush() noexcept {
    if (attached_) api().ActivityFlushAll(0);
  }
  /// Exit: the last flush, then callbacks are ignored; CUPTI itself is left as it is.
  void exit_flush() noexcept {
    if (!attached_) return;
    api().ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    closed_.store(true, std::memory_order_release);
    attached_ = false;
  }

 private:
  static void CUPTIAPI on_callback(void* self, CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* data) {
    auto* source = static_cast<CuptiSource*>(self);
    if (source->closed_.load(std::memory_order_acquire)) return;
    try {  // nothing may unwind into CUPTI or the CUDA call
      if (domain == CUPTI_CB_DOMAIN_NVTX) {
        source->handle_nvtx(cbid, static_cast<CUpti_NvtxData const*>(data));
      } else {
        source->handle_api(domain, cbid, static_cast<CUpti_CallbackData const*>(data));
      }
    } catch (...) {
    }
  }
  static void CUPTIAPI on_buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
    instance().take_buffer(buffer, size, max_records);
  }
  static void CUPTIAPI on_buffer_completed(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer,
                                           std::size_t /*size*/, std::size_t valid) {
    instance().complete_buffer(ctx, stream, buffer, valid);
  }

  void handle_api(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, CUpti_CallbackData const* data);
  void handle_nvtx(CUpti_CallbackId cbid, CUpti_NvtxData const* data);
  std::string message_of(nvtxEventAttributes_t const* attributes);
  std::string domain_name(nvtxDomainHandle_t domain);
  void take_buffer(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records);
  void complete_buffer(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer, std::size_t valid);
  void disable_all() noexcept;

  bool attached_{false};
  std::atomic<bool> copies_from_callbacks_{true};  // no MEMCPY records: copies judged at their call
  std::atomic<bool> closed_{false};  // set at exit: API callbacks are ignored from then on
  CUpti_SubscriberHandle subscriber_{};

  // Bounded pool, allocated once: when every buffer is in flight CUPTI drops records (counted).
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<std::uint8_t[]>> storage_;
  std::vector<std::uint8_t*> free_;
  std::size_t buffer_size_{0};

  // NVTX handles -> names, learned from nvtxDomainCreateA / nvtxDomainRegisterStringA callbacks.
  std::mutex nvtx_mu_;
  std::unordered_map<void const*, std::string> domains_;
  std::unordered_map<void const*, std::string> strings_;
};

AttachResult CuptiSource::attach(std::size_t buffer_count, std::size_t buffer_size, bool activity_records,
                                 bool marker_activity) {
  if (attached_) return {true, false, "attached"};
  if (closed_.load(std::memory_order_acquire)) return {false, false, "CUPTI not attached: the process is exiting"};
  std::string load_error;
  if (load_cupti(&load_error) == nullptr) return {false, false, load_error};
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

  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (storage_.empty()) {
      buffer_size_ = buffer_size;
      for (std::size_t i = 0; i < buffer_count; ++i) {
        storage_.emplace_back(new std::uint8_t[buffer_size]);  // operator new: aligned beyond CUPTI's 8 bytes
        free_.push_back(storage_.back().get());
      }
    }
  }

  auto fail = [this](std::string what, CUptiResult res) {
    disable_all();
    api().Unsubscribe(subscriber_);
    return AttachResult{false, false, "CUPTI unavailable: " + what + " failed (" + result_string(res) + ")"};
  };
  for (CallbackSpec const& s : runtime_callbacks()) {
    if ((r = api().EnableCallback(1, subscriber_, CUPTI_CB_DOMAIN_RUNTIME_API, s.cbid)) != CUPTI_SUCCESS)
      return fail(std::string("api().EnableCallback(") + s.name + ")", r);
  }
  for (CallbackSpec const& s : driver_callbacks()) {
    if ((r = api().EnableCallback(1, subscriber_, CUPTI_CB_DOMAIN_DRIVER_API, s.cbid)) != CUPTI_SUCCESS)
      return fail(std::string("api().EnableCallback(") + s.name + ")", r);
  }
  for (CUpti_CallbackId cbid : kNvtxCallbacks) {
    if (!env_flag("PBM_CUPTI_NVTX_CALLBACKS", true)) break;  // experiment knob: range attribution off
    if ((r = api().EnableCallback(1, subscriber_, CUPTI_CB_DOMAIN_NVTX, cbid)) != CUPTI_SUCCESS)
      return fail("api().EnableCallback(NVTX)", r);
  }
#ifndef NVTX_DISABLE
  {
    // pbm's own domain may have been created before we attached; its handle is ours to look up.
    nvtxDomainHandle_t pbm_domain = nvtx3::v1::domain::get<pbm::nvtx::domain>();
    std::lock_guard<std::mutex> lock(nvtx_mu_);
    if (pbm_domain != nullptr) domains_[pbm_domain] = pbm::nvtx::domain::name;
  }
#endif
  if ((r = api().ActivityRegisterCallbacks(&CuptiSource::on_buffer_requested, &CuptiSource::on_buffer_completed)) !=
      CUPTI_SUCCESS)
    return fail("cuptiActivityRegisterCallbacks", r);
  bool memcpy_records = false;
  for (CUpti_ActivityKind kind : kActivityKinds) {
    if (!activity_kind_wanted(kind, activity_records, marker_activity)) continue;
    if ((r = api().ActivityEnable(kind)) != CUPTI_SUCCESS) return fail("cuptiActivityEnable", r);
    memcpy_records = memcpy_records || kind == CUPTI_ACTIVITY_KIND_MEMCPY;
  }
  copies_from_callbacks_.store(!memcpy_records, std::memory_order_release);
  attached_ = true;
  return {true, false, "attached"};
}

void CuptiSource::disable_all() noexcept {
  for (CUpti_ActivityKind kind : kActivityKinds) api().ActivityDisable(kind);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_RUNTIME_API);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_DRIVER_API);
  api().EnableDomain(0, subscriber_, CUPTI_CB_DOMAIN_NVTX);
}

void CuptiSource::detach() noexcept {
  if (!attached_) return;
  api().ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  disable_all();
  api().Unsubscribe(subscriber_);  // frees the one subscriber slot: torch.profiler can take it
  // No cuptiFinalize: with NVTX_INJECTION64_PATH at libcupti, NVTX calls made afterwards (at exit,
  // or by torch.profiler) jumped to a null pointer inside CUPTI: seen on an H100 as exit status 139
  // of every program under pbm-guard. libcupti stays loaded (never dlclose'd), so it needs none.
  attached_ = false;
}

void CuptiSource::handle_api(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, CUpti_CallbackData const* data) {
  CallbackSpec const* spec = find_callback(domain, cbid);
  if (spec == nullptr || data == nullptr) return;
  ApiCall call;
  call.runtime = domain == CUPTI_CB_DOMAIN_RUNTIME_API;
  call.correlation = data->correlationId;
  call.name = spec->name;
  call.cls = spec->cls;
  call.sync_api = spec->sync_api;
  if (data->callbackSite == CUPTI_API_EXIT) {
    engine().api_exit(call);
    return;
  }
  if (call.runtime && (cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020 ||
                       cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000)) {
    // Same layout for both; device-to-device copies do not block the host.
    auto const* p = static_cast<cudaMemcpy_v3020_params const*>(data->functionParams);
    if (p != nullptr && p->kind == cudaMemcpyDeviceToDevice) call.cls = ApiCall::Class::memcpy_async;
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
  bool const top_level = engine().api_enter(call);
  if (!top_level || call.cls == ApiCall::Class::sync || !copies_from_callbacks_.load(std::memory_order_acquire))
    return;
  // No MEMCPY records: the copy is judged now, from the call's parameters, in the caller's scope.
  MemcpyEvent ev = decode_copy_call(domain, cbid, data->functionParams, &memory_kind_of).value_or(MemcpyEvent{});
  ev.device = 0;
  if (call.runtime) {
    ev.runtime_correlation = call.correlation;
  } else {
    ev.correlation = call.correlation;
  }
  engine().on_memcpy(std::move(ev), /*at_call_site=*/true);
}

/// Per-thread cache of NVTX handle -> name, in front of the shared maps: every range push and
/// pop resolves a domain and a registered string, and taking nvtx_mu_ for each cost count mode a
/// measurable share of a launch-bound loop. A handle's name never changes while it lives; a
/// domain destroyed (nvtxDomainDestroy) bumps the generation and every thread's cache starts over.
struct NameCache {
  static constexpr std::size_t kSize = 32;  // direct-mapped
  struct Entry {
    void const* key{nullptr};
    std::string name;
  };
  std::uint64_t generation{0};
  Entry entries[kSize];
  Entry& slot(void const* key) noexcept {
    return entries[(reinterpret_cast<std::uintptr_t>(key) >> 4) % kSize];
  }
};
std::atomic<std::uint64_t> g_name_generation{1};

NameCache& name_cache() noexcept {
  thread_local NameCache cache;
  std::uint64_t const now = g_name_generation.load(std::memory_order_acquire);
  if (cache.generation != now) {
    for (NameCache::Entry& e : cache.entries) e.key = nullptr;
    cache.generation = now;
  }
  return cache;
}

std::string CuptiSource::domain_name(nvtxDomainHandle_t domain) {
  if (domain == nullptr) return {};
  NameCache::Entry& hit = name_cache().slot(domain);
  if (hit.key == domain) return hit.name;
  std::lock_guard<std::mutex> lock(nvtx_mu_);
  auto it = domains_.find(domain);
  if (it == domains_.end()) return "(unknown domain)";  // not cached: it may be learned later
  hit.key = domain;
  hit.name = it->second;
  return hit.name;
}

std::string CuptiSource::message_of(nvtxEventAttributes_t const* attributes) {
  if (attributes == nullptr) return {};
  switch (attributes->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return attributes->message.ascii != nullptr ? attributes->message.ascii : "";
    case NVTX_MESSAGE_TYPE_REGISTERED: {
      void const* const key = attributes->message.registered;
      NameCache::Entry& hit = name_cache().slot(key);
      if (hit.key == key && key != nullptr) return hit.name;
      std::lock_guard<std::mutex> lock(nvtx_mu_);
      auto it = strings_.find(key);
      // Registered before pbm attached: the name is unknown here (MARKER records still have it).
      if (it == strings_.end()) return "(registered string)";
      hit.key = key;
      hit.name = it->second;
      return hit.name;
    }
    default:
      return "(non-ASCII message)";
  }
}

void CuptiSource::handle_nvtx(CUpti_CallbackId cbid, CUpti_NvtxData const* data) {
  if (data == nullptr || data->functionParams == nullptr) return;
  void const* params = data->functionParams;
  switch (cbid) {
    case CUPTI_CBID_NVTX_nvtxRangePushA: {
      char const* message = static_cast<nvtxRangePushA_params const*>(params)->message;
      nvtx_push("", message != nullptr ? message : "");
      break;
    }
    case CUPTI_CBID_NVTX_nvtxRangePushEx:
      nvtx_push("", message_of(static_cast<nvtxRangePushEx_params const*>(params)->eventAttrib));
      break;
    case CUPTI_CBID_NVTX_nvtxRangePop:
      nvtx_pop("");
      break;
    case CUPTI_CBID_NVTX_nvtxDomainRangePushEx: {
      auto const* p = static_cast<nvtxDomainRangePushEx_params const*>(params);
      nvtx_push(domain_name(p->domain), message_of(p->core.eventAttrib));
      break;
    }
    case CUPTI_CBID_NVTX_nvtxDomainRangePop:
      nvtx_pop(domain_name(static_cast<nvtxDomainRangePop_params const*>(params)->domain));
      break;
    case CUPTI_CBID_NVTX_nvtxDomainCreateA: {
      auto const* p = static_cast<nvtxDomainCreateA_params const*>(params);
      auto const* handle = static_cast<nvtxDomainHandle_t const*>(data->functionReturnValue);
      if (handle != nullptr && *handle != nullptr && p->name != nullptr) {
        std::lock_guard<std::mutex> lock(nvtx_mu_);
        domains_[*handle] = p->name;
      }
      break;
    }
    case CUPTI_CBID_NVTX_nvtxDomainRegisterStringA: {
      auto const* p = static_cast<nvtxDomainRegisterStringA_params const*>(params);
      auto const* handle = static_cast<nvtxStringHandle_t const*>(data->functionReturnValue);
      if (handle != nullptr && *handle != nullptr && p->string != nullptr) {
        std::lock_guard<std::mutex> lock(nvtx_mu_);
        strings_[*handle] = p->string;
      }
      break;
    }
    case CUPTI_CBID_NVTX_nvtxDomainDestroy: {
      auto const* p = static_cast<nvtxDomainDestroy_params const*>(params);
      std::lock_guard<std::mutex> lock(nvtx_mu_);
      domains_.erase(p->domain);
      g_name_generation.fetch_add(1, std::memory_order_acq_rel);  // a handle may be reused
      break;
    }
    default:
      break;
  }
}

void CuptiSource::take_buffer(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  *max_records = 0;  // as many as fit
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (free_.empty()) {
    *buffer = nullptr;  // CUPTI drops records and counts them
    *size = 0;
    engine().counters().health().buffer_pool_exhausted.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  *buffer = free_.back();
  free_.pop_back();
  *size = buffer_size_;
}

void CuptiSource::complete_buffer(CUcontext ctx, std::uint32_t stream, std::uint8_t* buffer, std::size_t valid) {
  Health& health = engine().counters().health();
  if (buffer != nullptr && valid > 0) {
    CUpti_Activity* record = nullptr;
    while (api().ActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
      try {
        ingest_record(record);
      } catch (...) {  // out of memory: lose this record, never unwind into CUPTI
      }
    }
  }
  std::size_t dropped = 0;
  if (api().ActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped != 0) {
    health.dropped_records.fetch_add(dropped, std::memory_order_relaxed);
  }
  health.buffers_processed.fetch_add(1, std::memory_order_relaxed);
  if (buffer != nullptr) {
    std::lock_guard<std::mutex> lock(pool_mu_);
    free_.push_back(buffer);
  }
}

}  // namespace

bool source_built() noexcept { return true; }

AttachResult source_attach(std::size_t buffer_count, std::size_t buffer_size, bool activity_records,
                           bool marker_activity) noexcept {
  try {
    return CuptiSource::instance().attach(buffer_count, buffer_size, activity_records, marker_activity);
  } catch (std::exception const& e) {
    return {false, false, std::string("CUPTI unavailable: ") + e.what()};
  }
}

void source_detach() noexcept { CuptiSource::instance().detach(); }
void source_flush() noexcept { CuptiSource::instance().flush(); }
void source_exit() noexcept { CuptiSource::instance().exit_flush(); }

std::string cupti_library_path() {
  CuptiApi const* loaded = load_cupti(nullptr);
  return loaded != nullptr ? loaded->path : std::string();
}

void forget_library_for_testing() noexcept {
  if (!CuptiSource::instance().attached()) forget_cupti_for_testing();
}

}  // namespace pbm::telemetry::detail
