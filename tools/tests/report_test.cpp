// Reports: pbm.report/1 parsing, run files, markers, merging and the report directory.
#include "report.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

#ifndef PBM_GUARD_TEST_DATA
#error "PBM_GUARD_TEST_DATA must name tools/tests/data"
#endif

namespace pbm::guard {
namespace {

std::string const kData = PBM_GUARD_TEST_DATA;

std::string minimal_report(long pid, std::string const& range, std::uint64_t dtoh, bool attached = true) {
  return R"({"schema": "pbm.report/1", "process": {"pid": )" + std::to_string(pid) +
         R"(, "argv0": "prog", "rank": "1"},
  "telemetry": {"started": true, "attached": )" + (attached ? "true" : "false") +
         R"(, "mode": "count", "reason": "x"},
  "some_future_key": {"ignored": true},
  "metrics": {"pbm_memcpy_total": {"type": "counter", "samples": [
      {"labels": {"direction": "DtoH", "memory": "pageable", "expected": "false", "range": ")" + range +
         R"("}, "value": )" + std::to_string(dtoh) + R"(}]},
    "pbm_sync_total": {"type": "counter", "samples": [
      {"labels": {"api": "memcpy_sync", "expected": "false", "range": ")" + range + R"("}, "value": 2}]}}})";
}

std::string report_error(std::string const& text) {
  try {
    parse_reports(text, "r.json");
  } catch (ReportError const& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Report, ParsesTheCommittedSample) {
  std::vector<ProcessReport> const reports = load_reports(kData + "/report_train.json");
  ASSERT_EQ(reports.size(), 1u);
  ProcessReport const& r = reports[0];
  EXPECT_EQ(r.pid, 4242);
  EXPECT_EQ(r.argv0, "./guard_train_loop");
  EXPECT_EQ(r.rank, "");
  EXPECT_TRUE(r.telemetry_attached);
  EXPECT_EQ(r.telemetry_mode, "count");
  CopyCount const c = r.observed.memcpy.at({"train_step", "DtoH", "pageable", false});
  EXPECT_EQ(c.count, 20u);
  EXPECT_EQ(c.bytes, 80u);
  EXPECT_EQ(r.observed.memcpy.count({"none", "HtoD", "pinned", false}), 0u);  // zero series dropped
  EXPECT_EQ(r.observed.sync.at({"readback", "stream_synchronize", false}), 1u);
  EXPECT_EQ(r.observed.sync.at({"none", "stream_query", true}), 5u);
  ASSERT_EQ(r.sites.size(), 2u);
  EXPECT_EQ(r.sites[0].where, "cudaMemcpyAsync");
  EXPECT_EQ(r.sites[0].count, 20u);
}

TEST(Report, IgnoresUnknownKeysAndReadsRank) {
  std::vector<ProcessReport> const r = parse_reports(minimal_report(7, "step", 3), "r.json");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].rank, "1");
  EXPECT_EQ(r[0].observed.memcpy.at({"step", "DtoH", "pageable", false}).count, 3u);
}

TEST(Report, MalformedReportsAreNamed) {
  EXPECT_NE(report_error("{\n\"schema\": \n").find("r.json:3:1: not valid JSON"), std::string::npos)
      << report_error("{\n\"schema\": \n");
  EXPECT_NE(report_error(R"({"schema": "pbm.budget/1"})").find("is not pbm.report/1"), std::string::npos);
  EXPECT_NE(report_error(R"({"schema": "pbm.report/1"})").find("no \"metrics\" object"), std::string::npos);
  EXPECT_NE(report_error(R"({"schema": "pbm.report/1", "metrics": {"pbm_sync_total": {"samples": 3}}})")
                .find("samples is missing or not an array"),
            std::string::npos);
  EXPECT_NE(report_error(R"({"schema": "pbm.report/1", "metrics": {"pbm_sync_total": {"samples": [{"labels": {}, "value": -1}]}}})")
                .find("lacks labels or an unsigned value"),
            std::string::npos);
  EXPECT_THROW(load_reports("/nonexistent/report.json"), ReportError);
}

TEST(Report, MergeSumsProcesses) {
  std::vector<ProcessReport> reports = parse_reports(minimal_report(1, "step", 3), "a");
  std::vector<ProcessReport> more = parse_reports(minimal_report(2, "step", 4), "b");
  reports.insert(reports.end(), more.begin(), more.end());
  Observations const all = merge(reports);
  EXPECT_EQ(all.memcpy.at({"step", "DtoH", "pageable", false}).count, 7u);
  EXPECT_EQ(all.sync.at({"step", "memcpy_sync", false}), 4u);
}

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;

TEST(Report, MergeOfTwoProcessesSaturatesInsteadOfWrapping) {
  // 2^63 + 2^63 wrapped to 0: a run of that many copies passed a budget of 0.
  std::vector<ProcessReport> reports = parse_reports(minimal_report(1, "step", kHalf), "a");
  std::vector<ProcessReport> more = parse_reports(minimal_report(2, "step", kHalf), "b");
  reports.insert(reports.end(), more.begin(), more.end());
  EXPECT_EQ(merge(reports).memcpy.at({"step", "DtoH", "pageable", false}).count, kMax);
}

TEST(Report, SeriesOfOneReportWithTheSameKeySaturate) {
  // Two series that differ only in a label pbm-guard does not key on (here "device") add up into
  // one count, also within one report.
  std::string const labels = R"("direction": "DtoH", "memory": "pageable", "expected": "false", "range": "step")";
  std::string const text = R"({"schema": "pbm.report/1", "metrics": {
    "pbm_memcpy_total": {"samples": [
      {"labels": {)" + labels + R"(, "device": "0"}, "value": 9223372036854775808},
      {"labels": {)" + labels + R"(, "device": "1"}, "value": 9223372036854775808}]},
    "pbm_memcpy_bytes_total": {"samples": [
      {"labels": {)" + labels + R"(, "device": "0"}, "value": 9223372036854775808},
      {"labels": {)" + labels + R"(, "device": "1"}, "value": 9223372036854775809}]},
    "pbm_sync_total": {"samples": [
      {"labels": {"api": "memcpy_sync", "expected": "false", "range": "step", "device": "0"}, "value": 9223372036854775808},
      {"labels": {"api": "memcpy_sync", "expected": "false", "range": "step", "device": "1"}, "value": 9223372036854775808}]}}})";
  std::vector<ProcessReport> const r = parse_reports(text, "r.json");
  ASSERT_EQ(r.size(), 1u);
  CopyCount const c = r[0].observed.memcpy.at({"step", "DtoH", "pageable", false});
  EXPECT_EQ(c.count, kMax);
  EXPECT_EQ(c.bytes, kMax);
  EXPECT_EQ(r[0].observed.sync.at({"step", "memcpy_sync", false}), kMax);
}

TEST(Report, DuplicateKeysAreRejectedNamingThePath) {
  // nlohmann keeps the last of two equal keys; another reader may keep the first. Either way the
  // file says two things, so it is rejected rather than guessed at.
  std::string const e = report_error(R"({"schema": "pbm.report/1", "metrics": {"pbm_sync_total": {"samples": [
    {"labels": {"api": "memcpy_sync", "range": "a", "range": "b"}, "value": 1}]}}})");
  EXPECT_EQ(e, "r.json:2:53: field metrics.pbm_sync_total.samples[0].labels.range: duplicate key \"range\" "
               "(first at 2:39)");
  EXPECT_NE(report_error(R"({"schema": "pbm.report/1", "schema": "pbm.report/1", "metrics": {}})").find("duplicate key"),
            std::string::npos);
  // The same key in different objects is fine.
  EXPECT_NO_THROW(parse_reports(minimal_report(1, "step", 3), "r.json"));
}

TEST(Report, RunFileHoldsEveryProcessAndParsesBack) {
  RunFiles files;
  files.report_texts = {minimal_report(1, "a", 1), minimal_report(2, "b", 2)};
  files.markers.push_back({"m", 1, 0, "prog", true, "attached", "count"});
  std::string const run = run_file_json({"prog", "--x"}, 0, files);
  std::vector<ProcessReport> const back = parse_reports(run, "run.json");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].pid, 2);
  EXPECT_EQ(merge(back).memcpy.size(), 2u);
  EXPECT_NE(run.find("\"schema\": \"pbm.guard.run/1\""), std::string::npos);
}

TEST(Report, MarkerParses) {
  LoadMarker const m = parse_marker(
      R"({"schema": "pbm.guard.marker/1", "pid": 12, "ppid": 3, "argv0": "python3", "attached": false, "mode": "count", "reason": "no driver"})",
      "m.json");
  EXPECT_EQ(m.pid, 12);
  EXPECT_EQ(m.ppid, 3);
  EXPECT_FALSE(m.attached);
  EXPECT_EQ(m.reason, "no driver");
  EXPECT_THROW(parse_marker(R"({"schema": "x"})", "m.json"), ReportError);
}

void write(std::string const& path, std::string const& text) { std::ofstream(path) << text; }

TEST(Report, CollectsADirectoryAndReportsBadFiles) {
  char tmpl[] = "/tmp/pbm-guard-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string const dir = tmpl;
  write(dir + "/report-20.json", minimal_report(20, "x", 1));
  write(dir + "/report-3.json", minimal_report(3, "x", 2));
  write(dir + "/report-4.json", "{ broken");
  write(dir + "/report-5.json.tmp", "half");  // a writer's temporary file: not read
  write(dir + "/loaded-3.json", R"({"schema": "pbm.guard.marker/1", "pid": 3, "attached": true})");
  RunFiles const files = collect_run_files(dir);
  ASSERT_EQ(files.reports.size(), 2u);
  EXPECT_EQ(files.reports[0].pid, 3);  // sorted by pid, not by name
  EXPECT_EQ(files.reports[1].pid, 20);
  ASSERT_EQ(files.markers.size(), 1u);
  ASSERT_EQ(files.problems.size(), 1u);
  EXPECT_NE(files.problems[0].find("report-4.json:1:3: not valid JSON"), std::string::npos) << files.problems[0];
  for (char const* f : {"/report-20.json", "/report-3.json", "/report-4.json", "/report-5.json.tmp", "/loaded-3.json"})
    std::remove((dir + f).c_str());
  rmdir(dir.c_str());
  EXPECT_FALSE(collect_run_files("/nonexistent/dir").problems.empty());
}

}  // namespace
}  // namespace pbm::guard
