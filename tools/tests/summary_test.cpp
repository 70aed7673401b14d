// The summary a person reads after a run.
#include "summary.hpp"
#include "table.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace pbm::guard {
namespace {

ProcessReport sample() {
  ProcessReport r;
  r.pid = 4242;
  r.argv0 = "./train";
  r.rank = "0";
  r.telemetry_attached = true;
  r.telemetry_mode = "count";
  r.observed.memcpy[{"setup", "HtoD", "pinned", true}] = {1, 262144};
  r.observed.memcpy[{"train_step", "DtoH", "pageable", false}] = {20, 80};
  r.observed.memcpy[{"none", "DtoH", "pinned", false}] = {1, 4};
  r.observed.sync[{"train_step", "stream_synchronize", false}] = 20;
  r.observed.sync[{"none", "event_query", true}] = 3;
  r.sites = {{"memcpy_dtoh", "train_step", "cudaMemcpyAsync", 20}, {"memcpy_dtoh", "none", "cudaMemcpyAsync", 1}};
  return r;
}

TEST(Summary, ShowsProcessesCopiesSyncsRangesAndSites) {
  std::string const text = format_summary({sample()});
  EXPECT_NE(text.find("pbm-guard: 1 process reported"), std::string::npos) << text;
  EXPECT_NE(text.find("pid 4242 (./train, rank 0): detection attached, mode count"), std::string::npos) << text;
  EXPECT_NE(text.find("memcpys: 22 (21 unexpected), 256.1 KiB"), std::string::npos) << text;
  EXPECT_NE(text.find("DtoH       pageable     20          20       80 B"), std::string::npos) << text;
  EXPECT_NE(text.find("by NVTX range:"), std::string::npos);
  EXPECT_NE(text.find("train_step  DtoH       pageable     20"), std::string::npos) << text;
  EXPECT_NE(text.find("syncs: 20 blocking the host (20 unexpected), 3 non-blocking"), std::string::npos) << text;
  EXPECT_NE(text.find("stream_synchronize     20          20"), std::string::npos) << text;
  EXPECT_NE(text.find("top sites:"), std::string::npos);
  EXPECT_LT(text.find("train_step  cudaMemcpyAsync"), text.find("none        cudaMemcpyAsync")) << text;
  // Named ranges first, "none" after them.
  std::size_t const by_range = text.find("by NVTX range:");
  EXPECT_LT(text.find("setup", by_range), text.find("none ", by_range)) << text;
}

TEST(Summary, SaysWhenDetectionWasOffAndRecordsDropped) {
  ProcessReport r;
  r.pid = 9;
  r.argv0 = "python3";
  r.telemetry_reason = "CUPTI unavailable: no CUDA driver";
  r.telemetry_dropped_records = 12;
  std::string const text = format_summary({r});
  EXPECT_NE(text.find("detection NOT attached: CUPTI unavailable: no CUDA driver"), std::string::npos) << text;
  EXPECT_NE(text.find("12 CUPTI records dropped"), std::string::npos) << text;
  EXPECT_NE(text.find("memcpys: 0 (0 unexpected), 0 B"), std::string::npos) << text;
  EXPECT_EQ(text.find("top sites"), std::string::npos);
}

TEST(Summary, MergesProcessesAndNotesFoldedRanges) {
  ProcessReport a = sample(), b = sample();
  b.pid = 4243;
  b.observed.memcpy[{"other", "HtoD", "pinned", true}] = {2, 8};
  std::string const text = format_summary({a, b});
  EXPECT_NE(text.find("2 processes reported"), std::string::npos);
  EXPECT_NE(text.find("memcpys: 46 (42 unexpected)"), std::string::npos) << text;
  EXPECT_NE(text.find("range \"other\" holds NVTX range names past"), std::string::npos);
}

TEST(Summary, SaturatedSumsArePrintedAsTheMaximumAndSaySo) {
  // Two processes of 2^63 copies each: the summary said "memcpys: 0 (0 unexpected), 0 B".
  ProcessReport a, b;
  a.observed.memcpy[{"step", "DtoH", "pageable", false}] = {std::uint64_t{1} << 63, std::uint64_t{1} << 63};
  a.observed.sync[{"step", "stream_synchronize", false}] = std::uint64_t{1} << 63;
  b = a;
  std::string const text = format_summary({a, b});
  EXPECT_NE(text.find("memcpys: 18446744073709551615 (18446744073709551615 unexpected), 16777216.0 TiB"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("syncs: 18446744073709551615 blocking the host"), std::string::npos) << text;
  EXPECT_NE(text.find("note: a sum reached 18446744073709551615 (2^64 - 1) and saturated there"), std::string::npos)
      << text;
  EXPECT_EQ(format_summary({sample()}).find("saturated"), std::string::npos);  // only when it happened
}

TEST(Table, AlignsColumnsAndFormatsBytes) {
  Table t({"name", "n"}, {false, true});
  t.add({"a", "1"});
  t.add({"long", "100"});
  EXPECT_EQ(t.render(""), "name    n\na       1\nlong  100\n");
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3ull << 30), "3.0 GiB");
}

}  // namespace
}  // namespace pbm::guard
