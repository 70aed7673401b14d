// collect(): what every scrape and report contains.
#include "host_ring.hpp"
#include "scoped_source.hpp"

#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/exporters/samples.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <set>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;

namespace {

pe::MetricFamily const* find(std::vector<pe::MetricFamily> const& families, std::string const& name) {
  for (auto const& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

pe::Sample const* find_sample(pe::MetricFamily const* f, std::map<std::string, std::string> const& labels) {
  if (f == nullptr) return nullptr;
  for (auto const& s : f->samples)
    if (s.labels == labels) return &s;
  return nullptr;
}

}  // namespace

TEST(Collect, BuildInfoIsOneWithVersion) {
  auto const families = pe::collect();
  auto const* f = find(families, "pbm_build_info");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, pe::Sample::Type::gauge);
  ASSERT_EQ(f->samples.size(), 1u);
  EXPECT_EQ(f->samples[0].value, 1u);
  EXPECT_EQ(f->samples[0].labels.at("version"), PBM_TEST_VERSION);
  EXPECT_FALSE(f->samples[0].labels.at("cuda_version").empty());
  EXPECT_EQ(f->samples[0].labels.at("prometheus"), pe::PrometheusExporter::available() ? "true" : "false");
}

TEST(Collect, KnownSeriesStartAtZero) {
  auto const families = pe::collect();
  for (char const* expected : {"false", "true"}) {
    auto const* s = find_sample(find(families, "pbm_memcpy_total"),
                                {{"direction", "DtoH"}, {"memory", "pageable"}, {"expected", expected}, {"range", "none"}});
    ASSERT_NE(s, nullptr) << "expected=" << expected;
    EXPECT_EQ(s->value, 0u);
    s = find_sample(find(families, "pbm_sync_total"), {{"api", "stream_synchronize"}, {"expected", expected}, {"range", "none"}});
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->value, 0u);
  }
  auto const* violations = find(families, "pbm_violations_total");
  ASSERT_NE(violations, nullptr);
  EXPECT_EQ(violations->samples.size(), pbm::telemetry::kRuleCount);  // one per rule, zero included
  for (char const* name : {"pbm_telemetry_cupti_attached", "pbm_telemetry_dropped_records_total", "pbm_memset_total",
                           "pbm_exporter_rejected_samples_total"})
    EXPECT_NE(find(families, name), nullptr) << name;
}

TEST(Collect, EveryHostBlockingSyncApiHasAZeroSeries) {
  // Alerts and panels name each API that blocks the host (implicit ones included: free, host_alloc,
  // memcpy_blocking, ...): its series exists before the first event.
  auto const families = pe::collect();
  for (std::size_t i = 0; i < pbm::telemetry::kSyncApiCount; ++i) {
    auto const api = static_cast<pbm::telemetry::SyncApi>(i);
    if (!pbm::telemetry::blocks_host(api) || api == pbm::telemetry::SyncApi::unknown) continue;
    std::string const name(pbm::telemetry::to_string(api));
    for (char const* expected : {"false", "true"}) {
      auto const* s = find_sample(find(families, "pbm_sync_total"), {{"api", name}, {"expected", expected}, {"range", "none"}});
      ASSERT_NE(s, nullptr) << "pbm_sync_total{api=" << name << ",expected=" << expected << "}";
    }
  }
}

TEST(Collect, CountersAreReadAtCollectionTime) {
  auto value = [] {
    auto const families = pe::collect();  // keep it alive: s points into it
    auto const* s = find_sample(find(families, "pbm_violations_total"), {{"rule", "memcpy_pageable"}});
    return s ? s->value : ~0ull;
  };
  std::uint64_t const before = value();
  pt::counters().add_violation(pt::Rule::memcpy_pageable);
  EXPECT_EQ(value(), before + 1);
}

TEST(Collect, NamesFollowPrometheusConventionsAndHaveHelp) {
  for (auto const& f : pe::collect()) {
    EXPECT_EQ(f.name.rfind("pbm_", 0), 0u) << f.name;
    bool const total = f.name.size() > 6 && f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, f.type == pe::Sample::Type::counter) << f.name;
    EXPECT_EQ(f.help.find("extra sample source"), std::string::npos) << f.name << " has no help text of its own";
    std::set<std::map<std::string, std::string>> label_sets;
    for (auto const& s : f.samples) EXPECT_TRUE(label_sets.insert(s.labels).second) << f.name << ": duplicate series";
  }
}

TEST(Collect, HostRingMailboxThroughAnExtraSource) {
  pe::testing::HostRing ring("unit_ring", 8, 16);
  ScopedSource source([&] { return pe::mailbox_samples({ring.info()}); });
  unsigned char recs[16 * 12] = {};
  EXPECT_EQ(ring.push(recs, 12), 8u);  // 4 dropped: the ring is full
  unsigned char out[16 * 8];
  EXPECT_EQ(ring.pop(out, 3), 3u);
  auto const families = pe::collect();
  std::map<std::string, std::string> const labels{{"mailbox", "unit_ring"}, {"device", "-1"}};
  auto value = [&](char const* name) {
    auto const* s = find_sample(find(families, name), labels);
    return s ? s->value : ~0ull;
  };
  EXPECT_EQ(value("pbm_push_records_total"), 8u);
  EXPECT_EQ(value("pbm_pop_records_total"), 3u);
  EXPECT_EQ(value("pbm_dropped_records_total"), 4u);
  EXPECT_EQ(value("pbm_occupancy_records"), 5u);
  EXPECT_EQ(value("pbm_capacity_records"), 8u);
  EXPECT_EQ(value("pbm_pop_bytes_total"), 48u);
  auto const* calls = find_sample(find(families, "pbm_pop_calls_total"),
                                  {{"mailbox", "unit_ring"}, {"device", "-1"}, {"stream_class", "peripheral"}});
  ASSERT_NE(calls, nullptr);
  EXPECT_EQ(calls->value, 1u);
}

TEST(Collect, EqualSeriesFromSourcesAreSummedAndRemovedSourcesVanish) {
  auto make = [] { return std::vector<pe::Sample>{{"pbm_unit_things_total", {{"k", "v"}}, 2, pe::Sample::Type::counter}}; };
  std::size_t const a = pe::add_source(make);
  std::size_t const b = pe::add_source(make);
  auto const families = pe::collect();  // keep it alive: s points into it
  auto const* s = find_sample(find(families, "pbm_unit_things_total"), {{"k", "v"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 4u);
  EXPECT_TRUE(pe::remove_source(a));
  EXPECT_TRUE(pe::remove_source(b));
  EXPECT_FALSE(pe::remove_source(b));
  EXPECT_EQ(find(pe::collect(), "pbm_unit_things_total"), nullptr);
}

TEST(Collect, InvalidAndConflictingSamplesAreDroppedAndCounted) {
  auto rejected = [] { return find(pe::collect(), "pbm_exporter_rejected_samples_total")->samples.at(0).value; };
  std::uint64_t const before = rejected();
  ScopedSource source([] {
    return std::vector<pe::Sample>{
        {"pbm-bad-name", {}, 1, pe::Sample::Type::counter},
        {"pbm_unit_ok_total", {{"__reserved", "x"}}, 1, pe::Sample::Type::counter},
        {"pbm_violations_total", {{"rule", "memcpy_dtoh"}}, 1, pe::Sample::Type::gauge},  // type conflict
    };
  });
  auto const families = pe::collect();
  EXPECT_EQ(find(families, "pbm-bad-name"), nullptr);
  EXPECT_EQ(find(families, "pbm_unit_ok_total"), nullptr);
  EXPECT_EQ(find(families, "pbm_violations_total")->type, pe::Sample::Type::counter);
  EXPECT_GE(rejected(), before + 3 + 3);  // this collection's three, then the next one's
}

TEST(Collect, SourceThatThrowsIsSkipped) {
  ScopedSource source([]() -> std::vector<pe::Sample> { throw std::runtime_error("source broke"); });
  EXPECT_NE(find(pe::collect(), "pbm_build_info"), nullptr);
}

TEST(Collect, SeriesPerMetricAreCapped) {
  ScopedSource source([] {
    std::vector<pe::Sample> out;
    for (std::size_t i = 0; i < pe::kMaxSeriesPerMetric + 10; ++i)
      out.push_back({"pbm_unit_many", {{"i", std::to_string(i)}}, i, pe::Sample::Type::gauge});
    return out;
  });
  EXPECT_EQ(find(pe::collect(), "pbm_unit_many")->samples.size(), pe::kMaxSeriesPerMetric);
}

TEST(Collect, RangeLabelValuesAreBounded) {
  pt::Counters& c = pt::counters();
  for (int i = 0; i < 100; ++i)
    c.add_memcpy(pt::Direction::DtoD, pt::MemoryKind::device, true, "unit_range_" + std::to_string(i), 1);
  std::set<std::string> ranges;
  auto const families = pe::collect();  // a named vector: a range-for over a member of a temporary dangles
  for (auto const& s : find(families, "pbm_memcpy_total")->samples) ranges.insert(s.labels.at("range"));
  EXPECT_LE(ranges.size(), c.range_label_cap() + 2);  // + "none" and "other"
  EXPECT_EQ(ranges.count("other"), 1u);
}

TEST(Collect, RankLabelFromEnvironmentOnEverySeries) {
  ScopedSource source([] {  // an extra source that knows nothing of ranks
    return std::vector<pe::Sample>{{"pbm_unit_rankless", {}, 1, pe::Sample::Type::gauge}};
  });
  ::setenv("RANK", "3", 1);
  auto const families = pe::collect();
  ::unsetenv("RANK");
  for (auto const& f : families)
    for (auto const& s : f.samples) {
      auto it = s.labels.find("rank");
      ASSERT_NE(it, s.labels.end()) << f.name;
      EXPECT_EQ(it->second, "3");
    }
}

TEST(RenderText, IsTheExpositionFormat) {
  std::string const text = pe::render_text();
  EXPECT_NE(text.find("# TYPE pbm_build_info gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP pbm_violations_total "), std::string::npos);
  EXPECT_NE(text.find("pbm_violations_total{rule=\"memcpy_dtoh\"} "), std::string::npos);
}
