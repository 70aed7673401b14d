// Observers of telemetry's judged events: how components above telemetry (the Python binding's
// stacks, pbm-guard's call sites, a user's own event stream) see each copy, sync and violation.
//
// Several observers may be registered at once; each sees every event from its registration until
// remove_observer() returns. Callbacks run synchronously inside telemetry:
//   - at the CUDA call, on the thread that made it (syncs; copies judged at their call;
//     violations with Violation::at_call_site), inside a CUPTI callback;
//   - or later, on CUPTI's buffer thread or a thread calling flush() (activity records).
// So a callback must be quick, must not throw (an exception is caught and dropped), must not call
// CUDA, and must not add or remove observers. Nothing here synchronises with the GPU.
#pragma once

#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/policy.hpp>

namespace pbm::telemetry {

/// Receives judged events. Override what you need; the defaults ignore the event.
class Observer {
 public:
  virtual ~Observer() = default;
  /// A copy and whether the policy expected it.
  virtual void on_memcpy(MemcpyEvent const& /*event*/, bool /*expected*/) {}
  /// A synchronisation (or a poll, or a stream wait) and whether the policy expected it.
  virtual void on_sync(SyncEvent const& /*event*/, bool /*expected*/) {}
  /// A memset (activity records only).
  virtual void on_memset(MemsetEvent const& /*event*/) {}
  /// An NVTX marker record (marker activity only).
  virtual void on_marker(MarkerEvent const& /*event*/) {}
  /// A broken rule, before the mode acts on it (before assert mode aborts, or a guard collects it).
  virtual void on_violation(Violation const& /*violation*/) {}
};

/// Registers `observer` with the process's telemetry; it must stay alive until remove_observer()
/// returns. Thread-safe. Throws std::invalid_argument if it is registered already, and
/// std::length_error when kMaxObservers are registered.
void add_observer(Observer& observer);
/// Unregisters `observer` and waits for callbacks already running on other threads to return: after
/// it returns, `observer` is never called again and may be destroyed. Thread-safe; a no-op for an
/// observer not registered. Never call it from inside an observer callback.
void remove_observer(Observer& observer) noexcept;

inline constexpr int kMaxObservers = 16;

}  // namespace pbm::telemetry
