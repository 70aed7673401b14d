#include "ci_report.hpp"

#include <algorithm>
#include <cstdint>

namespace pbm::guard {
namespace {

constexpr std::size_t kTopSites = 5;

bool allowed_in_xml(std::uint32_t cp) noexcept {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

/// Length of the UTF-8 sequence at `text[i]` and its code point; 0 when it is not valid UTF-8
/// (a stray continuation byte, a truncated or overlong sequence, a value past U+10FFFF).
std::size_t decode_utf8(std::string_view text, std::size_t i, std::uint32_t* cp) noexcept {
  auto const b = static_cast<unsigned char>(text[i]);
  std::size_t len = 0;
  std::uint32_t min = 0;
  if (b < 0x80) {
    *cp = b;
    return 1;
  } else if (b >= 0xC2 && b <= 0xDF) {
    len = 2, *cp = b & 0x1F, min = 0x80;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, *cp = b & 0x0F, min = 0x800;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, *cp = b & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    auto const c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (c & 0x3F);
  }
  return *cp < min || *cp > 0x10FFFF ? 0 : len;
}

/// The sites that explain a limit: of its range (any range for an overall limit) and of its kind
/// (memcpy rules for memcpy limits, sync rules for sync limits), most frequent first.
std::vector<Site> sites_for(LimitCheck const& c, std::vector<Site> const& all) {
  std::string const family = c.category == Category::sync ? "sync" : "memcpy";
  std::vector<Site> out;
  for (Site const& s : all)
    if (s.rule.rfind(family, 0) == 0 && (c.range.empty() || s.range == c.range)) out.push_back(s);
  std::stable_sort(out.begin(), out.end(), [](Site const& a, Site const& b) { return a.count > b.count; });
  if (out.size() > kTopSites) out.resize(kTopSites);
  return out;
}

/// "20 x memcpy_dtoh in range train_step" and the stack, one frame a line ("where" is the API,
/// then " <- caller" frames when the program ran with --mode warn).
std::string site_text(Site const& s, std::string const& indent) {
  std::string out = indent + std::to_string(s.count) + " x " + s.rule + " in range " + s.range + "\n";
  std::string_view where = s.where;
  for (std::size_t at; (at = where.find(" <- ")) != std::string_view::npos; where.remove_prefix(at + 1))
    out += indent + "    " + std::string(where.substr(0, at)) + "\n";
  out += indent + "    " + std::string(where) + "\n";
  return out;
}

std::string verdict_line(CiReport const& r) {
  if (!r.checked) return r.exit.reason;
  std::size_t const over = r.check.over_count();
  std::string const n = std::to_string(r.check.checks.size());
  return over == 0 ? "within budget (" + n + " limits checked)"
                   : "OVER BUDGET: " + std::to_string(over) + " of " + n + " limits exceeded";
}

std::string file_name(std::string const& path) {
  std::size_t const slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string stem(std::string const& path) {
  std::string const name = file_name(path);
  std::size_t const dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

/// Text for a Markdown table cell: `|` would end the cell, a line break the row; other control
/// characters (a terminal's escapes in a frame) are dropped.
std::string md_cell(std::string const& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

std::string md_code(std::string text) {
  std::replace(text.begin(), text.end(), '`', '\'');
  return "`" + md_cell(text) + "`";
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cp = 0;
    std::size_t const len = decode_utf8(text, i, &cp);
    if (len == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    if (allowed_in_xml(cp)) {
      switch (cp) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out.append(text.substr(i, len));
      }
    }
    i += len;
  }
  return out;
}

std::string limit_name(LimitCheck const& c) {
  std::string const key = to_string(c.category) + "." + c.key;
  return c.range.empty() ? key : "ranges." + c.range + "." + key;
}

std::string junit_xml(CiReport const& r) {
  std::string const suite = "pbm-guard." + stem(r.budget_file);
  std::string cases;
  std::size_t tests = 0, failures = 0, errors = 0, skipped = 0;
  auto testcase = [&](std::string const& name, std::string const& body) {
    ++tests;
    cases += "    <testcase name=\"" + xml_escape(name) + "\" classname=\"" + xml_escape(suite) + "\" time=\"0\"";
    cases += body.empty() ? "/>\n" : ">\n" + body + "    </testcase>\n";
  };
  auto problem = [](char const* element, std::string const& message, std::string const& type,
                    std::string const& text) {
    return std::string("      <") + element + " message=\"" + xml_escape(message) + "\" type=\"" + xml_escape(type) +
           "\">" + xml_escape(text) + "</" + element + ">\n";
  };

  if (r.program_status == kExitSkipped) {
    ++skipped;
    testcase("program", "      <skipped message=\"" + xml_escape(r.exit.reason) + "\"/>\n");
  } else if (r.program_status != 0) {
    ++failures;
    testcase("program", problem("failure", r.exit.reason, "program failed", r.exit.reason + "\n"));
  } else if (r.exit.code == kExitNoMeasurement) {
    ++errors;
    testcase("measurement", problem("error", r.exit.reason, "nothing measured", r.exit.reason + "\n"));
  }
  if (r.checked) {
    for (LimitCheck const& c : r.check.checks) {
      if (!c.over()) {
        testcase(limit_name(c), "");
        continue;
      }
      ++failures;
      std::string const message = "limit " + std::to_string(c.limit) + ", seen " + std::to_string(c.seen);
      std::string text = c.where + ", " + to_string(c.category) + " " + c.key + ": " + message + ", over by " +
                         std::to_string(c.seen - c.limit) + "\n";
      std::vector<Site> const sites = sites_for(c, r.sites);
      if (sites.empty()) {
        text += "no call sites recorded for this limit (--mode warn records the callers)\n";
      } else {
        text += "top sites:\n";
        for (Site const& s : sites) text += site_text(s, "  ");
      }
      testcase(limit_name(c), problem("failure", message, "over budget", text));
    }
  }

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  std::string const counts = " tests=\"" + std::to_string(tests) + "\" failures=\"" + std::to_string(failures) +
                             "\" errors=\"" + std::to_string(errors) + "\" skipped=\"" + std::to_string(skipped) +
                             "\" time=\"0\"";
  out += "<testsuites name=\"pbm-guard\"" + counts + ">\n";
  out += "  <testsuite name=\"" + xml_escape(suite) + "\"" + counts + ">\n";
  out += cases;
  std::string log = "pbm-guard: " + verdict_line(r) + "\n";
  if (r.exit.code != kExitOk) log += "pbm-guard: exit " + std::to_string(r.exit.code) + ": " + r.exit.reason + "\n";
  out += "    <system-out>" + xml_escape(log) + "</system-out>\n";
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string markdown_summary(CiReport const& r) {
  std::string out = "### pbm-guard: " + md_cell(verdict_line(r)) + " (" + md_code(file_name(r.budget_file)) + ")\n\n";
  if (r.exit.code != kExitOk)
    out += "**exit " + std::to_string(r.exit.code) + "**: " + md_cell(r.exit.reason) + "\n\n";
  if (r.checked && !r.check.checks.empty()) {
    out += "| limit | budget | seen | verdict |\n|---|---:|---:|---|\n";
    for (LimitCheck const& c : r.check.checks)
      out += "| " + md_code(limit_name(c)) + " | " + std::to_string(c.limit) + " | " + std::to_string(c.seen) + " | " +
             (c.over() ? "over by " + std::to_string(c.seen - c.limit) : std::string("ok")) + " |\n";
    out += "\n";
  }
  std::vector<Site> sites = r.sites;
  std::stable_sort(sites.begin(), sites.end(), [](Site const& a, Site const& b) { return a.count > b.count; });
  if (sites.size() > 2 * kTopSites) sites.resize(2 * kTopSites);
  if (!sites.empty()) {
    out += "Top sites:\n\n| count | rule | range | where |\n|---:|---|---|---|\n";
    for (Site const& s : sites)
      out += "| " + std::to_string(s.count) + " | " + md_cell(s.rule) + " | " + md_cell(s.range) + " | " +
             md_code(s.where) + " |\n";
    out += "\n";
  }
  return out;
}

}  // namespace pbm::guard
