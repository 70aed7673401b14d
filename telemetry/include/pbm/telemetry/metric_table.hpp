// The metric table: every series pbm exports, defined once (name, type, unit, labels, help).
//
// Telemetry's counters, the exporters' collection (Prometheus exposition and JSON report), the
// mailbox source, pbm-guard's report reader and the dashboard generator all take names from here;
// dashboards/tools/metric_table.py reads this file for the Python side, and
// dashboards/tests/metric_table_test.py fails when a dashboard query, an alert rule or a docs table
// names a series this table does not hold. exporters/tests/metric_table_test.cpp fails when
// collect() emits a series not here, or one here is never emitted.
// Every series may also carry `rank` (env RANK or LOCAL_RANK), added once, by exporters::collect().
// Standard headers only: pbm-guard includes it without linking telemetry.
// Thread-safety: constants only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pbm::telemetry {

enum class MetricType : std::uint8_t { counter, gauge };

/// Index of a series in kMetrics.
enum class MetricId : std::uint8_t {
  push_records, pop_records, dropped_records, push_bytes, pop_bytes, push_calls, pop_calls,
  occupancy_records, capacity_records,
  memcpy_total, memcpy_bytes, memset_total, memset_bytes, sync_total, violations,
  telemetry_cupti_attached, telemetry_subscriber_taken, telemetry_dropped_records,
  telemetry_buffers_processed, telemetry_records_processed, telemetry_buffer_pool_exhausted,
  telemetry_unattributed_records,
  build_info, exporter_rejected_samples,
};

struct Metric {
  MetricId id;
  std::string_view name;
  MetricType type;
  std::string_view unit;    ///< what the value counts or measures
  std::string_view labels;  ///< label names, space-separated (besides the optional `rank`)
  std::string_view help;    ///< the HELP line
};

/// The label every series may carry, added once by exporters::collect().
inline constexpr std::string_view kRankLabel = "rank";

// One entry a line, in MetricId order (checked below). The Python reader expects
// {MetricId::x, "name", MetricType::t, "unit", "labels", "help"}, strings without escapes.
// clang-format off
inline constexpr Metric kMetrics[] = {
    {MetricId::push_records, "pbm_push_records_total", MetricType::counter, "records", "mailbox device", "Records pushed into the mailbox since it was created."},
    {MetricId::pop_records, "pbm_pop_records_total", MetricType::counter, "records", "mailbox device", "Records popped from the mailbox since it was created."},
    {MetricId::dropped_records, "pbm_dropped_records_total", MetricType::counter, "records", "mailbox device", "Records refused because the mailbox was full (never overwritten)."},
    {MetricId::push_bytes, "pbm_push_bytes_total", MetricType::counter, "bytes", "mailbox device", "Bytes pushed into the mailbox (records times stride)."},
    {MetricId::pop_bytes, "pbm_pop_bytes_total", MetricType::counter, "bytes", "mailbox device", "Bytes popped from the mailbox (records times stride)."},
    {MetricId::push_calls, "pbm_push_calls_total", MetricType::counter, "calls", "mailbox device stream_class", "Host-launched push calls, by stream class."},
    {MetricId::pop_calls, "pbm_pop_calls_total", MetricType::counter, "calls", "mailbox device stream_class", "Host-launched pop calls, by stream class."},
    {MetricId::occupancy_records, "pbm_occupancy_records", MetricType::gauge, "records", "mailbox device", "Records in the mailbox now (pushed minus popped)."},
    {MetricId::capacity_records, "pbm_capacity_records", MetricType::gauge, "records", "mailbox device", "Capacity of the mailbox in records."},
    {MetricId::memcpy_total, "pbm_memcpy_total", MetricType::counter, "copies", "direction memory expected range", "Memory copies seen by CUPTI, by direction, host memory kind, expectation and innermost NVTX range."},
    {MetricId::memcpy_bytes, "pbm_memcpy_bytes_total", MetricType::counter, "bytes", "direction memory expected range", "Bytes copied by the copies counted in pbm_memcpy_total."},
    {MetricId::memset_total, "pbm_memset_total", MetricType::counter, "memsets", "", "Memsets seen by CUPTI."},
    {MetricId::memset_bytes, "pbm_memset_bytes_total", MetricType::counter, "bytes", "", "Bytes set by the memsets counted in pbm_memset_total."},
    {MetricId::sync_total, "pbm_sync_total", MetricType::counter, "syncs", "api expected range", "Synchronisations seen by CUPTI, by API, expectation and innermost NVTX range."},
    {MetricId::violations, "pbm_violations_total", MetricType::counter, "violations", "rule", "Policy violations, by broken rule."},
    {MetricId::telemetry_cupti_attached, "pbm_telemetry_cupti_attached", MetricType::gauge, "bool", "", "1 when pbm holds the CUPTI subscriber and activity tracing is on."},
    {MetricId::telemetry_subscriber_taken, "pbm_telemetry_subscriber_taken", MetricType::gauge, "bool", "", "1 when pbm stepped aside because another tool holds CUPTI."},
    {MetricId::telemetry_dropped_records, "pbm_telemetry_dropped_records_total", MetricType::counter, "records", "", "CUPTI activity records dropped (buffers full)."},
    {MetricId::telemetry_buffers_processed, "pbm_telemetry_buffers_processed_total", MetricType::counter, "buffers", "", "CUPTI activity buffers processed."},
    {MetricId::telemetry_records_processed, "pbm_telemetry_records_processed_total", MetricType::counter, "records", "", "CUPTI activity records processed."},
    {MetricId::telemetry_buffer_pool_exhausted, "pbm_telemetry_buffer_pool_exhausted_total", MetricType::counter, "requests", "", "CUPTI buffer requests refused because the pool was empty."},
    {MetricId::telemetry_unattributed_records, "pbm_telemetry_unattributed_records_total", MetricType::counter, "records", "", "CUPTI records with no matching API call."},
    {MetricId::build_info, "pbm_build_info", MetricType::gauge, "info", "version cuda_version cupti prometheus", "pbm build: version, CUDA version, CUPTI and Prometheus support. Always 1."},
    {MetricId::exporter_rejected_samples, "pbm_exporter_rejected_samples_total", MetricType::counter, "samples", "", "Samples the exporter dropped: invalid name or label, conflicting type, or over the series cap."},
};
// clang-format on

inline constexpr std::size_t kMetricCount = sizeof(kMetrics) / sizeof(kMetrics[0]);

namespace detail {
constexpr bool metric_ids_in_order() noexcept {
  for (std::size_t i = 0; i < kMetricCount; ++i)
    if (static_cast<std::size_t>(kMetrics[i].id) != i) return false;
  return true;
}
}  // namespace detail
static_assert(detail::metric_ids_in_order(), "kMetrics must list its entries in MetricId order");
static_assert(static_cast<std::size_t>(MetricId::exporter_rejected_samples) + 1 == kMetricCount,
              "every MetricId has an entry in kMetrics");

constexpr Metric const& metric(MetricId id) noexcept { return kMetrics[static_cast<std::size_t>(id)]; }

/// The entry named `name`, or nullptr for a name pbm does not define.
constexpr Metric const* find_metric(std::string_view name) noexcept {
  for (Metric const& m : kMetrics)
    if (m.name == name) return &m;
  return nullptr;
}

/// True when `label` is one of m's labels (`rank` is not listed: every series may carry it).
constexpr bool has_label(Metric const& m, std::string_view label) noexcept {
  std::string_view rest = m.labels;
  while (!rest.empty()) {
    std::size_t const space = rest.find(' ');
    if (rest.substr(0, space) == label) return true;
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  return false;
}

}  // namespace pbm::telemetry
