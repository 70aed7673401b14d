// Per-thread telemetry state (guards, NVTX range stack, runtime-call depth, NVTX name cache) that
// outlives every callback on its thread. Private to telemetry/; visible to tests.
//
// CUDA calls, and so CUPTI callbacks, come from anywhere a program runs code: from the destructors
// of thread_local objects after a thread's other thread-locals are gone, and from static
// destructors at exit(). So no thread_local here has a destructor: each thread holds a plain
// pointer to a ThreadState on the heap, in a process-wide list that is never freed. A thread's
// state is reused by a later thread only once the kernel says its owner is gone (tgkill(0) fails
// with ESRCH), when no code of that thread can run any more. The list is lock-free, so a forked
// child or an exiting process never waits on it.
#pragma once

#include "scope.hpp"

#include <pbm/telemetry/events.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pbm::telemetry::detail {

/// NVTX handle -> name, direct-mapped, in front of the shared maps of nvtx_names.cpp. Starts over
/// when `generation` moves (a domain was destroyed: a handle may be reused).
struct NameCache {
  static constexpr std::size_t kSize = 32;
  struct Entry {
    void const* key{nullptr};
    std::string name;
  };
  std::uint64_t generation{0};
  Entry entries[kSize];
  Entry& slot(void const* key) noexcept { return entries[(reinterpret_cast<std::uintptr_t>(key) >> 4) % kSize]; }
};

struct ThreadState {
  /// gettid() of the thread using it; 0 while free. Written by the owner (and by a thread taking
  /// over a dead owner's state, with a CAS).
  std::atomic<std::uint32_t> owner{0};
  ThreadState* next{nullptr};  // the process-wide list; immutable once published

  // Set by the program (guards, scoped modes): independent of CUPTI.
  std::vector<ScopeEntry> scopes;

  // Fed by CUPTI callbacks: meaningful only for the attach epoch they were fed in (a callback lost
  // while detached, such as the exit of a call in flight or an NVTX pop, would otherwise leave them
  // wrong for good). cupti_fed() starts them over when the epoch moved.
  std::uint64_t epoch{0};
  LiveRanges ranges;
  int runtime_depth{0};                          // runtime calls in progress (driver calls under them are aliases)
  std::shared_ptr<CallContext> runtime_call;     // the outermost of them
  // The NVTX range allow-list as this thread last loaded it (classify.hpp allow_list_cached).
  std::shared_ptr<std::vector<std::string> const> allow;
  std::uint64_t allow_version{0};

  NameCache domain_names;                        // nvtxDomainHandle_t -> domain
  NameCache string_names;                        // nvtxStringHandle_t -> registered string

  /// CUPTI callbacks pbm has handled on this thread (API: runtime and driver; NVTX), for the cost
  /// per intercepted call (Status). Written only by the owner (a load and a store, no locked
  /// instruction on the hot path), read by anyone; kept when the state is taken over.
  std::atomic<std::uint64_t> api_callbacks{0};
  std::atomic<std::uint64_t> nvtx_callbacks{0};
  /// Nanoseconds spent in those callbacks, while PBM_CUPTI_TIME_CALLBACKS=1 (measurements); same rules.
  std::atomic<std::uint64_t> api_callback_ns{0};
  std::atomic<std::uint64_t> nvtx_callback_ns{0};

  /// Empties everything (a state taken over from a dead thread).
  void clear() noexcept;
};

/// The calling thread's state, created (or taken over from a thread that has exited) at its first
/// use. Never null; valid for the rest of the thread, including its thread_local and exit-time
/// destructors. Throws std::bad_alloc only where the first use cannot allocate.
ThreadState& this_thread();

/// The calling thread's state if it has one already, else nullptr. Never allocates.
ThreadState* this_thread_if_any() noexcept;

/// this_thread(), with the CUPTI-fed fields started over if CUPTI was attached again since they
/// were last fed.
ThreadState& cupti_fed();
/// cupti_fed() for `state`, the calling thread's (this_thread()) already at hand.
ThreadState& cupti_fed(ThreadState& state) noexcept;

/// Marks a new attach: every thread's CUPTI-fed state is stale from now on.
void begin_attach_epoch() noexcept;

/// OS thread id (gettid) of the calling thread; right in a forked child too.
std::uint32_t current_thread_id() noexcept;

/// In a forked child: the forking thread's state belongs to the child's thread now (its id
/// changed). Called from telemetry's pthread_atfork child handler; async-signal-safe.
void thread_state_after_fork_in_child() noexcept;

/// Tests: how many states the process has ever allocated (reused ones count once).
std::size_t thread_states_allocated() noexcept;

/// Adds `n` to a counter of the calling thread's own state (its owner is the only writer).
inline void count_callback(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

/// CUPTI callbacks handled so far by all threads of the process (those gone included), and the
/// nanoseconds spent in them while timed (PBM_CUPTI_TIME_CALLBACKS=1).
struct CallbackCounts {
  std::uint64_t api{0};
  std::uint64_t nvtx{0};
  std::uint64_t api_ns{0};
  std::uint64_t nvtx_ns{0};
};
CallbackCounts callbacks_handled() noexcept;

}  // namespace pbm::telemetry::detail
