// The policy's decision for one event, and the NVTX range allow-list it consults.
#include "classify.hpp"

#include "thread_state.hpp"

#include <atomic>

namespace pbm::telemetry {
namespace {

std::shared_ptr<std::vector<std::string> const>& allow_storage() {
  static std::shared_ptr<std::vector<std::string> const> list =
      std::make_shared<std::vector<std::string> const>();
  return list;
}

/// Moves on every set_range_allow_list(): a thread's cached list (allow_list_cached) is stale then.
std::atomic<std::uint64_t> g_allow_version{1};

}  // namespace

void set_range_allow_list(std::vector<std::string> names) {
  auto list = std::make_shared<std::vector<std::string> const>(std::move(names));
  std::atomic_store(&allow_storage(), std::move(list));
  g_allow_version.fetch_add(1, std::memory_order_acq_rel);  // after the store: a reader that sees it loads the new list
}

std::vector<std::string> range_allow_list() { return *detail::allow_list_snapshot(); }

namespace detail {

std::shared_ptr<std::vector<std::string> const> allow_list_snapshot() {
  return std::atomic_load(&allow_storage());
}

std::vector<std::string> const& allow_list_cached() {
  ThreadState& thread = this_thread();
  std::uint64_t const now = g_allow_version.load(std::memory_order_acquire);
  if (thread.allow_version != now || !thread.allow) {
    thread.allow = allow_list_snapshot();
    thread.allow_version = now;
  }
  return *thread.allow;
}

bool allow_listed(RangeStack const& ranges, std::vector<std::string> const& allow) {
  for (Range const& r : ranges) {
    for (std::string const& name : allow) {
      if (name == r.name) return true;
      if (!r.domain.empty() && name.size() == r.domain.size() + 1 + r.name.size() &&
          name.compare(0, r.domain.size(), r.domain) == 0 && name[r.domain.size()] == ':' &&
          name.compare(r.domain.size() + 1, std::string::npos, r.name) == 0) {
        return true;
      }
    }
  }
  return false;
}

Verdict classify_memcpy(MemcpyEvent const& ev, ScopeRule scope, RangeStack const& ranges,
                        std::vector<std::string> const& allow) noexcept {
  if (scope == ScopeRule::forbid) return {false, Rule::memcpy_forbidden};
  if (scope == ScopeRule::expect || allow_listed(ranges, allow)) return {true, {}};
  if (ev.direction == Direction::DtoH) return {false, Rule::memcpy_dtoh};
  if (ev.src_kind == MemoryKind::pageable || ev.dst_kind == MemoryKind::pageable) {
    return {false, Rule::memcpy_pageable};
  }
  return {true, {}};
}

bool copy_blocks_host(MemcpyEvent const& ev) noexcept {
  if (!ev.is_async) return false;
  auto host = [](MemoryKind k) { return k == MemoryKind::pageable || k == MemoryKind::pinned; };
  auto device = [](MemoryKind k) { return k == MemoryKind::device || k == MemoryKind::managed; };
  MemoryKind const src = ev.src_kind, dst = ev.dst_kind;
  if (host(src) && host(dst)) return true;
  if (src == MemoryKind::pageable && device(dst)) return true;
  if (device(src) && dst == MemoryKind::pageable) return true;
  return false;
}

bool memset_blocks_host(MemoryKind target) noexcept {
  return target == MemoryKind::pinned || target == MemoryKind::managed;
}

Verdict classify_sync(SyncApi api, ScopeRule scope, bool pbm_wait, RangeStack const& ranges,
                      std::vector<std::string> const& allow) noexcept {
  if (!blocks_host(api) || pbm_wait) return {true, {}};
  if (scope == ScopeRule::forbid) return {false, Rule::sync_forbidden};
  if (scope == ScopeRule::expect || implicit_by_resource(api) || allow_listed(ranges, allow)) return {true, {}};
  return {false, Rule::sync_unexpected};
}

}  // namespace detail
}  // namespace pbm::telemetry
