// Budget files: how many memcpys and syncs a run may do, overall and per NVTX range.
//
//   {
//     "schema": "pbm.budget/1",
//     "description": "tile pipeline: no host round trips inside train_step",
//     "events": "all",                                   // or "unexpected" (policy violations only)
//     "limits": {                                        // the whole run, every process
//       "memcpy":       {"total": 4, "DtoH": 1, "pageable": 0, "DtoH/pinned": 1},
//       "memcpy_bytes": {"total": 1048576},
//       "sync":         {"total": 2, "stream_synchronize": 1}
//     },
//     "ranges": {                                        // innermost NVTX range name; "none" = outside any
//       "train_step": {"memcpy": {"total": 0}, "sync": {"total": 0}}
//     }
//   }
//
// memcpy / memcpy_bytes keys: "total", a direction, a memory kind, or "direction/memory".
// sync keys: "total" (host-blocking APIs only) or an API name. Limits are unsigned integers.
// Thread-safety: values only; functions are pure (file reading aside).
#pragma once

#include "report.hpp"

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pbm::guard {

enum class Events { all, unexpected };

struct LimitSet {
  std::map<std::string, std::uint64_t> memcpy;
  std::map<std::string, std::uint64_t> memcpy_bytes;
  std::map<std::string, std::uint64_t> sync;
  bool empty() const noexcept { return memcpy.empty() && memcpy_bytes.empty() && sync.empty(); }
};

struct Budget {
  std::string description;
  Events events{Events::all};
  LimitSet overall;
  std::map<std::string, LimitSet> ranges;
};

/// A malformed budget: the message starts with "FILE:LINE:COLUMN:" (or "FILE:" when the position
/// is unknown) and names the field.
class BudgetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses budget text; `source` names it in messages. Unknown keys, wrong types, negative or
/// fractional limits are errors. Throws BudgetError.
Budget parse_budget(std::string const& text, std::string const& source);
/// Reads and parses a file. Throws BudgetError (also when unreadable).
Budget load_budget(std::string const& path);
/// The budget as pretty JSON (schema pbm.budget/1), parseable by parse_budget.
std::string budget_json(Budget const& budget);

/// Headroom for `pbm-guard baseline`: N more, or P percent more (rounded up). Zero limits stay zero:
/// "no copy here" is a property of the code, not a count that varies from run to run.
struct Slack {
  std::uint64_t absolute{0};
  double percent{0.0};
  std::uint64_t apply(std::uint64_t seen) const noexcept;
};
/// "3" or "10%". Throws std::invalid_argument naming the bad value.
Slack parse_slack(std::string const& text);

/// A budget that the observed run meets exactly (plus slack): overall memcpy totals by direction,
/// memory kind and direction/memory, sync totals by API; for every NVTX range with activity its
/// memcpy total and totals by direction and its sync total. A report has no series for a range
/// in which nothing happened, so `zero_ranges` names ranges to budget at zero anyway
/// (e.g. "train_step").
Budget baseline_budget(Observations const& seen, Events events, Slack slack, std::string description,
                       std::vector<std::string> const& zero_ranges = {});

}  // namespace pbm::guard
