// Text exposition format 0.0.4, for render_text() (scrapes go through prometheus-cpp's serializer).
#pragma once

#include <pbm/exporters/samples.hpp>

#include <string>
#include <vector>

namespace pbm::exporters::detail {

std::string render(std::vector<MetricFamily> const& families);

}  // namespace pbm::exporters::detail
