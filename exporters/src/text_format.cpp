// The Prometheus text exposition format (0.0.4) of collect(), without prometheus-cpp.
#include "text_format.hpp"

#include <pbm/exporters/prometheus.hpp>

namespace pbm::exporters::detail {

namespace {

void escape_label_value(std::string& out, std::string const& v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

}  // namespace

std::string render(std::vector<MetricFamily> const& families) {
  std::string out;
  for (MetricFamily const& f : families) {
    out += "# HELP " + f.name + " ";
    for (char c : f.help) out += (c == '\n') ? std::string("\\n") : (c == '\\') ? std::string("\\\\") : std::string(1, c);
    out += "\n# TYPE " + f.name + (f.type == Sample::Type::counter ? " counter\n" : " gauge\n");
    for (Sample const& s : f.samples) {
      out += f.name;
      if (!s.labels.empty()) {
        out += '{';
        bool first = true;
        for (auto const& [k, v] : s.labels) {
          if (!first) out += ',';
          first = false;
          out += k + "=\"";
          escape_label_value(out, v);
          out += '"';
        }
        out += '}';
      }
      out += ' ' + std::to_string(s.value) + '\n';
    }
  }
  return out;
}

}  // namespace pbm::exporters::detail

namespace pbm::exporters {

std::string render_text() { return detail::render(collect()); }

}  // namespace pbm::exporters
