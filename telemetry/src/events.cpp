#include <pbm/telemetry/events.hpp>

namespace pbm::telemetry {

MemoryKind host_side_memory(MemoryKind src, MemoryKind dst) noexcept {
  // Pageable is the interesting one (it forces a staged, host-blocking copy), so it wins.
  for (MemoryKind k : {MemoryKind::pageable, MemoryKind::pinned, MemoryKind::managed,
                       MemoryKind::array, MemoryKind::device}) {
    if (src == k || dst == k) return k;
  }
  return MemoryKind::unknown;
}

std::string_view to_string(Direction d) noexcept {
  switch (d) {
    case Direction::HtoD: return "HtoD";
    case Direction::DtoH: return "DtoH";
    case Direction::DtoD: return "DtoD";
    case Direction::HtoH: return "HtoH";
    case Direction::PtoP: return "PtoP";
    case Direction::unknown: break;
  }
  return "unknown";
}

std::string_view to_string(MemoryKind m) noexcept {
  switch (m) {
    case MemoryKind::pageable: return "pageable";
    case MemoryKind::pinned: return "pinned";
    case MemoryKind::device: return "device";
    case MemoryKind::managed: return "managed";
    case MemoryKind::array: return "array";
    case MemoryKind::unknown: break;
  }
  return "unknown";
}

std::string_view to_string(SyncApi a) noexcept {
  switch (a) {
    case SyncApi::stream_synchronize: return "stream_synchronize";
    case SyncApi::event_synchronize: return "event_synchronize";
    case SyncApi::device_synchronize: return "device_synchronize";
    case SyncApi::context_synchronize: return "context_synchronize";
    case SyncApi::stream_wait_event: return "stream_wait_event";
    case SyncApi::stream_query: return "stream_query";
    case SyncApi::event_query: return "event_query";
    case SyncApi::memcpy_sync: return "memcpy_sync";
    case SyncApi::memcpy_blocking: return "memcpy_blocking";
    case SyncApi::free: return "free";
    case SyncApi::free_host: return "free_host";
    case SyncApi::host_alloc: return "host_alloc";
    case SyncApi::host_register: return "host_register";
    case SyncApi::host_unregister: return "host_unregister";
    case SyncApi::malloc: return "malloc";
    case SyncApi::free_array: return "free_array";
    case SyncApi::set_limit: return "set_limit";
    case SyncApi::set_cache_config: return "set_cache_config";
    case SyncApi::memset_sync: return "memset_sync";
    case SyncApi::legacy_stream: return "legacy_stream";
    case SyncApi::graph_host_node: return "graph_host_node";
    case SyncApi::unknown: break;
  }
  return "unknown";
}

std::string format_ranges(RangeStack const& ranges) {
  if (ranges.empty()) return "(none)";
  std::string out;
  for (Range const& r : ranges) {
    if (!out.empty()) out += " > ";
    if (!r.domain.empty()) out += r.domain + ":";
    out += r.name;
  }
  return out;
}

}  // namespace pbm::telemetry
