// GPU tests: the mailbox's own push/pop loop, watched by pbm's telemetry, shows no unexpected
// memcpy or synchronisation (and none at all with WaitMode::spin), while a cudaMemcpy D2H added
// to the same loop is caught. Also: the loop's counts reach the exporters' mailbox series.
// Each case is its own ctest process (gtest_discover_tests): CUPTI is process-wide.
#include "engine.hpp"

#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/mailbox.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

constexpr std::uint64_t kRecords = 8;   // per push and per pop
constexpr std::uint32_t kStride = 64;   // bytes per record
constexpr int kWarmup = 10;
constexpr int kIterations = 200;
char const* const kName = "telemetry_loop";

bool have_device() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return false;
  }
  return n > 0;
}

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call
// start() may skip or fail; the test body must stop then, not run on a half-built fixture.
#define START(mode)                          \
  start(mode);                               \
  if (IsSkipped() || HasFailure()) return

/// Holds the pop kernel back so that WaitMode::block really blocks (cudaEventSynchronize).
__global__ void sleep_kernel(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

struct Recorder : pt::Observer {
  std::mutex mu;
  std::vector<std::pair<pt::MemcpyEvent, bool>> copies;
  std::vector<std::pair<pt::SyncEvent, bool>> syncs;
  std::vector<pt::Violation> violations;
  void on_memcpy(pt::MemcpyEvent const& ev, bool expected) override {
    std::lock_guard<std::mutex> lock(mu);
    copies.emplace_back(ev, expected);
  }
  void on_sync(pt::SyncEvent const& ev, bool expected) override {
    std::lock_guard<std::mutex> lock(mu);
    syncs.emplace_back(ev, expected);
  }
  void on_violation(pt::Violation const& v) override {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(v);
  }
  /// What was seen, for failure messages.
  std::string describe() {
    std::lock_guard<std::mutex> lock(mu);
    std::ostringstream out;
    for (auto const& [c, expected] : copies)
      out << "  memcpy " << pt::to_string(c.direction) << " " << c.bytes << " B src=" << pt::to_string(c.src_kind)
          << " dst=" << pt::to_string(c.dst_kind) << (expected ? " expected" : " UNEXPECTED") << " ranges "
          << pt::format_ranges(c.ranges) << "\n";
    for (auto const& [s, expected] : syncs)
      out << "  sync " << pt::to_string(s.api) << " (" << s.api_name << ")" << (expected ? " expected" : " UNEXPECTED")
          << " ranges " << pt::format_ranges(s.ranges) << "\n";
    for (auto const& v : violations) out << pt::format_report(v) << "\n";
    return out.str();
  }
};

struct Totals {
  std::uint64_t memcpy_unexpected, memcpy_expected, sync_unexpected, sync_expected, violations;
};

Totals totals() {
  pt::Counters const& c = pt::counters();
  return {c.memcpy_total(false), c.memcpy_total(true), c.sync_total(false), c.sync_total(true), c.violation_total()};
}

class MailboxTelemetryGpu : public ::testing::Test {
 protected:
  void start(pt::Mode mode) {
    if (!have_device()) GTEST_SKIP() << "no CUDA device";
    CHECK_CUDA(cudaFree(nullptr));  // context first
    pt::Config config;
    config.mode = mode;
    pt::start(config);
    pt::Status const st = pt::status();
    if (st.subscriber_taken) GTEST_SKIP() << "another CUPTI client holds the subscriber: " << st.reason;
    ASSERT_TRUE(st.attached) << st.reason;

    stream_ = std::make_unique<pbm::Stream>(pbm::StreamClass::focus);
    mailbox_ = std::make_unique<pbm::Mailbox>(1024, kStride, -1, kName);  // synchronises: expected
    {
      pt::Expect setup;  // setup is not the loop under test (cudaMalloc is an implicit sync: malloc)
      CHECK_CUDA(cudaMalloc(&src_, kRecords * kStride));
      CHECK_CUDA(cudaMalloc(&dst_, kRecords * kStride));
      CHECK_CUDA(cudaMemsetAsync(src_, 7, kRecords * kStride, stream_->get()));
      CHECK_CUDA(cudaStreamSynchronize(stream_->get()));
    }
    // Warm-up: the completion pool, module loading and NVTX string registration happen here.
    loop(kWarmup, pbm::WaitPolicy{});
    pt::flush();
    pt::add_observer(recorder_);
    before_ = totals();
  }
  void TearDown() override {
    pt::remove_observer(recorder_);
    pt::Expect teardown;  // cudaFree is an implicit sync (free); assert mode would abort on it
    mailbox_.reset();
    if (src_ != nullptr) cudaFree(src_);
    if (dst_ != nullptr) cudaFree(dst_);
    stream_.reset();
  }

  /// push 8 records from device memory, pop them, wait; optionally a sleep kernel before the pop
  /// (so the wait blocks) and a deliberate cudaMemcpy D2H after it.
  void loop(int n, pbm::WaitPolicy policy, bool slow_pop = false, bool add_dtoh = false) {
    std::vector<unsigned char> host(kRecords * kStride);  // pageable
    for (int i = 0; i < n; ++i) {
      mailbox_->push(src_, kRecords, stream_->get());
      if (slow_pop) sleep_kernel<<<1, 1, 0, stream_->get()>>>(50'000);
      pbm::PopHandle handle = mailbox_->pop_bulk_async(dst_, kRecords, stream_->get());
      ASSERT_EQ(handle.wait(policy), kRecords) << "iteration " << i;
      if (add_dtoh) CHECK_CUDA(cudaMemcpy(host.data(), dst_, host.size(), cudaMemcpyDeviceToHost));
    }
    ++loops_;
  }

  Totals delta() {
    pt::flush();
    Totals const now = totals();
    return {now.memcpy_unexpected - before_.memcpy_unexpected, now.memcpy_expected - before_.memcpy_expected,
            now.sync_unexpected - before_.sync_unexpected, now.sync_expected - before_.sync_expected,
            now.violations - before_.violations};
  }

  std::unique_ptr<pbm::Stream> stream_;
  std::unique_ptr<pbm::Mailbox> mailbox_;
  void* src_{nullptr};
  void* dst_{nullptr};
  Recorder recorder_;
  Totals before_{};
  int loops_{0};
};

}  // namespace

TEST_F(MailboxTelemetryGpu, DefaultWaitPolicyLoopHasNoUnexpectedCopiesOrSyncs) {
  START(pt::Mode::count);
  loop(kIterations, pbm::WaitPolicy{});
  Totals const d = delta();
  EXPECT_EQ(d.memcpy_unexpected, 0u) << recorder_.describe();
  EXPECT_EQ(d.memcpy_expected, 0u) << "the mailbox loop copies nothing\n" << recorder_.describe();
  EXPECT_EQ(d.sync_unexpected, 0u) << recorder_.describe();
  EXPECT_EQ(d.violations, 0u) << recorder_.describe();
  // Syncs counted as expected (spin_then_block falling back to pbm's own cudaEventSynchronize) are allowed.
  std::lock_guard<std::mutex> lock(recorder_.mu);
  for (auto const& [s, expected] : recorder_.syncs) EXPECT_TRUE(expected) << s.api_name;
}

TEST_F(MailboxTelemetryGpu, BlockingWaitIsAnExpectedSyncAndNothingElse) {
  START(pt::Mode::count);
  pbm::WaitPolicy block;
  block.mode = pbm::WaitMode::block;
  loop(kIterations, block, /*slow_pop=*/true);
  Totals const d = delta();
  EXPECT_EQ(d.memcpy_unexpected + d.memcpy_expected, 0u) << recorder_.describe();
  EXPECT_EQ(d.sync_unexpected, 0u) << recorder_.describe();
  EXPECT_EQ(d.violations, 0u) << recorder_.describe();
  // The pop kernel sits behind a 50 us sleep, so wait() really blocks in cudaEventSynchronize
  // (inside pbm::ExpectedSyncScope): counted, as expected.
  EXPECT_GE(d.sync_expected, 1u) << recorder_.describe();
  std::lock_guard<std::mutex> lock(recorder_.mu);
  EXPECT_TRUE(std::any_of(recorder_.syncs.begin(), recorder_.syncs.end(), [](auto const& s) {
    return s.first.api == pt::SyncApi::event_synchronize && s.second;
  })) << "no expected cudaEventSynchronize seen";
}

TEST_F(MailboxTelemetryGpu, SpinWaitLoopHasNoCopiesOrSyncsAtAllInAssertMode) {
  START(pt::Mode::assert_);  // any violation aborts this process with a report
  pbm::WaitPolicy spin;
  spin.mode = pbm::WaitMode::spin;
  loop(kIterations, spin, /*slow_pop=*/true);  // spins through the sleep: still no CUDA sync call
  Totals const d = delta();
  EXPECT_EQ(d.memcpy_unexpected + d.memcpy_expected, 0u) << recorder_.describe();
  EXPECT_EQ(d.sync_unexpected + d.sync_expected, 0u) << "WaitMode::spin must not call CUDA to wait\n"
                                                     << recorder_.describe();
  EXPECT_EQ(d.violations, 0u) << recorder_.describe();
}

TEST_F(MailboxTelemetryGpu, DeliberateDeviceToHostCopyInTheLoopIsCaught) {
  START(pt::Mode::count);
  loop(kIterations, pbm::WaitPolicy{}, /*slow_pop=*/false, /*add_dtoh=*/true);
  Totals const d = delta();
  EXPECT_GE(d.memcpy_unexpected, 1u) << recorder_.describe();
  EXPECT_GE(d.violations, 1u);
  EXPECT_GE(pt::counters().violation_count(pt::Rule::memcpy_dtoh), 1u);
  EXPECT_GE(pt::counters().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, ""), 1u);
  std::lock_guard<std::mutex> lock(recorder_.mu);
  auto const it = std::find_if(recorder_.copies.begin(), recorder_.copies.end(), [](auto const& c) {
    return c.first.direction == pt::Direction::DtoH && !c.second;
  });
  ASSERT_NE(it, recorder_.copies.end());
  EXPECT_EQ(it->first.bytes, kRecords * kStride);
}

TEST_F(MailboxTelemetryGpu, LoopCountsReachTheCounterSnapshotWithoutCopiesOrSyncs) {
  START(pt::Mode::count);
  pbm::WaitPolicy spin;
  spin.mode = pbm::WaitMode::spin;
  loop(kIterations, spin);
  pt::flush();
  Totals const mid = totals();
  // What exporters::collect() adds for live mailboxes: mapped host memory, no memcpy, no sync.
  auto const samples = pbm::exporters::mailbox_samples(pbm::mailboxes());
  pt::flush();
  Totals const after = totals();
  EXPECT_EQ(after.memcpy_unexpected + after.memcpy_expected, mid.memcpy_unexpected + mid.memcpy_expected);
  EXPECT_EQ(after.sync_unexpected + after.sync_expected, mid.sync_unexpected + mid.sync_expected);

  std::uint64_t const calls = static_cast<std::uint64_t>(kWarmup + kIterations);
  auto value = [&](std::string const& name, std::map<std::string, std::string> extra = {}) -> std::uint64_t {
    std::uint64_t sum = 0;
    bool found = false;
    for (auto const& s : samples) {
      if (s.name != name || s.labels.count("mailbox") == 0 || s.labels.at("mailbox") != kName) continue;
      bool match = true;
      for (auto const& [k, v] : extra) match = match && s.labels.count(k) != 0 && s.labels.at(k) == v;
      if (match) {
        sum += s.value;
        found = true;
      }
    }
    EXPECT_TRUE(found) << name;
    return sum;
  };
  EXPECT_EQ(value("pbm_push_records_total"), calls * kRecords);
  EXPECT_EQ(value("pbm_pop_records_total"), calls * kRecords);
  EXPECT_EQ(value("pbm_push_bytes_total"), calls * kRecords * kStride);
  EXPECT_EQ(value("pbm_pop_bytes_total"), calls * kRecords * kStride);
  EXPECT_EQ(value("pbm_dropped_records_total"), 0u);
  EXPECT_EQ(value("pbm_occupancy_records"), 0u);
  EXPECT_EQ(value("pbm_capacity_records"), 1024u);
  EXPECT_EQ(value("pbm_push_calls_total"), calls);  // summed over stream classes
  EXPECT_EQ(value("pbm_pop_calls_total"), calls);
  int device = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  EXPECT_EQ(value("pbm_push_records_total", {{"device", std::to_string(device)}}), calls * kRecords);
  // A focus stream counts under focus when the device has more than one priority.
  pbm::PriorityRange const range = pbm::priority_range();
  if (range.least != range.greatest) {
    EXPECT_EQ(value("pbm_push_calls_total", {{"stream_class", "focus"}}), calls);
    EXPECT_EQ(value("pbm_pop_calls_total", {{"stream_class", "peripheral"}}), 0u);
  }
}

// pbm's own allocations and frees are expected wherever they happen: the completion pool growing
// under a user's forbid(sync) scope (more pops in flight than a chunk holds), and a mailbox built
// and destroyed there.
TEST_F(MailboxTelemetryGpu, PoolGrowthAndMailboxLifetimeInsideForbidAreExpected) {
  START(pt::Mode::count);
  pbm::WaitPolicy spin;
  spin.mode = pbm::WaitMode::spin;
  {
    pt::Forbid forbid(pt::What::sync);
    std::vector<pbm::PopHandle> in_flight;
    for (int i = 0; i < 3 * 64 + 1; ++i) in_flight.push_back(mailbox_->pop_bulk_async(dst_, kRecords, stream_->get()));
    for (pbm::PopHandle& h : in_flight) EXPECT_EQ(h.wait(spin), 0u);
    in_flight.clear();
    pbm::Mailbox another(64, kStride, -1, "pbm_own");
  }
  Totals const d = delta();
  std::lock_guard<std::mutex> lock(recorder_.mu);
  for (pt::Violation const& v : recorder_.violations) ADD_FAILURE() << pt::format_report(v);
  EXPECT_EQ(d.violations, 0u);
  EXPECT_EQ(d.sync_unexpected, 0u);
  EXPECT_GT(d.sync_expected, 0u) << "the pool grew and the mailbox came and went: pbm's own, counted as expected";
}

int main(int argc, char** argv) {
  pt::ensure_nvtx_injection();  // before any NVTX call, so pbm's ranges reach CUPTI
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
