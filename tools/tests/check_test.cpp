// Comparing a run with a budget, and the diff table.
#include "check.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace pbm::guard {
namespace {

Observations regressed_run() {
  Observations o;
  o.memcpy[{"setup", "HtoD", "pinned", true}] = {1, 262144};
  o.memcpy[{"train_step", "DtoH", "pageable", false}] = {20, 80};
  o.memcpy[{"readback", "DtoH", "pinned", false}] = {1, 4};
  o.sync[{"train_step", "stream_synchronize", false}] = 20;
  o.sync[{"readback", "stream_synchronize", false}] = 1;
  o.sync[{"none", "stream_query", true}] = 5;
  return o;
}

TEST(Measure, KeysSelectWhatTheyName) {
  Observations const o = regressed_run();
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::memcpy, "total"), 22u);
  EXPECT_EQ(measure(o, Events::unexpected, std::nullopt, Category::memcpy, "total"), 21u);
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::memcpy, "DtoH"), 21u);
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::memcpy, "pinned"), 2u);
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::memcpy, "DtoH/pageable"), 20u);
  EXPECT_EQ(measure(o, Events::all, std::string("train_step"), Category::memcpy, "total"), 20u);
  EXPECT_EQ(measure(o, Events::all, std::string("nowhere"), Category::memcpy, "total"), 0u);
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::memcpy_bytes, "HtoD"), 262144u);
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::sync, "total"), 21u);  // queries do not block
  EXPECT_EQ(measure(o, Events::all, std::nullopt, Category::sync, "stream_query"), 5u);
  EXPECT_EQ(measure(o, Events::all, std::string("none"), Category::sync, "total"), 0u);
}

Budget demo_budget() {
  return parse_budget(R"({"schema": "pbm.budget/1",
    "limits": {"memcpy": {"total": 2, "HtoD": 1, "DtoH": 1, "pageable": 0}, "sync": {"total": 2}},
    "ranges": {"train_step": {"memcpy": {"total": 0}, "sync": {"total": 0}}}})",
                      "budget.json");
}

TEST(Check, CleanRunIsWithinBudget) {
  Observations o = regressed_run();
  o.memcpy.erase({"train_step", "DtoH", "pageable", false});
  o.sync.erase({"train_step", "stream_synchronize", false});
  CheckResult const r = check(demo_budget(), o);
  EXPECT_TRUE(r.within());
  EXPECT_EQ(r.checks.size(), 7u);
  EXPECT_EQ(format_check(r), "pbm-guard: within budget (7 limits checked)\n");
}

TEST(Check, RegressionIsNamedByRange) {
  CheckResult const r = check(demo_budget(), regressed_run());
  EXPECT_FALSE(r.within());
  EXPECT_EQ(r.over_count(), 6u);  // all but overall HtoD
  std::string const text = format_check(r);
  EXPECT_NE(text.find("OVER BUDGET: 6 of 7 limits exceeded"), std::string::npos) << text;
  EXPECT_NE(text.find("range train_step  memcpy total"), std::string::npos) << text;
  EXPECT_NE(text.find("range train_step  sync total"), std::string::npos) << text;
  EXPECT_NE(text.find("where"), std::string::npos);
  EXPECT_NE(text.find("+20"), std::string::npos) << text;
}

TEST(Check, BytesAreShownAsBytes) {
  Budget const b = parse_budget(R"({"limits": {"memcpy_bytes": {"HtoD": 1024}}})", "b");
  std::string const text = format_check(check(b, regressed_run()));
  EXPECT_NE(text.find("memcpy_bytes HtoD"), std::string::npos) << text;
  EXPECT_NE(text.find("1.0 KiB"), std::string::npos) << text;
  EXPECT_NE(text.find("256.0 KiB"), std::string::npos) << text;
}

TEST(Check, UnexpectedOnlyBudgetSaysSo) {
  Budget const b = parse_budget(R"({"events": "unexpected", "limits": {"memcpy": {"HtoD": 0}}})", "b");
  CheckResult const r = check(b, regressed_run());
  EXPECT_TRUE(r.within());  // the HtoD copy was expected
  EXPECT_NE(format_check(r).find("note: the budget counts unexpected events only"), std::string::npos);
}

TEST(Check, SumsThatWouldWrapSaturateAndFailABudgetOfZero) {
  // Two processes with 2^63 DtoH copies (and bytes, and syncs) each: every sum wrapped to 0 and
  // the run passed a budget of 0. Summed here both ways: merged processes, and two series (ranges)
  // that one key adds up.
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  ProcessReport a, b;
  a.observed.memcpy[{"step", "DtoH", "pageable", false}] = {kHalf, kHalf};
  a.observed.sync[{"step", "stream_synchronize", false}] = kHalf;
  b.observed.memcpy[{"eval", "DtoH", "pinned", false}] = {kHalf, kHalf};
  b.observed.sync[{"eval", "stream_synchronize", false}] = kHalf;
  Observations const seen = merge({a, a, b});  // "step" twice: merging also saturates
  EXPECT_EQ(seen.memcpy.at({"step", "DtoH", "pageable", false}).count, kMax);
  EXPECT_EQ(measure(seen, Events::all, std::nullopt, Category::memcpy, "DtoH"), kMax);
  EXPECT_EQ(measure(seen, Events::all, std::nullopt, Category::memcpy_bytes, "total"), kMax);
  EXPECT_EQ(measure(seen, Events::all, std::nullopt, Category::sync, "total"), kMax);
  EXPECT_EQ(measure(merge({a, b}), Events::all, std::nullopt, Category::memcpy, "total"), kMax);

  Budget const zero = parse_budget(
      R"({"limits": {"memcpy": {"total": 0, "DtoH": 0}, "memcpy_bytes": {"total": 0}, "sync": {"total": 0}}})", "b");
  CheckResult const r = check(zero, merge({a, b}));
  EXPECT_FALSE(r.within());
  EXPECT_EQ(r.over_count(), 4u);
  std::string const text = format_check(r);
  EXPECT_NE(text.find("memcpy total"), std::string::npos) << text;
  EXPECT_NE(text.find("  18446744073709551615  +18446744073709551615\n"), std::string::npos) << text;
  EXPECT_NE(text.find("saturated"), std::string::npos) << text;
  // The largest limit there is still holds a saturated count: it may have been exactly that.
  Budget const max = parse_budget(R"({"limits": {"memcpy": {"total": 18446744073709551615}}})", "b");
  EXPECT_TRUE(check(max, merge({a, b})).within());
}

}  // namespace
}  // namespace pbm::guard
