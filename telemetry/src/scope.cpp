// The calling thread's scope state and the guards that edit it.
#include "scope.hpp"

#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <exception>

namespace pbm::telemetry::detail {
namespace {

bool names(What what, What kind) noexcept {
  return (static_cast<unsigned>(what) & static_cast<unsigned>(kind)) != 0;
}

}  // namespace

CallContext capture_context() {
  ThreadState const& state = cupti_fed();
  CallContext ctx;
  ctx.thread = current_thread_id();
  ctx.mode = get_mode();
  bool mode_set = false;
  // Innermost first: the first guard naming a kind decides it.
  for (auto it = state.scopes.rbegin(); it != state.scopes.rend(); ++it) {
    switch (it->kind) {
      case ScopeEntry::Kind::mode:
        if (!mode_set) { ctx.mode = it->mode; mode_set = true; }
        break;
      case ScopeEntry::Kind::forbid:
      case ScopeEntry::Kind::expect: {
        ScopeRule rule = it->kind == ScopeEntry::Kind::forbid ? ScopeRule::forbid : ScopeRule::expect;
        if (names(it->what, What::memcpy) && ctx.memcpy_rule == ScopeRule::none) ctx.memcpy_rule = rule;
        if (names(it->what, What::sync) && ctx.sync_rule == ScopeRule::none) ctx.sync_rule = rule;
        if (it->guard && !ctx.guard) ctx.guard = it->guard;
        break;
      }
    }
  }
  ctx.pbm_wait = pbm::expected_sync_depth() > 0;
  ctx.ranges = state.ranges;
  return ctx;
}

void nvtx_push(std::string_view domain, std::string_view name) {
  // Copied into every API call's context: a name of any length costs at most kMaxRangeNameBytes.
  cupti_fed().ranges.push_back(Range{std::string(bounded_range_name(domain)), std::string(bounded_range_name(name))});
}

void nvtx_pop(std::string_view domain) {
  domain = bounded_range_name(domain);
  RangeStack& ranges = cupti_fed().ranges;
  for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
    if (it->domain == domain) {
      ranges.erase(std::next(it).base());
      return;
    }
  }
}

RangeStack const& current_ranges() { return cupti_fed().ranges; }

void push_scope(ScopeEntry entry) { this_thread().scopes.push_back(std::move(entry)); }

void pop_scope() noexcept {
  ThreadState* state = this_thread_if_any();
  if (state != nullptr && !state->scopes.empty()) state->scopes.pop_back();
}

}  // namespace pbm::telemetry::detail

namespace pbm::telemetry {

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
