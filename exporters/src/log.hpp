// One stderr line per distinct message: exporters report problems without flooding a log on
// every scrape.
#pragma once

#include <string>

namespace pbm::exporters::detail {

void log_once(std::string const& line) noexcept;

}  // namespace pbm::exporters::detail
