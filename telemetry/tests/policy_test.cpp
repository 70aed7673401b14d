#include "classify.hpp"
#include "scope.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/policy.hpp>

#include <gtest/gtest.h>

#include <thread>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

pt::MemcpyEvent copy(pt::Direction d, pt::MemoryKind src, pt::MemoryKind dst) {
  pt::MemcpyEvent ev;
  ev.direction = d;
  ev.src_kind = src;
  ev.dst_kind = dst;
  ev.bytes = 64;
  return ev;
}

std::vector<std::string> const kNoAllow;

}  // namespace

TEST(Mode, ParsesTheFourModes) {
  EXPECT_EQ(pt::parse_mode("off"), pt::Mode::off);
  EXPECT_EQ(pt::parse_mode("count"), pt::Mode::count);
  EXPECT_EQ(pt::parse_mode("warn"), pt::Mode::warn);
  EXPECT_EQ(pt::parse_mode("assert"), pt::Mode::assert_);
  EXPECT_EQ(pt::to_string(pt::Mode::assert_), "assert");
}

TEST(Mode, BadValueNamesItAndTheChoices) {
  try {
    pt::parse_mode("ASSERT");
    FAIL() << "parse_mode accepted ASSERT";
  } catch (std::invalid_argument const& e) {
    std::string const what = e.what();
    EXPECT_NE(what.find("'ASSERT'"), std::string::npos) << what;
    EXPECT_NE(what.find("off, count, warn, assert"), std::string::npos) << what;
  }
  EXPECT_THROW(pt::parse_mode(""), std::invalid_argument);
}

TEST(Mode, ScopedModeOverridesOnThisThreadOnly) {
  pt::set_mode(pt::Mode::count);
  {
    pt::ScopedMode warn(pt::Mode::warn);
    EXPECT_EQ(pt::effective_mode(), pt::Mode::warn);
    {
      pt::ScopedMode off(pt::Mode::off);
      EXPECT_EQ(pt::effective_mode(), pt::Mode::off);
      EXPECT_EQ(pd::capture_context().mode, pt::Mode::off);
    }
    EXPECT_EQ(pt::effective_mode(), pt::Mode::warn);
    pt::Mode other_thread = pt::Mode::off;
    std::thread([&] { other_thread = pt::effective_mode(); }).join();
    EXPECT_EQ(other_thread, pt::Mode::count);
  }
  EXPECT_EQ(pt::effective_mode(), pt::Mode::count);
}

TEST(Classify, DeviceToHostAndPageableAreUnexpectedByDefault) {
  using D = pt::Direction;
  using M = pt::MemoryKind;
  auto dtoh = pd::classify_memcpy(copy(D::DtoH, M::device, M::pinned), pd::ScopeRule::none, {}, kNoAllow);
  EXPECT_FALSE(dtoh.expected);
  EXPECT_EQ(dtoh.rule, pt::Rule::memcpy_dtoh);
  auto pageable = pd::classify_memcpy(copy(D::HtoD, M::pageable, M::device), pd::ScopeRule::none, {}, kNoAllow);
  EXPECT_FALSE(pageable.expected);
  EXPECT_EQ(pageable.rule, pt::Rule::memcpy_pageable);
  EXPECT_TRUE(pd::classify_memcpy(copy(D::HtoD, M::pinned, M::device), pd::ScopeRule::none, {}, kNoAllow).expected);
  EXPECT_TRUE(pd::classify_memcpy(copy(D::DtoD, M::device, M::device), pd::ScopeRule::none, {}, kNoAllow).expected);
}

TEST(Classify, ScopesAndAllowListDecideCopies) {
  using D = pt::Direction;
  using M = pt::MemoryKind;
  auto const pinned_h2d = copy(D::HtoD, M::pinned, M::device);
  auto const dtoh = copy(D::DtoH, M::device, M::pinned);
  auto forbidden = pd::classify_memcpy(pinned_h2d, pd::ScopeRule::forbid, {}, kNoAllow);
  EXPECT_FALSE(forbidden.expected);
  EXPECT_EQ(forbidden.rule, pt::Rule::memcpy_forbidden);
  EXPECT_TRUE(pd::classify_memcpy(dtoh, pd::ScopeRule::expect, {}, kNoAllow).expected);

  pt::RangeStack const ranges{{"", "eval"}, {"pbm", "pop"}};
  EXPECT_TRUE(pd::classify_memcpy(dtoh, pd::ScopeRule::none, ranges, {"eval"}).expected);
  EXPECT_TRUE(pd::classify_memcpy(dtoh, pd::ScopeRule::none, ranges, {"pbm:pop"}).expected);
  EXPECT_FALSE(pd::classify_memcpy(dtoh, pd::ScopeRule::none, ranges, {"other:pop"}).expected);
  EXPECT_FALSE(pd::classify_memcpy(dtoh, pd::ScopeRule::none, ranges, {"train"}).expected);
  // An explicit Forbid beats the allow-list.
  EXPECT_FALSE(pd::classify_memcpy(dtoh, pd::ScopeRule::forbid, ranges, {"eval"}).expected);
}

TEST(Classify, Syncs) {
  using S = pt::SyncApi;
  auto plain = pd::classify_sync(S::stream_synchronize, pd::ScopeRule::none, false, {}, kNoAllow);
  EXPECT_FALSE(plain.expected);
  EXPECT_EQ(plain.rule, pt::Rule::sync_unexpected);
  EXPECT_FALSE(pd::classify_sync(S::memcpy_sync, pd::ScopeRule::none, false, {}, kNoAllow).expected);
  EXPECT_TRUE(pd::classify_sync(S::stream_query, pd::ScopeRule::forbid, false, {}, kNoAllow).expected);
  EXPECT_TRUE(pd::classify_sync(S::stream_wait_event, pd::ScopeRule::none, false, {}, kNoAllow).expected);
  EXPECT_TRUE(pd::classify_sync(S::event_synchronize, pd::ScopeRule::expect, false, {}, kNoAllow).expected);
  auto forbidden = pd::classify_sync(S::device_synchronize, pd::ScopeRule::forbid, false, {}, kNoAllow);
  EXPECT_EQ(forbidden.rule, pt::Rule::sync_forbidden);
  // pbm's own waits are expected, even inside a user's Forbid.
  EXPECT_TRUE(pd::classify_sync(S::event_synchronize, pd::ScopeRule::forbid, true, {}, kNoAllow).expected);
  EXPECT_TRUE(pd::classify_sync(S::stream_synchronize, pd::ScopeRule::none, false, {{"", "ckpt"}}, {"ckpt"}).expected);
}

TEST(Guards, InnermostGuardNamingAKindDecides) {
  EXPECT_EQ(pd::capture_context().sync_rule, pd::ScopeRule::none);
  {
    pt::Forbid forbid_all;
    auto ctx = pd::capture_context();
    EXPECT_EQ(ctx.memcpy_rule, pd::ScopeRule::forbid);
    EXPECT_EQ(ctx.sync_rule, pd::ScopeRule::forbid);
    {
      pt::Expect expect_sync;  // syncs only
      auto inner = pd::capture_context();
      EXPECT_EQ(inner.sync_rule, pd::ScopeRule::expect);
      EXPECT_EQ(inner.memcpy_rule, pd::ScopeRule::forbid);
    }
    EXPECT_EQ(pd::capture_context().sync_rule, pd::ScopeRule::forbid);
    EXPECT_EQ(ctx.guard, nullptr);  // not a throw_at_exit guard
  }
  {
    pt::Expect expect_all(pt::What::all);
    pt::Forbid forbid_copies(pt::What::memcpy);
    auto ctx = pd::capture_context();
    EXPECT_EQ(ctx.memcpy_rule, pd::ScopeRule::forbid);
    EXPECT_EQ(ctx.sync_rule, pd::ScopeRule::expect);
  }
  auto after = pd::capture_context();
  EXPECT_EQ(after.memcpy_rule, pd::ScopeRule::none);
  EXPECT_EQ(after.sync_rule, pd::ScopeRule::none);
}

TEST(Guards, ThrowAtExitGuardIsCapturedAndReportsNothingWhenClean) {
  std::shared_ptr<pd::GuardState> seen;
  EXPECT_NO_THROW({
    pt::Forbid guard(pt::What::sync, pt::Forbid::Options{true});
    seen = pd::capture_context().guard;
    EXPECT_TRUE(guard.violations().empty());
  });
  EXPECT_NE(seen, nullptr);
}

TEST(Guards, PbmExpectedWaitIsCaptured) {
  EXPECT_FALSE(pd::capture_context().pbm_wait);
  {
    pbm::ExpectedSyncScope pbm_wait;
    EXPECT_TRUE(pd::capture_context().pbm_wait);
  }
  EXPECT_FALSE(pd::capture_context().pbm_wait);
}

TEST(Guards, NvtxStackIsPerDomainAndPerThread) {
  pd::nvtx_push("", "step");
  pd::nvtx_push("pbm", "pop");
  pd::nvtx_push("", "inner");
  pd::nvtx_pop("pbm");  // pops pbm's range, not the innermost default-domain one
  EXPECT_EQ(pd::capture_context().ranges, (pt::RangeStack{{"", "step"}, {"", "inner"}}));
  std::size_t other_thread = 99;
  std::thread([&] { other_thread = pd::current_ranges().size(); }).join();
  EXPECT_EQ(other_thread, 0u);
  pd::nvtx_pop("");
  pd::nvtx_pop("");
  pd::nvtx_pop("");  // unbalanced pop is ignored
  EXPECT_TRUE(pd::current_ranges().empty());
}

TEST(AllowList, SetAndRead) {
  pt::set_range_allow_list({"eval", "pbm:wait"});
  EXPECT_EQ(pt::range_allow_list(), (std::vector<std::string>{"eval", "pbm:wait"}));
  pt::set_range_allow_list({});
  EXPECT_TRUE(pt::range_allow_list().empty());
}

TEST(Report, SaysWhatWhereAndWhichRule) {
  pt::Violation v;
  v.rule = pt::Rule::memcpy_dtoh;
  v.mode = pt::Mode::warn;
  v.is_memcpy = true;
  v.memcpy = copy(pt::Direction::DtoH, pt::MemoryKind::device, pt::MemoryKind::pageable);
  v.memcpy.bytes = 4096;
  v.api = "cudaMemcpy";
  v.thread = 4242;
  v.ranges = {{"", "train_step"}, {"pbm", "pop"}};
  v.backtrace = {"frame0", "frame1"};
  std::string const text = pt::format_report(v);
  for (char const* needle : {"DtoH", "4096 bytes", "device -> pageable", "memcpy_dtoh", "cudaMemcpy", "4242",
                             "train_step > pbm:pop", "#1 frame1"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << " missing from:\n" << text;
  }
}
