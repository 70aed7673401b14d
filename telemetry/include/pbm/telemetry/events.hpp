// pbm telemetry event model: what the CUPTI decoder produces and the policy consumes.
//
// Plain structs, no CUPTI types: everything after the decoder is pure C++ and is tested on a CPU
// with synthetic records. Thread-safety: values only; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::telemetry {

/// Copy direction as the hardware saw it (array copies fold into the nearest host/device kind).
enum class Direction : std::uint8_t { HtoD, DtoH, DtoD, HtoH, PtoP, unknown };
inline constexpr std::size_t kDirectionCount = 6;

/// Kind of memory at one end of a copy or memset.
enum class MemoryKind : std::uint8_t { pageable, pinned, device, managed, array, unknown };
inline constexpr std::size_t kMemoryKindCount = 6;

/// The API (or implicit operation) that made the host wait, or could have.
enum class SyncApi : std::uint8_t {
  stream_synchronize,
  event_synchronize,
  device_synchronize,
  context_synchronize,
  stream_wait_event,  ///< device-side wait: counted, never a host sync
  stream_query,       ///< non-blocking poll: counted, never a host sync
  event_query,        ///< non-blocking poll: counted, never a host sync
  legacy_stream,      ///< device-side: a kernel, copy, memset or graph launch issued to the legacy default stream while a blocking stream exists (opt-in rule); counted, never a host sync
  graph_host_node,    ///< device-side: a host node of a CUDA graph replay, the stream waits for a host function (counted at cudaGraphLaunch); never a host sync
  memcpy_sync,        ///< a synchronous cudaMemcpy* / cuMemcpy* (blocks the host; no CUPTI sync record)
  // Implicit synchronisations (telemetry/README.md, "APIs watched", says why each one blocks).
  memcpy_blocking,    ///< an "async" copy the host waited for: pageable host memory on one side, or host to host
  free,               ///< cudaFree / cuMemFree: waits for the device
  free_host,          ///< cudaFreeHost / cuMemFreeHost
  host_alloc,         ///< cudaMallocHost / cudaHostAlloc / cuMemAllocHost / cuMemHostAlloc (page-locked allocation)
  host_register,      ///< cudaHostRegister / cuMemHostRegister
  host_unregister,    ///< cudaHostUnregister / cuMemHostUnregister
  malloc,             ///< cudaMalloc / cuMemAlloc: serialises the device (programming guide, implicit synchronisation)
  free_array,         ///< cudaFreeArray / cudaFreeMipmappedArray / cuArrayDestroy / cuMipmappedArrayDestroy
  set_limit,          ///< cudaDeviceSetLimit / cuCtxSetLimit
  set_cache_config,   ///< cudaDeviceSetCacheConfig / cuCtxSetCacheConfig: an L1/shared configuration switch
  memset_sync,        ///< a non-Async cudaMemset* / cuMemsetD* on pinned host or managed memory (fully synchronous)
  unknown,
};
inline constexpr std::size_t kSyncApiCount = 22;

/// One NVTX range open on a thread (innermost last in a RangeStack).
struct Range {
  std::string domain;  ///< "" for NVTX's default domain
  std::string name;
  friend bool operator==(Range const& a, Range const& b) { return a.domain == b.domain && a.name == b.name; }
};
using RangeStack = std::vector<Range>;

/// A memory copy (CUPTI MEMCPY activity record, joined with its API call).
struct MemcpyEvent {
  Direction direction{Direction::unknown};
  MemoryKind src_kind{MemoryKind::unknown};
  MemoryKind dst_kind{MemoryKind::unknown};
  std::uint64_t bytes{0};
  std::uint32_t device{0};
  std::uint32_t stream{0};      ///< CUPTI stream id
  std::uint32_t context{0};     ///< CUPTI context id
  std::uint32_t thread{0};      ///< OS thread id (gettid) of the API call; 0 when unknown
  std::uint32_t correlation{0}; ///< driver-API correlation id
  std::uint32_t runtime_correlation{0};
  std::uint64_t start_ns{0};
  std::uint64_t end_ns{0};
  RangeStack ranges;            ///< NVTX ranges open on `thread` at the API call
  bool is_async{false};
};

/// A memset (CUPTI MEMSET activity record). Counted, never a violation.
struct MemsetEvent {
  MemoryKind memory{MemoryKind::unknown};
  std::uint64_t bytes{0};
  std::uint32_t value{0};
  std::uint32_t device{0};
  std::uint32_t stream{0};
  std::uint32_t context{0};
  std::uint32_t correlation{0};
  std::uint64_t start_ns{0};
  std::uint64_t end_ns{0};
  bool is_async{false};
};

/// A synchronisation (API callback, or CUPTI SYNCHRONIZATION record without a matching callback).
struct SyncEvent {
  SyncApi api{SyncApi::unknown};
  std::string api_name;         ///< e.g. "cudaStreamSynchronize"; empty when only a record was seen
  std::uint32_t stream{0};
  std::uint32_t context{0};
  std::uint32_t thread{0};
  std::uint32_t correlation{0};
  std::uint64_t start_ns{0};
  std::uint64_t end_ns{0};
  RangeStack ranges;
};

/// An NVTX marker as CUPTI's MARKER activity records it (CUpti_ActivityMarker2, decoded).
struct MarkerEvent {
  enum class Kind : std::uint8_t { start, end, instant, other } kind{Kind::other};
  std::uint32_t id{0};
  std::uint32_t thread{0};   ///< OS thread id (gettid)
  std::uint32_t process{0};
  std::uint64_t timestamp{0};
  std::string name;          ///< empty on end markers
  std::string domain;        ///< "" for NVTX's default domain
};

/// True for the allocations, frees, registrations and configuration changes that synchronise
/// implicitly. Every program makes them (PyTorch's caching allocator, pbm's own constructors), so
/// the policy expects them unless a forbid(sync) scope says otherwise.
constexpr bool implicit_by_resource(SyncApi api) noexcept {
  switch (api) {
    case SyncApi::free:
    case SyncApi::free_host:
    case SyncApi::host_alloc:
    case SyncApi::host_register:
    case SyncApi::host_unregister:
    case SyncApi::malloc:
    case SyncApi::free_array:
    case SyncApi::set_limit:
    case SyncApi::set_cache_config:
      return true;
    default:
      return false;
  }
}

/// True for APIs that block the calling host thread.
constexpr bool blocks_host(SyncApi api) noexcept {
  return api != SyncApi::stream_wait_event && api != SyncApi::stream_query &&
         api != SyncApi::event_query && api != SyncApi::legacy_stream && api != SyncApi::graph_host_node;
}

/// The memory kind used as the `memory` label: the host side of the copy when there is one
/// (pageable wins over pinned), else the device side.
MemoryKind host_side_memory(MemoryKind src, MemoryKind dst) noexcept;

std::string_view to_string(Direction d) noexcept;
std::string_view to_string(MemoryKind m) noexcept;
std::string_view to_string(SyncApi a) noexcept;
/// "domain:name > domain:name", innermost last; "(none)" when empty.
std::string format_ranges(RangeStack const& ranges);

}  // namespace pbm::telemetry
