// Mailboxes on several devices (issue #9): every mailbox series carries a `device` label (the
// mailbox's CUDA ordinal), so two mailboxes of one name on two devices are two series in collect(),
// the text exposition and the JSON report; with RANK set each also carries `rank`. No GPU needed:
// host rings stand in for device mailboxes and report the ordinal a device mailbox would.
#include "host_ring.hpp"
#include "scoped_source.hpp"

#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/exporters/samples.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;
using Labels = std::map<std::string, std::string>;

namespace {

struct ScopedEnv {
  ScopedEnv(char const* name, char const* value) : name(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name); }
  char const* name;
};

pbm::MailboxInfo on_device(pe::testing::HostRing const& ring, int device) {
  pbm::MailboxInfo m = ring.info();
  m.device = device;
  return m;
}

/// Two rings named "shared" standing for mailboxes on devices 0 and 1, 5 and 7 records pushed.
struct TwoDevices {
  TwoDevices() {
    unsigned char recs[16 * 8] = {};
    gpu0.push(recs, 5);
    gpu1.push(recs, 7);
    unsigned char out[16 * 8];
    gpu1.pop(out, 2);
  }
  std::vector<pbm::MailboxInfo> infos() const { return {on_device(gpu0, 0), on_device(gpu1, 1)}; }
  pe::testing::HostRing gpu0{"shared", 16, 16};
  pe::testing::HostRing gpu1{"shared", 16, 16};
};

std::uint64_t value(std::vector<pe::MetricFamily> const& families, std::string const& name, Labels const& labels) {
  for (auto const& f : families)
    if (f.name == name)
      for (auto const& s : f.samples)
        if (s.labels == labels) return s.value;
  return ~0ull;
}

}  // namespace

TEST(MultiDevice, SameNameOnTwoDevicesIsTwoSeriesInCollect) {
  ::unsetenv("RANK");
  ::unsetenv("LOCAL_RANK");
  TwoDevices two;
  ScopedSource source([&] { return pe::mailbox_samples(two.infos()); });
  auto const families = pe::collect();
  Labels const d0{{"mailbox", "shared"}, {"device", "0"}}, d1{{"mailbox", "shared"}, {"device", "1"}};
  EXPECT_EQ(value(families, "pbm_push_records_total", d0), 5u);
  EXPECT_EQ(value(families, "pbm_push_records_total", d1), 7u);
  EXPECT_EQ(value(families, "pbm_pop_records_total", d0), 0u);
  EXPECT_EQ(value(families, "pbm_pop_records_total", d1), 2u);
  EXPECT_EQ(value(families, "pbm_occupancy_records", d0), 5u);
  EXPECT_EQ(value(families, "pbm_occupancy_records", d1), 5u);
  EXPECT_EQ(value(families, "pbm_capacity_records", d0), 16u);
  EXPECT_EQ(value(families, "pbm_capacity_records", d1), 16u);
  EXPECT_EQ(value(families, "pbm_push_bytes_total", d1), 7u * 16u);
  Labels calls = d1;
  calls["stream_class"] = "peripheral";
  EXPECT_EQ(value(families, "pbm_pop_calls_total", calls), 1u);
  // Every mailbox series of every family has the label.
  for (auto const& f : families)
    for (auto const& s : f.samples) {
      if (s.labels.count("mailbox") != 0) {
        EXPECT_EQ(s.labels.count("device"), 1u) << f.name;
      }
    }
}

TEST(MultiDevice, SameNameOnOneDeviceIsStillOneSummedSeries) {
  ::unsetenv("RANK");
  ::unsetenv("LOCAL_RANK");
  TwoDevices two;
  ScopedSource source([&] { return pe::mailbox_samples({on_device(two.gpu0, 1), on_device(two.gpu1, 1)}); });
  auto const families = pe::collect();
  EXPECT_EQ(value(families, "pbm_push_records_total", {{"mailbox", "shared"}, {"device", "1"}}), 12u);
  EXPECT_EQ(value(families, "pbm_push_records_total", {{"mailbox", "shared"}, {"device", "0"}}), ~0ull);
}

TEST(MultiDevice, TextExpositionHasOneLinePerDeviceWithTheRank) {
  ScopedEnv rank("RANK", "3");
  TwoDevices two;
  ScopedSource source([&] { return pe::mailbox_samples(two.infos()); });
  std::string const text = pe::render_text();
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("pbm_push_records_total{", 0) == 0 && line.find("mailbox=\"shared\"") != std::string::npos)
      lines.insert(line);
  ASSERT_EQ(lines.size(), 2u) << text;
  bool saw0 = false, saw1 = false;
  for (auto const& line : lines) {
    EXPECT_NE(line.find("rank=\"3\""), std::string::npos) << line;
    if (line.find("device=\"0\"") != std::string::npos) saw0 = line.size() > 2 && line.substr(line.size() - 2) == " 5";
    if (line.find("device=\"1\"") != std::string::npos) saw1 = line.size() > 2 && line.substr(line.size() - 2) == " 7";
  }
  EXPECT_TRUE(saw0) << text;
  EXPECT_TRUE(saw1) << text;
}

TEST(MultiDevice, JsonReportKeepsDevicesApartAndTotalsThem) {
  ScopedEnv rank("RANK", "1");
  TwoDevices two;
  ScopedSource source([&] { return pe::mailbox_samples(two.infos()); });
  auto const r = nlohmann::json::parse(pe::json_report());
  EXPECT_EQ(r.at("process").at("rank"), "1");
  std::map<std::string, std::uint64_t> by_device;
  for (auto const& s : r.at("metrics").at("pbm_push_records_total").at("samples")) {
    auto const labels = s.at("labels").get<Labels>();
    if (labels.at("mailbox") != "shared") continue;
    EXPECT_EQ(labels.at("rank"), "1");
    by_device[labels.at("device")] += s.at("value").get<std::uint64_t>();
  }
  EXPECT_EQ(by_device, (std::map<std::string, std::uint64_t>{{"0", 5}, {"1", 7}}));
  EXPECT_EQ(r.at("totals").at("push_records").get<std::uint64_t>(), 12u);
}
