// What pbm-guard reads: per-process pbm JSON reports (schema "pbm.report/1", written by the
// injection library at exit) and the injection's "loaded" markers, reduced to the counts a budget
// talks about (memcpys and syncs by NVTX range, direction, memory kind and API), and merged over
// the processes of one run.
// Thread-safety: values only; functions are pure (file reading aside).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace pbm::guard {

/// The largest count or byte total; a sum that would pass it stays here (saturating_add).
inline constexpr std::uint64_t kSaturated = std::numeric_limits<std::uint64_t>::max();

/// a + b, or kSaturated when that does not fit. Every sum of report values goes through this:
/// counters of several processes or series can add up past 2^64, and a wrapped sum is a small
/// number that passes a budget. A sum of kSaturated means "at least that".
constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return a > kSaturated - b ? kSaturated : a + b;
}

/// What the summary and the check print when a sum they show is kSaturated.
inline constexpr char const* kSaturatedNote =
    "a sum reached 18446744073709551615 (2^64 - 1) and saturated there: the real total is at least that";

/// Label values pbm's telemetry uses (pbm/telemetry/events.hpp to_string); a test checks they match.
std::vector<std::string> const& known_directions();
std::vector<std::string> const& known_memory_kinds();
std::vector<std::string> const& known_sync_apis();
/// False for the APIs that never block the host (stream_query, event_query, stream_wait_event,
/// legacy_stream, graph_host_node).
bool sync_api_blocks_host(std::string const& api);

struct MemcpyKey {
  std::string range;      ///< innermost NVTX range name, "none" outside any, "other" past the cap
  std::string direction;  ///< HtoD, DtoH, ...
  std::string memory;     ///< host side of the copy (pageable, pinned) or device
  bool expected{false};
  friend bool operator<(MemcpyKey const& a, MemcpyKey const& b) {
    return std::tie(a.range, a.direction, a.memory, a.expected) < std::tie(b.range, b.direction, b.memory, b.expected);
  }
};
struct SyncKey {
  std::string range;
  std::string api;  ///< stream_synchronize, memcpy_sync, ...
  bool expected{false};
  friend bool operator<(SyncKey const& a, SyncKey const& b) {
    return std::tie(a.range, a.api, a.expected) < std::tie(b.range, b.api, b.expected);
  }
};
struct CopyCount {
  std::uint64_t count{0};
  std::uint64_t bytes{0};
};

/// Counts seen, zero entries dropped.
struct Observations {
  std::map<MemcpyKey, CopyCount> memcpy;
  std::map<SyncKey, std::uint64_t> sync;
  void add(Observations const& other);
  bool empty() const noexcept { return memcpy.empty() && sync.empty(); }
};

/// A call site, when a report carries them (optional key "sites": [{"rule", "range", "where",
/// "count"}]); the summary prints the top ones.
struct Site {
  std::string rule;
  std::string range;
  std::string where;
  std::uint64_t count{0};
};

/// One process's report.
struct ProcessReport {
  std::string source;  ///< file it came from (for messages)
  long pid{0};
  std::string argv0;
  std::string hostname;
  std::string rank;    ///< "" when unset
  bool telemetry_started{false};
  bool telemetry_attached{false};
  std::string telemetry_mode;
  std::string telemetry_reason;
  std::uint64_t telemetry_dropped_records{0};
  Observations observed;
  std::vector<Site> sites;
};

/// The injection's marker: written when CUDA initialised in a process and the library loaded.
struct LoadMarker {
  std::string source;
  long pid{0};
  long ppid{0};
  std::string argv0;
  bool attached{false};    ///< CUPTI detection attached right after start
  std::string reason;      ///< telemetry's one-line status
  std::string mode;
};

/// A malformed or unreadable report; the message names the file and what is wrong.
class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses a "pbm.report/1" report, or a "pbm.guard.run/1" run file (`pbm-guard run --report`),
/// which holds several. Unknown keys are ignored (the schema only ever adds keys). Throws ReportError.
std::vector<ProcessReport> parse_reports(std::string const& text, std::string const& source);
/// Reads and parses a file. Throws ReportError.
std::vector<ProcessReport> load_reports(std::string const& path);
/// Parses a marker written by the injection library. Throws ReportError.
LoadMarker parse_marker(std::string const& text, std::string const& source);

/// Sum over processes.
Observations merge(std::vector<ProcessReport> const& reports);

/// Everything one run left in its report directory.
struct RunFiles {
  std::vector<LoadMarker> markers;
  std::vector<ProcessReport> reports;
  std::vector<std::string> report_texts;   ///< raw text of each report, in `reports` order
  std::vector<std::string> problems;       ///< unreadable or malformed files, one line each
};
/// Reads loaded-*.json and report-*.json from `dir` (sorted by pid). Never throws.
RunFiles collect_run_files(std::string const& dir);

/// The run file `pbm-guard run --report` writes: schema "pbm.guard.run/1", the command, its exit
/// status, the markers and every process report verbatim.
std::string run_file_json(std::vector<std::string> const& command, int exit_status, RunFiles const& files);

}  // namespace pbm::guard
