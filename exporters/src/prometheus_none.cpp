// Built without prometheus-cpp (PBM_WITH_PROMETHEUS=OFF or not found): the API stays, nothing is
// served, and status() says why. render_text() and the JSON report still work.
#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/prometheus.hpp>

#include "address.hpp"
#include "log.hpp"

namespace pbm::exporters {

struct PrometheusExporter::Impl {
  PrometheusStatus status;
};

PrometheusExporter::PrometheusExporter(PrometheusConfig config) : impl_(std::make_unique<Impl>()) {
  config = detail::resolve(std::move(config));
  impl_->status.address = config.address;
  impl_->status.host = detail::parse_address(config.address).host;
  impl_->status.error = "pbm was built without prometheus-cpp (PBM_WITH_PROMETHEUS); no metrics endpoint";
  detail::log_once("exporter: " + impl_->status.error);
}

PrometheusExporter::~PrometheusExporter() = default;
PrometheusExporter::PrometheusExporter(PrometheusExporter&&) noexcept = default;
PrometheusExporter& PrometheusExporter::operator=(PrometheusExporter&&) noexcept = default;

bool PrometheusExporter::serving() const noexcept { return false; }
int PrometheusExporter::port() const noexcept { return 0; }
PrometheusStatus const& PrometheusExporter::status() const noexcept {
  static PrometheusStatus const moved_from{false, {}, {}, 0, {}, false, "moved from"};
  return impl_ ? impl_->status : moved_from;
}
bool PrometheusExporter::available() noexcept { return false; }

PrometheusStatus serve_from_env() {
  (void)write_json_report_at_exit();
  PrometheusStatus st;
  st.error = "pbm was built without prometheus-cpp (PBM_WITH_PROMETHEUS); no metrics endpoint";
  return st;
}

}  // namespace pbm::exporters
