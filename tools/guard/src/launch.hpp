// Running the program under the injection: its environment, finding libpbm_inject.so, spawning
// and waiting, and the temporary report directory.
// Thread-safety: spawn_and_wait installs signal handlers; call it from one thread at a time.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pbm::guard {

/// Environment variables the injection library reads (tools/inject/inject.cpp).
inline constexpr char const* kReportDirEnv = "PBM_GUARD_REPORT_DIR";
/// Overrides where pbm-guard looks for the injection library.
inline constexpr char const* kInjectLibEnv = "PBM_GUARD_INJECT_LIB";

struct GuardSettings {
  std::string inject_library;              ///< absolute path of libpbm_inject.so
  std::string nvtx_injection;              ///< libcupti path for NVTX_INJECTION64_PATH; "" = none found
  std::string report_dir;
  std::optional<std::string> mode;         ///< PBM_MODE for the program (count, warn, assert)
  std::optional<std::string> prometheus;   ///< PBM_PROMETHEUS_ADDR for the program
};

/// `base` (KEY=VALUE entries) with pbm-guard's variables set: CUDA_INJECTION64_PATH,
/// NVTX_INJECTION64_PATH and PBM_CUPTI_PATH (unless the user set them), PBM_GUARD_REPORT_DIR,
/// PBM_MODE and PBM_PROMETHEUS_ADDR when given. Children of the program inherit all of them.
/// Lines for the user (e.g. a CUDA_INJECTION64_PATH that is replaced) go to `notes`.
std::vector<std::string> child_environment(std::vector<std::string> const& base, GuardSettings const& settings,
                                           std::vector<std::string>* notes);

/// The current process environment as KEY=VALUE entries.
std::vector<std::string> current_environment();

/// libpbm_inject.so for the pbm-guard binary at `exe_path`: $PBM_GUARD_INJECT_LIB, else beside the
/// binary (build tree), else ../<libdir>/ (install tree). Returns an absolute path, or "" with the
/// places searched in `searched`.
std::string find_inject_library(std::string const& exe_path, std::string* searched);

/// This binary's path (/proc/self/exe).
std::string self_exe();

/// Runs argv[0] (searched in PATH) with `env`, waits, and returns the shell-style status (exit
/// code, 128 + signal; 127 when not found, 126 when not executable, with `error` set). SIGINT and
/// SIGQUIT reach the program from the terminal and pbm-guard waits for it; SIGTERM and SIGHUP
/// sent to pbm-guard are forwarded to the program.
int spawn_and_wait(std::vector<std::string> const& argv, std::vector<std::string> const& env, std::string* error);

/// A fresh private directory under $TMPDIR (or /tmp). "" and `error` on failure.
std::string make_temp_dir(std::string* error);
/// Removes the files directly inside `dir`, then `dir`. Never throws.
void remove_dir(std::string const& dir) noexcept;

}  // namespace pbm::guard
