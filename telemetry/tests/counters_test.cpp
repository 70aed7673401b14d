#include <pbm/telemetry/counters.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace pt = pbm::telemetry;

namespace {
pt::CounterSample const* find(std::vector<pt::CounterSample> const& samples, std::string const& name,
                              std::map<std::string, std::string> const& labels) {
  auto it = std::find_if(samples.begin(), samples.end(), [&](pt::CounterSample const& s) {
    return s.name == name && s.labels == labels;
  });
  return it == samples.end() ? nullptr : &*it;
}
}  // namespace

TEST(Counters, MemcpyCountAndBytesByLabels) {
  pt::Counters c;
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "step", 100);
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "step", 50);
  c.add_memcpy(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "", 8);
  EXPECT_EQ(c.memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "step"), 2u);
  EXPECT_EQ(c.memcpy_bytes(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "step"), 150u);
  EXPECT_EQ(c.memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, true, "step"), 0u);
  EXPECT_EQ(c.memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, ""), 1u);
  EXPECT_EQ(c.memcpy_total(false), 2u);
  EXPECT_EQ(c.memcpy_total(true), 1u);
}

TEST(Counters, QueriesDoNotTakeRangeSlots) {
  pt::Counters c(1);
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "never-seen"), 0u);
  c.add_sync(pt::SyncApi::stream_synchronize, false, "first");
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "first"), 1u);
}

TEST(Counters, SnapshotHasLabelledSeriesAndAlwaysPresentHealth) {
  pt::Counters c;
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pinned, false, "loss", 4096);
  c.add_sync(pt::SyncApi::device_synchronize, true, "");
  c.add_violation(pt::Rule::memcpy_dtoh);
  c.health().dropped_records.fetch_add(3);
  c.health().cupti_attached.store(true);
  auto const samples = c.snapshot();

  std::map<std::string, std::string> const memcpy_labels{
      {"direction", "DtoH"}, {"memory", "pinned"}, {"expected", "false"}, {"range", "loss"}};
  auto const* copies = find(samples, "pbm_memcpy_total", memcpy_labels);
  ASSERT_NE(copies, nullptr);
  EXPECT_EQ(copies->value, 1u);
  auto const* bytes = find(samples, "pbm_memcpy_bytes_total", memcpy_labels);
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->value, 4096u);

  auto const* sync = find(samples, "pbm_sync_total",
                          {{"api", "device_synchronize"}, {"expected", "true"}, {"range", "none"}});
  ASSERT_NE(sync, nullptr);
  EXPECT_EQ(sync->value, 1u);

  // Violations by rule exist at zero so alerts have a series from the start.
  auto const* dtoh = find(samples, "pbm_violations_total", {{"rule", "memcpy_dtoh"}});
  auto const* forbidden = find(samples, "pbm_violations_total", {{"rule", "sync_forbidden"}});
  ASSERT_NE(dtoh, nullptr);
  ASSERT_NE(forbidden, nullptr);
  EXPECT_EQ(dtoh->value, 1u);
  EXPECT_EQ(forbidden->value, 0u);

  auto const* dropped = find(samples, "pbm_telemetry_dropped_records_total", {});
  auto const* attached = find(samples, "pbm_telemetry_cupti_attached", {});
  ASSERT_NE(dropped, nullptr);
  ASSERT_NE(attached, nullptr);
  EXPECT_EQ(dropped->value, 3u);
  EXPECT_EQ(attached->value, 1u);
  EXPECT_EQ(attached->type, pt::CounterSample::Type::gauge);
  // Zero memcpy series are not listed.
  EXPECT_EQ(find(samples, "pbm_memcpy_total",
                 {{"direction", "HtoD"}, {"memory", "pinned"}, {"expected", "false"}, {"range", "loss"}}),
            nullptr);
}

TEST(Counters, ConcurrentIncrementsAreNotLost) {
  pt::Counters c;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&c, t] {
      std::string const range = "r" + std::to_string(t % 2);
      for (int i = 0; i < kPerThread; ++i) {
        c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pinned, false, range, 2);
        c.add_sync(pt::SyncApi::stream_synchronize, false, range);
        c.add_violation(pt::Rule::sync_unexpected);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.memcpy_total(false), std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(c.memcpy_bytes(pt::Direction::DtoH, pt::MemoryKind::pinned, false, "r0") +
                c.memcpy_bytes(pt::Direction::DtoH, pt::MemoryKind::pinned, false, "r1"),
            std::uint64_t{kThreads} * kPerThread * 2);
  EXPECT_EQ(c.sync_total(false), std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(c.violation_count(pt::Rule::sync_unexpected), std::uint64_t{kThreads} * kPerThread);
}

TEST(Counters, SnapshotAtTheLargestCapIsLinearNotQuadratic) {
  pt::Counters c(4096);
  for (int i = 0; i < 4096; ++i) {
    std::string const range = "range" + std::to_string(i);
    c.add_sync(pt::SyncApi::stream_synchronize, false, range);
    c.add_sync(pt::SyncApi::event_synchronize, false, range);
    c.add_sync(pt::SyncApi::device_synchronize, true, range);
    c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, range, 8);
    c.add_memcpy(pt::Direction::HtoD, pt::MemoryKind::pinned, true, range, 8);
  }
  auto const t0 = std::chrono::steady_clock::now();
  std::vector<pt::CounterSample> const samples = c.snapshot();
  double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(samples.size(), 4096u * 7u);  // 3 sync + 2 x (count, bytes) memcpy series per range
  // Summing duplicates by scanning every sample took 4 s here; hashing them takes about 40 ms (the
  // bound leaves room for sanitizer builds and a loaded machine).
  EXPECT_LT(seconds, 1.0) << samples.size() << " samples";
  RecordProperty("snapshot_ms", static_cast<int>(seconds * 1000));
}

TEST(Counters, SnapshotIsAPureReadOfTheCounters) {
  // No environment (rank) and no mailbox registry: exporters::collect() adds those.
  char const* const saved = std::getenv("RANK");
  std::string const saved_value = saved != nullptr ? saved : "";
  ::setenv("RANK", "5", 1);
  pt::Counters c;
  c.add_violation(pt::Rule::memcpy_dtoh);
  std::vector<pt::CounterSample> const samples = c.snapshot();
  if (saved != nullptr) ::setenv("RANK", saved_value.c_str(), 1); else ::unsetenv("RANK");
  ASSERT_FALSE(samples.empty());
  for (pt::CounterSample const& s : samples) {
    EXPECT_EQ(s.labels.count("rank"), 0u) << s.name;
    EXPECT_EQ(s.labels.count("mailbox"), 0u) << s.name;
    pt::Metric const* m = pt::find_metric(s.name);
    ASSERT_NE(m, nullptr) << s.name << " is not in the metric table";
    EXPECT_EQ(s.type, m->type) << s.name;
  }
  auto const* v = find(samples, "pbm_violations_total", {{"rule", "memcpy_dtoh"}});
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->value, 1u);
}
