// A stand-in libcupti for CPU tests of the buffer path (cupti_buffer_test.cpp), loaded through
// PBM_CUPTI_PATH exactly as the real one is: every function pbm resolves, succeeding, plus two
// hooks with which the test plays CUPTI's part: ask pbm for a buffer, and hand one back full of
// records with a count of records dropped. Records are walked by their CUDA 13.0 struct sizes.
#include <cupti.h>

#include <cstddef>
#include <cstdint>

// Linked against the empty libcuda.so.1 beside it (fake_libcuda.cpp) with --no-as-needed, so that
// loading this library loads "the driver" too. It uses none of that library's symbols: where a
// real driver is installed, the process has the real libcuda.so.1 loaded already and that one
// serves the dependency (a symbol only the empty one defines failed to resolve on the GPU machine).

namespace {

CUpti_BuffersCallbackRequestFunc g_request = nullptr;
CUpti_BuffersCallbackCompleteFunc g_complete = nullptr;
std::size_t g_dropped = 0;
int g_subscriber_storage = 0;

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
CUptiResult CUPTIAPI cuptiSubscribe(CUpti_SubscriberHandle* subscriber, CUpti_CallbackFunc, void*) {
  *subscriber = reinterpret_cast<CUpti_SubscriberHandle>(&g_subscriber_storage);
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiUnsubscribe(CUpti_SubscriberHandle) { return CUPTI_SUCCESS; }
CUptiResult CUPTIAPI cuptiEnableCallback(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain, CUpti_CallbackId) {
  return CUPTI_SUCCESS;
}
CUptiResult CUPTIAPI cuptiEnableDomain(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain) { return CUPTI_SUCCESS; }
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

}  // extern "C"
