#include "json_text.hpp"

#include <algorithm>

namespace pbm::guard {

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
    bool const plain = !key.empty() && key.find_first_of(". \t\"") == std::string::npos;
    out += plain ? key : "\"" + key + "\"";
  }
  return out.empty() ? "(top level)" : out;
}

}  // namespace pbm::guard
