// Comparing what a run did with a budget, and saying it so a person sees what to fix.
// Thread-safety: pure functions.
#pragma once

#include "budget.hpp"
#include "report.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pbm::guard {

enum class Category { memcpy, memcpy_bytes, sync };
std::string to_string(Category c);

/// The count a budget key measures: `range` empty = every range. memcpy keys: total, direction,
/// memory, direction/memory; sync keys: total (host-blocking APIs) or an API.
std::uint64_t measure(Observations const& seen, Events events, std::optional<std::string> const& range,
                      Category category, std::string const& key);

/// One limit compared.
struct LimitCheck {
  std::string where;  ///< "overall" or "range <name>"
  std::string range;  ///< "" for overall
  Category category{Category::memcpy};
  std::string key;
  std::uint64_t limit{0};
  std::uint64_t seen{0};
  bool over() const noexcept { return seen > limit; }
};

struct CheckResult {
  std::vector<LimitCheck> checks;  ///< every limit of the budget, in budget order
  std::vector<std::string> notes;  ///< e.g. a budgeted range the run never entered
  std::size_t over_count() const noexcept;
  bool within() const noexcept { return over_count() == 0; }
};

CheckResult check(Budget const& budget, Observations const& seen);

/// "within budget (12 limits)" or the diff table: where, what, limit, seen, over by.
std::string format_check(CheckResult const& result);

}  // namespace pbm::guard
