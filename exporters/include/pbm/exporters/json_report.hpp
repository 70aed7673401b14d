// JSON report of the counters pbm exports (the same collect() as the Prometheus exporter), for CI
// and pbm-guard: per process (pid, rank, argv[0], host), build, telemetry status, and every metric
// with its labelled samples. Schema "pbm.report/1", documented in exporters/README.md.
// Thread-safety: all functions are thread-safe. Nothing here throws except where noted.
#pragma once

#include <string>

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

/// The report now, as JSON text (pretty-printed, trailing newline). Makes no CUDA call.
std::string json_report();

/// Writes json_report() to `path` (written to a temporary file beside it, then renamed, so a reader
/// never sees half a report). "{pid}" and "{rank}" in the path are replaced by the pid and the rank
/// ("norank" when unset). Returns "" on success, else a one-line error. Never throws.
std::string write_json_report(std::string const& path) noexcept;

/// Writes the report when the process exits normally (std::exit or return from main) to `path`;
/// an empty `path` reads env PBM_REPORT_JSON. Returns the path in effect ("" when neither is set:
/// nothing will be written). A later call replaces the path; an exit-time failure is logged to
/// stderr.
std::string write_json_report_at_exit(std::string path = {});

}  // namespace pbm::exporters
