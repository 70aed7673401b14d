#include "log.hpp"

#include <cstdio>
#include <mutex>
#include <set>

namespace pbm::exporters::detail {

void log_once(std::string const& line) noexcept {
  static std::mutex* const mu = new std::mutex();  // used from exit-time reports
  static std::set<std::string>* const seen = new std::set<std::string>();
  try {
    std::lock_guard<std::mutex> lock(*mu);
    if (seen->size() < 256 && seen->insert(line).second) std::fprintf(stderr, "pbm %s\n", line.c_str());
  } catch (...) {
  }
}

}  // namespace pbm::exporters::detail
