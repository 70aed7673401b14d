// The completion pool's bookkeeping, without a GPU: completions over host memory, launches and
// event records replaced by functions returning a status. A completion whose kernel may still
// write its result slot and launch cell must never be handed to another launch.
#include "completion.hpp"  // core/src: private to pbm::core

#include <pbm/error.hpp>

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace {

using pbm::detail::Completion;
using pbm::detail::CompletionPool;
using pbm::detail::ResultSlot;

struct HostCompletions {
  explicit HostCompletions(std::size_t n) : slots(n), items(n) {
    for (std::size_t i = 0; i < n; ++i) {
      slots[i] = ResultSlot{};
      items[i].host = items[i].mapped = &slots[i];
    }
  }
  std::vector<Completion*> pointers() {
    std::vector<Completion*> out;
    for (auto& c : items) out.push_back(&c);
    return out;
  }
  std::vector<ResultSlot> slots;
  std::vector<Completion> items;
};

/// The kernel of `c`'s current launch publishes its result.
void publish(Completion* c) { c->host->done = pbm::detail::done_word(c->generation, 0, 0); }

TEST(CompletionPool, AFailedEventRecordAfterALaunchKeepsTheCompletionUntilItsKernelPublishes) {
  HostCompletions storage(3);
  CompletionPool pool(storage.pointers());
  Completion* queued = nullptr;
  auto const launched = [&](Completion* c) {
    queued = c;
    return cudaSuccess;
  };
  auto const record_fails = [](Completion*) { return cudaErrorInvalidResourceHandle; };
  EXPECT_THROW(pbm::detail::launch_on_completion(pool, launched, record_fails), pbm::cuda_error);
  ASSERT_NE(queued, nullptr);

  // Its kernel is still queued: the other two may be used, this one not.
  std::set<Completion*> taken;
  for (int i = 0; i < 2; ++i) taken.insert(pool.acquire());
  EXPECT_EQ(taken.count(queued), 0u) << "handed out while its kernel may still write its count";
  EXPECT_THROW(pool.acquire(), std::runtime_error) << "only the queued one is left, and it is not done";

  publish(queued);
  EXPECT_EQ(pool.acquire(), queued) << "reusable once its kernel published";
}

TEST(CompletionPool, AFailedLaunchGivesTheCompletionBackAtOnce) {
  HostCompletions storage(1);
  CompletionPool pool(storage.pointers());
  auto const launch_fails = [](Completion*) { return cudaErrorInvalidConfiguration; };
  auto const record = [](Completion*) { return cudaSuccess; };
  EXPECT_THROW(pbm::detail::launch_on_completion(pool, launch_fails, record), pbm::cuda_error);
  EXPECT_EQ(pool.acquire(), &storage.items[0]) << "a launch that never started holds nothing";
}

TEST(CompletionPool, AReleasedHandleIsReusedOnlyAfterItsKernelPublishes) {
  HostCompletions storage(1);
  CompletionPool pool(storage.pointers());
  auto const ok = [](Completion*) { return cudaSuccess; };
  Completion* c = pbm::detail::launch_on_completion(pool, ok, ok);
  pool.release(c);  // the handle is gone, the kernel not done
  EXPECT_THROW(pool.acquire(), std::runtime_error);
  publish(c);
  EXPECT_EQ(pool.acquire(), c);
}

}  // namespace

// The done word a kernel publishes: count, error and generation in one 8-byte store.
TEST(DoneWord, CarriesCountErrorAndGeneration) {
  using pbm::detail::done_count;
  using pbm::detail::done_error;
  using pbm::detail::done_matches;
  using pbm::detail::done_word;
  std::uint64_t const w = done_word(77, pbm::kMaxCapacity, 5);
  EXPECT_TRUE(done_matches(w, 77));
  EXPECT_EQ(done_count(w), pbm::kMaxCapacity);
  EXPECT_EQ(done_error(w), 5u);
  EXPECT_FALSE(done_matches(w, 76));
  EXPECT_FALSE(done_matches(w, 78));
  EXPECT_EQ(done_count(done_word(1, 0, 0)), 0u);
}

TEST(DoneWord, APreviousGenerationNeverMatchesAcrossTheWrap) {
  using pbm::detail::done_matches;
  using pbm::detail::done_word;
  using pbm::detail::kGenerationMask;
  // A slot's first generation is 1: the zeroed slot must not read as done.
  EXPECT_FALSE(done_matches(0, 1));
  for (std::uint64_t gen : {kGenerationMask - 1, kGenerationMask, kGenerationMask + 1, kGenerationMask + 2,
                            (std::uint64_t{1} << 40) + 3}) {
    EXPECT_TRUE(done_matches(done_word(gen, 8, 0), gen)) << gen;
    EXPECT_FALSE(done_matches(done_word(gen - 1, 8, 0), gen)) << "stale word of generation " << gen - 1;
  }
}
