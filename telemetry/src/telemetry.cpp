// Public facade: configuration, lifecycle and status.
//
// start/stop/attach/detach/flush/status serialise on one mutex. The exit handler and the fork
// handlers take no lock that another thread can hold: exit() may run while any thread is anywhere,
// and a forked child has only the thread that forked.
#include <pbm/telemetry/telemetry.hpp>

#include "engine.hpp"
#include "environment.hpp"
#include "source.hpp"
#include "thread_state.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

namespace pbm::telemetry {
namespace {

constexpr char kForkedChild[] =
    "forked child: telemetry is off here (CUDA is unusable after fork; counts are the parent's at the fork)";

struct State {
  std::mutex mu;
  bool started{false};
  std::atomic<bool> attached{false};
  std::atomic<bool> closed{false};  // exiting, or a forked child: never attaches again
  bool subscriber_taken{false};
  bool handlers_registered{false};
  detail::Settings settings;
  std::string reason{"not started"};
  std::set<std::string> logged;  // one line per distinct reason
};

State& state() {
  static State* const s = new State();  // used from atexit and fork handlers
  return *s;
}

void log_once(State& s, std::string const& line) {
  if (s.logged.insert(line).second) std::fprintf(stderr, "pbm telemetry: %s\n", line.c_str());
}

Health& health() { return detail::engine().counters().health(); }

bool attach_locked(State& s) noexcept {
  if (s.attached.load()) return true;
  if (s.closed.load()) return false;
  // Callbacks lost while detached (a call's exit, an NVTX pop) must not leave per-thread state wrong.
  detail::begin_attach_epoch();
  detail::AttachResult const r = detail::source_attach(s.settings);
  s.attached.store(r.attached);
  s.subscriber_taken = r.subscriber_taken;
  s.reason = r.reason;
  health().cupti_attached.store(r.attached);
  health().subscriber_taken.store(r.subscriber_taken);
  if (!r.attached) log_once(s, r.reason);
  return r.attached;
}

void detach_locked(State& s) noexcept {
  if (!s.attached.load()) return;
  detail::source_detach();
  s.attached.store(false);
  s.reason = "detached";
  health().cupti_attached.store(false);
}

// No lock: another thread may hold the state mutex for as long as it likes.
void at_exit() noexcept {
  State& s = state();
  if (s.closed.exchange(true)) return;  // a forked child, or exit() twice
  // The last records are judged and counted; CUPTI is not disabled or unsubscribed here (see
  // source_exit): libcupti may already have torn itself down.
  detail::source_exit();
  s.attached.store(false);
  health().cupti_attached.store(false);
}

// A child must never inherit a lock held by a thread it does not have: the parent takes the
// facade's and the environment's locks around fork().
void before_fork() noexcept {
  state().mu.lock();
  detail::environment_lock_before_fork();
}
void after_fork_in_parent() noexcept {
  detail::environment_unlock_after_fork();
  state().mu.unlock();
}
void after_fork_in_child() noexcept {
  State& s = state();
  detail::thread_state_after_fork_in_child();
  detail::source_after_fork_in_child();
  s.closed.store(true);
  s.attached.store(false);
  s.subscriber_taken = false;
  s.reason = kForkedChild;
  detail::engine().counters().health().cupti_attached.store(false);
  detail::environment_unlock_after_fork();
  s.mu.unlock();
}

}  // namespace

void start(Config const& config) {
  if (config.buffer_count == 0 || config.buffer_size < 4096) {
    throw std::invalid_argument("pbm telemetry: buffer_count must be > 0 and buffer_size >= 4096 (got " +
                                std::to_string(config.buffer_count) + " x " + std::to_string(config.buffer_size) + ")");
  }
  detail::Settings settings = detail::resolve(config);  // throws for a bad PBM_MODE

  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  // The counters are allocated once, never replaced: exporters and users hold references.
  detail::Engine& engine = detail::engine(config.range_label_cap);
  if (config.range_label_cap != engine.counters().range_label_cap()) {
    log_once(s, "range_label_cap is fixed when the counters are first used; keeping " +
                    std::to_string(engine.counters().range_label_cap()));
  }
  set_mode(*settings.config.mode);
  set_range_allow_list(settings.config.allowed_ranges);
  if (config.set_nvtx_injection) ensure_nvtx_injection();
  s.settings = std::move(settings);
  s.started = true;
  if (!s.closed.load()) s.reason = "started, not attached";
  if (!s.handlers_registered) {
    std::atexit(&at_exit);
    pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
    s.handlers_registered = true;
  }
  if (config.attach) attach_locked(s);
  if (s.attached.load()) detail::source_set_legacy_rule(s.settings.config.legacy_stream_rule);  // start() again
}

void set_legacy_stream_rule(bool on) noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.settings.config.legacy_stream_rule = on;
  detail::source_set_legacy_rule(on);
}

void stop() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  detach_locked(s);
  s.started = false;
  if (!s.closed.load()) s.reason = "stopped";
}

bool attach() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return attach_locked(s);
}

void detach() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  detach_locked(s);
}

void flush() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.attached.load()) detail::source_flush();
}

Status status() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  Status st;
  st.started = s.started;
  st.attached = s.attached.load();
  st.subscriber_taken = s.subscriber_taken;
  st.cupti_built = detail::source_built();
  st.mode = get_mode();
  st.reason = s.reason;
  st.thread_states = detail::thread_states_allocated();
  st.legacy_stream_rule = s.settings.config.legacy_stream_rule;
  detail::CallbackCounts const handled = detail::callbacks_handled();
  st.api_callbacks = handled.api;
  st.nvtx_callbacks = handled.nvtx;
  st.api_callback_ns = handled.api_ns;
  st.nvtx_callback_ns = handled.nvtx_ns;
  return st;
}

Counters& counters() { return detail::engine().counters(); }

std::string rank_from_env() { return detail::rank(); }

std::string ensure_nvtx_injection() {
  std::string current = detail::nvtx_injection();
  if (!current.empty()) return current;  // the user's choice; libcupti is not even loaded
  return detail::set_nvtx_injection_if_unset(detail::cupti_library_path());
}

}  // namespace pbm::telemetry
