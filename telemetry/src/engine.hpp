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

/// An NVTX marker as CUPTI records it (CUpti_ActivityMarker2, decoded).
struct MarkerEvent {
  enum class Kind : std::uint8_t { start, end, instant, other } kind{Kind::other};
  std::uint32_t id{0};
  std::uint32_t thread{0};   // objectId.pt.threadId (OS thread id with CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM)
  std::uint32_t process{0};
  std::uint64_t timestamp{0};
  std::string name;          // empty on end markers
  std::string domain;        // "" for NVTX's default domain
};

/// A CUDA API call that copies or synchronises, as seen by a runtime/driver API callback.
struct ApiCall {
  enum class Class : std::uint8_t { memcpy_sync, memcpy_async, sync };
  bool runtime{true};            // runtime (cuda*) or driver (cu*) API
  std::uint32_t correlation{0};  // CUpti_CallbackData::correlationId
  char const* name{""};          // static string
  Class cls{Class::sync};
  SyncApi sync_api{SyncApi::unknown};
  std::uint32_t stream{0};       // CUPTI stream id when known
};

/// Sees every judged event (tests, and future exporters of event streams).
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_memcpy(MemcpyEvent const&, bool /*expected*/) {}
  virtual void on_sync(SyncEvent const&, bool /*expected*/) {}
  virtual void on_memset(MemsetEvent const&) {}
  virtual void on_marker(MarkerEvent const&) {}
  virtual void on_violation(Violation const&) {}
};

class Engine {
 public:
  explicit Engine(std::size_t range_label_cap = Counters::kDefaultRangeCap);

  Counters& counters() noexcept { return *counters_; }
  /// Replaces the counters (start() before attach, and tests). Not safe while CUPTI is attached.
  void reset(std::size_t range_label_cap);

  /// Judges a sync at its call; remembers the call's context for its records. Returns false for a
  /// driver call the runtime makes underneath a runtime call (an alias, not a separate event).
  bool api_enter(ApiCall const& call);
  void api_exit(ApiCall const& call) noexcept;

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

  void set_observer(Observer* observer) noexcept { observer_.store(observer); }

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
  void report(Violation v, CallContext const& ctx, Backtrace const* bt);

  std::unique_ptr<Counters> counters_;
  std::atomic<Observer*> observer_{nullptr};

  mutable std::mutex table_mu_;
  std::vector<Slot> table_;

  mutable std::mutex marker_mu_;
  std::map<std::uint32_t, std::vector<std::pair<std::uint32_t, Range>>> marker_stacks_;
  std::set<std::pair<std::string, std::string>> observed_;

  std::mutex warned_mu_;
  std::set<std::uint64_t> warned_sites_;
};

/// The process's engine (never destroyed: CUPTI may deliver records during exit).
Engine& engine();

}  // namespace pbm::telemetry::detail
