// Where things are in a JSON text, for error messages a person can act on: nlohmann reports a byte
// offset for syntax errors and nothing for semantic ones, so both are turned into line:column here.
// Also the one JSON reader of budgets and reports, which rejects duplicate keys.
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
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

/// An object with the same key twice. what(): `field PATH: duplicate key "KEY" (first at L:C)`,
/// PATH as format_path writes it, array elements as [i] (e.g. `metrics.x.samples[0].labels.range`).
class DuplicateKeyError : public std::runtime_error {
 public:
  DuplicateKeyError(std::string const& what, std::optional<TextPosition> at) : std::runtime_error(what), at_(at) {}
  /// Of the second occurrence; empty when it could not be found in the text.
  std::optional<TextPosition> position() const noexcept { return at_; }

 private:
  std::optional<TextPosition> at_;
};

/// nlohmann::json::parse, except that a key twice in one object, at any depth, throws
/// DuplicateKeyError: nlohmann keeps the last value, other readers the first, so such a file does
/// not say which it means. Otherwise throws what json::parse throws.
nlohmann::json parse_json_unique_keys(std::string const& text);

}  // namespace pbm::guard
