// GPU tests: real CUPTI detection on a real device. Each case is its own ctest process
// (gtest_discover_tests), since CUPTI and NVTX injection are process-wide. Skips without a device.
#include "engine.hpp"
#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/nvtx.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <cuda_runtime.h>
#include <cupti.h>
#include <gtest/gtest.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

struct Recorder : pt::Observer {
  std::mutex mu;
  std::vector<pt::MemcpyEvent> copies;
  std::vector<pt::SyncEvent> syncs;
  void on_memcpy(pt::MemcpyEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    copies.push_back(ev);
  }
  void on_sync(pt::SyncEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    syncs.push_back(ev);
  }
};

constexpr std::size_t kBytes = 1 << 20;

class TelemetryGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_device()) GTEST_SKIP() << "no CUDA device";
    CHECK_CUDA(cudaFree(nullptr));  // create the context before measuring
    pt::Config config;
    config.mode = pt::Mode::count;
    config.marker_activity = true;  // PbmNvtxRangesReachCuptiAsDomainPbm checks MARKER records
    pt::start(config);
    pt::Status const st = pt::status();
    if (st.subscriber_taken) GTEST_SKIP() << "another CUPTI client holds the subscriber: " << st.reason;
    ASSERT_TRUE(st.attached) << st.reason;
    CHECK_CUDA(cudaMalloc(&device_, kBytes));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    pt::flush();
    pt::add_observer(recorder_);
  }
  void TearDown() override {
    pt::remove_observer(recorder_);
    if (device_ != nullptr) cudaFree(device_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  pt::Counters& c() { return pt::counters(); }

  void* device_{nullptr};
  cudaStream_t stream_{nullptr};
  Recorder recorder_;
};

}  // namespace

TEST_F(TelemetryGpu, SynchronousDeviceToHostCopyIsCaughtWithRange) {
  std::vector<char> host(kBytes);  // pageable
  auto const copies_before = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "d2h_range");
  auto const dtoh_before = c().violation_count(pt::Rule::memcpy_dtoh);
  nvtxRangePushA("d2h_range");
  CHECK_CUDA(cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost));
  nvtxRangePop();
  pt::flush();
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "d2h_range") - copies_before, 1u);
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_dtoh) - dtoh_before, 1u);
  EXPECT_GE(c().sync_count(pt::SyncApi::memcpy_sync, false, "d2h_range"), 1u);
  std::lock_guard<std::mutex> lock(recorder_.mu);
  auto it = std::find_if(recorder_.copies.begin(), recorder_.copies.end(),
                         [](pt::MemcpyEvent const& e) { return e.direction == pt::Direction::DtoH; });
  ASSERT_NE(it, recorder_.copies.end());
  EXPECT_EQ(it->bytes, kBytes);
  EXPECT_EQ(it->thread, pd::current_thread_id());
  ASSERT_FALSE(it->ranges.empty());
  EXPECT_EQ(it->ranges.back().name, "d2h_range");
}

TEST_F(TelemetryGpu, PageableAsyncCopyIsCaught) {
  std::vector<char> host(kBytes, 1);  // pageable
  auto const before = c().violation_count(pt::Rule::memcpy_pageable);
  CHECK_CUDA(cudaMemcpyAsync(device_, host.data(), kBytes, cudaMemcpyHostToDevice, stream_));
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_pageable) - before, 1u);
  EXPECT_GE(c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pageable, false, ""), 1u);
}

TEST_F(TelemetryGpu, PinnedAsyncCopyIsExpected) {
  void* pinned = nullptr;
  CHECK_CUDA(cudaMallocHost(&pinned, kBytes));
  pt::flush();
  auto const violations_before = c().violation_total();
  auto const expected_before = c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "");
  CHECK_CUDA(cudaMemcpyAsync(device_, pinned, kBytes, cudaMemcpyHostToDevice, stream_));
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "") - expected_before, 1u);
  EXPECT_EQ(c().violation_total(), violations_before);
  cudaFreeHost(pinned);
}

TEST_F(TelemetryGpu, StreamSynchronizeIsCaughtOnceWithRange) {
  auto const before = c().sync_count(pt::SyncApi::stream_synchronize, false, "sync_range");
  nvtxRangePushA("sync_range");
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  nvtxRangePop();
  pt::flush();  // the SYNCHRONIZATION record must not count it again
  EXPECT_EQ(c().sync_count(pt::SyncApi::stream_synchronize, false, "sync_range") - before, 1u);
}

TEST_F(TelemetryGpu, DeviceSynchronizeIsCaughtOnce) {
  auto const before = c().sync_count(pt::SyncApi::device_synchronize, false, "");
  auto const ctx_before = c().sync_total(false) - before;
  CHECK_CUDA(cudaDeviceSynchronize());
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::device_synchronize, false, ""), before + 1);
  // Its context-synchronize record (when CUDA emits one) is deduplicated.
  EXPECT_EQ(c().sync_total(false) - c().sync_count(pt::SyncApi::device_synchronize, false, ""), ctx_before);
}

TEST_F(TelemetryGpu, EventSynchronizeIsCaught) {
  cudaEvent_t event{};
  CHECK_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CHECK_CUDA(cudaEventRecord(event, stream_));
  auto const before = c().sync_count(pt::SyncApi::event_synchronize, false, "");
  CHECK_CUDA(cudaEventSynchronize(event));
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::event_synchronize, false, "") - before, 1u);
  cudaEventDestroy(event);
}

TEST_F(TelemetryGpu, PbmOwnWaitIsExpected) {
  auto const before = c().sync_count(pt::SyncApi::stream_synchronize, true, "");
  {
    pbm::ExpectedSyncScope pbm_wait;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::stream_synchronize, true, "") - before, 1u);
}

TEST_F(TelemetryGpu, AssertModeAbortsWithAReportNamingTheRange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<char> host(kBytes);
  EXPECT_DEATH(
      {
        pt::set_mode(pt::Mode::assert_);
        nvtxRangePushA("fatal_range");
        (void)cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost);
        pt::flush();
      },
      "unexpected (sync|memcpy)(.|\n)*fatal_range(.|\n)*aborting");
}

TEST_F(TelemetryGpu, PbmNvtxRangesReachCuptiAsDomainPbm) {
  {
    PBM_NVTX_RANGE(push, push);  // what Mailbox::push opens: domain "pbm", registered "pbm::push"
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  auto const observed = pd::engine().observed_ranges();
  EXPECT_NE(std::find(observed.begin(), observed.end(),
                      std::make_pair(std::string("pbm"), std::string(pbm::nvtx::msg::push::message))),
            observed.end())
      << "MARKER records did not carry domain pbm / pbm::push (is NVTX_INJECTION64_PATH set?)";
  // The API callback saw the same range open on this thread.
  std::lock_guard<std::mutex> lock(recorder_.mu);
  ASSERT_FALSE(recorder_.syncs.empty());
  pt::RangeStack const& ranges = recorder_.syncs.back().ranges;
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.back().domain, "pbm");
  EXPECT_EQ(ranges.back().name, pbm::nvtx::msg::push::message);
}

TEST_F(TelemetryGpu, ActivityRecordsModeJudgesTheSameCopiesFromRecords) {
  // Default: copies are judged at their API call (no MEMCPY records). With activity_records the
  // same copy is judged from its CUPTI record: same direction, memory and rule.
  pt::detach();
  pt::Config config;
  config.mode = pt::Mode::count;
  config.activity_records = true;
  pt::start(config);
  ASSERT_TRUE(pt::status().attached) << pt::status().reason;
  std::vector<char> host(kBytes);  // pageable
  auto const records_before = c().health().records_processed.load();
  auto const dtoh_before = c().violation_count(pt::Rule::memcpy_dtoh);
  auto const copies_before = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "rec_range");
  nvtxRangePushA("rec_range");
  CHECK_CUDA(cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost));
  nvtxRangePop();
  pt::flush();
  EXPECT_GT(c().health().records_processed.load(), records_before) << "no activity record arrived";
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_dtoh) - dtoh_before, 1u);
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "rec_range") - copies_before, 1u)
      << "counted once: the call did not also produce an event";
  // Back to the default for the other tests.
  pt::detach();
  pt::Config defaults;
  defaults.mode = pt::Mode::count;
  defaults.marker_activity = true;
  pt::start(defaults);
  ASSERT_TRUE(pt::status().attached) << pt::status().reason;
}

TEST_F(TelemetryGpu, StepsAsideForAnotherSubscriberAndReattaches) {
  pt::detach();
  CUpti_SubscriberHandle other{};
  auto noop = [](void*, CUpti_CallbackDomain, CUpti_CallbackId, void const*) {};
  ASSERT_EQ(cuptiSubscribe(&other, noop, nullptr), CUPTI_SUCCESS);
  EXPECT_FALSE(pt::attach());
  pt::Status const st = pt::status();
  EXPECT_TRUE(st.subscriber_taken);
  EXPECT_FALSE(st.attached);
  EXPECT_TRUE(c().health().subscriber_taken.load());
  // The application keeps running: CUDA works, nothing is counted.
  auto const before = c().sync_total(false);
  CHECK_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(c().sync_total(false), before);
  ASSERT_EQ(cuptiUnsubscribe(other), CUPTI_SUCCESS);
  EXPECT_TRUE(pt::attach()) << pt::status().reason;
  CHECK_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(c().sync_total(false), before + 1);
}

int main(int argc, char** argv) {
  // NVTX reads NVTX_INJECTION64_PATH once, at the first NVTX call: set it before anything else.
  pt::ensure_nvtx_injection();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
