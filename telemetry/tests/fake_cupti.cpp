// A stand-in libcupti for CPU tests (cupti_buffer_test.cpp, lifecycle_test.cpp), loaded through
// PBM_CUPTI_PATH exactly as the real one is: every function pbm resolves, succeeding, plus hooks
// with which a test plays CUPTI's part: ask pbm for a buffer, hand one back full of records with a
// count of records dropped, and deliver an API or NVTX callback to the subscriber as CUPTI would
// (only while subscribed, and only for callbacks enabled and not disabled since). Records are
// walked by their CUDA 13.0 struct sizes.
#include <cupti.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <utility>

// Linked against the empty libcuda.so.1 beside it (fake_libcuda.cpp) with --no-as-needed, so that
// loading this library loads "the driver" too. It uses none of that library's symbols: where a
// real driver is installed, the process has the real libcuda.so.1 loaded already and that one
// serves the dependency (a symbol only the empty one defines failed to resolve on the GPU machine).

namespace {

CUpti_BuffersCallbackRequestFunc g_request = nullptr;
CUpti_BuffersCallbackCompleteFunc g_complete = nullptr;
std::size_t g_dropped = 0;
int g_subscriber_storage = 0;

// The subscriber, as CUPTI keeps it: one at a time; callbacks enabled per (domain, id).
std::mutex g_mu;
bool g_subscribed = false;
CUpti_CallbackFunc g_callback = nullptr;
void* g_userdata = nullptr;
std::set<std::pair<int, CUpti_CallbackId>> g_enabled;
std::atomic<std::uint32_t> g_correlation{1};

/// The subscriber's function and data if (domain, cbid) is enabled now; else {nullptr, nullptr}.
std::pair<CUpti_CallbackFunc, void*> target(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_subscribed || g_enabled.count({domain, cbid}) == 0) return {nullptr, nullptr};
  return {g_callback, g_userdata};
}

std::size_t record_size(CUpti_ActivityKind kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_KIND_MEMCPY: return sizeof(CUpti_ActivityMemcpy6);
    case CUPTI_ACTIVITY_KIND_MEMSET: return sizeof(CUpti_ActivityMemset4);
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION: return sizeof(CUpti_ActivitySynchronization2);
    case CUPTI_ACTIVITY_KIND_MARKER: return sizeof(CUpti_ActivityMarker2);
    default: return 0;
  }
}

}  // namespace

extern "C" {

CUptiResult CUPTIAPI cuptiGetVersion(uint32_t* version) {
  *version = CUPTI_API_VERSION;
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiGetResultString(CUptiResult, const char** str) {
  *str = "fake CUPTI result";
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiSetThreadIdType(CUpti_ActivityThreadIdType) { return CUPTI_SUCCESS; }
CUptiResult CUPTIAPI cuptiSubscribe(CUpti_SubscriberHandle* subscriber, CUpti_CallbackFunc callback, void* userdata) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_subscribed) return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  g_subscribed = true;
  g_callback = callback;
  g_userdata = userdata;
  g_enabled.clear();
  *subscriber = reinterpret_cast<CUpti_SubscriberHandle>(&g_subscriber_storage);
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiUnsubscribe(CUpti_SubscriberHandle) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_subscribed = false;
  g_callback = nullptr;
  g_userdata = nullptr;
  g_enabled.clear();
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle, CUpti_CallbackDomain domain,
                                         CUpti_CallbackId cbid) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (enable != 0) {
    g_enabled.insert({domain, cbid});
  } else {
    g_enabled.erase({domain, cbid});
  }
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiEnableDomain(uint32_t enable, CUpti_SubscriberHandle, CUpti_CallbackDomain domain) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (enable == 0) {
    for (auto it = g_enabled.begin(); it != g_enabled.end();) it = it->first == domain ? g_enabled.erase(it) : std::next(it);
  }
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc request,
                                                    CUpti_BuffersCallbackCompleteFunc complete) {
  g_request = request;
  g_complete = complete;
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiActivityEnable(CUpti_ActivityKind) { return CUPTI_SUCCESS; }
CUptiResult CUPTIAPI cuptiActivityDisable(CUpti_ActivityKind) { return CUPTI_SUCCESS; }
CUptiResult CUPTIAPI cuptiActivityFlushAll(uint32_t) { return CUPTI_SUCCESS; }
CUptiResult CUPTIAPI cuptiActivityGetNextRecord(uint8_t* buffer, size_t valid, CUpti_Activity** record) {
  if (buffer == nullptr || record == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  std::size_t offset = 0;
  if (*record != nullptr) {
    offset = static_cast<std::size_t>(reinterpret_cast<uint8_t*>(*record) - buffer) + record_size((*record)->kind);
  }
  if (offset + sizeof(CUpti_Activity) > valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  auto* next = reinterpret_cast<CUpti_Activity*>(buffer + offset);
  std::size_t const size = record_size(next->kind);
  if (size == 0 || offset + size > valid) return CUPTI_ERROR_INVALID_KIND;  // incomplete or unknown
  *record = next;
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t, size_t* dropped) {
  if (dropped == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  *dropped = g_dropped;  // like CUPTI: reading the count resets it
  g_dropped = 0;
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiGetStreamIdEx(CUcontext, CUstream, uint8_t, uint32_t* stream_id) {
  *stream_id = 0;
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiFinalize(void) { return CUPTI_SUCCESS; }

// --- the test's side ---------------------------------------------------------------------------
/// CUPTI asks the client for a buffer; returns what pbm gave (nullptr: declined, records dropped).
__attribute__((visibility("default"))) uint8_t* pbm_fake_cupti_request(size_t* size) {
  uint8_t* buffer = nullptr;
  size_t max_records = 1;
  *size = 0;
  if (g_request != nullptr) g_request(&buffer, size, &max_records);
  return buffer;
}
/// CUPTI hands a buffer back with `valid` bytes of records, having dropped `dropped` records.
__attribute__((visibility("default"))) void pbm_fake_cupti_complete(uint8_t* buffer, size_t size, size_t valid,
                                                                    size_t dropped) {
  g_dropped += dropped;
  if (g_complete != nullptr) g_complete(nullptr, 0, buffer, size, valid);
}

/// CUPTI calls the subscriber at an API's entry (`enter` != 0) or exit, on the calling thread.
/// `correlation` 0 takes a fresh id; returns the id used (pass it again for the matching exit).
/// Returns 0 and calls nothing when the callback is not enabled for a subscriber now.
__attribute__((visibility("default"))) uint32_t pbm_fake_cupti_api_returning(int domain, uint32_t cbid, int enter,
                                                                             uint32_t correlation, void const* params,
                                                                             void const* returned);
__attribute__((visibility("default"))) uint32_t pbm_fake_cupti_api(int domain, uint32_t cbid, int enter,
                                                                   uint32_t correlation, void const* params) {
  return pbm_fake_cupti_api_returning(domain, cbid, enter, correlation, params, nullptr);
}
/// pbm_fake_cupti_api with the call's return value (CUpti_CallbackData::functionReturnValue: a
/// cudaError_t for the runtime domain, a CUresult for the driver's), as CUPTI gives it at exit.
__attribute__((visibility("default"))) uint32_t pbm_fake_cupti_api_returning(int domain, uint32_t cbid, int enter,
                                                                             uint32_t correlation, void const* params,
                                                                             void const* returned) {
  auto const [callback, userdata] = target(static_cast<CUpti_CallbackDomain>(domain), cbid);
  if (callback == nullptr) return 0;
  if (correlation == 0) correlation = g_correlation.fetch_add(1);
  CUpti_CallbackData data{};
  data.callbackSite = enter != 0 ? CUPTI_API_ENTER : CUPTI_API_EXIT;
  data.functionName = "fake";
  data.functionParams = params;
  data.functionReturnValue = const_cast<void*>(returned);
  data.correlationId = correlation;
  callback(userdata, static_cast<CUpti_CallbackDomain>(domain), cbid, &data);
  return correlation;
}
/// An NVTX callback (nvtxRangePushA, nvtxRangePop, ...) with its parameter struct.
__attribute__((visibility("default"))) int pbm_fake_cupti_nvtx_returning(uint32_t cbid, void const* params,
                                                                         void const* returned);
__attribute__((visibility("default"))) int pbm_fake_cupti_nvtx(uint32_t cbid, void const* params) {
  return pbm_fake_cupti_nvtx_returning(cbid, params, nullptr);
}
/// pbm_fake_cupti_nvtx with the function's return value (CUpti_NvtxData::functionReturnValue: the
/// handle nvtxDomainCreateA or nvtxDomainRegisterStringA returned). Returns 1 when delivered.
__attribute__((visibility("default"))) int pbm_fake_cupti_nvtx_returning(uint32_t cbid, void const* params,
                                                                         void const* returned) {
  auto const [callback, userdata] = target(CUPTI_CB_DOMAIN_NVTX, cbid);
  if (callback == nullptr) return 0;
  CUpti_NvtxData data{};
  data.functionName = "fake";
  data.functionParams = params;
  data.functionReturnValue = returned;
  callback(userdata, CUPTI_CB_DOMAIN_NVTX, cbid, &data);
  return 1;
}

}  // extern "C"
