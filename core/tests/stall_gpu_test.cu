// GPU tests of stalls: a producer that reserved and never committed, a consumer that claimed and
// never released (kernels killed midway, simulated with the detail API). Pops must not hang, the
// host must be able to see the stall, and no record may be lost or popped twice.
// Each skips with "no CUDA device" where none is visible; scripts/gpu-check runs them on a GPU.
#include "gpu_test_util.cuh"

#include <pbm/device.cuh>
#include <pbm/mailbox.hpp>
#include <pbm/stream.hpp>

#include <chrono>

namespace {

using pbm_test::checksum;
using pbm_test::DeviceBuffer;
using pbm_test::make_records;
using pbm_test::Rec;

/// A consumer killed between claim and release: claims up to n records and never gives them back.
__global__ void claim_and_vanish(pbm::MailboxRef ref, std::uint64_t n, unsigned long long* claimed) {
  std::uint64_t base = 0;
  claimed[0] = pbm::detail::claim(ref.view(), n, &base);
  claimed[1] = base;
}

/// A producer killed between reserve and commit: reserves one record and never commits it.
__global__ void reserve_and_vanish(pbm::MailboxRef ref, unsigned long long* base_out) {
  std::uint64_t base = 0;
  if (pbm::detail::reserve(ref.view(), 1, &base) == 1) *base_out = base;
}

/// The same producer coming back: writes its record and commits it.
__global__ void commit_late(pbm::MailboxRef ref, unsigned long long const* base, Rec r) {
  pbm::detail::RingView const v = ref.view();
  pbm::detail::copy_record(v.record(v.slot_of(*base)), reinterpret_cast<unsigned char const*>(&r), v.stride);
  pbm::detail::commit(v, *base);
}

__global__ void block_pop_kernel(pbm::MailboxRef ref, Rec* dst, std::uint64_t max, pbm::PopStatus* status,
                                 unsigned long long* count) {
  pbm::PopStatus s{};
  std::uint64_t const k = pbm::block_pop(ref, dst, max, &s);
  if (threadIdx.x == 0) {
    *status = s;
    *count = k;
  }
}

TEST(MailboxStall, HostPopAfterAClaimNeverReleasedThrowsStallErrorWithItsRecords) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec), -1, "stall", ~0ull - 5);  // positions cross 2^64
  DeviceBuffer<Rec> in(64), out(64);
  DeviceBuffer<unsigned long long> claimed(2);
  in.from_host(make_records(1, 0, 64));
  out.fill(0xEE);
  pbm::Stream stream(pbm::StreamClass::peripheral);
  ASSERT_EQ(mailbox.push(in.ptr, 10, stream).wait(), 10u);
  ASSERT_EQ(mailbox.pop_bulk(out.ptr, 3, stream), 3u);
  claim_and_vanish<<<1, 1, 0, stream>>>(mailbox.ref(), 4, claimed.ptr);  // records 3..6, never released
  PBM_TEST_CUDA(cudaStreamSynchronize(stream));
  ASSERT_EQ(claimed.to_host()[0], 4u);

  auto const start = std::chrono::steady_clock::now();
  try {
    std::uint64_t const n = mailbox.pop_bulk(out.ptr, 64, stream);
    FAIL() << "the pop returned " << n << " without reporting the stall";
  } catch (pbm::stall_error const& e) {
    EXPECT_EQ(e.count(), 3u) << e.what();
    EXPECT_EQ(e.position(), 3u) << e.what();
    EXPECT_NE(std::string(e.what()).find("position 3"), std::string::npos) << e.what();
  }
  auto const waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(500)) << "gave up well before the bound";
  EXPECT_LT(waited, std::chrono::seconds(30));
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 3; ++i) {  // records 7, 8, 9: delivered, not lost
    EXPECT_EQ(host[i].seq, 7 + i);
    EXPECT_EQ(host[i].check, checksum(1, 7 + i));
  }

  auto const s = mailbox.stats();
  EXPECT_EQ(s.pushed, 10u);
  EXPECT_EQ(s.claimed, 10u);
  EXPECT_EQ(s.popped, 3u) << "release stops at the claim never released";
  EXPECT_EQ(s.pop_calls, 1u);
  // The stalled slots are never reused: only the 57 slots free before the stall take records.
  EXPECT_EQ(mailbox.push(in.ptr, 64, stream).wait(), 57u);
  EXPECT_EQ(mailbox.stats().dropped, 7u);
}

TEST(MailboxStall, BlockPopAfterAClaimNeverReleasedReportsTheStall) {
  PBM_REQUIRE_GPU();
  constexpr std::uint64_t kOrigin = ~0ull - 1;
  pbm::Mailbox mailbox(32, sizeof(Rec), -1, "stall-block", kOrigin);
  DeviceBuffer<Rec> in(32), out(32);
  DeviceBuffer<unsigned long long> claimed(2), count(1);
  DeviceBuffer<pbm::PopStatus> status(1);
  in.from_host(make_records(2, 0, 32));
  out.fill(0xEE);
  pbm::Stream stream(pbm::StreamClass::peripheral);
  ASSERT_EQ(mailbox.push(in.ptr, 8, stream).wait(), 8u);
  claim_and_vanish<<<1, 1, 0, stream>>>(mailbox.ref(), 2, claimed.ptr);
  block_pop_kernel<<<1, 128, 0, stream>>>(mailbox.ref(), out.ptr, 32, status.ptr, count.ptr);
  PBM_TEST_CUDA(cudaStreamSynchronize(stream));
  PBM_TEST_CUDA(cudaGetLastError());
  auto const st = status.to_host()[0];
  EXPECT_EQ(st.error, pbm::DeviceError::release_stalled);
  EXPECT_EQ(st.stalled_at, kOrigin) << "absolute position of the claim never released";
  EXPECT_EQ(claimed.to_host()[1], kOrigin);
  ASSERT_EQ(count.to_host()[0], 6u);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 6; ++i) EXPECT_EQ(host[i].seq, 2 + i);
}

TEST(MailboxStall, StatsShowARecordReservedButNeverCommittedAtTheHead) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec), -1, "stall-commit");
  DeviceBuffer<Rec> in(5), out(64);
  DeviceBuffer<unsigned long long> base(1);
  in.from_host(make_records(3, 1, 5));
  out.fill(0xEE);
  pbm::Stream stream(pbm::StreamClass::peripheral);
  reserve_and_vanish<<<1, 1, 0, stream>>>(mailbox.ref(), base.ptr);  // position 0, never committed
  ASSERT_EQ(mailbox.push(in.ptr, 5, stream).wait(), 5u);              // positions 1..5, committed
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 64, stream), 0u) << "nothing passes the uncommitted head";
  auto s = mailbox.stats();
  EXPECT_EQ(s.pushed, 6u);
  EXPECT_EQ(s.claimed, 0u);
  EXPECT_EQ(s.popped, 0u);
  EXPECT_TRUE(s.head_uncommitted);

  commit_late<<<1, 1, 0, stream>>>(mailbox.ref(), base.ptr, Rec{3, 0, checksum(3, 0), 0});
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 64, stream), 6u);
  s = mailbox.stats();
  EXPECT_EQ(s.claimed, 6u);
  EXPECT_EQ(s.popped, 6u);
  EXPECT_FALSE(s.head_uncommitted);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 6; ++i) EXPECT_EQ(host[i].seq, i);
}

}  // namespace
