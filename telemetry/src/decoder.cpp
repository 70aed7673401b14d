// CUPTI activity records -> event model. Field names follow cupti_activity.h of CUDA 13.0.
#include "decoder.hpp"

#include <cupti.h>  // the runtime/driver parameter structs (generated_*_meta.h)

#include <cstring>

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

Direction direction_between(MemoryKind src, MemoryKind dst) noexcept {
  auto host = [](MemoryKind k) { return k == MemoryKind::pageable || k == MemoryKind::pinned; };
  auto device = [](MemoryKind k) { return k == MemoryKind::device || k == MemoryKind::managed; };
  if (host(src) && device(dst)) return Direction::HtoD;
  if (device(src) && host(dst)) return Direction::DtoH;
  if (device(src) && device(dst)) return Direction::DtoD;
  if (host(src) && host(dst)) return Direction::HtoH;
  return Direction::unknown;
}

namespace {

/// cudaMemcpyKind -> direction; cudaMemcpyDefault (and anything else) -> from the memory kinds.
/// The kind the caller passed, as the integer it is: a C caller (or ctypes) may pass any value, and
/// loading one outside the enumerators as a cudaMemcpyKind is undefined behaviour.
int kind_value(cudaMemcpyKind const& field) noexcept {
  int v = 0;
  std::memcpy(&v, &field, sizeof v);
  return v;
}

Direction runtime_direction(int kind, MemoryKind src, MemoryKind dst) noexcept {
  switch (kind) {
    case cudaMemcpyHostToHost: return Direction::HtoH;
    case cudaMemcpyHostToDevice: return Direction::HtoD;
    case cudaMemcpyDeviceToHost: return Direction::DtoH;
    case cudaMemcpyDeviceToDevice: return Direction::DtoD;
    default: return direction_between(src, dst);
  }
}

void const* as_ptr(CUdeviceptr p) noexcept { return reinterpret_cast<void const*>(static_cast<std::uintptr_t>(p)); }

MemcpyEvent copy_of(MemoryKind src, MemoryKind dst, Direction direction, std::uint64_t bytes, bool async) {
  MemcpyEvent ev;
  ev.src_kind = src;
  ev.dst_kind = dst;
  ev.direction = direction;
  ev.bytes = bytes;
  ev.is_async = async;
  return ev;
}

/// A runtime copy between two pointers: direction from its cudaMemcpyKind, else from the kinds.
template <class P>
MemcpyEvent runtime_copy(P const& p, std::uint64_t bytes, MemoryKindOf kind_of, bool async) {
  MemoryKind const src = kind_of(p.src), dst = kind_of(p.dst);
  return copy_of(src, dst, runtime_direction(kind_value(p.kind), src, dst), bytes, async);
}

}  // namespace

std::optional<MemcpyEvent> decode_copy_call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params,
                                            MemoryKindOf kind_of) {
  if (params == nullptr || kind_of == nullptr) return std::nullopt;
  MemoryKind const dev = MemoryKind::device;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000: {  // same layout
        auto const& p = *static_cast<cudaMemcpy_v3020_params const*>(params);
        return runtime_copy(p, p.count, kind_of, /*async=*/kind_value(p.kind) == cudaMemcpyDeviceToDevice);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000: {
        auto const& p = *static_cast<cudaMemcpyAsync_v3020_params const*>(params);
        return runtime_copy(p, p.count, kind_of, true);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2D_ptds_v7000: {
        auto const& p = *static_cast<cudaMemcpy2D_v3020_params const*>(params);
        return runtime_copy(p, static_cast<std::uint64_t>(p.width) * p.height, kind_of, false);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_ptsz_v7000: {
        auto const& p = *static_cast<cudaMemcpy2DAsync_v3020_params const*>(params);
        return runtime_copy(p, static_cast<std::uint64_t>(p.width) * p.height, kind_of, true);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbol_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbol_ptds_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_ptsz_v7000: {  // the prefix is shared
        auto const& p = *static_cast<cudaMemcpyToSymbol_v3020_params const*>(params);
        MemoryKind const src = kind_of(p.src);
        bool const async = cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_v3020 ||
                           cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_ptsz_v7000;
        return copy_of(src, dev, runtime_direction(kind_value(p.kind), src, dev), p.count, async);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbol_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbol_ptds_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_ptsz_v7000: {
        auto const& p = *static_cast<cudaMemcpyFromSymbol_v3020_params const*>(params);
        MemoryKind const dst = kind_of(p.dst);
        bool const async = cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_v3020 ||
                           cbid == CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_ptsz_v7000;
        return copy_of(dev, dst, runtime_direction(kind_value(p.kind), dev, dst), p.count, async);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeer_v4000: {
        auto const& p = *static_cast<cudaMemcpyPeer_v4000_params const*>(params);
        return copy_of(dev, dev, p.srcDevice == p.dstDevice ? Direction::DtoD : Direction::PtoP, p.count, false);
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeerAsync_v4000: {
        auto const& p = *static_cast<cudaMemcpyPeerAsync_v4000_params const*>(params);
        return copy_of(dev, dev, p.srcDevice == p.dstDevice ? Direction::DtoD : Direction::PtoP, p.count, true);
      }
      default:
        return std::nullopt;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpy:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpy_ptds:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz: {  // unified addressing: kinds from the pointers
        auto const& p = *static_cast<cuMemcpy_params const*>(params);
        MemoryKind const src = kind_of(as_ptr(p.src)), dst = kind_of(as_ptr(p.dst));
        bool const async = cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync || cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz;
        return copy_of(src, dst, direction_between(src, dst), p.ByteCount, async);
      }
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoD_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoD_v2_ptds:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz: {
        auto const& p = *static_cast<cuMemcpyHtoD_v2_params const*>(params);
        bool const async = cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2 ||
                           cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz;
        return copy_of(kind_of(p.srcHost), dev, Direction::HtoD, p.ByteCount, async);
      }
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2_ptds:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz: {
        auto const& p = *static_cast<cuMemcpyDtoH_v2_params const*>(params);
        bool const async = cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2 ||
                           cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz;
        return copy_of(dev, kind_of(p.dstHost), Direction::DtoH, p.ByteCount, async);
      }
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2_ptds:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2_ptsz: {
        auto const& p = *static_cast<cuMemcpyDtoD_v2_params const*>(params);
        bool const async = cbid != CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2 && cbid != CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2_ptds;
        return copy_of(dev, dev, Direction::DtoD, p.ByteCount, async);
      }
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeer:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeer_ptds:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeerAsync:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeerAsync_ptsz: {
        auto const& p = *static_cast<cuMemcpyPeer_params const*>(params);
        bool const async = cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeerAsync || cbid == CUPTI_DRIVER_TRACE_CBID_cuMemcpyPeerAsync_ptsz;
        return copy_of(dev, dev, p.srcContext == p.dstContext ? Direction::DtoD : Direction::PtoP, p.ByteCount, async);
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<MemoryKind> decode_memset_target(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params,
                                               MemoryKindOf kind_of) {
  if (params == nullptr || kind_of == nullptr) return std::nullopt;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset_ptds_v7000:  // same layout
        return kind_of(static_cast<cudaMemset_v3020_params const*>(params)->devPtr);
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_ptds_v7000:
        return kind_of(static_cast<cudaMemset2D_v3020_params const*>(params)->devPtr);
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_ptds_v7000:
        return kind_of(static_cast<cudaMemset3D_v3020_params const*>(params)->pitchedDevPtr.ptr);
      default:
        return std::nullopt;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {  // every one of these starts with CUdeviceptr dstDevice
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD8_v2_params const*>(params)->dstDevice));
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD16_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD16_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD16_v2_params const*>(params)->dstDevice));
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD32_v2_params const*>(params)->dstDevice));
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD2D8_v2_params const*>(params)->dstDevice));
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD2D16_v2_params const*>(params)->dstDevice));
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32_v2_ptds:
        return kind_of(as_ptr(static_cast<cuMemsetD2D32_v2_params const*>(params)->dstDevice));
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

bool frees_nothing(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params) noexcept {
  if (params == nullptr) return false;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020:
        return static_cast<cudaFree_v3020_params const*>(params)->devPtr == nullptr;
      case CUPTI_RUNTIME_TRACE_CBID_cudaFreeHost_v3020:
        return static_cast<cudaFreeHost_v3020_params const*>(params)->ptr == nullptr;
      case CUPTI_RUNTIME_TRACE_CBID_cudaFreeArray_v3020:
        return static_cast<cudaFreeArray_v3020_params const*>(params)->array == nullptr;
      case CUPTI_RUNTIME_TRACE_CBID_cudaFreeMipmappedArray_v5000:
        return static_cast<cudaFreeMipmappedArray_v5000_params const*>(params)->mipmappedArray == nullptr;
      default:
        return false;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuMemFree:
        return static_cast<cuMemFree_params const*>(params)->dptr == 0;
      case CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2:
        return static_cast<cuMemFree_v2_params const*>(params)->dptr == 0;
      case CUPTI_DRIVER_TRACE_CBID_cuMemFreeHost:
        return static_cast<cuMemFreeHost_params const*>(params)->p == nullptr;
      case CUPTI_DRIVER_TRACE_CBID_cuArrayDestroy:
        return static_cast<cuArrayDestroy_params const*>(params)->hArray == nullptr;
      case CUPTI_DRIVER_TRACE_CBID_cuMipmappedArrayDestroy:
        return static_cast<cuMipmappedArrayDestroy_params const*>(params)->hMipmappedArray == nullptr;
      default:
        return false;
    }
  }
  return false;
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
