// The registry of live mailboxes (pbm/registry.hpp): scrapes read it, mailboxes add and remove
// themselves.
#include "mailbox_state.hpp"

#include <pbm/error.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace pbm {

namespace detail {

namespace {
// Never destroyed: a Mailbox that outlives static destruction still unregisters safely.
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::vector<MailboxState*>& registry() {
  static auto* r = new std::vector<MailboxState*>;
  return *r;
}
std::vector<MailboxInfo>& retired() {
  static auto* r = new std::vector<MailboxInfo>;
  return *r;
}
constexpr std::size_t kMaxRetiredKeys = 1024;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > ~std::uint64_t{0} - b ? ~std::uint64_t{0} : a + b;
}

MailboxInfo read_info(MailboxState* s) {
  MailboxInfo info;
  info.name = s->name;
  info.device = s->device;
  info.stats = s->stats();
  for (int c = 0; c < 2; ++c) {
    info.push_calls[c] = s->push_calls[c].load(std::memory_order_relaxed);
    info.pop_calls[c] = s->pop_calls[c].load(std::memory_order_relaxed);
  }
  info.push_requested_records = s->push_requested.load(std::memory_order_relaxed);
  info.pop_requested_records = s->pop_requested.load(std::memory_order_relaxed);
  return info;
}

/// Adds a destroyed mailbox's counts to retired(); the caller holds registry_mutex().
void retire(MailboxInfo info) {
  Stats& s = info.stats;
  info.live = false;
  s.occupancy = 0;
  s.capacity = 0;
  s.claimed = s.popped;
  s.head_uncommitted = false;
  auto& r = retired();
  auto find = [&r, &info] {
    return std::find_if(r.begin(), r.end(), [&info](MailboxInfo const& m) {
      return m.name == info.name && m.device == info.device && m.stats.stride == info.stats.stride;
    });
  };
  auto it = find();
  if (it == r.end() && r.size() + 1 >= kMaxRetiredKeys) {  // the last key is "(other)"
    info.name = "(other)";
    it = find();
  }
  if (it == r.end()) {
    r.push_back(std::move(info));
    return;
  }
  Stats& t = it->stats;
  t.pushed = saturating_add(t.pushed, s.pushed);
  t.popped = saturating_add(t.popped, s.popped);
  t.dropped = saturating_add(t.dropped, s.dropped);
  t.pop_calls = saturating_add(t.pop_calls, s.pop_calls);
  t.claimed = t.popped;
  for (int c = 0; c < 2; ++c) {
    it->push_calls[c] = saturating_add(it->push_calls[c], info.push_calls[c]);
    it->pop_calls[c] = saturating_add(it->pop_calls[c], info.pop_calls[c]);
  }
  it->push_requested_records = saturating_add(it->push_requested_records, info.push_requested_records);
  it->pop_requested_records = saturating_add(it->pop_requested_records, info.pop_requested_records);
}
}  // namespace

void register_mailbox(MailboxState* state) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(state);
}

void MailboxStateDeleter::operator()(MailboxState* state) const noexcept {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());  // waits for a reader of it to finish
    auto& r = registry();
    auto const it = std::find(r.begin(), r.end(), state);
    if (it != r.end()) {
      retire(read_info(state));  // its counts stay in the totals (retired_mailboxes())
      r.erase(it);
    }
  }
  delete state;  // cudaFreeHost here, on the owner's thread
}

}  // namespace detail

std::vector<MailboxInfo> mailboxes() {
  // Everything is copied under the lock: a mailbox is never freed while it is read, and a reader
  // never holds one past this call.
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  std::vector<MailboxInfo> out;
  out.reserve(detail::registry().size());
  for (detail::MailboxState* s : detail::registry()) out.push_back(detail::read_info(s));
  return out;
}

std::vector<MailboxInfo> retired_mailboxes() {
  std::lock_guard<std::mutex> lock(detail::registry_mutex());
  return detail::retired();
}

}  // namespace pbm
