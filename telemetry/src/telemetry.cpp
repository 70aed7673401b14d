// Public facade: configuration, lifecycle and status.
#include <pbm/telemetry/telemetry.hpp>

#include "engine.hpp"
#include "source.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>

namespace pbm::telemetry {
namespace {

struct State {
  std::mutex mu;
  bool started{false};
  bool attached{false};
  bool subscriber_taken{false};
  bool atexit_registered{false};
  std::size_t buffer_count{8};
  std::size_t buffer_size{1u << 20};
  bool activity_records{false};
  bool marker_activity{false};
  std::string reason{"not started"};
  std::set<std::string> logged;  // one line per distinct reason
};

State& state() {
  static State* const s = new State();  // used from atexit
  return *s;
}

std::vector<std::string> split_list(char const* text) {
  std::vector<std::string> out;
  if (text == nullptr) return out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

void log_once(State& s, std::string const& line) {
  if (s.logged.insert(line).second) std::fprintf(stderr, "pbm telemetry: %s\n", line.c_str());
}

bool attach_locked(State& s) noexcept {
  if (s.attached) return true;
  detail::AttachResult const r = detail::source_attach(s.buffer_count, s.buffer_size, s.activity_records, s.marker_activity);
  s.attached = r.attached;
  s.subscriber_taken = r.subscriber_taken;
  s.reason = r.reason;
  Health& health = detail::engine().counters().health();
  health.cupti_attached.store(r.attached);
  health.subscriber_taken.store(r.subscriber_taken);
  if (!r.attached) log_once(s, r.reason);
  return r.attached;
}

void detach_locked(State& s) noexcept {
  if (!s.attached) return;
  detail::source_detach();
  s.attached = false;
  s.reason = "detached";
  detail::engine().counters().health().cupti_attached.store(false);
}

void at_exit() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.attached) return;
  // The last records are judged and counted; CUPTI is not disabled or unsubscribed here (see
  // source_exit): libcupti may already have torn itself down.
  detail::source_exit();
  s.attached = false;
  s.reason = "process exiting";
  detail::engine().counters().health().cupti_attached.store(false);
}

}  // namespace

void start(Config const& config) {
  if (config.buffer_count == 0 || config.buffer_size < 4096) {
    throw std::invalid_argument("pbm telemetry: buffer_count must be > 0 and buffer_size >= 4096 (got " +
                                std::to_string(config.buffer_count) + " x " + std::to_string(config.buffer_size) + ")");
  }
  Mode mode = Mode::count;
  if (config.mode) {
    mode = *config.mode;
  } else if (char const* env = std::getenv("PBM_MODE"); env != nullptr && *env != '\0') {
    try {
      mode = parse_mode(env);
    } catch (std::invalid_argument const&) {
      throw std::invalid_argument(std::string("PBM_MODE: invalid value '") + env +
                                  "' (expected one of: off, count, warn, assert)");
    }
  }
  std::vector<std::string> allow = split_list(std::getenv("PBM_NVTX_ALLOW"));
  allow.insert(allow.end(), config.allowed_ranges.begin(), config.allowed_ranges.end());

  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  detail::Engine& engine = detail::engine();
  if (config.range_label_cap != engine.counters().range_label_cap()) {
    if (s.attached || s.started) {
      log_once(s, "range_label_cap is fixed by the first start(); keeping " +
                      std::to_string(engine.counters().range_label_cap()));
    } else {
      engine.reset(config.range_label_cap);
    }
  }
  set_mode(mode);
  set_range_allow_list(std::move(allow));
  if (config.set_nvtx_injection) ensure_nvtx_injection();
  s.buffer_count = config.buffer_count;
  s.buffer_size = config.buffer_size;
  s.activity_records = config.activity_records;
  s.marker_activity = config.marker_activity;
  s.started = true;
  s.reason = "started, not attached";
  if (!s.atexit_registered) {
    std::atexit(&at_exit);
    s.atexit_registered = true;
  }
  if (config.attach) attach_locked(s);
}

void stop() noexcept {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  detach_locked(s);
  s.started = false;
  s.reason = "stopped";
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
  if (s.attached) detail::source_flush();
}

Status status() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  Status st;
  st.started = s.started;
  st.attached = s.attached;
  st.subscriber_taken = s.subscriber_taken;
  st.cupti_built = detail::source_built();
  st.mode = get_mode();
  st.reason = s.reason;
  return st;
}

Counters& counters() { return detail::engine().counters(); }

std::string ensure_nvtx_injection() {
  if (char const* current = std::getenv("NVTX_INJECTION64_PATH"); current != nullptr && *current != '\0') {
    return current;
  }
  std::string const path = detail::cupti_library_path();
  if (!path.empty()) setenv("NVTX_INJECTION64_PATH", path.c_str(), /*overwrite=*/0);
  char const* now = std::getenv("NVTX_INJECTION64_PATH");
  return now != nullptr ? now : "";
}

}  // namespace pbm::telemetry
