#include "check.hpp"

#include "table.hpp"
#include <cstdint>

namespace pbm::guard {
namespace {

bool key_matches_copy(MemcpyKey const& k, std::string const& key) {
  if (key == "total") return true;
  if (auto slash = key.find('/'); slash != std::string::npos)
    return k.direction == key.substr(0, slash) && k.memory == key.substr(slash + 1);
  return k.direction == key || k.memory == key;
}

bool key_matches_sync(SyncKey const& k, std::string const& key) {
  return key == "total" ? sync_api_blocks_host(k.api) : k.api == key;
}

void check_set(LimitSet const& set, std::string const& range, Events events, Observations const& seen,
               std::vector<LimitCheck>* out) {
  std::optional<std::string> const r = range.empty() ? std::nullopt : std::optional<std::string>(range);
  std::string const where = range.empty() ? "overall" : "range " + range;
  auto run = [&](Category c, std::map<std::string, std::uint64_t> const& limits) {
    for (auto const& [key, limit] : limits) out->push_back({where, range, c, key, limit, measure(seen, events, r, c, key)});
  };
  run(Category::memcpy, set.memcpy);
  run(Category::memcpy_bytes, set.memcpy_bytes);
  run(Category::sync, set.sync);
}

}  // namespace

std::string to_string(Category c) {
  switch (c) {
    case Category::memcpy: return "memcpy";
    case Category::memcpy_bytes: return "memcpy_bytes";
    case Category::sync: return "sync";
  }
  return "?";
}

std::uint64_t measure(Observations const& seen, Events events, std::optional<std::string> const& range,
                      Category category, std::string const& key) {
  std::uint64_t total = 0;
  auto counted = [&](std::string const& r, bool expected) {
    return (!range || *range == r) && (events == Events::all || !expected);
  };
  if (category == Category::sync) {
    for (auto const& [k, n] : seen.sync)
      if (counted(k.range, k.expected) && key_matches_sync(k, key)) total = saturating_add(total, n);
    return total;
  }
  for (auto const& [k, c] : seen.memcpy)
    if (counted(k.range, k.expected) && key_matches_copy(k, key))
      total = saturating_add(total, category == Category::memcpy ? c.count : c.bytes);
  return total;
}

std::size_t CheckResult::over_count() const noexcept {
  std::size_t n = 0;
  for (LimitCheck const& c : checks) n += c.over() ? 1 : 0;
  return n;
}

CheckResult check(Budget const& budget, Observations const& seen) {
  CheckResult result;
  check_set(budget.overall, "", budget.events, seen, &result.checks);
  for (auto const& [name, set] : budget.ranges) check_set(set, name, budget.events, seen, &result.checks);
  if (budget.events == Events::unexpected)
    result.notes.push_back("the budget counts unexpected events only (\"events\": \"unexpected\")");
  return result;
}

std::string format_check(CheckResult const& result) {
  std::string out;
  std::size_t const over = result.over_count();
  if (over == 0) {
    out = "pbm-guard: within budget (" + std::to_string(result.checks.size()) + " limits checked)\n";
  } else {
    out = "pbm-guard: OVER BUDGET: " + std::to_string(over) + " of " + std::to_string(result.checks.size()) +
          " limits exceeded\n";
    Table t({"where", "what", "limit", "seen", "over by"}, {false, false, true, true, true});
    for (LimitCheck const& c : result.checks) {
      if (!c.over()) continue;
      bool const bytes = c.category == Category::memcpy_bytes;
      std::string const what = to_string(c.category) + " " + c.key;
      t.add({c.where, what, bytes ? format_bytes(c.limit) : std::to_string(c.limit),
             bytes ? format_bytes(c.seen) : std::to_string(c.seen),
             "+" + (bytes ? format_bytes(c.seen - c.limit) : std::to_string(c.seen - c.limit))});
    }
    out += t.render();
  }
  for (std::string const& n : result.notes) out += "  note: " + n + "\n";
  bool saturated = false;
  for (LimitCheck const& c : result.checks) saturated |= c.seen == kSaturated;
  if (saturated) out += std::string("  note: ") + kSaturatedNote + "\n";
  return out;
}

}  // namespace pbm::guard
