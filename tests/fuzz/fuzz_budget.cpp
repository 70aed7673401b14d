// pbm-guard budget files (schema pbm.budget/1): any bytes either parse into a budget or give a
// BudgetError whose message starts with the file name. A parsed budget is written and parsed back
// unchanged, and a run that did nothing is within it.
#include "fuzz_input.hpp"

#include "budget.hpp"
#include "check.hpp"

#include <cstdint>
#include <string>

namespace {

using pbm::guard::Budget;
using pbm::guard::LimitSet;

bool same(LimitSet const& a, LimitSet const& b) {
  return a.memcpy == b.memcpy && a.memcpy_bytes == b.memcpy_bytes && a.sync == b.sync;
}

bool same(Budget const& a, Budget const& b) {
  if (a.description != b.description || a.events != b.events || !same(a.overall, b.overall) ||
      a.ranges.size() != b.ranges.size())
    return false;
  for (auto const& [name, set] : a.ranges) {
    auto it = b.ranges.find(name);
    if (it == b.ranges.end() || !same(set, it->second)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string const text(reinterpret_cast<char const*>(data), size);
  Budget budget;
  try {
    budget = pbm::guard::parse_budget(text, "fuzz.json");
  } catch (pbm::guard::BudgetError const& e) {
    std::string const what = e.what();
    PBM_FUZZ_CHECK(what.rfind("fuzz.json:", 0) == 0, "a budget error names the file first: " + what);
    return 0;
  }
  std::string const written = pbm::guard::budget_json(budget);
  Budget back;
  try {
    back = pbm::guard::parse_budget(written, "written");
  } catch (pbm::guard::BudgetError const& e) {
    PBM_FUZZ_CHECK(false, std::string("a written budget does not parse back: ") + e.what());
  }
  PBM_FUZZ_CHECK(same(budget, back), "a written budget parses back different:\n" + written);

  pbm::guard::CheckResult const nothing = pbm::guard::check(budget, pbm::guard::Observations{});
  PBM_FUZZ_CHECK(nothing.within(), "a run with no copies or syncs is over budget");
  (void)pbm::guard::format_check(nothing);
  return 0;
}
