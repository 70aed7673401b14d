// Scope state (guards, scoped mode, NVTX range stack) of the calling thread, kept in its
// ThreadState (thread_state.hpp), and its capture at API-callback time. Private to telemetry/;
// visible to tests.
#pragma once

#include <pbm/telemetry/policy.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::telemetry::detail {

/// What the innermost guard naming an operation kind says about it.
enum class ScopeRule : std::uint8_t { none, forbid, expect };

/// Shared between a throw_at_exit Forbid guard (its thread) and the record thread that may find
/// a violation of its scope later.
struct GuardState {
  mutable std::mutex mu;
  std::vector<Violation> violations;
  void add(Violation v) {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(std::move(v));
  }
};

/// Raw return addresses of a host call stack, symbolised only when a report is written.
struct Backtrace {
  std::array<void*, 48> frames{};
  int depth{0};
  static Backtrace capture() noexcept;
  std::vector<std::string> symbolise() const;
  /// Hash of the caller frames (the call site), for warn-once.
  std::uint64_t site_hash() const noexcept;
};

/// Everything the policy needs to know about an API call, captured on the calling thread.
struct CallContext {
  std::uint32_t thread{0};
  Mode mode{Mode::count};
  ScopeRule memcpy_rule{ScopeRule::none};
  ScopeRule sync_rule{ScopeRule::none};
  bool pbm_wait{false};                    // pbm::expected_sync_depth() > 0
  RangeStack ranges;
  std::shared_ptr<GuardState> guard;       // innermost throw_at_exit Forbid, if any
  Backtrace backtrace;                     // captured when a report may be needed
  char const* api{""};
  bool sync_judged{false};                 // the call's sync was judged at the callback
};

/// Captures the calling thread's scope state (no backtrace).
CallContext capture_context();

/// A thread's open NVTX ranges, edited by every range push and pop. A popped entry keeps its
/// strings' storage for the next push: pbm's own ranges open and close around every mailbox call,
/// and a loop of them allocates nothing once the stack has been as deep as it gets.
class LiveRanges {
 public:
  void push(std::string_view domain, std::string_view name);
  /// Removes the innermost range of `domain`; nothing when none is open.
  void pop(std::string_view domain);
  void clear() noexcept { depth_ = 0; }
  bool empty() const noexcept { return depth_ == 0; }
  std::size_t size() const noexcept { return depth_; }
  /// The open ranges, outermost first (what an API call's context keeps).
  RangeStack snapshot() const { return RangeStack(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(depth_)); }

 private:
  std::vector<Range> items_;  // [0, depth_) open; the rest popped, kept for their storage
  std::size_t depth_{0};
};

/// The calling thread's NVTX range stack, maintained from NVTX callbacks (or tests).
void nvtx_push(std::string_view domain, std::string_view name);
/// Pops the innermost range of `domain` (NVTX keeps one stack per domain and thread).
void nvtx_pop(std::string_view domain);
/// A copy of the calling thread's open ranges.
RangeStack current_ranges();

// Guard bookkeeping (used by Forbid/Expect/ScopedMode).
struct ScopeEntry {
  enum class Kind : std::uint8_t { forbid, expect, mode } kind{Kind::mode};
  What what{What::all};
  Mode mode{Mode::count};
  std::shared_ptr<GuardState> guard;
};
void push_scope(ScopeEntry entry);
void pop_scope() noexcept;

}  // namespace pbm::telemetry::detail
