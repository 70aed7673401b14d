// The pipeline after the decoder, fed the way the CUPTI callbacks feed it: api_enter on the
// calling thread, records later (here: on the same thread, or another one).
#include "engine.hpp"
#include "engine_test_util.hpp"
#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/policy.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

using pbm_test::Recorder;
using pbm_test::api_call;

pt::MemcpyEvent dtoh_record(std::uint32_t driver_corr, std::uint32_t runtime_corr) {
  pt::MemcpyEvent ev;
  ev.direction = pt::Direction::DtoH;
  ev.src_kind = pt::MemoryKind::device;
  ev.dst_kind = pt::MemoryKind::pageable;
  ev.bytes = 1024;
  ev.correlation = driver_corr;
  ev.runtime_correlation = runtime_corr;
  return ev;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pt::set_mode(pt::Mode::count);
    pt::set_range_allow_list({});
    engine.add_observer(recorder);
  }
  void TearDown() override {
    pt::set_mode(pt::Mode::count);
    while (!pd::current_ranges().empty()) pd::nvtx_pop(pd::current_ranges().back().domain);
  }
  // Enter and exit a runtime API call (the CUPTI callback does both around the real call).
  void runtime_call(pd::ApiCall const& c) {
    engine.api_enter(c);
    engine.api_exit(c);
  }
  pd::Engine engine;
  Recorder recorder;
};

}  // namespace

TEST_F(EngineTest, SyncJudgedAtTheCallWithThreadAndRange) {
  pd::nvtx_push("", "train_step");
  runtime_call(api_call(pd::ApiCall::Class::sync, 7, "cudaStreamSynchronize", pt::SyncApi::stream_synchronize));
  auto& c = engine.counters();
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "train_step"), 1u);
  EXPECT_EQ(c.violation_count(pt::Rule::sync_unexpected), 1u);
  ASSERT_EQ(recorder.syncs.size(), 1u);
  EXPECT_EQ(recorder.syncs[0].first.thread, pd::current_thread_id());
  EXPECT_EQ(recorder.syncs[0].first.api_name, "cudaStreamSynchronize");
  ASSERT_EQ(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].ranges, (pt::RangeStack{{"", "train_step"}}));
}

TEST_F(EngineTest, ExpectScopeAndPbmWaitMakeSyncsExpected) {
  {
    pt::Expect expect;
    runtime_call(api_call(pd::ApiCall::Class::sync, 1, "cudaEventSynchronize", pt::SyncApi::event_synchronize));
  }
  {
    pbm::ExpectedSyncScope pbm_wait;
    runtime_call(api_call(pd::ApiCall::Class::sync, 2, "cudaEventSynchronize", pt::SyncApi::event_synchronize));
  }
  runtime_call(api_call(pd::ApiCall::Class::sync, 3, "cudaEventSynchronize", pt::SyncApi::event_synchronize));
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::event_synchronize, true, ""), 2u);
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::event_synchronize, false, ""), 1u);
}

TEST_F(EngineTest, CopyRecordIsJudgedInTheScopeOfItsCall) {
  pd::nvtx_push("", "eval");
  {
    pt::Expect expect(pt::What::memcpy);
    runtime_call(api_call(pd::ApiCall::Class::memcpy_async, 40, "cudaMemcpyAsync"));
  }
  runtime_call(api_call(pd::ApiCall::Class::memcpy_async, 41, "cudaMemcpyAsync"));
  pd::nvtx_pop("");
  std::uint32_t const caller = pd::current_thread_id();
  // Records arrive later on CUPTI's thread, outside the scope.
  std::thread([&] {
    engine.on_memcpy(dtoh_record(900, 40));
    engine.on_memcpy(dtoh_record(901, 41));
  }).join();
  ASSERT_EQ(recorder.copies.size(), 2u);
  EXPECT_TRUE(recorder.copies[0].second);
  EXPECT_FALSE(recorder.copies[1].second);
  EXPECT_EQ(recorder.copies[1].first.thread, caller);
  EXPECT_EQ(recorder.copies[1].first.ranges, (pt::RangeStack{{"", "eval"}}));
  EXPECT_EQ(engine.counters().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "eval"), 1u);
  EXPECT_EQ(engine.counters().memcpy_bytes(pt::Direction::DtoH, pt::MemoryKind::pageable, true, "eval"), 1024u);
  ASSERT_EQ(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].rule, pt::Rule::memcpy_dtoh);
  EXPECT_EQ(recorder.violations[0].api, "cudaMemcpyAsync");
  EXPECT_EQ(engine.counters().health().unattributed_records.load(), 0u);
}

TEST_F(EngineTest, DriverCallsInsideARuntimeCallAreAliasesNotNewEvents) {
  auto rt = api_call(pd::ApiCall::Class::memcpy_sync, 10, "cudaMemcpy");
  auto drv = api_call(pd::ApiCall::Class::memcpy_sync, 11, "cuMemcpyDtoH", pt::SyncApi::unknown, /*runtime=*/false);
  pd::nvtx_push("", "loss");
  engine.api_enter(rt);
  engine.api_enter(drv);
  engine.api_exit(drv);
  engine.api_exit(rt);
  pd::nvtx_pop("");
  // One host sync (the runtime call), not two.
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::memcpy_sync, false, "loss"), 1u);
  // A record carrying only the driver correlation id still finds the runtime call.
  engine.on_memcpy(dtoh_record(11, 0));
  ASSERT_EQ(recorder.copies.size(), 1u);
  EXPECT_EQ(recorder.copies[0].first.ranges, (pt::RangeStack{{"", "loss"}}));
  ASSERT_EQ(recorder.violations.size(), 2u);
  EXPECT_EQ(recorder.violations[1].api, "cudaMemcpy");
  // A driver call made directly is an event of its own.
  engine.api_enter(api_call(pd::ApiCall::Class::sync, 12, "cuCtxSynchronize", pt::SyncApi::context_synchronize, false));
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::context_synchronize, false, ""), 1u);
}

TEST_F(EngineTest, SyncRecordsOfJudgedCallsAreNotCountedTwice) {
  runtime_call(api_call(pd::ApiCall::Class::sync, 20, "cudaStreamSynchronize", pt::SyncApi::stream_synchronize));
  pt::SyncEvent record;
  record.api = pt::SyncApi::stream_synchronize;
  record.correlation = 20;
  engine.on_sync(record);
  EXPECT_EQ(engine.counters().sync_total(false), 1u);
  // A sync record with no matching call (an API pbm does not hook) is judged on its own.
  record.correlation = 21;
  record.api = pt::SyncApi::context_synchronize;
  engine.on_sync(record);
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::context_synchronize, false, ""), 1u);
  EXPECT_EQ(engine.counters().health().unattributed_records.load(), 1u);
  EXPECT_EQ(engine.counters().health().records_processed.load(), 2u);
}

TEST_F(EngineTest, OffModeAtTheCallCountsNothing) {
  {
    pt::ScopedMode off(pt::Mode::off);
    runtime_call(api_call(pd::ApiCall::Class::sync, 30, "cudaDeviceSynchronize", pt::SyncApi::device_synchronize));
    runtime_call(api_call(pd::ApiCall::Class::memcpy_async, 31, "cudaMemcpyAsync"));
  }
  engine.on_memcpy(dtoh_record(0, 31));
  EXPECT_EQ(engine.counters().sync_total(false) + engine.counters().sync_total(true), 0u);
  EXPECT_EQ(engine.counters().memcpy_total(false) + engine.counters().memcpy_total(true), 0u);
  EXPECT_TRUE(recorder.violations.empty());
}

TEST_F(EngineTest, UnattributedRecordUsesTheProcessMode) {
  engine.on_memcpy(dtoh_record(5000, 0));
  EXPECT_EQ(engine.counters().memcpy_total(false), 1u);
  EXPECT_EQ(engine.counters().health().unattributed_records.load(), 1u);
  pt::set_mode(pt::Mode::off);
  engine.on_memcpy(dtoh_record(5001, 0));
  EXPECT_EQ(engine.counters().memcpy_total(false), 1u);
}

TEST_F(EngineTest, WarnPrintsOncePerSiteWithABacktrace) {
  pt::set_mode(pt::Mode::warn);
  ::testing::internal::CaptureStderr();
  for (std::uint32_t i = 0; i < 3; ++i) {
    runtime_call(api_call(pd::ApiCall::Class::sync, 100 + i, "cudaDeviceSynchronize", pt::SyncApi::device_synchronize));
  }
  std::string const err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::sync_unexpected), 3u);
  std::size_t reports = 0;
  for (std::size_t at = err.find("unexpected sync"); at != std::string::npos; at = err.find("unexpected sync", at + 1)) {
    ++reports;
  }
  EXPECT_EQ(reports, 1u) << err;
  EXPECT_NE(err.find("cudaDeviceSynchronize"), std::string::npos) << err;
  ASSERT_EQ(recorder.violations.size(), 3u);
  bool names_this_test = false;
  for (auto const& frame : recorder.violations[0].backtrace) {
    names_this_test |= frame.find("WarnPrintsOncePerSiteWithABacktrace") != std::string::npos;
  }
  EXPECT_TRUE(names_this_test) << "backtrace does not name the calling test";
}

TEST_F(EngineTest, CountModeReportsNothing) {
  ::testing::internal::CaptureStderr();
  runtime_call(api_call(pd::ApiCall::Class::sync, 1, "cudaDeviceSynchronize", pt::SyncApi::device_synchronize));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(engine.counters().violation_total(), 1u);
}

TEST_F(EngineTest, AssertModeAbortsWithAReportNamingTheRange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        pt::set_mode(pt::Mode::assert_);
        pd::nvtx_push("", "train_step");
        runtime_call(api_call(pd::ApiCall::Class::memcpy_async, 55, "cudaMemcpyAsync"));
        engine.on_memcpy(dtoh_record(0, 55));
      },
      "unexpected memcpy DtoH 1024 bytes(.|\n)*memcpy_dtoh(.|\n)*train_step(.|\n)*aborting");
}

TEST_F(EngineTest, ForbidThrowAtExitCollectsCopiesAndSyncsOfItsScope) {
  pt::set_mode(pt::Mode::assert_);  // a throwing guard takes the violation instead of aborting
  try {
    pt::Forbid guard(pt::What::all, pt::Forbid::Options{true});
    pd::nvtx_push("pbm", "push");
    runtime_call(api_call(pd::ApiCall::Class::memcpy_async, 60, "cudaMemcpyAsync"));
    runtime_call(api_call(pd::ApiCall::Class::sync, 61, "cudaStreamSynchronize", pt::SyncApi::stream_synchronize));
    pd::nvtx_pop("pbm");
    engine.on_memcpy(dtoh_record(0, 60));  // the record arrives before scope exit
    EXPECT_EQ(guard.violations().size(), 2u);
  } catch (pt::ViolationError const& e) {
    ASSERT_EQ(e.violations().size(), 2u);
    EXPECT_EQ(e.violations()[0].rule, pt::Rule::sync_forbidden);
    EXPECT_EQ(e.violations()[1].rule, pt::Rule::memcpy_forbidden);
    EXPECT_EQ(e.violations()[1].ranges, (pt::RangeStack{{"pbm", "push"}}));
    EXPECT_NE(std::string(e.what()).find("2 violation(s)"), std::string::npos) << e.what();
    return;
  }
  FAIL() << "Forbid with throw_at_exit did not throw";
}

TEST_F(EngineTest, ForbidDoesNotThrowWhileUnwinding) {
  auto body = [&] {
    pt::Forbid guard(pt::What::sync, pt::Forbid::Options{true});
    runtime_call(api_call(pd::ApiCall::Class::sync, 70, "cudaDeviceSynchronize", pt::SyncApi::device_synchronize));
    throw std::runtime_error("user error");
  };
  EXPECT_THROW(body(), std::runtime_error);
}

TEST_F(EngineTest, MarkersRebuildPerThreadRangeStacks) {
  auto marker = [](pd::MarkerEvent::Kind kind, std::uint32_t id, std::uint32_t thread, char const* domain,
                   char const* name) {
    pd::MarkerEvent m;
    m.kind = kind;
    m.id = id;
    m.thread = thread;
    m.domain = domain;
    m.name = name;
    return m;
  };
  using K = pd::MarkerEvent::Kind;
  engine.on_marker(marker(K::start, 1, 100, "", "train_step"));
  engine.on_marker(marker(K::start, 2, 100, "pbm", "pop"));
  engine.on_marker(marker(K::start, 3, 200, "pbm", "push"));
  EXPECT_EQ(engine.marker_ranges(100), (pt::RangeStack{{"", "train_step"}, {"pbm", "pop"}}));
  engine.on_marker(marker(K::end, 2, 100, "", ""));
  EXPECT_EQ(engine.marker_ranges(100), (pt::RangeStack{{"", "train_step"}}));
  EXPECT_EQ(engine.marker_ranges(200), (pt::RangeStack{{"pbm", "push"}}));
  auto observed = engine.observed_ranges();
  EXPECT_NE(std::find(observed.begin(), observed.end(), std::make_pair(std::string("pbm"), std::string("pop"))),
            observed.end());
}

// Without activity records (the default CUPTI setup) a sync's context is not kept past its call:
// the judgement, counts, ranges and the driver calls underneath are the same.
TEST_F(EngineTest, SyncsJudgedTheSameWhenNoRecordsWillBeJoined) {
  engine.set_joins_records(false);
  pd::nvtx_push("", "outer");
  pd::nvtx_push("pbm", "inner");
  {
    pt::Forbid forbid(pt::What::sync);
    auto const rt = api_call(pd::ApiCall::Class::sync, 40, "cudaDeviceSynchronize", pt::SyncApi::device_synchronize);
    EXPECT_TRUE(engine.api_enter(rt));
    auto const drv = api_call(pd::ApiCall::Class::sync, 41, "cuCtxSynchronize", pt::SyncApi::context_synchronize,
                          /*runtime=*/false);
    EXPECT_FALSE(engine.api_enter(drv));  // an alias of the runtime call
    engine.api_exit(drv);
    engine.api_exit(rt);
  }
  runtime_call(api_call(pd::ApiCall::Class::sync, 42, "cudaStreamQuery", pt::SyncApi::stream_query));
  auto& c = engine.counters();
  EXPECT_EQ(c.sync_count(pt::SyncApi::device_synchronize, false, "inner"), 1u);
  EXPECT_EQ(c.sync_count(pt::SyncApi::context_synchronize, false, "inner"), 0u);
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_query, true, "inner"), 1u);
  ASSERT_EQ(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].rule, pt::Rule::sync_forbidden);
  EXPECT_EQ(recorder.violations[0].ranges,
            (pt::RangeStack{pt::Range{"", "outer"}, pt::Range{"pbm", "inner"}}));
  ASSERT_EQ(recorder.syncs.size(), 2u);
  EXPECT_EQ(recorder.syncs[0].first.ranges.size(), 2u);
}

TEST_F(EngineTest, AnAllowListChangedBetweenTwoCallsOfOneThreadIsTheOneApplied) {
  pd::nvtx_push("", "checkpoint");
  auto sync = [&](std::uint32_t corr) {
    runtime_call(api_call(pd::ApiCall::Class::sync, corr, "cudaStreamSynchronize", pt::SyncApi::stream_synchronize));
  };
  auto& c = engine.counters();
  sync(901);  // this thread now holds the (empty) list it judged with
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "checkpoint"), 1u);
  pt::set_range_allow_list({"checkpoint"});
  sync(902);
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, true, "checkpoint"), 1u) << "the new list, not the cached one";
  pt::set_range_allow_list({});
  sync(903);
  EXPECT_EQ(c.sync_count(pt::SyncApi::stream_synchronize, false, "checkpoint"), 2u);
  pd::nvtx_pop("");
}
