// pbm-guard's label vocabulary matches what pbm's telemetry writes into reports.
#include "report.hpp"

#include <pbm/telemetry/events.hpp>

#include <gtest/gtest.h>

namespace pbm::guard {
namespace {

namespace tel = pbm::telemetry;

TEST(Labels, MatchTelemetry) {
  std::vector<std::string> directions, memory, apis;
  for (std::size_t i = 0; i < tel::kDirectionCount; ++i)
    directions.emplace_back(tel::to_string(static_cast<tel::Direction>(i)));
  for (std::size_t i = 0; i < tel::kMemoryKindCount; ++i)
    memory.emplace_back(tel::to_string(static_cast<tel::MemoryKind>(i)));
  for (std::size_t i = 0; i < tel::kSyncApiCount; ++i) {
    auto const api = static_cast<tel::SyncApi>(i);
    apis.emplace_back(tel::to_string(api));
    EXPECT_EQ(sync_api_blocks_host(apis.back()), tel::blocks_host(api)) << apis.back();
  }
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(sorted(directions), sorted(known_directions()));
  EXPECT_EQ(sorted(memory), sorted(known_memory_kinds()));
  EXPECT_EQ(sorted(apis), sorted(known_sync_apis()));
}

}  // namespace
}  // namespace pbm::guard
