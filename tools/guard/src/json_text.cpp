#include "json_text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace pbm::guard {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Offset of the n-th (0-based) object key of a JSON text, in document order: the n-th string
/// followed by ':'. Valid JSON up to that key is assumed (the parser has read it).
std::optional<std::size_t> nth_key_offset(std::string_view text, std::size_t n) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '"') continue;
    std::size_t const start = i;
    for (++i; i < text.size() && text[i] != '"'; ++i)
      if (text[i] == '\\') ++i;
    std::size_t after = i + 1;
    while (after < text.size() && is_space(text[after])) ++after;
    if (after < text.size() && text[after] == ':' && seen++ == n) return start;
  }
  return std::nullopt;
}

std::string path_key(std::string const& key) {
  bool const plain = !key.empty() && key.find_first_of(". \t\"") == std::string::npos;
  return plain ? key : "\"" + key + "\"";
}

}  // namespace

TextPosition position_of(std::string_view text, std::size_t offset) noexcept {
  offset = std::min(offset, text.size());
  TextPosition p;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

std::optional<TextPosition> locate_key(std::string_view text, std::vector<std::string> const& path) {
  std::size_t from = 0;
  std::size_t found = std::string_view::npos;
  for (std::string const& key : path) {
    std::string const quoted = "\"" + key + "\"";
    found = std::string_view::npos;
    for (std::size_t at = text.find(quoted, from); at != std::string_view::npos; at = text.find(quoted, at + 1)) {
      std::size_t after = at + quoted.size();
      while (after < text.size() && (text[after] == ' ' || text[after] == '\t' || text[after] == '\n' || text[after] == '\r'))
        ++after;
      if (after < text.size() && text[after] == ':') {  // a key, not a string value
        found = at;
        break;
      }
    }
    if (found == std::string_view::npos) return std::nullopt;
    from = found + quoted.size();
  }
  if (found == std::string_view::npos) return std::nullopt;
  return position_of(text, found);
}

std::string format_path(std::vector<std::string> const& path) {
  std::string out;
  for (std::string const& key : path) {
    if (!out.empty()) out += '.';
    out += path_key(key);
  }
  return out.empty() ? "(top level)" : out;
}

nlohmann::json parse_json_unique_keys(std::string const& text) {
  using nlohmann::json;
  // One level per open object or array: its keys so far (key -> ordinal among all keys of the
  // text, to find both occurrences afterwards) or its element count.
  struct Level {
    bool object{false};
    std::map<std::string, std::size_t> keys;
    std::string key;  ///< object: the member being read
    std::size_t elements{0};
  };
  std::vector<Level> open;
  std::size_t ordinal = 0;
  std::optional<DuplicateKeyError> pending;
  auto element = [&open] {
    if (!open.empty() && !open.back().object) ++open.back().elements;
  };
  json::parser_callback_t const cb = [&](int, json::parse_event_t event, json& parsed) {
    // Thrown at the event after the key: the parser reports "key" before it has read the ':', and
    // a syntax error there is the better message.
    if (pending) throw *pending;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        element();
        open.push_back({});
        open.back().object = event == json::parse_event_t::object_start;
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        open.pop_back();
        break;
      case json::parse_event_t::value:
        element();
        break;
      case json::parse_event_t::key: {
        Level& level = open.back();
        level.key = parsed.get<std::string>();
        std::size_t const at = ordinal++;
        auto [first, inserted] = level.keys.emplace(level.key, at);
        if (inserted) break;
        std::string path;
        for (Level const& l : open)
          path += l.object ? (path.empty() ? "" : ".") + path_key(l.key) : "[" + std::to_string(l.elements - 1) + "]";
        std::string what = "field " + path + ": duplicate key \"" + level.key + "\"";
        std::optional<TextPosition> second;
        if (auto o = nth_key_offset(text, first->second)) {
          TextPosition const p = position_of(text, *o);
          what += " (first at " + std::to_string(p.line) + ":" + std::to_string(p.column) + ")";
        }
        if (auto o = nth_key_offset(text, at)) second = position_of(text, *o);
        pending.emplace(what, second);
        break;
      }
    }
    return true;
  };
  json doc = json::parse(text, cb);
  if (pending) throw *pending;  // cannot happen: a value follows every key
  return doc;
}

}  // namespace pbm::guard
