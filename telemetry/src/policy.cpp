// Modes, rules, the allow-list and the classification functions.
#include "classify.hpp"

#include <atomic>
#include <sstream>

namespace pbm::telemetry {
namespace {

std::atomic<Mode> g_mode{Mode::count};

std::shared_ptr<std::vector<std::string> const>& allow_storage() {
  static std::shared_ptr<std::vector<std::string> const> list =
      std::make_shared<std::vector<std::string> const>();
  return list;
}

}  // namespace

Mode parse_mode(std::string_view text) {
  for (Mode m : {Mode::off, Mode::count, Mode::warn, Mode::assert_}) {
    if (text == to_string(m)) return m;
  }
  throw std::invalid_argument("pbm telemetry: invalid mode '" + std::string(text) +
                              "' (expected one of: off, count, warn, assert)");
}

std::string_view to_string(Mode m) noexcept {
  switch (m) {
    case Mode::off: return "off";
    case Mode::count: return "count";
    case Mode::warn: return "warn";
    case Mode::assert_: return "assert";
  }
  return "off";
}

void set_mode(Mode m) noexcept { g_mode.store(m, std::memory_order_relaxed); }
Mode get_mode() noexcept { return g_mode.load(std::memory_order_relaxed); }

std::string_view to_string(Rule r) noexcept {
  switch (r) {
    case Rule::memcpy_dtoh: return "memcpy_dtoh";
    case Rule::memcpy_pageable: return "memcpy_pageable";
    case Rule::memcpy_forbidden: return "memcpy_forbidden";
    case Rule::sync_unexpected: return "sync_unexpected";
    case Rule::sync_forbidden: return "sync_forbidden";
  }
  return "unknown";
}

std::string_view describe(Rule r) noexcept {
  switch (r) {
    case Rule::memcpy_dtoh:
      return "device-to-host copies are unexpected outside an Expect(memcpy) scope or allow-listed NVTX range";
    case Rule::memcpy_pageable:
      return "copies from or to pageable host memory are staged and block the host; use pinned memory";
    case Rule::memcpy_forbidden: return "a Forbid(memcpy) guard is active on this thread";
    case Rule::sync_unexpected:
      return "host synchronisation outside an Expect(sync) scope, allow-listed NVTX range or pbm wait";
    case Rule::sync_forbidden: return "a Forbid(sync) guard is active on this thread";
  }
  return "";
}

std::string format_report(Violation const& v) {
  std::ostringstream out;
  out << "pbm telemetry [" << to_string(v.mode) << "]: ";
  if (v.is_memcpy) {
    MemcpyEvent const& m = v.memcpy;
    out << "unexpected memcpy " << to_string(m.direction) << ' ' << m.bytes << " bytes ("
        << to_string(m.src_kind) << " -> " << to_string(m.dst_kind) << (m.is_async ? ", async" : "")
        << ") on stream " << m.stream << ", device " << m.device;
  } else {
    out << "unexpected sync " << to_string(v.sync.api);
    if (v.sync.stream != 0) out << " on stream " << v.sync.stream;
  }
  out << "\n  rule:   " << to_string(v.rule) << " (" << describe(v.rule) << ")";
  out << "\n  api:    " << (v.api.empty() ? "(unknown)" : v.api);
  out << "\n  thread: " << v.thread;
  out << "\n  nvtx:   " << format_ranges(v.ranges);
  if (!v.backtrace.empty()) {
    out << "\n  host backtrace:";
    for (std::size_t i = 0; i < v.backtrace.size(); ++i) out << "\n    #" << i << ' ' << v.backtrace[i];
  }
  out << '\n';
  return out.str();
}

namespace {
std::string summarize(std::vector<Violation> const& vs) {
  std::string text = "pbm telemetry: " + std::to_string(vs.size()) + " violation(s) in a Forbid scope\n";
  for (Violation const& v : vs) text += format_report(v);
  return text;
}
}  // namespace

ViolationError::ViolationError(std::vector<Violation> violations)
    : std::runtime_error(summarize(violations)), violations_(std::move(violations)) {}

void set_range_allow_list(std::vector<std::string> names) {
  auto list = std::make_shared<std::vector<std::string> const>(std::move(names));
  std::atomic_store(&allow_storage(), std::move(list));
}

std::vector<std::string> range_allow_list() { return *detail::allow_list_snapshot(); }

namespace detail {

std::shared_ptr<std::vector<std::string> const> allow_list_snapshot() {
  return std::atomic_load(&allow_storage());
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

Verdict classify_sync(SyncApi api, ScopeRule scope, bool pbm_wait, RangeStack const& ranges,
                      std::vector<std::string> const& allow) noexcept {
  if (!blocks_host(api) || pbm_wait) return {true, {}};
  if (scope == ScopeRule::forbid) return {false, Rule::sync_forbidden};
  if (scope == ScopeRule::expect || allow_listed(ranges, allow)) return {true, {}};
  return {false, Rule::sync_unexpected};
}

}  // namespace detail
}  // namespace pbm::telemetry
