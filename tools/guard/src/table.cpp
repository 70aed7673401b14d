#include "table.hpp"

#include <cstdint>
#include <algorithm>
#include <cstdio>

namespace pbm::guard {

Table::Table(std::vector<std::string> header, std::vector<bool> right)
    : header_(std::move(header)), right_(std::move(right)) {
  right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string Table::render(std::string const& indent) const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&width](std::vector<std::string> const& row) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (auto const& r : rows_) measure(r);
  std::string out;
  auto line = [&](std::vector<std::string> const& row) {
    std::string l = indent;
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string const pad(width[i] - row[i].size(), ' ');
      if (i > 0) l += "  ";
      l += right_[i] ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : "");
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(header_);
  for (auto const& r : rows_) line(r);
  return out;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  char const* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace pbm::guard
