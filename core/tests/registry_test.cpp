// The registry of live mailboxes, without a GPU: this executable replaces the CUDA runtime calls a
// MailboxState makes (pinned allocation, its device pointer, the current device) with host
// versions, so the registry's locking and lifetimes run on any machine.
#include "../src/mailbox_state.hpp"

#include <pbm/registry.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
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

}  // namespace
