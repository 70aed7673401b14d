// Which exit code wins.
#include "exit_codes.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <sys/wait.h>

namespace pbm::guard {
namespace {

TEST(ExitCodes, DistinctAndDocumented) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitOverBudget, 3);
  EXPECT_EQ(kExitNoMeasurement, 4);
}

TEST(ExitCodes, Precedence) {
  // within budget
  EXPECT_EQ(decide_exit({0, 1, 0, 1, false}).code, kExitOk);
  // over budget
  EXPECT_EQ(decide_exit({0, 2, 0, 2, true}).code, kExitOverBudget);
  // the program's failure wins over everything pbm-guard found
  EXPECT_EQ(decide_exit({1, 1, 0, 1, true}).code, 1);
  EXPECT_EQ(decide_exit({7, 0, 0, 0, false}).code, 7);
  EXPECT_EQ(decide_exit({128 + SIGABRT, 1, 0, 0, false}).code, 134);
  // nothing measured wins over a (vacuous) budget verdict
  ExitDecision const never = decide_exit({0, 0, 0, 0, false});
  EXPECT_EQ(never.code, kExitNoMeasurement);
  EXPECT_NE(never.reason.find("no process initialised CUDA"), std::string::npos);
  EXPECT_EQ(decide_exit({0, 2, 1, 2, true}).code, kExitNoMeasurement);   // one process without CUPTI
  EXPECT_EQ(decide_exit({0, 1, 0, 0, false}).code, kExitNoMeasurement);  // loaded, no report
}

// 77 is CTest's and automake's "skipped": passed through, and not called a failure.
TEST(ExitCodes, ProgramThatSkippedItselfIsReportedAsSkipped) {
  ExitDecision const skipped = decide_exit({77, 0, 0, 0, false});
  EXPECT_EQ(skipped.code, 77);
  EXPECT_EQ(skipped.reason, "the program exited 77: skipped");
  EXPECT_EQ(decide_exit({77, 1, 0, 1, true}).code, 77);  // wins over pbm-guard's verdicts, as a failure does
}

TEST(ExitCodes, ShellStatus) {
  EXPECT_EQ(shell_status(0), 0);
  EXPECT_EQ(shell_status(3 << 8), 3);
  EXPECT_EQ(shell_status(SIGKILL), 128 + SIGKILL);  // WIFSIGNALED encoding
}

}  // namespace
}  // namespace pbm::guard
