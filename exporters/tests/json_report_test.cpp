// The JSON report: schema pbm.report/1, on demand and at exit.
#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/samples.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;
namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;
using nlohmann::json;

namespace {

json read_json(fs::path const& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("pbm_report_test_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

}  // namespace

TEST(JsonReport, SchemaProcessBuildTelemetryAndMetrics) {
  ::setenv("RANK", "5", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  json const r = json::parse(pe::json_report());
  ::unsetenv("RANK");
  ::unsetenv("LOCAL_RANK");
  EXPECT_EQ(r.at("schema"), "pbm.report/1");
  EXPECT_TRUE(r.at("generated_at").is_string());
  EXPECT_GT(r.at("generated_unix_ms").get<std::int64_t>(), 1600000000000);
  json const& p = r.at("process");
  EXPECT_EQ(p.at("pid").get<long>(), static_cast<long>(::getpid()));
  EXPECT_NE(p.at("argv0").get<std::string>().find("exporters_tests"), std::string::npos) << p;
  EXPECT_EQ(p.at("rank"), "5");
  EXPECT_EQ(p.at("local_rank"), "1");
  EXPECT_FALSE(p.at("hostname").get<std::string>().empty());
  EXPECT_FALSE(r.at("build").at("version").get<std::string>().empty());
  EXPECT_TRUE(r.at("telemetry").at("attached").is_boolean());
  EXPECT_TRUE(r.at("telemetry").at("mode").is_string());
  for (char const* key : {"memcpy_unexpected", "sync_unexpected", "violations", "push_records", "pop_records",
                          "dropped_records", "telemetry_dropped_records"})
    EXPECT_TRUE(r.at("totals").at(key).is_number_unsigned()) << key;

  json const& info = r.at("metrics").at("pbm_build_info");
  EXPECT_EQ(info.at("type"), "gauge");
  EXPECT_FALSE(info.at("help").get<std::string>().empty());
  ASSERT_EQ(info.at("samples").size(), 1u);
  EXPECT_EQ(info.at("samples")[0].at("value"), 1);
  EXPECT_EQ(info.at("samples")[0].at("labels").at("rank"), "5");
  EXPECT_EQ(r.at("metrics").at("pbm_violations_total").at("type"), "counter");
}

TEST(JsonReport, NoRankIsNull) {
  ::unsetenv("RANK");
  ::unsetenv("LOCAL_RANK");
  json const r = json::parse(pe::json_report());
  EXPECT_TRUE(r.at("process").at("rank").is_null());
}

TEST(JsonReport, SameCountersAsTheExporter) {
  pt::counters().add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "report_range", 100);
  pt::counters().add_violation(pt::Rule::memcpy_dtoh);
  std::vector<pe::MetricFamily> const families = pe::collect();
  json const r = json::parse(pe::json_report());
  std::uint64_t unexpected = 0;
  for (auto const& f : families) {
    json const& m = r.at("metrics").at(f.name);
    ASSERT_EQ(m.at("samples").size(), f.samples.size()) << f.name;
    for (std::size_t i = 0; i < f.samples.size(); ++i) {
      using Labels = std::map<std::string, std::string>;
      EXPECT_EQ(m.at("samples")[i].at("labels").get<Labels>(), f.samples[i].labels);
      EXPECT_EQ(m.at("samples")[i].at("value").get<std::uint64_t>(), f.samples[i].value) << f.name;
    }
    if (f.name == "pbm_memcpy_total")
      for (auto const& s : f.samples) unexpected += s.labels.at("expected") == "false" ? s.value : 0;
  }
  EXPECT_EQ(r.at("totals").at("memcpy_unexpected").get<std::uint64_t>(), unexpected);
  EXPECT_GE(unexpected, 1u);
}

TEST_F(TempDir, WriteExpandsPidAndRankAtomically) {
  ::setenv("RANK", "2", 1);
  std::string const error = pe::write_json_report((dir / "report-{pid}-{rank}.json").string());
  ::unsetenv("RANK");
  ASSERT_EQ(error, "");
  fs::path const expected = dir / ("report-" + std::to_string(::getpid()) + "-2.json");
  ASSERT_TRUE(fs::exists(expected));
  EXPECT_EQ(read_json(expected).at("schema"), "pbm.report/1");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);  // no temp file left
}

TEST_F(TempDir, UnwritablePathIsAnErrorNotAnException) {
  std::string const error = pe::write_json_report((dir / "missing" / "r.json").string());
  EXPECT_NE(error.find("cannot write"), std::string::npos) << error;
  EXPECT_NE(pe::write_json_report("").find("empty path"), std::string::npos);
}

TEST_F(TempDir, WrittenAtExitFromEnvironment) {
  fs::path const path = dir / "at-exit-{pid}.json";
  EXPECT_EXIT(
      {
        ::setenv("PBM_REPORT_JSON", path.c_str(), 1);
        if (pe::write_json_report_at_exit() != path.string()) std::_Exit(9);
        pt::counters().add_violation(pt::Rule::sync_forbidden);
        std::printf("child %ld\n", static_cast<long>(::getpid()));
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  ASSERT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  fs::path const written = fs::directory_iterator(dir)->path();
  json const r = read_json(written);
  EXPECT_EQ(written.filename().string(), "at-exit-" + std::to_string(r.at("process").at("pid").get<long>()) + ".json");
  EXPECT_NE(r.at("process").at("pid").get<long>(), static_cast<long>(::getpid()));
  std::uint64_t forbidden = 0;
  for (auto const& s : r.at("metrics").at("pbm_violations_total").at("samples"))
    if (s.at("labels").at("rule") == "sync_forbidden") forbidden = s.at("value").get<std::uint64_t>();
  EXPECT_GE(forbidden, 1u);  // counted after the report was arranged, before exit
}

TEST_F(TempDir, AtExitWithNothingSetWritesNothing) {
  ::unsetenv("PBM_REPORT_JSON");
  EXPECT_EQ(pe::write_json_report_at_exit(), "");
}

// Totals and merged series saturate at 2^64 - 1 instead of wrapping (two sources of 2^63 records
// summed to 0 and read as "nothing pushed").
TEST(JsonReport, TotalsAndMergedSeriesSaturateInsteadOfWrapping) {
  constexpr std::uint64_t kHalf = std::uint64_t{1} << 63;
  auto source = [] {
    return std::vector<pe::Sample>{{"pbm_push_records_total", {{"mailbox", "wrap_a"}}, kHalf, pe::Sample::Type::counter},
                                   {"pbm_push_records_total", {{"mailbox", "wrap_b"}}, kHalf, pe::Sample::Type::counter}};
  };
  std::size_t const one = pe::add_source(source);
  std::size_t const two = pe::add_source(source);  // the same series twice: merged by label set
  json const r = json::parse(pe::json_report());
  pe::remove_source(one);
  pe::remove_source(two);
  EXPECT_EQ(r.at("totals").at("push_records").get<std::uint64_t>(), UINT64_MAX);
  for (json const& s : r.at("metrics").at("pbm_push_records_total").at("samples")) {
    if (s.at("labels").value("mailbox", "").rfind("wrap_", 0) == 0) {
      EXPECT_EQ(s.at("value").get<std::uint64_t>(), UINT64_MAX);
    }
  }
}

TEST(JsonReport, SitesComeLastWhenGivenAndAreAbsentOtherwise) {
  json const plain = json::parse(pe::json_report());
  EXPECT_EQ(plain.count("sites"), 0u);
  std::vector<pe::ReportSite> const sites{{"sync_unexpected", "step", "cudaDeviceSynchronize <- main", 3},
                                          {"memcpy_dtoh", "none", "cudaMemcpy", 1}};
  nlohmann::ordered_json const r = nlohmann::ordered_json::parse(pe::json_report(sites));
  ASSERT_EQ(r.back(), r.at("sites"));  // after "metrics": readers that stream the report see it last
  ASSERT_EQ(r.at("sites").size(), 2u);
  EXPECT_EQ(r.at("sites")[0].at("rule"), "sync_unexpected");
  EXPECT_EQ(r.at("sites")[0].at("range"), "step");
  EXPECT_EQ(r.at("sites")[0].at("where"), "cudaDeviceSynchronize <- main");
  EXPECT_EQ(r.at("sites")[0].at("count").get<std::uint64_t>(), 3u);
  EXPECT_TRUE(json::parse(pe::json_report(std::vector<pe::ReportSite>{})).at("sites").empty());
}

TEST_F(TempDir, WriteFileAtomicallyLeavesNoTempFile) {
  fs::path const path = dir / "loaded-1.json";
  EXPECT_EQ(pe::write_file_atomically(path.string(), "{}\n"), "");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{}\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  EXPECT_NE(pe::write_file_atomically((dir / "missing" / "x.json").string(), "x").find("cannot write"),
            std::string::npos);
}
