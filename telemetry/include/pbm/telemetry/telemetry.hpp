// pbm telemetry: live detection of unexpected device-to-host copies, pageable copies and host
// synchronisations through CUPTI, judged by pbm::telemetry's policy and counted.
//
// Lifecycle (docs/RELIABILITY.md has the whole contract):
//  - start() resolves Config against the environment and attaches CUPTI; stop() detaches. Both may
//    be called again, any number of times; counts are kept across them (the counters are allocated
//    once and never freed while the process runs).
//  - detach()/attach() hand CUPTI to another tool (torch.profiler) and take it back at run time.
//    A CUDA call in flight or an NVTX range open across a detach is forgotten at the next attach:
//    each thread's range stack starts empty again (ranges opened while detached are never seen).
//  - Threads: a thread's state outlives its last callback, including CUDA calls made from its
//    thread_local destructors; it is reused only after the thread is gone.
//  - exit(): the last records are flushed by an exit handler that takes no lock; CUDA calls from
//    static destructors that run before it are still counted, later ones are ignored.
//  - fork(): the child has telemetry off (CUDA is unusable in a forked child): status() says so,
//    attach() returns false, callbacks are ignored, counters keep the parent's values at the fork,
//    and exit() in the child calls nothing of CUPTI's.
// Nothing here throws except start() on an invalid configuration; CUPTI failures are reported by
// status() and logged once, and the application keeps running. None of these functions
// synchronises with the GPU (flush() waits for CUPTI's buffers, not for kernels).
// Thread-safety: all functions are thread-safe (serialised internally); do not call them from
// inside a CUPTI callback or an observer (observer.hpp).
#pragma once

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/policy.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace pbm::telemetry {

struct Config {
  /// Process mode; when unset, env PBM_MODE, else Mode::count.
  std::optional<Mode> mode;
  /// NVTX range names inside which copies and syncs are expected; appended to env PBM_NVTX_ALLOW
  /// (comma-separated).
  std::vector<std::string> allowed_ranges;
  /// Distinct NVTX range names used as label values; the rest fold into "other". Fixed when the
  /// counters are first used: by the first start(), unless counters() (an exporter, say) came first.
  std::size_t range_label_cap{Counters::kDefaultRangeCap};
  /// Activity buffer pool: count x size bytes, allocated once; when all are in use CUPTI drops
  /// records and the drop is counted.
  std::size_t buffer_count{8};
  std::size_t buffer_size{1u << 20};
  /// Call ensure_nvtx_injection() in start() (effective only if no NVTX call happened yet).
  bool set_nvtx_injection{true};
  /// Attach CUPTI in start(); false: counters and policy only, attach() later.
  bool attach{true};
  /// Also collect CUPTI MEMCPY, MEMSET and SYNCHRONIZATION activity records (or env
  /// PBM_CUPTI_ACTIVITY=1). Off by default: copies are judged from their API calls' parameters and
  /// syncs at their calls; activity records make CUPTI trace every kernel launch (BENCHMARKS.md,
  /// figure 7). Turn it on for copies the calls cannot describe (3D, array and batch copies; memcpy
  /// nodes of CUDA graphs; their direction otherwise shows as "unknown") and for memset counts.
  bool activity_records{false};
  /// Also collect CUPTI MARKER activity (NVTX ranges as Nsight sees them: observed_ranges()).
  /// Off by default: range attribution comes from NVTX callbacks at call time, and MARKER records
  /// cost more per NVTX range than the rest of telemetry (env PBM_CUPTI_MARKERS=1 turns it on).
  bool marker_activity{false};
  /// libcupti to load; empty: env PBM_CUPTI_PATH, else the loader's search, the toolkit found at
  /// configure time, $CUDA_HOME and /usr/local/cuda.
  std::string cupti_path;
  /// The legacy default stream rule (or env PBM_LEGACY_STREAM=1): count kernels, copies, memsets and
  /// graph launches issued to the legacy default stream while a blocking stream exists, as syncs of
  /// api "legacy_stream" (the GPU serialises them; never a host sync, never a violation). Off by
  /// default: it needs a callback on every kernel launch (its cost: BENCHMARKS.md).
  bool legacy_stream_rule{false};
};

struct Status {
  bool started{false};
  bool attached{false};         ///< CUPTI subscriber held and activity enabled
  bool subscriber_taken{false}; ///< stepped aside for another CUPTI client
  bool cupti_built{false};      ///< compiled with CUPTI support (PBM_HAVE_CUPTI)
  Mode mode{Mode::off};
  std::string reason;           ///< one line: why not attached, or "attached"
  /// Per-thread states pbm has allocated (one per thread that made a watched call while no state of
  /// an exited thread was free to reuse): never freed, reused after their thread exits.
  std::size_t thread_states{0};
  bool legacy_stream_rule{false};  ///< the legacy default stream rule is on (Config, set_legacy_stream_rule)
  /// CUPTI callbacks pbm has handled since the process started, all threads, across stop/start and
  /// detach/attach: runtime and driver API callbacks (entry and exit are one each), and NVTX
  /// callbacks (a range push and its pop are two). What "cost per intercepted call" divides by;
  /// an attached loop whose counts do not move was not being watched.
  std::uint64_t api_callbacks{0};
  std::uint64_t nvtx_callbacks{0};
  /// Nanoseconds spent inside those callbacks (pbm's handlers, from entry to return), counted only
  /// while attached with PBM_CUPTI_TIME_CALLBACKS=1 (a measurement switch: two clock reads per
  /// callback); 0 if never timed. With the counts above: what pbm's own code costs per call, as
  /// against what an attached loop costs in all.
  std::uint64_t api_callback_ns{0};
  std::uint64_t nvtx_callback_ns{0};
};

/// Resolves `config` against the environment (PBM_MODE when config.mode is unset, PBM_NVTX_ALLOW
/// before config.allowed_ranges, PBM_CUPTI_ACTIVITY, PBM_CUPTI_MARKERS, PBM_CUPTI_PATH), applies it
/// and attaches CUPTI when config.attach. Throws std::invalid_argument for a bad PBM_MODE value or
/// config. Calling it again re-reads the environment, re-applies mode and allow-list, and attaches
/// if detached.
void start(Config const& config = {});
/// Flushes, detaches and stops counting (mode stays as set). Idempotent.
void stop() noexcept;
/// Turns the legacy default stream rule (Config::legacy_stream_rule) on or off, now and for later
/// attaches. Never throws; no CUDA call (it enables or disables CUPTI callbacks).
void set_legacy_stream_rule(bool on) noexcept;
/// Takes the CUPTI subscriber and enables activity; returns status().attached. Never throws.
bool attach() noexcept;
/// Flushes pending records and gives the CUPTI subscriber back (for another tool). Never throws.
void detach() noexcept;
/// Delivers every pending activity record to the policy and counters now (forced CUPTI flush).
/// Never throws; in assert mode it may abort on a violation it delivers.
void flush() noexcept;
Status status();
/// The process's counters: allocated at their first use (by start(), or here with the default cap),
/// never freed or replaced while the process runs.
Counters& counters();

/// The `rank` label value: env RANK, else LOCAL_RANK, else "". Read at each call, under the lock
/// with which start() sets NVTX_INJECTION64_PATH (never a racing getenv). exporters::collect()
/// adds it to every series.
std::string rank_from_env();

/// Sets NVTX_INJECTION64_PATH to the loaded libcupti (found with dladdr on a CUPTI symbol) when it
/// is unset, so user NVTX ranges reach CUPTI. NVTX reads it once, at the first NVTX call of the
/// process: call this (or start()) before any NVTX range, e.g. first thing in main().
/// Returns the value in effect ("" when unset and CUPTI is not built in).
std::string ensure_nvtx_injection();

}  // namespace pbm::telemetry
