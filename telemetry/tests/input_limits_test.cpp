// Memory that input can grow: NVTX range names (user strings of any length) and MARKER records
// whose end never comes (lost when CUPTI drops records, or a range that is never closed). Each is
// capped, so a long-running process does not grow without limit and every API call does not copy
// a megabyte of range name.
#include "engine.hpp"
#include "scope.hpp"

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/policy.hpp>

#include <gtest/gtest.h>

#include <string>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

// Generous on purpose: the test holds any cap that keeps a label readable; what fails is "none".
constexpr std::size_t kGenerousNameBound = 1024;
constexpr std::size_t kGenerousDepthBound = 4096;

std::string const& huge_name() {
  static std::string const name = "train_step/" + std::string(1u << 20, 'x');  // 1 MiB
  return name;
}

}  // namespace

TEST(InputLimits, HugeRangeNameIsCappedInLabels) {
  pt::Counters c(4);
  c.add_sync(pt::SyncApi::stream_synchronize, false, huge_name());
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, huge_name(), 8);
  std::size_t seen = 0;
  for (pt::CounterSample const& s : c.snapshot()) {
    auto it = s.labels.find("range");
    if (it == s.labels.end()) continue;
    ++seen;
    EXPECT_LE(it->second.size(), kGenerousNameBound) << s.name;
    EXPECT_EQ(it->second.compare(0, 11, "train_step/"), 0) << "the label keeps the name's beginning";
  }
  EXPECT_EQ(seen, 3u);  // sync, memcpy, memcpy bytes
  // Queries with the full name still find the capped label.
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, huge_name()), 1u);
}

TEST(InputLimits, HugeNvtxRangeNameIsCappedOnTheRangeStack) {
  // The stack is copied into every API call's context: a 1 MiB name would be copied per call.
  pd::nvtx_push("", huge_name());
  ASSERT_FALSE(pd::current_ranges().empty());
  std::size_t const kept = pd::current_ranges().back().name.size();
  pd::nvtx_pop("");
  EXPECT_LE(kept, kGenerousNameBound);
  EXPECT_TRUE(pd::current_ranges().empty());
}

TEST(InputLimits, MarkerStacksStayBoundedWhenEndRecordsNeverCome) {
  pt::set_mode(pt::Mode::count);
  pd::Engine engine;
  pd::MarkerEvent start;
  start.kind = pd::MarkerEvent::Kind::start;
  start.thread = 4242;
  start.domain = "pbm";
  start.name = "push";
  for (std::uint32_t id = 1; id <= 100000; ++id) {
    start.id = id;
    engine.on_marker(start);
  }
  EXPECT_LE(engine.marker_ranges(4242).size(), kGenerousDepthBound);
  // The newest ranges are the ones kept: an end record for the last start still closes it.
  pd::MarkerEvent end;
  end.kind = pd::MarkerEvent::Kind::end;
  end.thread = 4242;
  end.id = 100000;
  std::size_t const before = engine.marker_ranges(4242).size();
  engine.on_marker(end);
  EXPECT_EQ(engine.marker_ranges(4242).size(), before - 1);
}

TEST(InputLimits, ObservedRangeNamesAreCapped) {
  pd::Engine engine;
  pd::MarkerEvent m;
  m.kind = pd::MarkerEvent::Kind::instant;
  for (int i = 0; i < 5000; ++i) {
    m.name = "r" + std::to_string(i);
    engine.on_marker(m);
  }
  EXPECT_LE(engine.observed_ranges().size(), 1024u);
}
