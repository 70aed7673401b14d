// The pipeline after the decoder: joins activity records with the API call that issued them
// (by correlation id), applies the policy, counts, and reports violations.
// Pure C++ (no CUPTI types); private to telemetry/, visible to tests.
//
// Entry points and their threads:
//   api_enter / api_exit      - the thread calling the CUDA API (from CUPTI API callbacks)
//   on_memcpy / on_memset /
//   on_sync / on_marker       - CUPTI's buffer thread, or the thread calling flush()
#pragma once

#include "scope.hpp"

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/observer.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace pbm::telemetry::detail {

using pbm::telemetry::MarkerEvent;

/// A CUDA API call that copies or synchronises, as seen by a runtime/driver API callback.
struct ApiCall {
  /// memcpy_sync: a copy that blocks the host (judged as a sync and as a copy); memcpy_async: a copy
  /// (judged as a copy; as a memcpy_blocking sync too when api_blocking_copy says so); sync: a
  /// synchronisation (sync_api); quiet: watched only so that the driver calls under it are aliases
  /// (a non-Async memset on device memory), judged as nothing; graph_launch: a graph replay, whose
  /// memcpy nodes are judged as copies in the call's context (graphs.hpp); bookkeeping: graph
  /// instantiation and stream creation, read for what they create, never judged.
  enum class Class : std::uint8_t { memcpy_sync, memcpy_async, sync, quiet, graph_launch, bookkeeping };
  bool runtime{true};            // runtime (cuda*) or driver (cu*) API
  std::uint32_t correlation{0};  // CUpti_CallbackData::correlationId
  char const* name{""};          // static string
  Class cls{Class::sync};
  SyncApi sync_api{SyncApi::unknown};
  std::uint32_t stream{0};       // CUPTI stream id when known
  /// Also issues work to the legacy default stream while a blocking stream exists (the opt-in
  /// rule): judged as a legacy_stream sync too, at the call.
  bool legacy_stream{false};
};

/// The registered observers (observer.hpp): a fixed set of slots, read without a lock on every
/// event. A reader marks its slot busy while it calls the observer, so remove() can wait for calls
/// in flight.
class ObserverList {
 public:
  void add(Observer& o);
  void remove(Observer& o) noexcept;
  template <class Call>
  void each(Call&& call) const noexcept {
    int const n = used_.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) {
      Slot const& s = slots_[i];
      s.busy.fetch_add(1, std::memory_order_seq_cst);
      if (Observer* o = s.observer.load(std::memory_order_seq_cst)) {
        try {
          call(*o);
        } catch (...) {  // never unwinds into CUPTI or the CUDA call
        }
      }
      s.busy.fetch_sub(1, std::memory_order_release);
    }
  }

 private:
  struct Slot {
    std::atomic<Observer*> observer{nullptr};
    mutable std::atomic<int> busy{0};
  };
  std::mutex mu_;  // add/remove only
  Slot slots_[kMaxObservers];
  std::atomic<int> used_{0};  // slots ever used (a high-water mark)
};

class Engine {
 public:
  explicit Engine(std::size_t range_label_cap = Counters::kDefaultRangeCap);

  /// Allocated with the engine, never replaced: exporters and users hold references to it.
  Counters& counters() noexcept { return *counters_; }

  /// Judges a sync at its call; remembers the call's context for its records. Returns false for a
  /// driver call the runtime makes underneath a runtime call (an alias, not a separate event).
  bool api_enter(ApiCall const& call);
  void api_exit(ApiCall const& call) noexcept;
  /// An async copy call that api_enter accepted (top level) and whose parameters say the host waits
  /// for it (copy_blocks_host): judged as a memcpy_blocking sync at the call, on the calling thread,
  /// in the call's scope. Its copy is judged (and counted) as a copy as before, separately.
  void api_blocking_copy(ApiCall const& call) { api_also(call, SyncApi::memcpy_blocking); }
  /// A call that api_enter accepted (top level) judged once more, as a sync of `api`, in its call's
  /// context: memcpy_blocking (above), legacy_stream for a copy issued to the legacy default stream,
  /// graph_host_node for each host node of a graph replay.
  void api_also(ApiCall const& call, SyncApi api);
  /// A call that failed because a stream is being captured (cudaErrorStreamCaptureUnsupported,
  /// ...Invalidated, ...Implicit: `error`), at its exit callback on the calling thread: a violation of
  /// Rule::sync_in_capture, reported with at least warn's report. Nothing for a driver call made
  /// underneath a runtime call (the runtime call reports it).
  void api_capture_failure(ApiCall const& call, int error);

  /// A copy: from a MEMCPY record (CUPTI's thread, later), or judged at its API callback on the
  /// calling thread (`at_call_site`, when activity records are off).
  void on_memcpy(MemcpyEvent ev, bool at_call_site = false);
  void on_memset(MemsetEvent const& ev);
  void on_sync(SyncEvent ev);
  void on_marker(MarkerEvent const& ev);

  /// NVTX ranges open on a thread according to MARKER records (what a tool like Nsight sees).
  RangeStack marker_ranges(std::uint32_t thread) const;
  /// Distinct (domain, name) pairs seen in MARKER start records (bounded).
  std::vector<std::pair<std::string, std::string>> observed_ranges() const;

  /// Whether activity records will be joined with API calls (any activity kind enabled): only then
  /// must a sync's call context be kept for its record. True until the CUPTI source says otherwise.
  void set_joins_records(bool joins) noexcept { joins_records_.store(joins, std::memory_order_relaxed); }
  bool joins_records() const noexcept { return joins_records_.load(std::memory_order_relaxed); }

  void add_observer(Observer& o) { observers_.add(o); }
  void remove_observer(Observer& o) noexcept { observers_.remove(o); }

 private:
  static constexpr std::size_t kTableSize = 16384;
  static constexpr std::size_t kMaxMarkerDepth = 256;     // open MARKER ranges kept per thread
  static constexpr std::size_t kMaxMarkerThreads = 4096;  // threads with open MARKER ranges
  struct Slot {
    std::uint64_t key{0};
    std::shared_ptr<CallContext> ctx;
  };
  static std::uint64_t key(bool runtime, std::uint32_t correlation) noexcept {
    return (runtime ? (1ull << 32) : (2ull << 32)) | correlation;
  }
  void remember(std::uint64_t k, std::shared_ptr<CallContext> ctx);
  std::shared_ptr<CallContext> find(std::uint64_t k) const;
  void judge_sync(SyncEvent ev, CallContext const& ctx, bool at_call_site);
  /// The call a record belongs to; `fallback` (process mode, no ranges) for a record with none,
  /// counted as unattributed.
  CallContext const& attributed(CallContext const* ctx, CallContext& fallback) noexcept;
  /// A violation of `rule` with what every report carries, counted; the caller adds the event.
  Violation violation(Rule rule, CallContext const& ctx, std::string api, std::uint32_t thread,
                      RangeStack const& ranges, bool at_call_site);
  void report(Violation v, CallContext const& ctx, Backtrace const* bt);

  std::unique_ptr<Counters> const counters_;
  ObserverList observers_;
  std::atomic<bool> joins_records_{true};

  mutable std::mutex table_mu_;
  std::vector<Slot> table_;

  mutable std::mutex marker_mu_;
  std::map<std::uint32_t, std::vector<std::pair<std::uint32_t, Range>>> marker_stacks_;
  std::set<std::pair<std::string, std::string>> observed_;

  std::mutex warned_mu_;
  std::set<std::uint64_t> warned_sites_;
};

/// The process's engine, created at its first use (never destroyed: CUPTI may deliver records
/// during exit). Its counters' range label cap is `range_label_cap_if_new` when this call creates
/// it, else the cap it was created with.
Engine& engine(std::size_t range_label_cap_if_new = Counters::kDefaultRangeCap);

}  // namespace pbm::telemetry::detail
