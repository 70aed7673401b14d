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
}  // namespace

void register_mailbox(MailboxState* state) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().push_back(state);
}

void MailboxStateDeleter::operator()(MailboxState* state) const noexcept {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());  // waits for a reader of it to finish
    auto& r = registry();
    r.erase(std::remove(r.begin(), r.end(), state), r.end());
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
  for (detail::MailboxState* s : detail::registry()) {
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
    out.push_back(std::move(info));
  }
  return out;
}

StreamClass classify_stream(cudaStream_t stream) {
  int priority = 0;
  PBM_CUDA_TRY(cudaStreamGetPriority(stream, &priority));
  return stream_class_for(priority, priority_range());
}

}  // namespace pbm
