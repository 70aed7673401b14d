// The calling thread's scope state: guards and modes pushed by policy.cpp, NVTX ranges pushed by
// CUPTI callbacks, and their capture at an API call.
#include "scope.hpp"

#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/counters.hpp>

#include <algorithm>

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
  ctx.ranges = state.ranges.snapshot();
  return ctx;
}

void LiveRanges::push(std::string_view domain, std::string_view name) {
  // Copied into every API call's context: a name of any length costs at most kMaxRangeNameBytes.
  domain = bounded_range_name(domain);
  name = bounded_range_name(name);
  if (depth_ == items_.size()) items_.emplace_back();
  Range& r = items_[depth_++];
  r.domain.assign(domain.data(), domain.size());  // reuses the storage of the range popped last
  r.name.assign(name.data(), name.size());
}

void LiveRanges::pop(std::string_view domain) {
  domain = bounded_range_name(domain);
  for (std::size_t i = depth_; i-- > 0;) {
    if (items_[i].domain != domain) continue;
    // Usually the top; a range of another domain above it moves down one, keeping the order.
    std::rotate(items_.begin() + static_cast<std::ptrdiff_t>(i), items_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                items_.begin() + static_cast<std::ptrdiff_t>(depth_));
    --depth_;
    return;
  }
}

void nvtx_push(std::string_view domain, std::string_view name) { cupti_fed().ranges.push(domain, name); }

void nvtx_pop(std::string_view domain) { cupti_fed().ranges.pop(domain); }

RangeStack current_ranges() { return cupti_fed().ranges.snapshot(); }

void push_scope(ScopeEntry entry) { this_thread().scopes.push_back(std::move(entry)); }

void pop_scope() noexcept {
  ThreadState* state = this_thread_if_any();
  if (state != nullptr && !state->scopes.empty()) state->scopes.pop_back();
}

}  // namespace pbm::telemetry::detail
