// Per-thread state: created at a thread's first use, kept for every callback of the thread, and
// reused only after its thread is gone, so threads that come and go do not grow memory.
#include "scope.hpp"
#include "thread_state.hpp"

#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace pd = pbm::telemetry::detail;

TEST(ThreadState, ThreadsThatComeAndGoReuseTheStateOfExitedOnes) {
  auto one_thread = [] {
    std::thread t([] { pd::nvtx_push("", "work"); });
    t.join();
  };
  one_thread();
  std::size_t const before = pd::thread_states_allocated();
  for (int i = 0; i < 200; ++i) one_thread();
  // Each new thread takes over the state of one that has exited (joined: the kernel says so).
  EXPECT_LE(pd::thread_states_allocated() - before, 2u);
}

TEST(ThreadState, StatusSaysHowManyStatesPbmHolds) {
  std::thread([] { pd::nvtx_push("", "work"); }).join();
  std::size_t const held = pd::thread_states_allocated();
  EXPECT_GE(held, 1u);
  EXPECT_EQ(pbm::telemetry::status().thread_states, held);
}

TEST(ThreadState, LiveThreadsEachHaveTheirOwn) {
  std::size_t const before = pd::thread_states_allocated();
  std::vector<pd::ThreadState*> seen(8);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([i, &seen, &ready, &go] {
      seen[i] = &pd::this_thread();
      ++ready;
      while (!go.load()) std::this_thread::yield();  // all alive at once
    });
  }
  while (ready.load() < 8) std::this_thread::yield();
  go = true;
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i)
    for (int j = i + 1; j < 8; ++j) EXPECT_NE(seen[i], seen[j]);
  EXPECT_LE(pd::thread_states_allocated() - before, 8u);
}

TEST(ThreadState, ATakenOverStateStartsEmpty) {
  std::thread([] {
    pd::nvtx_push("", "left_open");
    pd::push_scope(pd::ScopeEntry{});
  }).join();
  std::thread([] {
    EXPECT_TRUE(pd::current_ranges().empty());
    EXPECT_TRUE(pd::this_thread().scopes.empty());
    EXPECT_EQ(pd::this_thread().runtime_depth, 0);
  }).join();
}

TEST(ThreadState, ANewAttachEpochForgetsRangesAndCallsInFlight) {
  std::thread([] {
    pd::nvtx_push("", "before_detach");
    pd::this_thread().runtime_depth = 1;
    pd::push_scope(pd::ScopeEntry{});  // the program's own guards are not CUPTI's to forget
    pd::begin_attach_epoch();
    EXPECT_TRUE(pd::current_ranges().empty());
    EXPECT_EQ(pd::cupti_fed().runtime_depth, 0);
    EXPECT_EQ(pd::this_thread().scopes.size(), 1u);
  }).join();
}
