// Modes, rules, violation reports, and the guards (Forbid, Expect, ScopedMode) that edit the
// calling thread's scope state.
#include <pbm/telemetry/policy.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include "scope.hpp"
#include "thread_state.hpp"

#include <atomic>
#include <exception>
#include <sstream>

namespace pbm::telemetry {
namespace {

std::atomic<Mode> g_mode{Mode::count};

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
    case Rule::sync_in_capture: return "sync_in_capture";
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
    case Rule::sync_in_capture:
      return "a synchronising call was made while a stream was being captured into a CUDA graph: CUDA refused it "
             "and invalidated the capture";
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

Mode effective_mode() noexcept {
  detail::ThreadState const* state = detail::this_thread_if_any();
  if (state == nullptr) return get_mode();
  auto const& scopes = state->scopes;
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
    if (it->kind == detail::ScopeEntry::Kind::mode) return it->mode;
  }
  return get_mode();
}

Forbid::Forbid(What what, Options options)
    : uncaught_(std::uncaught_exceptions()), throw_at_exit_(options.throw_at_exit) {
  if (throw_at_exit_) state_ = std::make_shared<detail::GuardState>();
  detail::ScopeEntry entry;
  entry.kind = detail::ScopeEntry::Kind::forbid;
  entry.what = what;
  entry.guard = state_;
  detail::push_scope(std::move(entry));
}

Forbid::~Forbid() noexcept(false) {
  detail::pop_scope();
  if (!throw_at_exit_) return;
  // Copies issued in the scope reach us as activity records; deliver those already complete.
  flush();
  std::vector<Violation> found = violations();
  if (!found.empty() && std::uncaught_exceptions() <= uncaught_) throw ViolationError(std::move(found));
}

std::vector<Violation> Forbid::violations() const {
  if (!state_) return {};
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->violations;
}

Expect::Expect(What what) {
  detail::ScopeEntry entry;
  entry.kind = detail::ScopeEntry::Kind::expect;
  entry.what = what;
  detail::push_scope(std::move(entry));
}
Expect::~Expect() { detail::pop_scope(); }

ScopedMode::ScopedMode(Mode m) {
  detail::ScopeEntry entry;
  entry.kind = detail::ScopeEntry::Kind::mode;
  entry.mode = m;
  detail::push_scope(std::move(entry));
}
ScopedMode::~ScopedMode() { detail::pop_scope(); }

}  // namespace pbm::telemetry
