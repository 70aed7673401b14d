// collect(): telemetry's samples + extra sources + build info + known series at zero, validated,
// merged and grouped into metric families.
#include <pbm/exporters/samples.hpp>

#include "log.hpp"
#include "saturating.hpp"

#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/registry.hpp>
#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/metric_table.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace pbm::exporters {
namespace {

struct Sources {
  std::mutex mu;
  std::size_t next_id{1};
  std::vector<std::pair<std::size_t, SampleSource>> list;
};

Sources& sources() {
  static Sources* const s = new Sources();  // used from exit-time reports
  return *s;
}

bool valid_metric_name(std::string const& s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char const c = s[i];
    bool const alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string const& s) {
  if (s.empty() || s.rfind("__", 0) == 0) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char const c = s[i];
    bool const alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Label values must be UTF-8: Prometheus drops a whole scrape over one invalid value ("invalid UTF-8
// label value") and the JSON report cannot be written. User strings (NVTX range names, mailbox
// names) may be anything: each invalid byte becomes U+FFFD.
bool valid_utf8(std::string const& s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    auto const c = static_cast<unsigned char>(s[i]);
    std::size_t const n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size() || (n == 2 && c < 0xc2)) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    if (n == 3) {  // no overlong forms, no surrogates
      auto const c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) return false;
    }
    if (n == 4) {  // no overlong forms, nothing past U+10FFFF
      auto const c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90) || c > 0xf4) return false;
    }
    i += n;
  }
  return true;
}

std::string to_utf8(std::string const& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = 1;
    while (n <= 4 && i + n <= s.size() && !valid_utf8(s.substr(i, n))) ++n;
    if (n <= 4 && i + n <= s.size()) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for one byte that starts no valid character
      ++i;
    }
  }
  return out;
}

// Builds families in first-seen order; merges equal label sets by summing.
class Builder {
 public:
  /// `rank` (when not empty) is added to samples that lack a rank label: one label set per process.
  explicit Builder(std::string rank) : rank_(std::move(rank)) {}
  void add(Sample s) { insert(labelled(std::move(s))); }
  /// Adds `s` only when no sample of that name and labels exists (a zero for a known series).
  void add_if_absent(Sample s) {
    s = labelled(std::move(s));
    auto it = index_.find(s.name);
    if (it != index_.end() && family_series_[it->second].count(s.labels) != 0) return;
    insert(std::move(s));
  }
  std::uint64_t rejected() const { return rejected_; }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  using Family = std::map<std::map<std::string, std::string>, std::size_t>;
  /// The one place the `rank` label is added; label values made valid UTF-8.
  Sample labelled(Sample s) const {
    if (!rank_.empty()) s.labels.emplace(telemetry::kRankLabel, rank_);
    for (auto& [key, value] : s.labels)
      if (!valid_utf8(value)) value = to_utf8(value);
    return s;
  }
  void insert(Sample s) {
    if (!valid_metric_name(s.name) ||
        !std::all_of(s.labels.begin(), s.labels.end(), [](auto const& kv) { return valid_label_name(kv.first); })) {
      reject("invalid metric or label name in sample '" + s.name + "'");
      return;
    }
    auto [it, inserted] = index_.try_emplace(s.name, families_.size());
    if (inserted) families_.push_back(MetricFamily{s.name, help_text(s.name), s.type, {}});
    Family& f = family_series_[it->second];
    MetricFamily& fam = families_[it->second];
    if (fam.type != s.type) {
      reject("type conflict for '" + s.name + "'");
      return;
    }
    auto found = f.find(s.labels);
    if (found != f.end()) {
      fam.samples[found->second].value = detail::saturating_add(fam.samples[found->second].value, s.value);
      return;
    }
    if (fam.samples.size() >= kMaxSeriesPerMetric) {
      reject("more than " + std::to_string(kMaxSeriesPerMetric) + " series for '" + s.name + "'");
      return;
    }
    f.emplace(s.labels, fam.samples.size());
    fam.samples.push_back(std::move(s));
  }
  void reject(std::string const& why) {
    ++rejected_;
    detail::log_once("exporter: sample dropped: " + why);
  }
  std::string rank_;
  std::unordered_map<std::string, std::size_t> index_;
  std::unordered_map<std::size_t, Family> family_series_;
  std::vector<MetricFamily> families_;
  std::uint64_t rejected_{0};
};

std::atomic<std::uint64_t> g_rejected_total{0};

}  // namespace

std::size_t add_source(SampleSource source) {
  Sources& s = sources();
  std::lock_guard<std::mutex> lock(s.mu);
  std::size_t const id = s.next_id++;
  s.list.emplace_back(id, std::move(source));
  return id;
}

bool remove_source(std::size_t id) noexcept {
  Sources& s = sources();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = std::find_if(s.list.begin(), s.list.end(), [id](auto const& e) { return e.first == id; });
  if (it == s.list.end()) return false;
  s.list.erase(it);
  return true;
}

std::string help_text(std::string_view name) {
  if (telemetry::Metric const* m = telemetry::find_metric(name)) return std::string(m->help);
  return "pbm metric " + std::string(name) + " (from an extra sample source).";
}

BuildInfo build_info() noexcept {
  BuildInfo b;
  try {
    b.version = PBM_VERSION;
    b.cuda_version = PBM_CUDA_VERSION;
  } catch (...) {
  }
  b.cupti_built = PBM_CUPTI_BUILT != 0;
#if defined(PBM_EXPORTERS_HAVE_PROMETHEUS)
  b.prometheus_built = true;
#endif
  return b;
}

std::vector<MetricFamily> collect() {
  using telemetry::Direction;
  using telemetry::MemoryKind;
  using telemetry::SyncApi;
  using telemetry::metric;
  using telemetry::MetricId;

  Builder b(telemetry::rank_from_env());  // puts `rank` on every sample
  for (Sample& s : telemetry::counters().snapshot()) b.add(std::move(s));
  // Built-in source: every live pbm::Mailbox, from mapped host memory (no CUDA call), plus the
  // counts of destroyed ones.
  for (Sample& s : mailbox_samples()) b.add(std::move(s));

  std::vector<SampleSource> extra;
  {
    Sources& src = sources();
    std::lock_guard<std::mutex> lock(src.mu);
    for (auto const& e : src.list) extra.push_back(e.second);
  }
  for (SampleSource const& source : extra) {  // called without the lock: sources may be slow
    try {
      for (Sample& s : source()) b.add(std::move(s));
    } catch (std::exception const& e) {
      detail::log_once(std::string("exporter: a sample source threw: ") + e.what());
    } catch (...) {
      detail::log_once("exporter: a sample source threw a non-standard exception");
    }
  }

  using Labels = std::map<std::string, std::string>;  // the Builder adds `rank`

  BuildInfo const info = build_info();
  auto sample = [](MetricId id, Labels labels, std::uint64_t value) {
    telemetry::Metric const& m = metric(id);
    return Sample{std::string(m.name), std::move(labels), value, m.type};
  };
  b.add(sample(MetricId::build_info,
         Labels({{"version", info.version},
                 {"cuda_version", info.cuda_version},
                 {"cupti", info.cupti_built ? "true" : "false"},
                 {"prometheus", info.prometheus_built ? "true" : "false"}}),
         1));

  // Known series at zero: the copies and syncs alerts and panels watch, outside any NVTX range.
  struct Copy {
    Direction direction;
    MemoryKind memory;
  };
  for (Copy c : {Copy{Direction::HtoD, MemoryKind::pageable}, Copy{Direction::HtoD, MemoryKind::pinned},
                 Copy{Direction::DtoH, MemoryKind::pageable}, Copy{Direction::DtoH, MemoryKind::pinned},
                 Copy{Direction::DtoD, MemoryKind::device}}) {
    for (char const* expected : {"false", "true"}) {
      auto labels = Labels({{"direction", std::string(telemetry::to_string(c.direction))},
                            {"memory", std::string(telemetry::to_string(c.memory))},
                            {"expected", expected},
                            {"range", "none"}});
      b.add_if_absent(sample(MetricId::memcpy_total, labels, 0));
      b.add_if_absent(sample(MetricId::memcpy_bytes, labels, 0));
    }
  }
  for (SyncApi api : {SyncApi::stream_synchronize, SyncApi::event_synchronize, SyncApi::device_synchronize,
                      SyncApi::context_synchronize, SyncApi::memcpy_sync, SyncApi::memcpy_blocking, SyncApi::free,
                      SyncApi::free_host, SyncApi::host_alloc, SyncApi::host_register, SyncApi::host_unregister,
                      SyncApi::malloc, SyncApi::free_array, SyncApi::set_limit, SyncApi::set_cache_config,
                      SyncApi::memset_sync}) {
    for (char const* expected : {"false", "true"}) {
      b.add_if_absent(sample(MetricId::sync_total,
                             Labels({{"api", std::string(telemetry::to_string(api))},
                                     {"expected", expected},
                                     {"range", "none"}}),
                             0));
    }
  }
  b.add_if_absent(sample(MetricId::memset_total, {}, 0));
  b.add_if_absent(sample(MetricId::memset_bytes, {}, 0));

  std::uint64_t const total = g_rejected_total.fetch_add(b.rejected(), std::memory_order_relaxed) + b.rejected();
  b.add(sample(MetricId::exporter_rejected_samples, {}, total));
  return b.take();
}

}  // namespace pbm::exporters
