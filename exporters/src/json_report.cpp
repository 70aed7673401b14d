// The JSON report (schema pbm.report/1, see exporters/README.md), on demand and at exit.
#include <pbm/exporters/json_report.hpp>

#include <pbm/exporters/samples.hpp>

#include "log.hpp"
#include "saturating.hpp"

#include <pbm/registry.hpp>
#include <pbm/telemetry/metric_table.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

#include <unistd.h>

namespace pbm::exporters {
namespace {

using nlohmann::ordered_json;

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  std::time_t const secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::uint64_t sum(MetricFamily const* f, char const* label = nullptr, char const* value = nullptr) {
  if (f == nullptr) return 0;
  std::uint64_t total = 0;
  for (Sample const& s : f->samples) {
    if (label != nullptr) {
      auto it = s.labels.find(label);
      if (it == s.labels.end() || it->second != value) continue;
    }
    total = detail::saturating_add(total, s.value);
  }
  return total;
}

std::string expand_path(std::string path) {
  ProcessInfo const p = process_info();
  auto replace = [&path](std::string const& key, std::string const& value) {
    for (std::size_t at = path.find(key); at != std::string::npos; at = path.find(key, at + value.size()))
      path.replace(at, key.size(), value);
  };
  replace("{pid}", std::to_string(p.pid));
  replace("{rank}", p.rank.empty() ? "norank" : p.rank);
  return path;
}

struct AtExit {
  std::mutex mu;
  std::string path;
  bool registered{false};
};

AtExit& at_exit_state() {
  static AtExit* const s = new AtExit();  // read inside the atexit handler
  return *s;
}

void write_at_exit() noexcept {
  std::string path;
  {
    AtExit& s = at_exit_state();
    std::lock_guard<std::mutex> lock(s.mu);
    path = s.path;
  }
  if (path.empty()) return;
  telemetry::flush();  // the last CUPTI records are counted before the report is written
  std::string const error = write_json_report(path);
  if (!error.empty()) std::fprintf(stderr, "pbm report: %s\n", error.c_str());
}

}  // namespace

std::string json_report(ReportSites const& sites) {
  auto const now = std::chrono::system_clock::now();
  ordered_json report;
  report["schema"] = "pbm.report/1";
  report["generated_at"] = iso8601_utc(now);
  report["generated_unix_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();

  ProcessInfo const p = process_info();
  report["process"] = {{"pid", p.pid},
                       {"argv0", p.argv0},
                       {"hostname", p.hostname},
                       {"rank", p.rank.empty() ? ordered_json(nullptr) : ordered_json(p.rank)},
                       {"local_rank", p.local_rank.empty() ? ordered_json(nullptr) : ordered_json(p.local_rank)}};

  BuildInfo const b = build_info();
  report["build"] = {{"version", b.version},
                     {"cuda_version", b.cuda_version},
                     {"cupti", b.cupti_built},
                     {"prometheus", b.prometheus_built}};

  telemetry::Status const st = telemetry::status();
  report["telemetry"] = {{"started", st.started},
                         {"attached", st.attached},
                         {"subscriber_taken", st.subscriber_taken},
                         {"cupti_built", st.cupti_built},
                         {"mode", std::string(telemetry::to_string(st.mode))},
                         {"reason", st.reason}};

  std::vector<MetricFamily> const families = collect();
  auto find = [&families](telemetry::MetricId id) -> MetricFamily const* {
    for (MetricFamily const& f : families)
      if (f.name == telemetry::metric(id).name) return &f;
    return nullptr;
  };
  using telemetry::MetricId;
  report["totals"] = {
      {"memcpy_unexpected", sum(find(MetricId::memcpy_total), "expected", "false")},
      {"memcpy_expected", sum(find(MetricId::memcpy_total), "expected", "true")},
      {"memcpy_bytes_unexpected", sum(find(MetricId::memcpy_bytes), "expected", "false")},
      {"sync_unexpected", sum(find(MetricId::sync_total), "expected", "false")},
      {"sync_expected", sum(find(MetricId::sync_total), "expected", "true")},
      {"violations", sum(find(MetricId::violations))},
      {"push_records", sum(find(MetricId::push_records))},
      {"pop_records", sum(find(MetricId::pop_records))},
      {"dropped_records", sum(find(MetricId::dropped_records))},
      {"telemetry_dropped_records", sum(find(MetricId::telemetry_dropped_records))},
  };

  ordered_json metrics = ordered_json::object();
  for (MetricFamily const& f : families) {
    ordered_json samples = ordered_json::array();
    for (Sample const& s : f.samples) samples.push_back({{"labels", s.labels}, {"value", s.value}});
    metrics[f.name] = {{"type", f.type == Sample::Type::counter ? "counter" : "gauge"},
                       {"help", f.help},
                       {"samples", std::move(samples)}};
  }
  report["metrics"] = std::move(metrics);
  if (sites) {
    ordered_json list = ordered_json::array();
    for (ReportSite const& site : *sites)
      list.push_back({{"rule", site.rule}, {"range", site.range}, {"where", site.where}, {"count", site.count}});
    report["sites"] = std::move(list);
  }
  // argv[0], the host name and reasons are not UTF-8 by contract either: never throw over them.
  return report.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n";
}

std::string write_file_atomically(std::string const& path, std::string const& text) noexcept {
  try {
    std::string const tmp = path + ".tmp." + std::to_string(::getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) return "cannot write '" + tmp + "': " + std::strerror(errno);
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) {
      std::remove(tmp.c_str());
      return "cannot write '" + tmp + "': " + std::strerror(errno);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      std::string const error = "cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno);
      std::remove(tmp.c_str());
      return error;
    }
    return {};
  } catch (std::exception const& e) {
    return std::string("write_file_atomically: ") + e.what();
  } catch (...) {
    return "write_file_atomically: unknown error";
  }
}

std::string write_json_report(std::string const& path_template, ReportSites const& sites) noexcept {
  try {
    if (path_template.empty()) return "write_json_report: empty path";
    return write_file_atomically(expand_path(path_template), json_report(sites));
  } catch (std::exception const& e) {
    return std::string("write_json_report: ") + e.what();
  } catch (...) {
    return "write_json_report: unknown error";
  }
}

std::string write_json_report_at_exit(std::string path) {
  if (path.empty()) {
    if (char const* env = std::getenv("PBM_REPORT_JSON"); env != nullptr) path = env;
  }
  AtExit& s = at_exit_state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.path = path;
  if (!path.empty() && !s.registered) {
    // Objects the handler reads are created first, so they are destroyed after it runs.
    (void)telemetry::counters();
    (void)pbm::mailboxes();
    (void)telemetry::status();
    (void)process_info();
    std::atexit(&write_at_exit);
    s.registered = true;
  }
  return path;
}

}  // namespace pbm::exporters
