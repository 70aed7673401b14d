// The readable summary pbm-guard prints after a run or a check: processes, memcpys by direction
// and memory kind, syncs by API, each also split by NVTX range, and the top call sites when the
// reports carry them. Thread-safety: pure functions.
#pragma once

#include "report.hpp"

#include <string>
#include <vector>

namespace pbm::guard {

std::string format_summary(std::vector<ProcessReport> const& reports, std::size_t top_sites = 10);

}  // namespace pbm::guard
