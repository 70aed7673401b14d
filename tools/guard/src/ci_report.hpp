// What CI systems read besides the log: JUnit XML (`--junit FILE`, one testcase per budget limit)
// for test reporters, and a Markdown summary for GitHub's step summary ($GITHUB_STEP_SUMMARY).
// Thread-safety: pure functions.
#pragma once

#include "check.hpp"
#include "exit_codes.hpp"
#include "report.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pbm::guard {

/// `text` as XML 1.0 character data or attribute value: & < > " ' escaped; characters XML 1.0
/// forbids (controls other than tab, LF, CR; U+FFFE, U+FFFF; surrogates) dropped; bytes that are
/// not UTF-8 become U+FFFD. Program paths, NVTX range names and stack frames are arbitrary bytes.
std::string xml_escape(std::string_view text);

/// The budget's limit as a test name: `sync.total`, `memcpy.DtoH/pageable`,
/// `ranges.train_step.memcpy.total` (the path of the key in the budget, `limits.` left out).
std::string limit_name(LimitCheck const& c);

/// One run or check, as the CI reporters tell it.
struct CiReport {
  std::string budget_file;  ///< as given; the test suite is `pbm-guard.<file name without extension>`
  bool checked{false};      ///< false when no process wrote a report: no limit was compared
  CheckResult check;
  std::vector<Site> sites;  ///< of every process
  int program_status{0};    ///< 0 for `check`
  ExitDecision exit;        ///< pbm-guard's exit code and its reason
};

/// JUnit XML: one testsuite, a testcase per limit (a <failure> with limit, seen and the top sites
/// of that range and kind when it is exceeded), an <error> testcase `measurement` when nothing (or
/// not everything) was measured, and a testcase `program` when the program failed or skipped.
std::string junit_xml(CiReport const& report);

/// Markdown for $GITHUB_STEP_SUMMARY: the verdict, a table (limit, budget, seen, verdict) and the
/// top sites.
std::string markdown_summary(CiReport const& report);

}  // namespace pbm::guard
