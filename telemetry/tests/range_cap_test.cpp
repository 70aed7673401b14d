#include <pbm/telemetry/counters.hpp>

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace pt = pbm::telemetry;

TEST(RangeCap, NamesBeyondTheCapFoldIntoOther) {
  pt::Counters c(2);
  c.add_sync(pt::SyncApi::stream_synchronize, false, "a");
  c.add_sync(pt::SyncApi::stream_synchronize, false, "b");
  c.add_sync(pt::SyncApi::stream_synchronize, false, "c");
  c.add_sync(pt::SyncApi::stream_synchronize, false, "d");
  c.add_sync(pt::SyncApi::stream_synchronize, false, "a");
  std::map<std::string, std::uint64_t> by_range;
  for (auto const& s : c.snapshot()) {
    if (s.name == "pbm_sync_total") by_range[s.labels.at("range")] += s.value;
  }
  EXPECT_EQ(by_range, (std::map<std::string, std::uint64_t>{{"a", 2}, {"b", 1}, {"other", 2}}));
  // A query for a folded name reads the "other" bucket.
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "zzz"), 2u);
}

TEST(RangeCap, EmptyRangeIsNoneAndTakesNoSlot) {
  pt::Counters c(1);
  c.add_sync(pt::SyncApi::device_synchronize, false, "");
  c.add_sync(pt::SyncApi::device_synchronize, false, "only");
  std::set<std::string> ranges;
  for (auto const& s : c.snapshot()) {
    if (s.name == "pbm_sync_total") ranges.insert(s.labels.at("range"));
  }
  EXPECT_EQ(ranges, (std::set<std::string>{"none", "only"}));
}

TEST(RangeCap, DefaultCapIs32) {
  pt::Counters c;
  EXPECT_EQ(c.range_label_cap(), 32u);
  for (int i = 0; i < 40; ++i) c.add_sync(pt::SyncApi::event_synchronize, false, "range" + std::to_string(i));
  std::set<std::string> ranges;
  for (auto const& s : c.snapshot()) {
    if (s.name == "pbm_sync_total") ranges.insert(s.labels.at("range"));
  }
  EXPECT_EQ(ranges.size(), 33u);  // 32 names + "other"
  EXPECT_EQ(ranges.count("other"), 1u);
  EXPECT_EQ(c.sync_count(pt::SyncApi::event_synchronize, false, "other"), 8u);
}

TEST(RangeCap, ConcurrentNewNamesStayWithinTheCap) {
  pt::RangeLabels labels(8);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::size_t>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&labels, &seen, t] {
      for (int i = 0; i < 64; ++i) seen[t].push_back(labels.index("n" + std::to_string(i % 16)));
    });
  }
  for (auto& th : threads) th.join();
  for (auto const& indices : seen) {
    for (std::size_t idx : indices) {
      EXPECT_GE(idx, 1u);
      EXPECT_LE(idx, labels.other());
    }
  }
  EXPECT_EQ(labels.label(pt::RangeLabels::kNone), "none");
  EXPECT_EQ(labels.label(labels.other()), "other");
}

TEST(RangeCap, CapTooLargeIsRejected) {
  EXPECT_THROW(pt::Counters(1u << 20), std::invalid_argument);
}
