#include <pbm/telemetry/events.hpp>

#include <gtest/gtest.h>

namespace pt = pbm::telemetry;

TEST(Events, NamesAreLabelValues) {
  EXPECT_EQ(pt::to_string(pt::Direction::DtoH), "DtoH");
  EXPECT_EQ(pt::to_string(pt::Direction::PtoP), "PtoP");
  EXPECT_EQ(pt::to_string(pt::MemoryKind::pageable), "pageable");
  EXPECT_EQ(pt::to_string(pt::SyncApi::device_synchronize), "device_synchronize");
  EXPECT_EQ(pt::to_string(pt::SyncApi::memcpy_sync), "memcpy_sync");
}

TEST(Events, HostSideMemoryPrefersPageable) {
  EXPECT_EQ(pt::host_side_memory(pt::MemoryKind::device, pt::MemoryKind::pageable), pt::MemoryKind::pageable);
  EXPECT_EQ(pt::host_side_memory(pt::MemoryKind::pinned, pt::MemoryKind::device), pt::MemoryKind::pinned);
  EXPECT_EQ(pt::host_side_memory(pt::MemoryKind::device, pt::MemoryKind::device), pt::MemoryKind::device);
  EXPECT_EQ(pt::host_side_memory(pt::MemoryKind::unknown, pt::MemoryKind::unknown), pt::MemoryKind::unknown);
}

TEST(Events, BlockingApis) {
  EXPECT_TRUE(pt::blocks_host(pt::SyncApi::stream_synchronize));
  EXPECT_TRUE(pt::blocks_host(pt::SyncApi::memcpy_sync));
  EXPECT_FALSE(pt::blocks_host(pt::SyncApi::stream_query));
  EXPECT_FALSE(pt::blocks_host(pt::SyncApi::stream_wait_event));
}

TEST(Events, FormatRangesInnermostLast) {
  pt::RangeStack ranges{{"", "train_step"}, {"pbm", "pop"}};
  EXPECT_EQ(pt::format_ranges(ranges), "train_step > pbm:pop");
  EXPECT_EQ(pt::format_ranges({}), "(none)");
}
