#include "exit_codes.hpp"

#include <sys/wait.h>

namespace pbm::guard {

ExitDecision decide_exit(RunOutcome const& o) {
  if (o.program_status == kExitSkipped) return {kExitSkipped, "the program exited 77: skipped"};
  if (o.program_status != 0) {
    return {o.program_status, "the program failed (exit status " + std::to_string(o.program_status) +
                                  "); its status is passed through"};
  }
  if (o.markers == 0) {
    return {kExitNoMeasurement,
            "no process initialised CUDA (or the injection library did not load): nothing was measured"};
  }
  if (o.not_attached > 0) {
    return {kExitNoMeasurement, std::to_string(o.not_attached) +
                                    " process(es) ran without CUPTI detection (see the reason above): "
                                    "the counts are incomplete"};
  }
  if (o.reports == 0) {
    return {kExitNoMeasurement,
            "the injection loaded but no process wrote a report (killed, crashed, or left through _exit)"};
  }
  if (o.over_budget) return {kExitOverBudget, "over budget"};
  return {kExitOk, ""};
}

int shell_status(int wait_status) noexcept {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace pbm::guard
