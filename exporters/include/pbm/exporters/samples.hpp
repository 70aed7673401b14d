// What pbm exports: telemetry's counters (memcpys, syncs, violations, health), every live mailbox
// (mailbox_metrics.hpp, a built-in source), samples from extra sources, pbm_build_info, and known
// series at zero, each with the `rank` label when RANK or LOCAL_RANK is set. One list, read by the
// Prometheus exporter at each scrape and by the JSON report, so both show the same values. Names,
// types, labels and help of pbm's series: pbm/telemetry/metric_table.hpp.
//
// Collecting makes no CUDA call (no memcpy, no synchronisation): telemetry's counters are atomics and
// mailbox statistics come from mapped host memory (pbm/registry.hpp).
// Thread-safety: all functions are thread-safe; sources are called concurrently from scrape threads
// and must be thread-safe themselves.
#pragma once

#include <pbm/telemetry/counters.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::exporters {

using Sample = telemetry::CounterSample;

/// Produces samples at each collection (Prometheus naming: [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in
/// _total). Called on the exporter's threads; an exception from it is caught, logged once and the
/// source skipped for that collection.
using SampleSource = std::function<std::vector<Sample>()>;

/// Registers an extra source for every later collection (e.g. mailboxes pbm does not own, such as
/// host-side rings, through mailbox_samples() of mailbox_metrics.hpp). Returns an id for remove_source().
std::size_t add_source(SampleSource source);
/// Unregisters a source; returns false for an unknown id. A collection already running may still
/// call it once.
bool remove_source(std::size_t id) noexcept;

/// One exported metric: its samples grouped under one name, with one type and help text.
struct MetricFamily {
  std::string name;
  std::string help;
  Sample::Type type{Sample::Type::counter};
  std::vector<Sample> samples;  ///< unique label sets
};

/// Everything exported now, in a stable order (telemetry, live mailboxes, extra sources, then
/// pbm_build_info and exporter health). The `rank` label is added here, once, to every sample that
/// lacks one. Samples with the same name and labels are summed; samples with an invalid
/// name or label, a type that conflicts with the first seen for the name, or beyond
/// kMaxSeriesPerMetric series of one metric are dropped and counted in
/// pbm_exporter_rejected_samples_total. Known series (memcpy and sync by direction/API and
/// `expected` with range "none", memsets) are added at zero when absent, so rate() and alerts see
/// them from the first scrape.
std::vector<MetricFamily> collect();

inline constexpr std::size_t kMaxSeriesPerMetric = 2000;

/// Help text of a pbm metric (the metric table's); a generic line for names pbm does not define.
std::string help_text(std::string_view name);

/// What pbm_build_info reports.
struct BuildInfo {
  std::string version;       ///< pbm's version (CMake project version)
  std::string cuda_version;  ///< CUDA toolkit major.minor pbm was built with
  bool cupti_built{false};   ///< telemetry compiled with CUPTI support
  bool prometheus_built{false};
};
BuildInfo build_info() noexcept;

}  // namespace pbm::exporters
