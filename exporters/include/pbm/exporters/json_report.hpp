// JSON report of the counters pbm exports (the same collect() as the Prometheus exporter), for CI
// and pbm-guard: per process (pid, rank, argv[0], host), build, telemetry status, and every metric
// with its labelled samples. Schema "pbm.report/1", documented in exporters/README.md.
// Thread-safety: all functions are thread-safe. Nothing here throws except where noted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pbm::exporters {

/// Who wrote a report.
struct ProcessInfo {
  long pid{0};
  std::string argv0;       ///< from /proc/self/cmdline; "" when unreadable
  std::string hostname;
  std::string rank;        ///< env RANK, else LOCAL_RANK, else ""
  std::string local_rank;  ///< env LOCAL_RANK, else ""
};
ProcessInfo process_info();

/// Where violations came from (pbm-guard's injection counts them): the report's optional "sites".
struct ReportSite {
  std::string rule;
  std::string range;  ///< innermost NVTX range, "none" outside any
  std::string where;  ///< API name, plus the caller's frame when known
  std::uint64_t count{0};
};
using ReportSites = std::optional<std::vector<ReportSite>>;

/// The report now, as JSON text (pretty-printed, trailing newline). With `sites`, it ends with
/// "sites": [{"rule", "range", "where", "count"}]. Makes no CUDA call.
std::string json_report(ReportSites const& sites = std::nullopt);

/// Writes json_report(sites) to `path` with write_file_atomically(). "{pid}" and "{rank}" in the
/// path are replaced by the pid and the rank ("norank" when unset). Returns "" on success, else a
/// one-line error. Never throws.
std::string write_json_report(std::string const& path, ReportSites const& sites = std::nullopt) noexcept;

/// Writes `text` to `path` through a temporary file beside it (`path`.tmp.<pid>), then a rename,
/// so a reader never sees half a file. Returns "" on success, else a one-line error. Never throws.
std::string write_file_atomically(std::string const& path, std::string const& text) noexcept;

/// Writes the report when the process exits normally (std::exit or return from main) to `path`;
/// an empty `path` reads env PBM_REPORT_JSON. Returns the path in effect ("" when neither is set:
/// nothing will be written). A later call replaces the path; an exit-time failure is logged to
/// stderr.
std::string write_json_report_at_exit(std::string path = {});

}  // namespace pbm::exporters
