// The calling thread's scope state: guards and modes pushed by policy.cpp, NVTX ranges pushed by
// CUPTI callbacks, and their capture at an API call.
#include "scope.hpp"

#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/counters.hpp>

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
