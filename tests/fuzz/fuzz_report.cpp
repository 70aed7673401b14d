// pbm-guard's report reader and everything downstream of it: pbm.report/1 and pbm.guard.run/1
// texts either parse or give a ReportError naming the source; parsed reports merge, summarise and
// check without crashing; and `pbm-guard baseline` of what was seen is a budget that pbm-guard
// accepts and that the same run meets.
#include "fuzz_input.hpp"

#include "budget.hpp"
#include "check.hpp"
#include "report.hpp"
#include "summary.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace pbm::guard;

bool known(std::vector<std::string> const& list, std::string const& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Labels pbm's telemetry writes; a report with others (hand-edited, a newer pbm) is not
// expected to give a baseline that this pbm-guard accepts.
bool only_known_labels(Observations const& seen) {
  for (auto const& [k, c] : seen.memcpy)
    if (!known(known_directions(), k.direction) || !known(known_memory_kinds(), k.memory)) return false;
  for (auto const& [k, n] : seen.sync)
    if (!known(known_sync_apis(), k.api)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  // First byte: slack and options; the rest: the report text.
  pbm::fuzz::Input in(data, size);
  std::uint8_t const options = in.take<std::uint8_t>();
  std::string const text(reinterpret_cast<char const*>(data) + (size - in.remaining()), in.remaining());

  std::vector<ProcessReport> reports;
  try {
    reports = parse_reports(text, "fuzz.json");
  } catch (ReportError const& e) {
    std::string const what = e.what();
    PBM_FUZZ_CHECK(what.rfind("fuzz.json", 0) == 0, "a report error names the file first: " + what);
    return 0;
  }
  try {
    (void)parse_marker(text, "fuzz.json");
  } catch (ReportError const&) {
  }

  Observations const seen = merge(reports);
  (void)format_summary(reports, options % 4);

  Budget loose;
  loose.overall.memcpy["total"] = 0;
  loose.overall.memcpy["DtoH/pageable"] = 0;
  loose.overall.memcpy_bytes["total"] = 0;
  loose.overall.sync["total"] = 0;
  loose.overall.sync["stream_synchronize"] = 0;
  for (auto const& [k, c] : seen.memcpy) loose.ranges[k.range].memcpy["total"] = 1;
  (void)format_check(check(loose, seen));

  if (!only_known_labels(seen)) return 0;
  Slack slack;
  slack.absolute = options & 0x3;
  slack.percent = (options >> 2) % 4 * 10.0;
  Events const events = (options & 0x40) ? Events::unexpected : Events::all;
  Budget const baseline = baseline_budget(seen, events, slack, "fuzz", {"train_step"});
  std::string const written = budget_json(baseline);
  Budget back;
  try {
    back = parse_budget(written, "baseline.json");
  } catch (BudgetError const& e) {
    PBM_FUZZ_CHECK(false, std::string("pbm-guard rejects its own baseline: ") + e.what() + "\n" + written);
  }
  CheckResult const result = check(back, seen);
  PBM_FUZZ_CHECK(result.within(), "the run a baseline was made from is over it:\n" + format_check(result));
  return 0;
}
