// The one place telemetry reads (and writes) the process environment. Private to telemetry/.
//
// start() resolves its Config against the environment here, once per call; the CUPTI source gets
// the result and never reads the environment itself. Every getenv/setenv of telemetry runs under
// one lock, so a scrape reading RANK never races start() setting NVTX_INJECTION64_PATH.
#pragma once

#include <pbm/telemetry/telemetry.hpp>

#include <optional>
#include <string>

namespace pbm::telemetry::detail {

/// Config with the environment applied, plus the knobs that exist only as environment variables.
struct Settings {
  Config config;  ///< mode always set; allowed_ranges = PBM_NVTX_ALLOW + config's; cupti_path resolved
  std::string cuda_home;                   ///< CUDA_HOME: where to look for libcupti
  std::optional<std::string> cupti_kinds;  ///< PBM_CUPTI_KINDS: activity kinds, for measurements
  bool nvtx_callbacks{true};               ///< PBM_CUPTI_NVTX_CALLBACKS=0: no range attribution
  /// PBM_CUPTI_DRIVER_CALLBACKS=0: no driver API callbacks (copies and syncs made through the driver
  /// API directly go unseen). For measuring what enabling a domain costs every call; never a default.
  bool driver_callbacks{true};
  /// PBM_CUPTI_TIME_CALLBACKS=1: time every callback pbm handles (two clock reads each) and add it up
  /// per domain (Status::api_callback_ns, nvtx_callback_ns). For splitting a loop's cost between
  /// pbm's handlers and the rest of an intercepted call; never a default.
  bool time_callbacks{false};
};

/// Resolves `config` against the environment:
///   PBM_MODE (when config.mode is unset), PBM_NVTX_ALLOW (comma-separated, before config's names),
///   PBM_CUPTI_ACTIVITY=1 / PBM_CUPTI_MARKERS=1 / PBM_LEGACY_STREAM=1 (or config's flags), PBM_CUPTI_PATH (when
///   config.cupti_path is empty), CUDA_HOME, PBM_CUPTI_KINDS, PBM_CUPTI_NVTX_CALLBACKS,
///   PBM_CUPTI_DRIVER_CALLBACKS, PBM_CUPTI_TIME_CALLBACKS.
/// Throws std::invalid_argument naming PBM_MODE and its value when it is not a mode.
Settings resolve(Config const& config);

/// Where to load libcupti from: {PBM_CUPTI_PATH, CUDA_HOME} now (for ensure_nvtx_injection()).
std::pair<std::string, std::string> cupti_search_from_environment();

/// NVTX_INJECTION64_PATH now ("" when unset).
std::string nvtx_injection();

/// NVTX_INJECTION64_PATH: set to `path` when unset or empty (and `path` is not empty); returns the
/// value in effect afterwards ("" when unset).
std::string set_nvtx_injection_if_unset(std::string const& path);

/// The `rank` label: RANK, else LOCAL_RANK, else "". Read at each call, under the lock.
std::string rank();

/// pthread_atfork handlers for the environment lock (telemetry.cpp registers them): a child never
/// inherits it held.
void environment_lock_before_fork() noexcept;
void environment_unlock_after_fork() noexcept;

}  // namespace pbm::telemetry::detail
