// pbm telemetry policy: what is expected, what is a violation, and what happens on one.
//
// Modes: off (nothing counted), count (counters only), warn (counters + one report per call site
// on stderr), assert (counters + report + std::abort). The process-wide mode comes from
// set_mode() or env PBM_MODE; a ScopedMode overrides it on one thread for one scope.
//
// Classification (first match wins):
//   memcpy: Forbid(memcpy) scope -> violation `memcpy_forbidden`; Expect(memcpy) scope -> expected;
//           an open NVTX range on the allow-list -> expected; device-to-host -> `memcpy_dtoh`;
//           pageable source or destination -> `memcpy_pageable`; otherwise expected.
//   sync:   non-blocking APIs (stream/event query, stream wait event) -> expected;
//           pbm's own waits (pbm::expected_sync_depth() > 0) -> expected;
//           Forbid(sync) -> `sync_forbidden`; Expect(sync) -> expected; allow-listed range -> expected;
//           otherwise `sync_unexpected`.
// The innermost guard that names the kind decides. Scope state is captured at API-callback time on
// the calling thread, so records that CUPTI delivers later are still judged by the scope they ran in.
//
// Violations never throw through a CUPTI callback: assert aborts, and a Forbid guard constructed
// with throw_at_exit collects the violations of its scope and throws ViolationError when it ends.
#pragma once

#include <pbm/telemetry/events.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::telemetry {

/// `assert_` because `assert` is a macro in <cassert>; it parses from and prints as "assert".
enum class Mode : std::uint8_t { off, count, warn, assert_ };
inline constexpr std::size_t kModeCount = 4;

/// Parses "off", "count", "warn" or "assert" (case-sensitive). Throws std::invalid_argument naming
/// the bad value and the accepted ones.
Mode parse_mode(std::string_view text);
std::string_view to_string(Mode m) noexcept;

/// Process-wide mode. Thread-safe (atomic). Takes effect for API calls made after it returns.
void set_mode(Mode m) noexcept;
Mode get_mode() noexcept;
/// The mode in force on the calling thread: the innermost ScopedMode, else the process mode.
Mode effective_mode() noexcept;

/// The rule a violation broke.
/// sync_in_capture: a call that synchronises (a sync, a blocking copy, an allocation or free) was
/// refused because a stream was being captured into a CUDA graph: the call failed and the capture
/// is invalidated. Reported in every mode but off, whatever scope is open, with at least warn's
/// report (once per call site) and the caller's stack.
enum class Rule : std::uint8_t { memcpy_dtoh, memcpy_pageable, memcpy_forbidden, sync_unexpected, sync_forbidden, sync_in_capture };
inline constexpr std::size_t kRuleCount = 6;
std::string_view to_string(Rule r) noexcept;
/// One sentence explaining the rule, for reports.
std::string_view describe(Rule r) noexcept;

/// Which operations a guard is about.
enum class What : std::uint8_t { memcpy = 1, sync = 2, all = 3 };

/// A violation: what happened, where, and which rule it broke.
struct Violation {
  Rule rule{Rule::sync_unexpected};
  Mode mode{Mode::count};
  bool is_memcpy{false};
  MemcpyEvent memcpy;           ///< valid when is_memcpy
  SyncEvent sync;               ///< valid when !is_memcpy
  std::string api;              ///< API name when known ("cudaMemcpy", "cuStreamSynchronize", ...)
  std::uint32_t thread{0};
  RangeStack ranges;
  std::vector<std::string> backtrace;  ///< symbolised host frames of the API call (warn/assert/guards)
  std::uint64_t site{0};        ///< call-site hash used for warn-once
  /// Judged inside the API callback, on the thread that called CUDA, before the call ran (syncs
  /// always; copies unless activity records are on): an observer may look at that thread's stack.
  bool at_call_site{false};
};

/// Multi-line human-readable report of a violation.
std::string format_report(Violation const& v);

/// Thrown at scope exit by a Forbid guard constructed with throw_at_exit, never from a callback.
class ViolationError : public std::runtime_error {
 public:
  explicit ViolationError(std::vector<Violation> violations);
  std::vector<Violation> const& violations() const noexcept { return violations_; }

 private:
  std::vector<Violation> violations_;
};

namespace detail { struct GuardState; }

/// Forbids memcpys and/or syncs on this thread for this scope. Not copyable or movable; must be
/// destroyed on the thread that created it (like a lock guard).
class Forbid {
 public:
  struct Options {
    bool throw_at_exit{false};  ///< collect this scope's violations and throw ViolationError at exit
  };
  explicit Forbid(What what = What::all) : Forbid(what, Options{}) {}
  Forbid(What what, Options options);
  /// When throw_at_exit: flushes pending CUPTI records (so copies issued in the scope are judged),
  /// then throws ViolationError if any violation was collected and no exception is in flight.
  ~Forbid() noexcept(false);
  Forbid(Forbid const&) = delete;
  Forbid& operator=(Forbid const&) = delete;

  /// Violations collected so far (throw_at_exit guards only). Thread-safe.
  std::vector<Violation> violations() const;

 private:
  std::shared_ptr<detail::GuardState> state_;
  int uncaught_{0};
  bool throw_at_exit_{false};
};

/// Marks operations on this thread in this scope as expected (default: syncs).
class Expect {
 public:
  explicit Expect(What what = What::sync);
  ~Expect();
  Expect(Expect const&) = delete;
  Expect& operator=(Expect const&) = delete;
};

/// Overrides the mode on this thread for this scope.
class ScopedMode {
 public:
  explicit ScopedMode(Mode m);
  ~ScopedMode();
  ScopedMode(ScopedMode const&) = delete;
  ScopedMode& operator=(ScopedMode const&) = delete;
};

/// NVTX range allow-list: inside a range whose name (or "domain:name") is listed, memcpys and syncs
/// are expected. Thread-safe (copy-on-write); takes effect for API calls made after it returns.
void set_range_allow_list(std::vector<std::string> names);
std::vector<std::string> range_allow_list();

}  // namespace pbm::telemetry
