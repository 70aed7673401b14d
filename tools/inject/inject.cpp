// libpbm_inject.so: pbm telemetry in an unmodified CUDA program.
//
// The CUDA driver dlopens the library named by CUDA_INJECTION64_PATH during cuInit and calls its
// InitializeInjection(). We start pbm's telemetry there (mode from PBM_MODE, count by default),
// leave a marker so pbm-guard can tell "injection loaded" from "CUDA never initialised", and write
// the process's JSON report (pbm.report/1) at exit.
//
// Environment (set by pbm-guard):
//   PBM_GUARD_REPORT_DIR   marker loaded-<pid>.json at init, report-<pid>.json at exit
//   PBM_MODE               off | count | warn | assert (bad value: warned, count used)
//   PBM_PROMETHEUS_ADDR    serve /metrics from the program
//   NVTX_INJECTION64_PATH  libcupti, so NVTX ranges reach CUPTI (pbm-guard sets it before the
//                          program starts: NVTX reads it once, at its first call)
// Without PBM_GUARD_REPORT_DIR no report is written by this library (PBM_REPORT_JSON still works
// through pbm's exporters when PBM_PROMETHEUS_ADDR is set).
//
// Rule: never crash or change the result of the host program. Everything behind the C boundary
// is caught; failures are one stderr line each.
#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/registry.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <unistd.h>

namespace {

std::atomic<pid_t> g_init_pid{0};

struct State {
  std::string report_path;  // "" = no report
};
State& state() {
  static State* const s = new State();  // read in the atexit handler: never destroyed
  return *s;
}

void warn(std::string const& line) noexcept { std::fprintf(stderr, "pbm-guard inject: %s\n", line.c_str()); }

/// Counts violations by (rule, innermost range, where) for the report's "sites". "where" is the
/// API name, plus the caller's frame when telemetry captured a backtrace (warn/assert modes).
/// Runs on CUDA API threads and CUPTI's buffer thread: one short critical section, bounded map.
class SiteCounter final : public pbm::telemetry::Observer {
 public:
  static constexpr std::size_t kMaxSites = 256;
  void on_violation(pbm::telemetry::Violation const& v) override {
    try {
      std::string where = v.api.empty() ? std::string(v.is_memcpy ? "memcpy" : "sync") : v.api;
      for (std::string const& frame : v.backtrace) {
        if (frame.find("libcudart") != std::string::npos || frame.find("libcuda.so") != std::string::npos) continue;
        where += " <- " + frame;
        break;
      }
      std::string const range = v.ranges.empty() ? "none" : v.ranges.back().name;
      Key key{std::string(pbm::telemetry::to_string(v.rule)), range, std::move(where)};
      std::lock_guard<std::mutex> lock(mu_);
      auto it = counts_.find(key);
      if (it != counts_.end()) {
        ++it->second;
      } else if (counts_.size() < kMaxSites) {
        counts_.emplace(std::move(key), 1);
      } else {
        ++overflow_;
      }
    } catch (...) {
      // a lost site is better than an exception inside a CUPTI callback
    }
  }
  pbm::exporters::ReportSites report_sites() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<pbm::exporters::ReportSite> sites;
    for (auto const& [k, n] : counts_) sites.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), n});
    if (overflow_ > 0) sites.push_back({"other", "other", "(more sites than pbm-guard keeps)", overflow_});
    return sites;
  }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  mutable std::mutex mu_;
  std::map<Key, std::uint64_t> counts_;
  std::uint64_t overflow_{0};
};

SiteCounter& sites() {
  static SiteCounter* const s = new SiteCounter();  // CUPTI may call it during exit: never destroyed
  return *s;
}

/// JSON text whatever bytes the strings hold (program paths, NVTX range names): invalid UTF-8
/// becomes U+FFFD instead of making the file unreadable or the dump throw.
std::string json_text(nlohmann::ordered_json const& doc) {
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

/// pbm's report (pbm.report/1) with "sites", built once. The path is used as given (no "{pid}").
std::string write_report(std::string const& path) {
  return pbm::exporters::write_file_atomically(path, pbm::exporters::json_report(sites().report_sites()));
}

/// Written at init: pbm-guard counts processes that loaded the injection, and learns whether
/// CUPTI detection attached even when the process never reaches its exit-time report.
void write_marker(std::string const& dir) {
  pbm::telemetry::Status const st = pbm::telemetry::status();
  pbm::exporters::ProcessInfo const p = pbm::exporters::process_info();
  nlohmann::ordered_json marker;
  marker["schema"] = "pbm.guard.marker/1";
  marker["pid"] = p.pid;
  marker["ppid"] = static_cast<long>(::getppid());
  marker["argv0"] = p.argv0;
  marker["rank"] = p.rank;
  marker["attached"] = st.attached;
  marker["mode"] = std::string(pbm::telemetry::to_string(st.mode));
  marker["reason"] = st.reason;
  std::string const error =
      pbm::exporters::write_file_atomically(dir + "/loaded-" + std::to_string(p.pid) + ".json", json_text(marker));
  if (!error.empty()) warn(error);
}

void write_report_at_exit() noexcept {
  try {
    // A child forked after CUDA initialised inherits this handler and the parent's counts: only
    // the process that initialised writes.
    if (::getpid() != g_init_pid.load()) return;
    std::string const path = state().report_path;
    if (path.empty()) return;
    pbm::telemetry::flush();  // deliver the last CUPTI records before counting
    std::string const error = write_report(path);
    if (!error.empty()) warn("report: " + error);
  } catch (...) {
    warn("report: unexpected error; no report written");
  }
}

void initialize() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_init_pid.store(::getpid());
    try {
      pbm::telemetry::add_observer(sites());
    } catch (std::exception const& e) {
      warn(std::string("no call sites in the report: ") + e.what());
    }
    pbm::telemetry::Config config;
    try {
      pbm::telemetry::start(config);
    } catch (std::invalid_argument const& e) {  // a bad PBM_MODE: measure anyway
      warn(std::string(e.what()) + "; using count");
      config.mode = pbm::telemetry::Mode::count;
      pbm::telemetry::start(config);
    }
    if (char const* addr = std::getenv("PBM_PROMETHEUS_ADDR"); addr != nullptr && *addr != '\0') {
      pbm::exporters::PrometheusStatus const st = pbm::exporters::serve_from_env();
      if (!st.error.empty()) warn("prometheus: " + st.error);
    }

    std::string report;
    char const* dir = std::getenv("PBM_GUARD_REPORT_DIR");
    if (dir != nullptr && *dir != '\0') {
      report = std::string(dir) + "/report-" + std::to_string(static_cast<long>(::getpid())) + ".json";
    }
    state().report_path = report;
    if (!report.empty()) {
      // Objects the handler reads are created before it is registered, so they outlive it.
      (void)pbm::telemetry::counters();
      (void)pbm::telemetry::status();
      (void)pbm::mailboxes();
      (void)pbm::exporters::process_info();
      // Registered after telemetry's own handler (in start()), so it runs first: CUPTI is still
      // attached and the flush above delivers the last records.
      std::atexit(&write_report_at_exit);
    }
  });
}

/// The marker is written whatever happened in initialize(): the library did load.
void mark_loaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    char const* dir = std::getenv("PBM_GUARD_REPORT_DIR");
    if (dir != nullptr && *dir != '\0') write_marker(dir);
  });
}

}  // namespace

/// Called by the CUDA driver (cuInit) when this library is named by CUDA_INJECTION64_PATH.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  try {
    initialize();
  } catch (std::exception const& e) {
    warn(std::string("telemetry not started: ") + e.what());
  } catch (...) {
    warn("telemetry not started: unknown error");
  }
  try {
    mark_loaded();
  } catch (...) {
    warn("cannot write the load marker");
  }
  return 1;  // the program runs on either way
}
