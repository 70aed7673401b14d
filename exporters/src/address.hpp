// Listen address parsing and PBM_PROMETHEUS_* environment, shared by the real exporter and the
// stub built without prometheus-cpp.
#pragma once

#include <pbm/exporters/prometheus.hpp>

#include <string>

namespace pbm::exporters::detail {

struct ListenAddress {
  std::string host;  ///< "127.0.0.1", "0.0.0.0", "[::1]" (brackets kept for civetweb)
  int port{0};
};

/// "host:port", "[v6]:port" or "port". Throws std::invalid_argument naming the bad value.
ListenAddress parse_address(std::string const& text);

/// Applies env and defaults to `config` (address, basic auth) and validates it; throws
/// std::invalid_argument for a bad value.
PrometheusConfig resolve(PrometheusConfig config);

}  // namespace pbm::exporters::detail
