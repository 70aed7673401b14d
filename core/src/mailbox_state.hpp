// Per-mailbox state: the stats snapshot in mapped host memory and host-side call counters. Owned
// by its Mailbox alone; the registry lists it and reads it under its lock, and the Mailbox takes
// it out of the list (MailboxStateDeleter) before freeing it, so a reader (a Prometheus scrape)
// never frees pinned memory.
#pragma once

#include "launch.hpp"

#include <pbm/mailbox.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

namespace pbm::detail {

struct MailboxState {
  MailboxState(std::string name, int device, std::uint64_t capacity, std::uint32_t stride);
  ~MailboxState();
  MailboxState(MailboxState const&) = delete;
  MailboxState& operator=(MailboxState const&) = delete;

  /// Max-merged stats from the snapshot: concurrent launches may interleave their writes, and
  /// counters must never go back.
  Stats stats();
  void count_push(StreamClass cls, std::uint64_t requested) noexcept;
  void count_pop(StreamClass cls, std::uint64_t requested) noexcept;

  std::string const name;
  int const device;
  std::uint64_t const capacity;
  std::uint32_t const stride;
  StatsSnapshot* snapshot_host = nullptr;
  StatsSnapshot* snapshot_device = nullptr;
  std::atomic<std::uint64_t> push_calls[2] = {0, 0};
  std::atomic<std::uint64_t> pop_calls[2] = {0, 0};
  std::atomic<std::uint64_t> push_requested{0};
  std::atomic<std::uint64_t> pop_requested{0};

 private:
  std::mutex mutex_;
  Stats last_{};
};

/// Lists a mailbox's state in the registry until MailboxStateDeleter removes it.
void register_mailbox(MailboxState* state);

}  // namespace pbm::detail
