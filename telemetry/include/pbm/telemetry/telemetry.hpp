// pbm telemetry: live detection of unexpected device-to-host copies, pageable copies and host
// synchronisations through CUPTI, judged by pbm::telemetry's policy and counted.
//
// Lifecycle: start() once (reads env, attaches CUPTI), stop() at the end (also done at exit).
// detach()/attach() hand CUPTI to another tool (torch.profiler) and take it back at run time.
// Nothing here throws except start() on an invalid configuration; CUPTI failures are reported by
// status() and logged once, and the application keeps running.
// Thread-safety: all functions are thread-safe (serialised internally); do not call them from
// inside a CUPTI callback.
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
  /// Distinct NVTX range names used as label values; the rest fold into "other". Fixed by the
  /// first start() of the process (counters are allocated once).
  std::size_t range_label_cap{Counters::kDefaultRangeCap};
  /// Activity buffer pool: count x size bytes, allocated once; when all are in use CUPTI drops
  /// records and the drop is counted.
  std::size_t buffer_count{8};
  std::size_t buffer_size{1u << 20};
  /// Call ensure_nvtx_injection() in start() (effective only if no NVTX call happened yet).
  bool set_nvtx_injection{true};
  /// Attach CUPTI in start(); false: counters and policy only, attach() later.
  bool attach{true};
  /// Also collect CUPTI MEMCPY, MEMSET and SYNCHRONIZATION activity records (env PBM_CUPTI_ACTIVITY=1).
  /// Off by default: copies are judged from their API calls' parameters and syncs at their calls,
  /// which costs little; activity records made CUPTI trace every kernel launch (an H100 push/pop
  /// loop in count mode went from 1.07x to 1.21x the telemetry-off loop). Turn it on for copies the
  /// calls cannot describe (3D, array and batch copies; memcpy nodes of CUDA graphs; their direction
  /// otherwise shows as "unknown") and for memset counts.
  bool activity_records{false};
  /// Also collect CUPTI MARKER activity (NVTX ranges as Nsight sees them: observed_ranges()).
  /// Off by default: range attribution comes from NVTX callbacks at call time, and MARKER records
  /// cost more per NVTX range than the rest of telemetry (env PBM_CUPTI_MARKERS=1 turns it on).
  bool marker_activity{false};
};

struct Status {
  bool started{false};
  bool attached{false};         ///< CUPTI subscriber held and activity enabled
  bool subscriber_taken{false}; ///< stepped aside for another CUPTI client
  bool cupti_built{false};      ///< compiled with CUPTI support (PBM_HAVE_CUPTI)
  Mode mode{Mode::off};
  std::string reason;           ///< one line: why not attached, or "attached"
};

/// Reads env (PBM_MODE, PBM_NVTX_ALLOW), applies `config` and attaches CUPTI when config.attach.
/// Throws std::invalid_argument for a bad PBM_MODE value or config. Calling it again re-applies
/// mode and allow-list and attaches if detached.
void start(Config const& config = {});
/// Flushes, detaches and stops counting (mode stays as set). Idempotent.
void stop() noexcept;
/// Takes the CUPTI subscriber and enables activity; returns status().attached. Never throws.
bool attach() noexcept;
/// Flushes pending records and gives the CUPTI subscriber back (for another tool). Never throws.
void detach() noexcept;
/// Delivers every pending activity record to the policy and counters now (forced CUPTI flush).
/// Never throws; in assert mode it may abort on a violation it delivers.
void flush() noexcept;
Status status();
/// The process's counters (allocated at first use with the default cap, or by start()).
Counters& counters();

/// Sets NVTX_INJECTION64_PATH to the loaded libcupti (found with dladdr on a CUPTI symbol) when it
/// is unset, so user NVTX ranges reach CUPTI. NVTX reads it once, at the first NVTX call of the
/// process: call this (or start()) before any NVTX range, e.g. first thing in main().
/// Returns the value in effect ("" when unset and CUPTI is not built in).
std::string ensure_nvtx_injection();

}  // namespace pbm::telemetry
