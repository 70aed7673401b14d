#include "summary.hpp"

#include "table.hpp"

#include <cstdint>
#include <algorithm>
#include <map>
#include <tuple>

namespace pbm::guard {
namespace {

struct Tally {
  std::uint64_t count{0};
  std::uint64_t unexpected{0};
  std::uint64_t bytes{0};
  void add(std::uint64_t n, std::uint64_t b, bool expected) noexcept {
    count = saturating_add(count, n);
    bytes = saturating_add(bytes, b);
    if (!expected) unexpected = saturating_add(unexpected, n);
  }
  bool saturated() const noexcept { return count == kSaturated || unexpected == kSaturated || bytes == kSaturated; }
};

std::string process_line(ProcessReport const& r) {
  std::string line = "pid " + std::to_string(r.pid);
  std::string who = r.argv0.empty() ? "?" : r.argv0;
  if (!r.rank.empty()) who += ", rank " + r.rank;
  if (!r.hostname.empty()) who += ", " + r.hostname;
  line += " (" + who + "): ";
  if (r.telemetry_attached) {
    line += "detection attached, mode " + (r.telemetry_mode.empty() ? std::string("?") : r.telemetry_mode);
  } else {
    line += "detection NOT attached: " + (r.telemetry_reason.empty() ? std::string("no reason given") : r.telemetry_reason);
  }
  if (r.telemetry_dropped_records > 0)
    line += "; " + std::to_string(r.telemetry_dropped_records) + " CUPTI records dropped (counts are low)";
  return line;
}

// "none" and "other" last, named ranges alphabetically first.
int range_rank(std::string const& r) { return r == "none" ? 1 : r == "other" ? 2 : 0; }
bool range_less(std::string const& a, std::string const& b) {
  return std::make_tuple(range_rank(a), a) < std::make_tuple(range_rank(b), b);
}

}  // namespace

std::string format_summary(std::vector<ProcessReport> const& reports, std::size_t top_sites) {
  std::string out;
  out += "pbm-guard: " + std::to_string(reports.size()) + (reports.size() == 1 ? " process" : " processes") +
         " reported\n";
  for (ProcessReport const& r : reports) out += "  " + process_line(r) + "\n";
  Observations const all = merge(reports);

  // memcpys
  std::map<std::pair<std::string, std::string>, Tally> by_kind;                  // direction, memory
  std::map<std::tuple<std::string, std::string, std::string>, Tally> by_range;   // range, direction, memory
  Tally copies;
  for (auto const& [k, c] : all.memcpy) {
    for (Tally* t : {&by_kind[{k.direction, k.memory}], &by_range[{k.range, k.direction, k.memory}], &copies})
      t->add(c.count, c.bytes, k.expected);
  }
  out += "\nmemcpys: " + std::to_string(copies.count) + " (" + std::to_string(copies.unexpected) + " unexpected), " +
         format_bytes(copies.bytes) + "\n";
  if (copies.count > 0) {
    Table kinds({"direction", "memory", "count", "unexpected", "bytes"}, {false, false, true, true, true});
    for (auto const& [k, t] : by_kind)
      kinds.add({k.first, k.second, std::to_string(t.count), std::to_string(t.unexpected), format_bytes(t.bytes)});
    out += kinds.render();
    out += "  by NVTX range:\n";
    std::vector<std::pair<std::tuple<std::string, std::string, std::string>, Tally>> rows(by_range.begin(), by_range.end());
    std::stable_sort(rows.begin(), rows.end(), [](auto const& a, auto const& b) {
      return range_less(std::get<0>(a.first), std::get<0>(b.first));
    });
    Table ranges({"range", "direction", "memory", "count", "unexpected", "bytes"},
                 {false, false, false, true, true, true});
    for (auto const& [k, t] : rows)
      ranges.add({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::to_string(t.count),
                  std::to_string(t.unexpected), format_bytes(t.bytes)});
    out += ranges.render("    ");
  }

  // syncs
  std::map<std::string, Tally> by_api;
  std::map<std::pair<std::string, std::string>, Tally> sync_by_range;
  Tally blocking, polls;
  for (auto const& [k, n] : all.sync) {
    Tally& kind = sync_api_blocks_host(k.api) ? blocking : polls;
    for (Tally* t : {&by_api[k.api], &sync_by_range[{k.range, k.api}], &kind}) t->add(n, 0, k.expected);
  }
  out += "\nsyncs: " + std::to_string(blocking.count) + " blocking the host (" + std::to_string(blocking.unexpected) +
         " unexpected), " + std::to_string(polls.count) + " non-blocking (queries, stream waits)\n";
  if (!by_api.empty()) {
    Table apis({"api", "count", "unexpected"}, {false, true, true});
    for (auto const& [api, t] : by_api) apis.add({api, std::to_string(t.count), std::to_string(t.unexpected)});
    out += apis.render();
    out += "  by NVTX range:\n";
    std::vector<std::pair<std::pair<std::string, std::string>, Tally>> rows(sync_by_range.begin(), sync_by_range.end());
    std::stable_sort(rows.begin(), rows.end(),
                     [](auto const& a, auto const& b) { return range_less(a.first.first, b.first.first); });
    Table ranges({"range", "api", "count", "unexpected"}, {false, false, true, true});
    for (auto const& [k, t] : rows)
      ranges.add({k.first, k.second, std::to_string(t.count), std::to_string(t.unexpected)});
    out += ranges.render("    ");
  }

  bool folded = false;
  for (auto const& [k, c] : all.memcpy) folded |= k.range == "other";
  for (auto const& [k, n] : all.sync) folded |= k.range == "other";
  if (folded)
    out += "\nnote: range \"other\" holds NVTX range names past telemetry's label cap (32 distinct names)\n";
  // The totals are at least every row, so a saturated row shows in one of them.
  if (copies.saturated() || blocking.saturated() || polls.saturated())
    out += std::string("\nnote: ") + kSaturatedNote + "\n";

  // sites
  std::vector<Site> sites;
  for (ProcessReport const& r : reports) sites.insert(sites.end(), r.sites.begin(), r.sites.end());
  if (!sites.empty() && top_sites > 0) {
    std::stable_sort(sites.begin(), sites.end(), [](Site const& a, Site const& b) { return a.count > b.count; });
    if (sites.size() > top_sites) sites.resize(top_sites);
    out += "\ntop sites:\n";
    Table t({"count", "rule", "range", "where"}, {true, false, false, false});
    for (Site const& s : sites) t.add({std::to_string(s.count), s.rule, s.range, s.where});
    out += t.render();
  }
  return out;
}

}  // namespace pbm::guard
