// Per-thread state in a lock-free, never-freed list; see thread_state.hpp for why.
#include "thread_state.hpp"

#include <cerrno>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pbm::telemetry::detail {
namespace {

// Trivially destructible thread-locals only: they stay readable until the thread is gone.
thread_local ThreadState* tl_state = nullptr;
thread_local std::uint32_t tl_tid = 0;

std::atomic<ThreadState*> g_states{nullptr};
std::atomic<std::size_t> g_allocated{0};
std::atomic<std::uint64_t> g_epoch{0};

std::uint32_t gettid_now() noexcept { return static_cast<std::uint32_t>(::syscall(SYS_gettid)); }

/// True when no thread of this process has id `tid` any more: its code can never run again.
/// (A zombie main thread still answers: its state is kept, which is only conservative.)
bool thread_gone(std::uint32_t tid) noexcept {
  int const saved = errno;
  bool const gone = ::syscall(SYS_tgkill, ::getpid(), static_cast<pid_t>(tid), 0) != 0 && errno == ESRCH;
  errno = saved;
  return gone;
}

/// A state whose owner has exited, now owned by `me`; nullptr when there is none.
ThreadState* take_over(std::uint32_t me) noexcept {
  for (ThreadState* s = g_states.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    std::uint32_t owner = s->owner.load(std::memory_order_acquire);
    // owner == me: a thread that had this id has exited (ids are unique among live threads).
    if (owner != 0 && owner != me && !thread_gone(owner)) continue;
    if (s->owner.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) return s;
  }
  return nullptr;
}

}  // namespace

void ThreadState::clear() noexcept {
  scopes.clear();
  epoch = 0;
  ranges.clear();
  runtime_depth = 0;
  runtime_call.reset();
  allow.reset();
  allow_version = 0;
  for (NameCache* cache : {&domain_names, &string_names}) {
    cache->generation = 0;
    for (NameCache::Entry& e : cache->entries) e.key = nullptr;
  }
  // The callback counts and times stay: they are the process's totals.
}

std::uint32_t current_thread_id() noexcept {
  if (tl_tid == 0) tl_tid = gettid_now();
  return tl_tid;
}

ThreadState& this_thread() {
  if (ThreadState* s = tl_state) return *s;
  std::uint32_t const me = current_thread_id();
  ThreadState* s = take_over(me);
  if (s != nullptr) {
    s->clear();
  } else {
    s = new ThreadState();  // never freed: reused after its thread exits
    s->owner.store(me, std::memory_order_relaxed);
    g_allocated.fetch_add(1, std::memory_order_relaxed);
    ThreadState* head = g_states.load(std::memory_order_relaxed);
    do {
      s->next = head;
    } while (!g_states.compare_exchange_weak(head, s, std::memory_order_release, std::memory_order_relaxed));
  }
  tl_state = s;
  return *s;
}

ThreadState* this_thread_if_any() noexcept { return tl_state; }

ThreadState& cupti_fed() { return cupti_fed(this_thread()); }

ThreadState& cupti_fed(ThreadState& s) noexcept {
  std::uint64_t const now = g_epoch.load(std::memory_order_acquire);
  if (s.epoch != now) {
    s.ranges.clear();
    s.runtime_depth = 0;
    s.runtime_call.reset();
    s.epoch = now;
  }
  return s;
}

void begin_attach_epoch() noexcept { g_epoch.fetch_add(1, std::memory_order_acq_rel); }

void thread_state_after_fork_in_child() noexcept {
  tl_tid = gettid_now();
  if (ThreadState* s = tl_state) s->owner.store(tl_tid, std::memory_order_release);
}

std::size_t thread_states_allocated() noexcept { return g_allocated.load(std::memory_order_relaxed); }

CallbackCounts callbacks_handled() noexcept {
  CallbackCounts n;
  for (ThreadState* s = g_states.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    n.api += s->api_callbacks.load(std::memory_order_relaxed);
    n.nvtx += s->nvtx_callbacks.load(std::memory_order_relaxed);
    n.api_ns += s->api_callback_ns.load(std::memory_order_relaxed);
    n.nvtx_ns += s->nvtx_callback_ns.load(std::memory_order_relaxed);
  }
  return n;
}

}  // namespace pbm::telemetry::detail
