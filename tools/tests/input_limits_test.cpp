// Hostile and extreme input to pbm-guard's readers: numbers beyond what JSON parsers hold, counts
// near 2^64, label values that are both a direction and a memory kind. Each is either rejected with
// the file named (exit 2 in the CLI, never "internal error") or handled without wrapping around.
// Cases found by the fuzz targets in tests/fuzz (budget, report).
#include "budget.hpp"
#include "check.hpp"
#include "report.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

namespace pbm::guard {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

template <class Error, class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (Error const& e) {
    return e.what();
  } catch (std::exception const& e) {
    return std::string("(wrong exception type) ") + e.what();
  }
  return "(no error)";
}

std::string budget_error(std::string const& text) {
  return error_of<BudgetError>([&] { parse_budget(text, "b.json"); });
}
std::string report_error(std::string const& text) {
  return error_of<ReportError>([&] { parse_reports(text, "r.json"); });
}

TEST(BudgetLimits, NumberBeyondADoubleIsABudgetErrorNamingTheFile) {
  // nlohmann throws out_of_range (not parse_error) for 1e400: it must still be a BudgetError, or
  // `pbm-guard run --budget` ends in "internal error" with exit 1 instead of a usage error.
  std::string const e = budget_error(R"({"limits": {"memcpy": {"total": 1e400}}})");
  EXPECT_EQ(e.rfind("b.json:", 0), 0u) << e;
  EXPECT_NE(e.find("1e400"), std::string::npos) << e;
}

TEST(BudgetLimits, IntegersBeyond64BitsAreRejectedNamingTheField) {
  std::string const e = budget_error(R"({"limits": {"memcpy": {"total": 18446744073709551616}}})");
  EXPECT_EQ(e.rfind("b.json:1:", 0), 0u) << e;
  EXPECT_NE(e.find("field limits.memcpy.total"), std::string::npos) << e;
  Budget const b = parse_budget(R"({"limits": {"memcpy": {"total": 18446744073709551615}}})", "b.json");
  EXPECT_EQ(b.overall.memcpy.at("total"), kMax);
}

TEST(BudgetLimits, EmbeddedNulAndDeepNestingAreSyntaxErrors) {
  EXPECT_EQ(budget_error(std::string("{\"description\": \"a\0b\"}", 22)).rfind("b.json:1:", 0), 0u);
  std::string const deep = std::string(100000, '[') + std::string(100000, ']');  // no stack overflow
  EXPECT_NE(budget_error(deep).find("a budget is a JSON object"), std::string::npos);
}

TEST(ReportLimits, NumberBeyondADoubleIsAReportErrorNamingTheFile) {
  std::string const e = report_error(R"({"schema": "pbm.report/1", "metrics": {}, "generated_unix_ms": 1e400})");
  EXPECT_EQ(e.rfind("r.json", 0), 0u) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST(ReportLimits, CollectRunFilesNeverThrows) {
  char tmpl[] = "/tmp/pbm-guard-limits-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string const dir = tmpl;
  std::string const bad = dir + "/report-7.json";
  std::ofstream(bad) << R"({"schema": "pbm.report/1", "metrics": {}, "totals": {"memcpy_expected": 1e999}})";
  RunFiles files;
  EXPECT_NO_THROW(files = collect_run_files(dir));
  ASSERT_EQ(files.problems.size(), 1u);
  EXPECT_NE(files.problems[0].find("report-7.json"), std::string::npos) << files.problems[0];
  std::remove(bad.c_str());
  rmdir(dir.c_str());
}

TEST(SlackLimits, CountsNear2To64SaturateInsteadOfWrapping) {
  // A limit that wraps to a small number makes the run its baseline came from fail that baseline
  // (and converting a double >= 2^64 to an integer is undefined behaviour).
  EXPECT_EQ(parse_slack("1").apply(kMax), kMax);
  EXPECT_EQ(parse_slack("10%").apply(kMax), kMax);
  EXPECT_EQ(parse_slack("100%").apply(kMax / 2 + 1), kMax);
  EXPECT_GE(parse_slack("0%").apply(kMax - 1), kMax - 1);  // never below what was seen
  EXPECT_GE(parse_slack("5").apply(kMax - 3), kMax - 3);
}

TEST(BaselineLimits, ARunIsWithinItsOwnBaseline) {
  // "unknown" is both a direction and a memory kind, and a budget key "unknown" counts both.
  Observations seen;
  seen.memcpy[{"step", "DtoH", "unknown", false}] = {3, 12};
  seen.memcpy[{"step", "unknown", "pinned", false}] = {1, 4};
  seen.memcpy[{"none", "unknown", "unknown", false}] = {2, 8};
  seen.sync[{"step", "stream_synchronize", false}] = kMax;
  for (Slack slack : {Slack{}, parse_slack("1"), parse_slack("10%")}) {
    Budget const written = parse_budget(budget_json(baseline_budget(seen, Events::all, slack, "d")), "baseline.json");
    CheckResult const r = check(written, seen);
    EXPECT_TRUE(r.within()) << format_check(r);
  }
}

}  // namespace
}  // namespace pbm::guard
