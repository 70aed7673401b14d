// pbm-guard's exit codes and the order in which they win. Documented in tools/README.md.
//
//   1. usage error or malformed budget/report               -> 2 (before the program runs)
//   2. the program failed (non-zero exit, or a signal)      -> its own code (128 + signal; 126/127
//                                                              when it could not be started); 77,
//                                                              the CTest/automake "skipped", is
//                                                              reported as skipped, not failed
//   3. no measurement: no process initialised CUDA, the injection did not load, CUPTI detection
//      did not attach in a process, or no process wrote a report              -> 4
//   4. over budget                                          -> 3
//   5. otherwise                                            -> 0
//
// A failing program wins over pbm-guard's own verdicts because it is the first thing to fix, and
// CI then reports the test's failure, not a budget diff computed from a run that did not finish.
#pragma once

#include <cstddef>
#include <string>

namespace pbm::guard {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitOverBudget = 3;
inline constexpr int kExitNoMeasurement = 4;
/// A program's "I skipped myself" (CTest SKIP_RETURN_CODE, automake): passed through like any status.
inline constexpr int kExitSkipped = 77;

struct RunOutcome {
  int program_status{0};        ///< exit code, or 128 + signal number
  std::size_t markers{0};       ///< processes in which the injection library loaded
  std::size_t not_attached{0};  ///< of those, processes where CUPTI detection did not attach
  std::size_t reports{0};       ///< reports written (one per process that exited normally)
  bool over_budget{false};
};

struct ExitDecision {
  int code{kExitOk};
  std::string reason;  ///< one line for the user
};

ExitDecision decide_exit(RunOutcome const& outcome);

/// The exit status of a waited-for child (waitpid status) as a shell reports it: the exit code,
/// or 128 + the signal number.
int shell_status(int wait_status) noexcept;

}  // namespace pbm::guard
