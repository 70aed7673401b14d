// Budget files: parsing (malformed ones included), writing, slack and baselines.
#include "budget.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace pbm::guard {
namespace {

std::string error_of(std::string const& text) {
  try {
    parse_budget(text, "b.json");
  } catch (BudgetError const& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Budget, ParsesEveryKind) {
  Budget const b = parse_budget(R"({
    "schema": "pbm.budget/1", "description": "demo", "events": "unexpected",
    "limits": {"memcpy": {"total": 4, "DtoH": 1, "pageable": 0, "DtoH/pinned": 1},
               "memcpy_bytes": {"total": 1048576}, "sync": {"total": 2, "stream_synchronize": 1}},
    "ranges": {"train_step": {"memcpy": {"total": 0}, "sync": {"total": 0}}}})",
                                "b.json");
  EXPECT_EQ(b.description, "demo");
  EXPECT_EQ(b.events, Events::unexpected);
  EXPECT_EQ(b.overall.memcpy.at("total"), 4u);
  EXPECT_EQ(b.overall.memcpy.at("DtoH/pinned"), 1u);
  EXPECT_EQ(b.overall.memcpy_bytes.at("total"), 1048576u);
  EXPECT_EQ(b.overall.sync.at("stream_synchronize"), 1u);
  EXPECT_EQ(b.ranges.at("train_step").memcpy.at("total"), 0u);
  EXPECT_EQ(b.ranges.at("train_step").sync.at("total"), 0u);
}

TEST(Budget, EmptyObjectIsValidAndCountsEverything) {
  Budget const b = parse_budget("{}", "b.json");
  EXPECT_EQ(b.events, Events::all);
  EXPECT_TRUE(b.overall.empty());
  EXPECT_TRUE(b.ranges.empty());
}

TEST(Budget, SyntaxErrorNamesLineAndColumn) {
  std::string const e = error_of("{\n  \"limits\": {\"memcpy\": {\"total\": 2,}}\n}\n");
  EXPECT_EQ(e.rfind("b.json:2:", 0), 0u) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST(Budget, TruncatedFileIsASyntaxError) {
  std::string const e = error_of("{\n  \"limits\": {\n");
  EXPECT_EQ(e.rfind("b.json:3:", 0), 0u) << e;
}

TEST(Budget, UnknownKeysAreNamedWithTheirLine) {
  std::string const text = "{\n  \"ranges\": {\n    \"train_step\": {\n      \"memcpy\": {\"DtoHH\": 0}\n    }\n  }\n}\n";
  std::string const e = error_of(text);
  EXPECT_EQ(e.rfind("b.json:4:18: field ranges.train_step.memcpy.DtoHH: unknown key", 0), 0u) << e;
  EXPECT_NE(error_of(R"({"limit": {}})").find("field limit: unknown key (expected schema"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"copies": {}}})").find("field limits.copies: unknown key"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"sync": {"cudaStreamSynchronize": 0}}})").find("expected total or an API"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"memcpy": {"DtoH/fast": 0}}})").find("direction/memory"), std::string::npos);
}

TEST(Budget, NegativeFractionalAndWrongTypesAreRejected) {
  EXPECT_NE(error_of(R"({"limits": {"memcpy": {"total": -1}}})").find("a limit is a non-negative integer, got a negative number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"memcpy": {"total": 1.5}}})").find("got a fractional number"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"memcpy": {"total": "3"}}})").find("got a string"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"memcpy": {"total": null}}})").find("got null"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": {"memcpy": 3}})").find("field limits.memcpy: must be an object"), std::string::npos);
  EXPECT_NE(error_of(R"({"limits": []})").find("field limits: must be an object"), std::string::npos);
  EXPECT_NE(error_of(R"({"ranges": {"x": true}})").find("field ranges.x: must be an object"), std::string::npos);
  EXPECT_NE(error_of(R"([1, 2])").find("a budget is a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"events": "some"})").find("field events: must be \"all\" or \"unexpected\""), std::string::npos);
  EXPECT_NE(error_of(R"({"schema": "pbm.budget/2"})").find("field schema: must be \"pbm.budget/1\""), std::string::npos);
  EXPECT_NE(error_of(R"({"ranges": {"": {}}})").find("empty range name"), std::string::npos);
}

TEST(Budget, DuplicateKeysAreRejectedAtAnyDepth) {
  // nlohmann keeps the last of two equal keys (so this was a limit of 1000), other readers the
  // first: the budget says two things, and pbm-guard will not guess which was meant.
  std::string const text = "{\n  \"limits\": {\"memcpy\": {\n    \"total\": 0,\n    \"total\": 1000}}\n}\n";
  EXPECT_EQ(error_of(text), "b.json:4:5: field limits.memcpy.total: duplicate key \"total\" (first at 3:5)");
  EXPECT_EQ(error_of(R"({"total":0, "total":1000})"), "b.json:1:13: field total: duplicate key \"total\" (first at 1:2)");
  EXPECT_NE(error_of(R"({"limits": {}, "limits": {"sync": {"total": 9}}})").find("field limits: duplicate key \"limits\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"schema": "pbm.budget/1", "schema": "pbm.budget/1"})").find("field schema: duplicate key"),
            std::string::npos);  // even with equal values
  EXPECT_NE(error_of(R"({"ranges": {"train_step": {"memcpy": {"total": 0}}, "train_step": {"sync": {"total": 0}}}})")
                .find("field ranges.train_step: duplicate key \"train_step\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"ranges": {"a b": {"sync": {"total": 0}, "sync": {"total": 1}}}})")
                .find("field ranges.\"a b\".sync: duplicate key \"sync\""),
            std::string::npos);
  // Keys of a value that is not a budget object are checked too; the path counts array elements.
  EXPECT_NE(error_of(R"({"limits": [{"x": 1}, {"x": 1, "x": 2}]})").find("field limits[1].x: duplicate key \"x\""),
            std::string::npos);
  // The same key in different objects, and an object that ends before a key repeats, are fine.
  Budget const b = parse_budget(R"({"limits": {"memcpy": {"total": 1}, "sync": {"total": 2}},
    "ranges": {"a": {"memcpy": {"total": 3}}, "b": {"memcpy": {"total": 4}}}})",
                                "b.json");
  EXPECT_EQ(b.overall.sync.at("total"), 2u);
  EXPECT_EQ(b.ranges.at("b").memcpy.at("total"), 4u);
}

TEST(Budget, UnreadableFileIsABudgetError) {
  EXPECT_THROW(load_budget("/nonexistent/budget.json"), BudgetError);
}

TEST(Budget, WrittenBudgetParsesBack) {
  Budget b;
  b.description = "round trip";
  b.events = Events::unexpected;
  b.overall.memcpy = {{"total", 3}, {"DtoH", 1}};
  b.overall.sync = {{"total", 1}};
  b.ranges["train_step"].memcpy = {{"total", 0}};
  Budget const back = parse_budget(budget_json(b), "written");
  EXPECT_EQ(back.description, "round trip");
  EXPECT_EQ(back.events, Events::unexpected);
  EXPECT_EQ(back.overall.memcpy, b.overall.memcpy);
  EXPECT_EQ(back.overall.sync, b.overall.sync);
  EXPECT_EQ(back.ranges.at("train_step").memcpy, b.ranges.at("train_step").memcpy);
  EXPECT_NE(budget_json(b).find("\"schema\": \"pbm.budget/1\""), std::string::npos);
}

TEST(Slack, CountsAndPercentagesNeverLoosenZero) {
  EXPECT_EQ(parse_slack("3").apply(10), 13u);
  EXPECT_EQ(parse_slack("3").apply(0), 0u);
  EXPECT_EQ(parse_slack("10%").apply(10), 11u);
  EXPECT_EQ(parse_slack("10%").apply(1), 2u);  // rounded up
  EXPECT_EQ(parse_slack("0%").apply(7), 7u);
  EXPECT_THROW(parse_slack("-1"), std::invalid_argument);
  EXPECT_THROW(parse_slack("1.5"), std::invalid_argument);
  EXPECT_THROW(parse_slack("ten"), std::invalid_argument);
  EXPECT_THROW(parse_slack("%"), std::invalid_argument);
}

Observations sample_run() {
  Observations o;
  o.memcpy[{"setup", "HtoD", "pinned", true}] = {1, 4096};
  o.memcpy[{"readback", "DtoH", "pinned", false}] = {1, 4};
  o.sync[{"readback", "stream_synchronize", false}] = 1;
  o.sync[{"none", "stream_query", true}] = 7;
  return o;
}

TEST(Baseline, BudgetsWhatWasSeen) {
  Budget const b = baseline_budget(sample_run(), Events::all, Slack{}, "d", {"train_step"});
  EXPECT_EQ(b.overall.memcpy.at("total"), 2u);
  EXPECT_EQ(b.overall.memcpy.at("HtoD"), 1u);
  EXPECT_EQ(b.overall.memcpy.at("DtoH/pinned"), 1u);
  EXPECT_EQ(b.overall.memcpy.at("pinned"), 2u);
  EXPECT_EQ(b.overall.sync.at("total"), 1u);  // the query does not block the host
  EXPECT_EQ(b.overall.sync.at("stream_query"), 7u);
  EXPECT_EQ(b.ranges.at("readback").memcpy.at("DtoH"), 1u);
  EXPECT_EQ(b.ranges.at("readback").sync.at("total"), 1u);
  EXPECT_EQ(b.ranges.at("setup").sync.at("total"), 0u);
  EXPECT_EQ(b.ranges.at("train_step").memcpy.at("total"), 0u);  // asked for, though nothing was seen
  EXPECT_EQ(b.ranges.at("train_step").sync.at("total"), 0u);
}

TEST(Baseline, UnexpectedOnlyAndSlack) {
  Budget const b = baseline_budget(sample_run(), Events::unexpected, parse_slack("2"), "d");
  EXPECT_EQ(b.events, Events::unexpected);
  EXPECT_EQ(b.overall.memcpy.at("total"), 3u);  // 1 unexpected + 2
  EXPECT_EQ(b.overall.memcpy.count("HtoD"), 0u);
  EXPECT_EQ(b.ranges.count("setup"), 0u);
  EXPECT_EQ(b.overall.sync.count("stream_query"), 0u);  // expected: not in an unexpected-only budget
}

TEST(Baseline, SumsSaturateInsteadOfWrapping) {
  // Two series of 2^63 copies: their sum wrapped, and the baseline allowed 0 copies (zero limits
  // get no slack) for a run that made 2^64 of them.
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  Observations seen;
  seen.memcpy[{"step", "DtoH", "pageable", false}] = {kHalf, kHalf};
  seen.memcpy[{"eval", "DtoH", "pageable", false}] = {kHalf, kHalf};
  seen.sync[{"step", "stream_synchronize", false}] = kHalf;
  seen.sync[{"eval", "device_synchronize", false}] = kHalf;
  Budget const b = baseline_budget(seen, Events::all, parse_slack("2"), "d");
  EXPECT_EQ(b.overall.memcpy.at("total"), kMax);
  EXPECT_EQ(b.overall.memcpy.at("DtoH/pageable"), kMax);
  EXPECT_EQ(b.overall.sync.at("total"), kMax);
  EXPECT_EQ(b.ranges.at("step").memcpy.at("total"), kHalf + 2);
}

TEST(Baseline, EmptyRunGivesZeroTotals) {
  Budget const b = baseline_budget({}, Events::all, parse_slack("50%"), "d");
  EXPECT_EQ(b.overall.memcpy.at("total"), 0u);
  EXPECT_EQ(b.overall.sync.at("total"), 0u);
}

}  // namespace
}  // namespace pbm::guard
