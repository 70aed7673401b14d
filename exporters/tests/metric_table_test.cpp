// The metric table (pbm/telemetry/metric_table.hpp) is the only place a series is defined: what
// collect() emits is in it, with its type and exactly its labels (plus `rank`), and every series it
// holds is emitted by something. dashboards/tests/metric_table_test.py checks the other direction
// (dashboards, alert rules and docs name only series the table holds).
#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/samples.hpp>
#include <pbm/telemetry/metric_table.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;

namespace {

/// Everything pbm emits in this process, with one live (fake) mailbox and every counter touched once.
std::vector<pe::Sample> everything_emitted() {
  pbm::MailboxInfo box;
  box.name = "table";
  std::size_t const id = pe::add_source([box] { return pe::mailbox_samples({box}); });
  pt::Counters& c = pt::counters();
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "table-test", 8);
  c.add_memset(4);
  c.add_sync(pt::SyncApi::device_synchronize, false, "table-test");
  std::vector<pe::Sample> out;
  for (pe::MetricFamily const& f : pe::collect())
    for (pe::Sample const& s : f.samples) out.push_back(s);
  pe::remove_source(id);
  return out;
}

}  // namespace

TEST(MetricTable, NamesAreUniqueAndFollowPrometheusConventions) {
  std::set<std::string_view> names;
  for (pt::Metric const& m : pt::kMetrics) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name << " is defined twice";
    EXPECT_EQ(m.name.rfind("pbm_", 0), 0u) << m.name;
    bool const total = m.name.size() > 6 && m.name.substr(m.name.size() - 6) == "_total";
    EXPECT_EQ(total, m.type == pt::MetricType::counter) << m.name << ": counters, and only they, end in _total";
    EXPECT_FALSE(m.help.empty()) << m.name;
    EXPECT_FALSE(m.unit.empty()) << m.name;
    EXPECT_FALSE(pt::has_label(m, pt::kRankLabel)) << m.name << ": rank is added by collect(), not listed";
  }
}

TEST(MetricTable, EveryEmittedSeriesIsInTheTableWithItsTypeAndLabels) {
  ::setenv("RANK", "4", 1);
  std::vector<pe::Sample> const samples = everything_emitted();
  ::unsetenv("RANK");
  ASSERT_FALSE(samples.empty());
  for (pe::Sample const& s : samples) {
    pt::Metric const* m = pt::find_metric(s.name);
    ASSERT_NE(m, nullptr) << s.name << " is emitted but not in metric_table.hpp";
    EXPECT_EQ(s.type, m->type) << s.name;
    EXPECT_EQ(s.labels.count(std::string(pt::kRankLabel)), 1u) << s.name << ": rank added once, to every series";
    std::size_t listed = 0;
    for (auto const& [label, value] : s.labels) {
      if (label == pt::kRankLabel) continue;
      EXPECT_TRUE(pt::has_label(*m, label)) << s.name << " carries label '" << label << "' the table does not list";
      ++listed;
    }
    std::size_t table_labels = 0;
    for (std::string_view rest = m->labels; !rest.empty();) {
      ++table_labels;
      std::size_t const space = rest.find(' ');
      rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
    }
    EXPECT_EQ(listed, table_labels) << s.name << " lacks a label the table lists (" << m->labels << ")";
  }
}

TEST(MetricTable, EverySeriesInTheTableIsEmitted) {
  std::set<std::string> emitted;
  for (pe::Sample const& s : everything_emitted()) emitted.insert(s.name);
  for (pt::Metric const& m : pt::kMetrics)
    EXPECT_EQ(emitted.count(std::string(m.name)), 1u) << m.name << " is in the table but nothing emits it";
}

TEST(MetricTable, HelpTextComesFromTheTable) {
  for (pt::Metric const& m : pt::kMetrics) EXPECT_EQ(pe::help_text(m.name), m.help) << m.name;
  for (pe::MetricFamily const& f : pe::collect()) {
    pt::Metric const* m = pt::find_metric(f.name);
    ASSERT_NE(m, nullptr) << f.name;
    EXPECT_EQ(f.help, m->help) << f.name;
  }
}
