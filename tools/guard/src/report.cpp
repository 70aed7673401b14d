// Reading pbm.report/1 (exporters/README.md) and the injection's markers.
#include "report.hpp"

#include "json_text.hpp"

#include <pbm/telemetry/metric_table.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <sstream>

namespace pbm::guard {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr char const* kReportSchema = "pbm.report/1";
constexpr char const* kRunSchema = "pbm.guard.run/1";
constexpr char const* kMarkerSchema = "pbm.guard.marker/1";

[[noreturn]] void fail(std::string const& source, std::string const& what) {
  throw ReportError(source + ": " + what);
}

json parse_text(std::string const& text, std::string const& source) {
  try {
    return parse_json_unique_keys(text);
  } catch (DuplicateKeyError const& e) {
    std::string where = source;
    if (auto p = e.position()) where += ":" + std::to_string(p->line) + ":" + std::to_string(p->column);
    fail(where, e.what());
  } catch (json::parse_error const& e) {
    // e.byte is 1-based: the byte at which the parser gave up.
    TextPosition const p = position_of(text, e.byte == 0 ? 0 : e.byte - 1);
    fail(source + ":" + std::to_string(p.line) + ":" + std::to_string(p.column), "not valid JSON");
  } catch (json::exception const& e) {  // a number beyond a double (out_of_range.406, 1e400)
    fail(source, std::string("not valid JSON: ") + e.what());
  }
}

std::string string_or(json const& obj, char const* key, std::string fallback = {}) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

bool bool_or(json const& obj, char const* key, bool fallback) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::uint64_t uint_or(json const& obj, char const* key, std::uint64_t fallback) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : fallback;
}

/// Calls fn(labels, value) for each sample of series `id`; absent metric: no call.
template <class Fn>
void for_each_sample(json const& metrics, telemetry::MetricId id, std::string const& source, Fn fn) {
  std::string const metric(telemetry::metric(id).name);
  auto family = metrics.find(metric);
  if (family == metrics.end()) return;
  if (!family->is_object()) fail(source, "metrics." + metric + " is not an object");
  auto samples = family->find("samples");
  if (samples == family->end() || !samples->is_array())
    fail(source, "metrics." + metric + ".samples is missing or not an array");
  for (json const& s : *samples) {
    auto labels = s.find("labels");
    auto value = s.find("value");
    if (!s.is_object() || labels == s.end() || !labels->is_object() || value == s.end() ||
        !value->is_number_unsigned())
      fail(source, "metrics." + metric + ": a sample lacks labels or an unsigned value");
    fn(*labels, value->get<std::uint64_t>());
  }
}

std::string label(json const& labels, char const* key) {
  std::string v = string_or(labels, key);
  return v.empty() ? std::string("unknown") : v;
}

ProcessReport parse_one(json const& doc, std::string const& source) {
  if (!doc.is_object()) fail(source, "a report is not a JSON object");
  std::string const schema = string_or(doc, "schema");
  if (schema != kReportSchema)
    fail(source, "schema '" + schema + "' is not " + kReportSchema + " (is this a pbm report?)");
  ProcessReport r;
  r.source = source;
  if (auto p = doc.find("process"); p != doc.end() && p->is_object()) {
    if (auto pid = p->find("pid"); pid != p->end() && pid->is_number_integer()) r.pid = pid->get<long>();
    r.argv0 = string_or(*p, "argv0");
    r.hostname = string_or(*p, "hostname");
    r.rank = string_or(*p, "rank");
  }
  if (auto t = doc.find("telemetry"); t != doc.end() && t->is_object()) {
    r.telemetry_started = bool_or(*t, "started", false);
    r.telemetry_attached = bool_or(*t, "attached", false);
    r.telemetry_mode = string_or(*t, "mode");
    r.telemetry_reason = string_or(*t, "reason");
  }
  if (auto t = doc.find("totals"); t != doc.end() && t->is_object())
    r.telemetry_dropped_records = uint_or(*t, "telemetry_dropped_records", 0);

  auto metrics = doc.find("metrics");
  if (metrics == doc.end() || !metrics->is_object()) fail(source, "no \"metrics\" object");
  for_each_sample(*metrics, telemetry::MetricId::memcpy_total, source, [&r](json const& l, std::uint64_t v) {
    if (v == 0) return;
    MemcpyKey k{label(l, "range"), label(l, "direction"), label(l, "memory"), string_or(l, "expected") == "true"};
    CopyCount& c = r.observed.memcpy[k];
    c.count = saturating_add(c.count, v);
  });
  for_each_sample(*metrics, telemetry::MetricId::memcpy_bytes, source, [&r](json const& l, std::uint64_t v) {
    if (v == 0) return;
    MemcpyKey k{label(l, "range"), label(l, "direction"), label(l, "memory"), string_or(l, "expected") == "true"};
    CopyCount& c = r.observed.memcpy[k];
    c.bytes = saturating_add(c.bytes, v);
  });
  for_each_sample(*metrics, telemetry::MetricId::sync_total, source, [&r](json const& l, std::uint64_t v) {
    if (v == 0) return;
    SyncKey k{label(l, "range"), label(l, "api"), string_or(l, "expected") == "true"};
    std::uint64_t& n = r.observed.sync[k];
    n = saturating_add(n, v);
  });
  if (auto sites = doc.find("sites"); sites != doc.end() && sites->is_array()) {
    for (json const& s : *sites) {
      if (!s.is_object()) continue;
      r.sites.push_back({string_or(s, "rule"), string_or(s, "range"), string_or(s, "where"), uint_or(s, "count", 1)});
    }
  }
  return r;
}

std::string read_file(std::string const& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *ok = false;
    return {};
  }
  std::ostringstream text;
  text << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  return text.str();
}

long pid_from_name(std::string const& name) {
  std::size_t const dash = name.find('-');
  try {
    return std::stol(name.substr(dash + 1));
  } catch (...) {
    return 0;
  }
}

}  // namespace

std::vector<std::string> const& known_directions() {
  static std::vector<std::string> const v{"HtoD", "DtoH", "DtoD", "HtoH", "PtoP", "unknown"};
  return v;
}
std::vector<std::string> const& known_memory_kinds() {
  static std::vector<std::string> const v{"pageable", "pinned", "device", "managed", "array", "unknown"};
  return v;
}
std::vector<std::string> const& known_sync_apis() {
  static std::vector<std::string> const v{
      "stream_synchronize", "event_synchronize", "device_synchronize", "context_synchronize", "memcpy_sync",
      "memcpy_blocking",    "free",              "free_host",          "host_alloc",          "host_register",
      "host_unregister",    "malloc",            "free_array",         "set_limit",           "set_cache_config",
      "memset_sync",        "stream_wait_event", "stream_query",       "event_query",         "legacy_stream",
      "graph_host_node",    "unknown"};
  return v;
}
bool sync_api_blocks_host(std::string const& api) {
  return api != "stream_query" && api != "event_query" && api != "stream_wait_event" && api != "legacy_stream" &&
         api != "graph_host_node";
}

void Observations::add(Observations const& other) {
  for (auto const& [k, v] : other.memcpy) {
    CopyCount& c = memcpy[k];
    c.count = saturating_add(c.count, v.count);
    c.bytes = saturating_add(c.bytes, v.bytes);
  }
  for (auto const& [k, v] : other.sync) {
    std::uint64_t& n = sync[k];
    n = saturating_add(n, v);
  }
}

std::vector<ProcessReport> parse_reports(std::string const& text, std::string const& source) {
  json const doc = parse_text(text, source);
  if (!doc.is_object()) fail(source, "not a JSON object");
  std::string const schema = string_or(doc, "schema");
  if (schema == kRunSchema) {
    auto reports = doc.find("reports");
    if (reports == doc.end() || !reports->is_array()) fail(source, "no \"reports\" array");
    std::vector<ProcessReport> out;
    std::size_t i = 0;
    for (json const& r : *reports) out.push_back(parse_one(r, source + " (reports[" + std::to_string(i++) + "])"));
    return out;
  }
  return {parse_one(doc, source)};
}

std::vector<ProcessReport> load_reports(std::string const& path) {
  bool ok = true;
  std::string const text = read_file(path, &ok);
  if (!ok) throw ReportError(path + ": cannot read");
  return parse_reports(text, path);
}

LoadMarker parse_marker(std::string const& text, std::string const& source) {
  json const doc = parse_text(text, source);
  if (!doc.is_object() || string_or(doc, "schema") != kMarkerSchema)
    fail(source, std::string("not a ") + kMarkerSchema + " marker");
  LoadMarker m;
  m.source = source;
  if (auto pid = doc.find("pid"); pid != doc.end() && pid->is_number_integer()) m.pid = pid->get<long>();
  if (auto ppid = doc.find("ppid"); ppid != doc.end() && ppid->is_number_integer()) m.ppid = ppid->get<long>();
  m.argv0 = string_or(doc, "argv0");
  m.attached = bool_or(doc, "attached", false);
  m.reason = string_or(doc, "reason");
  m.mode = string_or(doc, "mode");
  return m;
}

Observations merge(std::vector<ProcessReport> const& reports) {
  Observations all;
  for (ProcessReport const& r : reports) all.add(r.observed);
  return all;
}

RunFiles collect_run_files(std::string const& dir) {
  RunFiles files;
  std::vector<std::string> markers;
  std::vector<std::string> reports;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string const name = e->d_name;
      bool const json_file = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
      if (!json_file) continue;  // also skips the writers' temporary files
      if (name.rfind("loaded-", 0) == 0) markers.push_back(name);
      if (name.rfind("report-", 0) == 0) reports.push_back(name);
    }
    closedir(d);
  } else {
    files.problems.push_back(dir + ": cannot list the report directory");
    return files;
  }
  auto by_pid = [](std::string const& a, std::string const& b) { return pid_from_name(a) < pid_from_name(b); };
  std::sort(markers.begin(), markers.end(), by_pid);
  std::sort(reports.begin(), reports.end(), by_pid);
  for (std::string const& name : markers) {
    bool ok = true;
    std::string const path = dir + "/" + name;
    std::string const text = read_file(path, &ok);
    try {
      if (!ok) throw ReportError(path + ": cannot read");
      files.markers.push_back(parse_marker(text, path));
    } catch (ReportError const& e) {
      files.problems.push_back(e.what());
    }
  }
  for (std::string const& name : reports) {
    bool ok = true;
    std::string const path = dir + "/" + name;
    std::string const text = read_file(path, &ok);
    try {
      if (!ok) throw ReportError(path + ": cannot read");
      for (ProcessReport& r : parse_reports(text, path)) {
        files.reports.push_back(std::move(r));
        files.report_texts.push_back(text);
      }
    } catch (ReportError const& e) {
      files.problems.push_back(e.what());
    }
  }
  return files;
}

std::string run_file_json(std::vector<std::string> const& command, int exit_status, RunFiles const& files) {
  ordered_json doc;
  doc["schema"] = kRunSchema;
  doc["command"] = command;
  doc["exit_status"] = exit_status;
  ordered_json markers = ordered_json::array();
  for (LoadMarker const& m : files.markers)
    markers.push_back({{"pid", m.pid}, {"ppid", m.ppid}, {"argv0", m.argv0}, {"attached", m.attached},
                       {"reason", m.reason}, {"mode", m.mode}});
  doc["processes"] = std::move(markers);
  ordered_json reports = ordered_json::array();
  for (std::string const& text : files.report_texts) {
    try {
      reports.push_back(ordered_json::parse(text));
    } catch (...) {
      // parsed once already; cannot fail here
    }
  }
  doc["reports"] = std::move(reports);
  return doc.dump(2) + "\n";
}

}  // namespace pbm::guard
