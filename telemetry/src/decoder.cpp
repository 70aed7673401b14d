// CUPTI activity records -> event model. Field names follow cupti_activity.h of CUDA 13.0.
#include "decoder.hpp"

namespace pbm::telemetry::detail {

Direction decode_direction(std::uint8_t copy_kind) noexcept {
  switch (copy_kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOA: return Direction::HtoD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOH: return Direction::DtoH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOA:
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOD:
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOA: return Direction::DtoD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return Direction::HtoH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return Direction::PtoP;
    default: return Direction::unknown;
  }
}

MemoryKind decode_memory(std::uint32_t memory_kind) noexcept {
  switch (memory_kind) {
    case CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE: return MemoryKind::pageable;
    case CUPTI_ACTIVITY_MEMORY_KIND_PINNED: return MemoryKind::pinned;
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE:
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC: return MemoryKind::device;
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED:
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED_STATIC: return MemoryKind::managed;
    case CUPTI_ACTIVITY_MEMORY_KIND_ARRAY: return MemoryKind::array;
    default: return MemoryKind::unknown;
  }
}

SyncApi decode_sync_type(CUpti_ActivitySynchronizationType type) noexcept {
  switch (type) {
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE: return SyncApi::event_synchronize;
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT: return SyncApi::stream_wait_event;
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE: return SyncApi::stream_synchronize;
    // cudaDeviceSynchronize is recorded as a context synchronisation.
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE: return SyncApi::context_synchronize;
    default: return SyncApi::unknown;
  }
}

MemcpyEvent decode_memcpy(CUpti_ActivityMemcpy6 const& r) {
  MemcpyEvent ev;
  ev.direction = decode_direction(r.copyKind);
  ev.src_kind = decode_memory(r.srcKind);
  ev.dst_kind = decode_memory(r.dstKind);
  ev.bytes = r.bytes;
  ev.device = r.deviceId;
  ev.context = r.contextId;
  ev.stream = r.streamId;
  ev.correlation = r.correlationId;
  ev.runtime_correlation = r.runtimeCorrelationId;
  ev.start_ns = r.start;
  ev.end_ns = r.end;
  ev.is_async = (r.flags & CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC) != 0;
  return ev;
}

MemsetEvent decode_memset(CUpti_ActivityMemset4 const& r) {
  MemsetEvent ev;
  ev.memory = decode_memory(r.memoryKind);
  ev.bytes = r.bytes;
  ev.value = r.value;
  ev.device = r.deviceId;
  ev.context = r.contextId;
  ev.stream = r.streamId;
  ev.correlation = r.correlationId;
  ev.start_ns = r.start;
  ev.end_ns = r.end;
  ev.is_async = (r.flags & CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC) != 0;
  return ev;
}

SyncEvent decode_sync(CUpti_ActivitySynchronization2 const& r) {
  SyncEvent ev;
  ev.api = decode_sync_type(r.type);
  ev.context = r.contextId;
  ev.stream = r.streamId == CUPTI_SYNCHRONIZATION_INVALID_VALUE ? 0 : r.streamId;
  ev.correlation = r.correlationId;
  ev.start_ns = r.start;
  ev.end_ns = r.end;
  return ev;
}

MarkerEvent decode_marker(CUpti_ActivityMarker2 const& r) {
  MarkerEvent ev;
  if (r.flags & CUPTI_ACTIVITY_FLAG_MARKER_START) {
    ev.kind = MarkerEvent::Kind::start;
  } else if (r.flags & CUPTI_ACTIVITY_FLAG_MARKER_END) {
    ev.kind = MarkerEvent::Kind::end;
  } else if (r.flags & CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS) {
    ev.kind = MarkerEvent::Kind::instant;
  }
  ev.id = r.id;
  ev.timestamp = r.timestamp;
  if (r.objectKind == CUPTI_ACTIVITY_OBJECT_THREAD || r.objectKind == CUPTI_ACTIVITY_OBJECT_PROCESS) {
    ev.thread = r.objectId.pt.threadId;
    ev.process = r.objectId.pt.processId;
  }
  if (r.name != nullptr) ev.name = r.name;
  if (r.domain != nullptr) ev.domain = r.domain;
  return ev;
}

bool ingest_record(CUpti_Activity const* record, Engine& sink) {
  if (record == nullptr) return false;
  switch (record->kind) {
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      sink.on_memcpy(decode_memcpy(*reinterpret_cast<CUpti_ActivityMemcpy6 const*>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_MEMSET:
      sink.on_memset(decode_memset(*reinterpret_cast<CUpti_ActivityMemset4 const*>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      sink.on_sync(decode_sync(*reinterpret_cast<CUpti_ActivitySynchronization2 const*>(record)));
      return true;
    case CUPTI_ACTIVITY_KIND_MARKER:
      sink.on_marker(decode_marker(*reinterpret_cast<CUpti_ActivityMarker2 const*>(record)));
      return true;
    default:
      return false;
  }
}

}  // namespace pbm::telemetry::detail
