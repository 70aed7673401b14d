// Per-mailbox samples from a MailboxInfo list (pure formatting; no GPU needed), and how collect()
// adds them: summed by label set, with the rank label added once.
#include "scoped_source.hpp"

#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/samples.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;
using Labels = std::map<std::string, std::string>;

namespace {

pbm::MailboxInfo info(std::string name, int device, std::uint64_t pushed, std::uint64_t popped) {
  pbm::MailboxInfo m;
  m.name = std::move(name);
  m.device = device;
  m.stats.pushed = pushed;
  m.stats.popped = popped;
  m.stats.dropped = 3;
  m.stats.occupancy = pushed - popped;
  m.stats.capacity = 1024;
  m.stats.stride = 64;
  m.push_calls[0] = 5;  // focus
  m.push_calls[1] = 7;  // peripheral
  m.pop_calls[0] = 0;
  m.pop_calls[1] = 11;
  return m;
}

pt::CounterSample const* find(std::vector<pt::CounterSample> const& samples, std::string const& name,
                              Labels const& labels) {
  auto it = std::find_if(samples.begin(), samples.end(), [&](pt::CounterSample const& s) {
    return s.name == name && s.labels == labels;
  });
  return it == samples.end() ? nullptr : &*it;
}

std::uint64_t value(std::vector<pt::CounterSample> const& samples, std::string const& name, Labels const& labels) {
  auto const* s = find(samples, name, labels);
  EXPECT_NE(s, nullptr) << name;
  return s != nullptr ? s->value : ~0ull;
}

class EnvGuard {
 public:
  EnvGuard() {
    for (char const* var : {"RANK", "LOCAL_RANK"}) {
      char const* v = std::getenv(var);
      saved_.emplace_back(var, v != nullptr ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(var);
    }
  }
  ~EnvGuard() {
    for (auto const& [var, v] : saved_) {
      if (v) setenv(var.c_str(), v->c_str(), 1); else unsetenv(var.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace

TEST(MailboxMetrics, EverySeriesWithLabelsAndValues) {
  auto const samples = pe::mailbox_samples({info("inbox", 1, 100, 90)});
  Labels const l{{"mailbox", "inbox"}, {"device", "1"}};
  EXPECT_EQ(value(samples, "pbm_push_records_total", l), 100u);
  EXPECT_EQ(value(samples, "pbm_pop_records_total", l), 90u);
  EXPECT_EQ(value(samples, "pbm_dropped_records_total", l), 3u);
  EXPECT_EQ(value(samples, "pbm_push_bytes_total", l), 100u * 64);
  EXPECT_EQ(value(samples, "pbm_pop_bytes_total", l), 90u * 64);
  EXPECT_EQ(value(samples, "pbm_occupancy_records", l), 10u);
  EXPECT_EQ(value(samples, "pbm_capacity_records", l), 1024u);
  Labels focus = l, peripheral = l;
  focus["stream_class"] = "focus";
  peripheral["stream_class"] = "peripheral";
  EXPECT_EQ(value(samples, "pbm_push_calls_total", focus), 5u);
  EXPECT_EQ(value(samples, "pbm_push_calls_total", peripheral), 7u);
  EXPECT_EQ(value(samples, "pbm_pop_calls_total", focus), 0u);  // known series start at zero
  EXPECT_EQ(value(samples, "pbm_pop_calls_total", peripheral), 11u);
  EXPECT_EQ(samples.size(), 11u);
  for (auto const& s : samples) {
    bool const is_gauge = s.name == "pbm_occupancy_records" || s.name == "pbm_capacity_records";
    EXPECT_EQ(s.type, is_gauge ? pt::CounterSample::Type::gauge : pt::CounterSample::Type::counter) << s.name;
    EXPECT_EQ(s.labels.count("rank"), 0u);
    bool const by_class = s.name == "pbm_push_calls_total" || s.name == "pbm_pop_calls_total";
    EXPECT_EQ(s.labels.count("stream_class"), by_class ? 1u : 0u) << s.name;
  }
}

TEST(MailboxMetrics, NoMailboxesNoSeries) { EXPECT_TRUE(pe::mailbox_samples({}).empty()); }

TEST(MailboxMetrics, CollectAddsTheRankLabelOnce) {
  EnvGuard guard;
  setenv("RANK", "3", 1);
  ScopedSource source([] { return pe::mailbox_samples({info("a", 0, 1, 1)}); });
  std::size_t mailbox_samples = 0;
  for (pe::MetricFamily const& f : pe::collect()) {
    for (pe::Sample const& s : f.samples) {
      EXPECT_EQ(s.labels.at("rank"), "3") << s.name;  // every series, mailbox or not
      mailbox_samples += s.labels.count("mailbox");
    }
  }
  EXPECT_EQ(mailbox_samples, 11u);
}

TEST(MailboxMetrics, CollectKeepsMailboxesApartAndSumsSameNameSameDevice) {
  EnvGuard guard;
  ScopedSource source([] {
    return pe::mailbox_samples({info("a", 0, 10, 0), info("b", 0, 20, 0), info("a", 1, 30, 0), info("a", 0, 40, 0)});
  });
  std::vector<pt::CounterSample> samples;
  for (pe::MetricFamily const& f : pe::collect())
    for (pe::Sample const& s : f.samples)
      if (s.labels.count("mailbox") != 0) samples.push_back(s);
  EXPECT_EQ(value(samples, "pbm_push_records_total", {{"mailbox", "a"}, {"device", "0"}}), 50u);
  EXPECT_EQ(value(samples, "pbm_push_records_total", {{"mailbox", "b"}, {"device", "0"}}), 20u);
  EXPECT_EQ(value(samples, "pbm_push_records_total", {{"mailbox", "a"}, {"device", "1"}}), 30u);
  EXPECT_EQ(value(samples, "pbm_capacity_records", {{"mailbox", "a"}, {"device", "0"}}), 2048u);
  EXPECT_EQ(samples.size(), 3u * 11u);  // label sets unique
}

TEST(MailboxMetrics, RetiredMailboxesAddTheirCountsButNoGauges) {
  EnvGuard guard;
  pbm::MailboxInfo gone = info("a", 0, 100, 100);
  gone.live = false;
  gone.stats.occupancy = 0;
  gone.stats.capacity = 0;
  pbm::MailboxInfo only_gone = info("b", 0, 7, 7);
  only_gone.live = false;
  EXPECT_EQ(pe::mailbox_samples({only_gone}).size(), 9u);  // no gauges for a destroyed mailbox
  ScopedSource source([=] { return pe::mailbox_samples({info("a", 0, 10, 4), gone, only_gone}); });
  std::vector<pt::CounterSample> samples;
  for (pe::MetricFamily const& f : pe::collect())
    for (pe::Sample const& s : f.samples)
      if (s.labels.count("mailbox") != 0) samples.push_back(s);
  Labels const a{{"mailbox", "a"}, {"device", "0"}}, b{{"mailbox", "b"}, {"device", "0"}};
  EXPECT_EQ(value(samples, "pbm_push_records_total", a), 110u);
  EXPECT_EQ(value(samples, "pbm_pop_records_total", a), 104u);
  EXPECT_EQ(value(samples, "pbm_push_bytes_total", a), 110u * 64u);
  EXPECT_EQ(value(samples, "pbm_occupancy_records", a), 6u);  // the live one's alone
  EXPECT_EQ(value(samples, "pbm_capacity_records", a), 1024u);
  EXPECT_EQ(value(samples, "pbm_push_records_total", b), 7u);
  EXPECT_EQ(find(samples, "pbm_occupancy_records", b), nullptr) << "a destroyed mailbox has no gauges";
  EXPECT_EQ(find(samples, "pbm_capacity_records", b), nullptr);
}

TEST(MailboxMetrics, RankFromEnvironment) {
  EnvGuard guard;
  EXPECT_EQ(pt::rank_from_env(), "");
  setenv("LOCAL_RANK", "2", 1);
  EXPECT_EQ(pt::rank_from_env(), "2");
  setenv("RANK", "7", 1);  // RANK wins
  EXPECT_EQ(pt::rank_from_env(), "7");
}

TEST(MailboxMetrics, CollectIncludesLiveAndRetiredMailboxes) {
  // No Mailbox was created in this process (no GPU needed): collect() has exactly the registry's
  // series (live and retired), i.e. none; on a GPU mailbox_telemetry_gpu_test checks them.
  EnvGuard guard;
  auto const expected = pe::mailbox_samples();  // live and retired
  std::vector<pt::CounterSample> samples;
  for (pe::MetricFamily const& f : pe::collect())
    for (pe::Sample const& s : f.samples)
      if (s.labels.count("mailbox") != 0) samples.push_back(s);
  for (auto const& e : expected) EXPECT_NE(find(samples, e.name, e.labels), nullptr) << e.name;
  EXPECT_EQ(samples.size(), expected.size());
}
