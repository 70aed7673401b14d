// Where things are in a JSON text, for error messages a person can act on: nlohmann reports a byte
// offset for syntax errors and nothing for semantic ones, so both are turned into line:column here.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::guard {

struct TextPosition {
  std::size_t line{1};    ///< 1-based
  std::size_t column{1};  ///< 1-based, in bytes
};

/// Position of the byte at 0-based `offset` (clamped to the text).
TextPosition position_of(std::string_view text, std::size_t offset) noexcept;

/// Best-effort position of the object key at `path` (e.g. {"ranges", "train_step", "memcpy"}):
/// each key is searched for as `"key"` followed by `:` after the previous one. Empty when a key is
/// not found (the caller then names the field only).
std::optional<TextPosition> locate_key(std::string_view text, std::vector<std::string> const& path);

/// "a.b.c" for error messages (keys with dots or spaces are quoted).
std::string format_path(std::vector<std::string> const& path);

}  // namespace pbm::guard
