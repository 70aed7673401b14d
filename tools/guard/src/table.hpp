// A plain-text table: left-aligned text columns, right-aligned number columns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pbm::guard {

class Table {
 public:
  /// `right[i]` true: column i is right-aligned (numbers).
  Table(std::vector<std::string> header, std::vector<bool> right);
  void add(std::vector<std::string> row);
  bool empty() const noexcept { return rows_.empty(); }
  /// Each line starts with `indent`; ends with a newline.
  std::string render(std::string const& indent = "  ") const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// "512 B", "4.0 KiB", "1.5 MiB".
std::string format_bytes(std::uint64_t bytes);

}  // namespace pbm::guard
