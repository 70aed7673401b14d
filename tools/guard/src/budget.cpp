// Budget files (schema pbm.budget/1): parsing with messages that name line and field, writing,
// and baselines.
#include "budget.hpp"

#include "json_text.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pbm::guard {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using Path = std::vector<std::string>;

constexpr char const* kBudgetSchema = "pbm.budget/1";

bool contains(std::vector<std::string> const& v, std::string const& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(std::vector<std::string> const& v, char const* sep = ", ") {
  std::string out;
  for (std::string const& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string type_name(json const& v) {
  if (v.is_number_float()) return "a fractional number";
  if (v.is_number_integer() && !v.is_number_unsigned()) return "a negative number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "a number";
}

class Parser {
 public:
  Parser(std::string const& text, std::string source) : text_(text), source_(std::move(source)) {}

  Budget parse() {
    json doc;
    try {
      doc = parse_json_unique_keys(text_);
    } catch (DuplicateKeyError const& e) {
      std::string where = source_;
      if (auto p = e.position()) where += ":" + std::to_string(p->line) + ":" + std::to_string(p->column);
      throw BudgetError(where + ": " + e.what());
    } catch (json::parse_error const& e) {
      TextPosition const p = position_of(text_, e.byte == 0 ? 0 : e.byte - 1);
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error while ..."
      if (auto colon = what.find(": "); colon != std::string::npos) what = what.substr(colon + 2);
      throw BudgetError(source_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                        ": not valid JSON: " + what);
    } catch (json::exception const& e) {
      // Not a syntax error but still unreadable: a number beyond a double (out_of_range.406, 1e400).
      std::string what = e.what();
      if (auto bracket = what.find("] "); bracket != std::string::npos) what = what.substr(bracket + 2);
      throw BudgetError(source_ + ": not valid JSON: " + what);
    }
    if (!doc.is_object()) fail({}, "a budget is a JSON object, got " + type_name(doc));
    Budget b;
    for (auto const& [key, value] : doc.items()) {
      Path const at{key};
      if (key == "schema") {
        if (!value.is_string() || value.get<std::string>() != kBudgetSchema)
          fail(at, std::string("must be \"") + kBudgetSchema + "\"");
      } else if (key == "description") {
        if (!value.is_string()) fail(at, "must be a string, got " + type_name(value));
        b.description = value.get<std::string>();
      } else if (key == "events") {
        std::string const v = value.is_string() ? value.get<std::string>() : "";
        if (v == "all") {
          b.events = Events::all;
        } else if (v == "unexpected") {
          b.events = Events::unexpected;
        } else {
          fail(at, "must be \"all\" or \"unexpected\"");
        }
      } else if (key == "limits") {
        b.overall = limit_set(value, at);
      } else if (key == "ranges") {
        if (!value.is_object()) fail(at, "must be an object of NVTX range name -> limits, got " + type_name(value));
        for (auto const& [range, limits] : value.items()) {
          if (range.empty()) fail({key, range}, "empty range name (use \"none\" for outside any range)");
          b.ranges[range] = limit_set(limits, {key, range});
        }
      } else {
        fail(at, "unknown key (expected schema, description, events, limits, ranges)");
      }
    }
    return b;
  }

 private:
  [[noreturn]] void fail(Path const& path, std::string const& what) const {
    std::string where = source_;
    if (auto p = locate_key(text_, path)) where += ":" + std::to_string(p->line) + ":" + std::to_string(p->column);
    throw BudgetError(where + ": " + (path.empty() ? std::string() : "field " + format_path(path) + ": ") + what);
  }

  LimitSet limit_set(json const& v, Path const& at) const {
    if (!v.is_object()) fail(at, "must be an object with memcpy, memcpy_bytes or sync, got " + type_name(v));
    LimitSet set;
    for (auto const& [key, value] : v.items()) {
      Path sub = at;
      sub.push_back(key);
      if (key == "memcpy") {
        set.memcpy = limits(value, sub, /*sync=*/false);
      } else if (key == "memcpy_bytes") {
        set.memcpy_bytes = limits(value, sub, /*sync=*/false);
      } else if (key == "sync") {
        set.sync = limits(value, sub, /*sync=*/true);
      } else {
        fail(sub, "unknown key (expected memcpy, memcpy_bytes, sync)");
      }
    }
    return set;
  }

  std::map<std::string, std::uint64_t> limits(json const& v, Path const& at, bool sync) const {
    if (!v.is_object()) fail(at, "must be an object of key -> limit, got " + type_name(v));
    std::map<std::string, std::uint64_t> out;
    for (auto const& [key, value] : v.items()) {
      Path sub = at;
      sub.push_back(key);
      if (!(sync ? valid_sync_key(key) : valid_memcpy_key(key))) {
        fail(sub, sync ? "unknown key (expected total or an API: " + join(known_sync_apis()) + ")"
                       : "unknown key (expected total, a direction (" + join(known_directions()) +
                             "), a memory kind (" + join(known_memory_kinds()) +
                             ") or direction/memory such as DtoH/pageable)");
      }
      if (!value.is_number_unsigned())
        fail(sub, "a limit is a non-negative integer, got " + type_name(value));
      out[key] = value.get<std::uint64_t>();
    }
    return out;
  }

  static bool valid_memcpy_key(std::string const& key) {
    if (key == "total" || contains(known_directions(), key) || contains(known_memory_kinds(), key)) return true;
    auto slash = key.find('/');
    return slash != std::string::npos && contains(known_directions(), key.substr(0, slash)) &&
           contains(known_memory_kinds(), key.substr(slash + 1));
  }
  static bool valid_sync_key(std::string const& key) { return key == "total" || contains(known_sync_apis(), key); }

  std::string const& text_;
  std::string source_;
};

ordered_json limit_set_json(LimitSet const& s) {
  ordered_json out = ordered_json::object();
  auto put = [&out](char const* name, std::map<std::string, std::uint64_t> const& m) {
    if (m.empty()) return;
    ordered_json o = ordered_json::object();
    if (auto t = m.find("total"); t != m.end()) o["total"] = t->second;  // total first: easier to read
    for (auto const& [k, v] : m)
      if (k != "total") o[k] = v;
    out[name] = std::move(o);
  };
  put("memcpy", s.memcpy);
  put("memcpy_bytes", s.memcpy_bytes);
  put("sync", s.sync);
  return out;
}

}  // namespace

Budget parse_budget(std::string const& text, std::string const& source) { return Parser(text, source).parse(); }

Budget load_budget(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BudgetError(path + ": cannot read the budget file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_budget(text.str(), path);
}

std::string budget_json(Budget const& b) {
  ordered_json doc;
  doc["schema"] = kBudgetSchema;
  if (!b.description.empty()) doc["description"] = b.description;
  doc["events"] = b.events == Events::all ? "all" : "unexpected";
  doc["limits"] = limit_set_json(b.overall);
  ordered_json ranges = ordered_json::object();
  for (auto const& [name, set] : b.ranges) ranges[name] = limit_set_json(set);
  doc["ranges"] = std::move(ranges);
  return doc.dump(2) + "\n";
}

std::uint64_t Slack::apply(std::uint64_t seen) const noexcept {
  if (seen == 0) return 0;
  // Saturating: a count near 2^64 must not wrap to a small limit (nor convert a double >= 2^64).
  double const scaled = std::ceil(static_cast<double>(seen) * (1.0 + percent / 100.0) - 1e-9);
  std::uint64_t const grown =
      scaled >= 18446744073709551616.0 ? kSaturated : std::max(seen, static_cast<std::uint64_t>(scaled));
  return saturating_add(grown, absolute);
}

Slack parse_slack(std::string const& text) {
  Slack s;
  std::string t = text;
  bool const percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  bool ok = !t.empty() && t.find_first_not_of("0123456789.") == std::string::npos &&
            (percent || t.find('.') == std::string::npos);
  if (ok) {
    char* end = nullptr;
    double const v = std::strtod(t.c_str(), &end);
    ok = end != nullptr && *end == '\0' && v >= 0 && v < 1e9;
    if (ok && percent) s.percent = v;
    if (ok && !percent) s.absolute = static_cast<std::uint64_t>(v);
  }
  if (!ok) throw std::invalid_argument("--slack: '" + text + "' is not a count (3) or a percentage (10%)");
  return s;
}

Budget baseline_budget(Observations const& seen, Events events, Slack slack, std::string description,
                       std::vector<std::string> const& zero_ranges) {
  Budget b;
  b.description = std::move(description);
  b.events = events;
  auto counts = [events](bool expected) { return events == Events::all || !expected; };
  for (std::string const& r : zero_ranges) {
    b.ranges[r].memcpy["total"] = 0;
    b.ranges[r].sync["total"] = 0;
  }
  auto add = [](std::uint64_t& limit, std::uint64_t n) { limit = saturating_add(limit, n); };
  for (auto const& [k, c] : seen.memcpy) {
    if (!counts(k.expected)) continue;
    add(b.overall.memcpy["total"], c.count);
    add(b.overall.memcpy[k.direction], c.count);
    add(b.overall.memcpy[k.memory], c.count);
    add(b.overall.memcpy[k.direction + "/" + k.memory], c.count);
    LimitSet& r = b.ranges[k.range];
    add(r.memcpy["total"], c.count);
    // "unknown" is a direction and a memory kind, and as a key it counts both: no per-range limit.
    if (k.direction != "unknown") add(r.memcpy[k.direction], c.count);
    r.sync.emplace("total", 0);
  }
  for (auto const& [k, n] : seen.sync) {
    if (!counts(k.expected)) continue;
    bool const blocks = sync_api_blocks_host(k.api);
    if (blocks) add(b.overall.sync["total"], n);
    add(b.overall.sync[k.api], n);
    LimitSet& r = b.ranges[k.range];
    r.memcpy.emplace("total", 0);
    if (blocks) add(r.sync["total"], n);
  }
  b.overall.memcpy.emplace("total", 0);
  b.overall.sync.emplace("total", 0);
  auto loosen = [&slack](std::map<std::string, std::uint64_t>& m) {
    for (auto& [k, v] : m) v = slack.apply(v);
  };
  loosen(b.overall.memcpy);
  loosen(b.overall.sync);
  for (auto& [name, set] : b.ranges) {
    loosen(set.memcpy);
    loosen(set.sync);
  }
  return b;
}

}  // namespace pbm::guard
