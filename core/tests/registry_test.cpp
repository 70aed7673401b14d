// The registry of live mailboxes, without a GPU: this executable replaces the CUDA runtime calls a
// MailboxState makes (pinned allocation, its device pointer, the current device) with host
// versions, so the registry's locking and lifetimes run on any machine.
#include "../src/mailbox_state.hpp"

#include <pbm/registry.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace {
std::atomic<std::thread::id> g_owner{};
std::atomic<int> g_frees{0};
std::atomic<int> g_frees_elsewhere{0};  // cudaFreeHost calls on a thread other than the owner's
}  // namespace

extern "C" {
cudaError_t cudaHostAlloc(void** p, size_t size, unsigned int) {
  *p = std::calloc(1, size);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int) {
  *device = host;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  ++g_frees;
  if (std::this_thread::get_id() != g_owner.load()) ++g_frees_elsewhere;
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
}

namespace {

/// A mailbox's state as a Mailbox holds it: created, registered, destroyed by its owner.
TEST(Registry, AScrapeNeverFreesAMailboxsPinnedMemory) {
  g_owner = std::this_thread::get_id();
  std::atomic<bool> stop{false};
  std::atomic<long> scrapes{0};
  std::thread scraper([&] {
    while (!stop) {
      for (auto const& info : pbm::mailboxes()) EXPECT_EQ(info.name, "scraped");
      ++scrapes;
    }
  });
  int created = 0;
  for (; created < 200000 && g_frees_elsewhere == 0; ++created) {
    std::unique_ptr<pbm::detail::MailboxState, pbm::detail::MailboxStateDeleter> state(
        new pbm::detail::MailboxState("scraped", 0, 16, 16));
    pbm::detail::register_mailbox(state.get());
    state.reset();
  }
  stop = true;
  scraper.join();
  EXPECT_EQ(g_frees_elsewhere.load(), 0) << "a scrape freed pinned memory, after " << created << " mailboxes and "
                                         << scrapes.load() << " scrapes";
  EXPECT_EQ(g_frees.load(), created);
  EXPECT_TRUE(pbm::mailboxes().empty());
}

/// A mailbox's counts outlive it: an exporter adds retired_mailboxes() to the live ones, so a report
/// written at exit (after the program's mailboxes are gone) still holds every record.
TEST(Registry, ADestroyedMailboxsCountsStayInTheRetiredTotals) {
  using State = std::unique_ptr<pbm::detail::MailboxState, pbm::detail::MailboxStateDeleter>;
  auto make = [](char const* name, std::uint64_t pushed, std::uint64_t popped) {
    State state(new pbm::detail::MailboxState(name, 0, 16, 16));
    pbm::detail::register_mailbox(state.get());
    state->snapshot_host->reserve = pushed;  // what a pop kernel leaves in mapped memory
    state->snapshot_host->consume = popped;
    state->snapshot_host->release = popped;
    state->snapshot_host->pop_calls = 2;
    state->count_push(pbm::StreamClass::focus, pushed);
    state->count_pop(pbm::StreamClass::peripheral, popped);
    return state;
  };
  auto retired = [](std::string const& name) {
    for (auto const& m : pbm::retired_mailboxes())
      if (m.name == name) return std::optional<pbm::MailboxInfo>(m);
    return std::optional<pbm::MailboxInfo>();
  };
  State first = make("retired-twice", 100, 90);
  State second = make("retired-twice", 5, 5);
  EXPECT_FALSE(retired("retired-twice")) << "still alive";
  first.reset();
  second.reset();
  auto const m = retired("retired-twice");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->live);
  EXPECT_EQ(m->stats.pushed, 105u);
  EXPECT_EQ(m->stats.popped, 95u);
  EXPECT_EQ(m->stats.pop_calls, 4u);
  EXPECT_EQ(m->stats.occupancy, 0u) << "gauges are not kept";
  EXPECT_EQ(m->stats.capacity, 0u);
  EXPECT_EQ(m->stats.stride, 16u);
  EXPECT_EQ(m->push_calls[0], 2u);
  EXPECT_EQ(m->pop_calls[1], 2u);
  EXPECT_EQ(m->push_requested_records, 105u);
  for (auto const& live : pbm::mailboxes()) EXPECT_NE(live.name, "retired-twice");
}

TEST(Registry, RetiredKeysAreBounded) {
  for (int i = 0; i < 1100; ++i) {
    std::unique_ptr<pbm::detail::MailboxState, pbm::detail::MailboxStateDeleter> state(
        new pbm::detail::MailboxState("unique-" + std::to_string(i), 0, 16, 16));
    pbm::detail::register_mailbox(state.get());
    state->snapshot_host->reserve = 1;
  }
  auto const all = pbm::retired_mailboxes();
  EXPECT_LE(all.size(), 1024u);
  std::uint64_t pushed = 0;
  for (auto const& m : all)
    if (m.name.rfind("unique-", 0) == 0 || m.name == "(other)") pushed += m.stats.pushed;
  EXPECT_EQ(pushed, 1100u) << "nothing lost past the bound: the rest is summed under (other)";
}

}  // namespace
