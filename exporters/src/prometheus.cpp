// The exporter on prometheus-cpp: an Exposer (civetweb) serving a Collectable that converts
// collect() into prometheus::MetricFamily at every scrape.
#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/exporters/samples.hpp>

#include "address.hpp"
#include "log.hpp"

#include <pbm/registry.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace pbm::exporters {
namespace {

class Collector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    try {
      std::vector<MetricFamily> families = collect();
      out.reserve(families.size());
      for (MetricFamily& f : families) {
        prometheus::MetricFamily pf;
        pf.name = std::move(f.name);
        pf.help = std::move(f.help);
        bool const counter = f.type == Sample::Type::counter;
        pf.type = counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
        pf.metric.reserve(f.samples.size());
        for (Sample const& s : f.samples) {
          prometheus::ClientMetric m;
          m.label.reserve(s.labels.size());
          for (auto const& [k, v] : s.labels) m.label.push_back({k, v});
          (counter ? m.counter.value : m.gauge.value) = static_cast<double>(s.value);
          pf.metric.push_back(std::move(m));
        }
        out.push_back(std::move(pf));
      }
    } catch (std::exception const& e) {  // never throw into civetweb's thread
      detail::log_once(std::string("exporter: collect failed: ") + e.what());
    }
    return out;
  }
};

// Why a bind failed, in the kernel's words (civetweb only says "problem binding to port").
std::string bind_error(std::string const& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return "could not bind (host must be a numeric address)";
  int const fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  int const one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as civetweb does
  std::string why = "could not bind";
  if (::bind(fd, reinterpret_cast<sockaddr const*>(&addr), sizeof addr) != 0) why = std::strerror(errno);
  ::close(fd);
  return why;
}

bool equal_constant_time(std::string const& a, std::string const& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

}  // namespace

struct PrometheusExporter::Impl {
  PrometheusStatus status;
  std::shared_ptr<Collector> collector = std::make_shared<Collector>();
  std::unique_ptr<prometheus::Exposer> exposer;
};

PrometheusExporter::PrometheusExporter(PrometheusConfig config) : impl_(std::make_unique<Impl>()) {
  config = detail::resolve(std::move(config));
  detail::ListenAddress const where = detail::parse_address(config.address);
  PrometheusStatus& st = impl_->status;
  st.address = config.address;
  st.host = where.host;
  st.basic_auth = !config.basic_auth_user.empty();
  // Objects a scrape reads are created now, so they outlive a process-wide exporter at exit.
  (void)telemetry::counters();
  (void)pbm::mailboxes();
  std::string const listen = where.host + ":" + std::to_string(where.port);
  try {
    impl_->exposer = std::make_unique<prometheus::Exposer>(listen, config.threads);
  } catch (std::exception const& e) {
    st.error = "cannot listen on " + listen + ": " + bind_error(where.host, where.port) +
               " (the program goes on without a metrics endpoint; set PBM_PROMETHEUS_ADDR to another port, "
               "or port 0 for a free one)";
    detail::log_once("exporter: " + st.error);
    return;
  }
  if (st.basic_auth) {
    impl_->exposer->RegisterAuth(
        [user = config.basic_auth_user, password = config.basic_auth_password](std::string const& u,
                                                                                 std::string const& p) {
          return equal_constant_time(u, user) & equal_constant_time(p, password);
        },
        "pbm", config.path);
  }
  impl_->exposer->RegisterCollectable(impl_->collector, config.path);
  std::vector<int> const ports = impl_->exposer->GetListeningPorts();
  st.port = ports.empty() ? where.port : ports.front();
  st.url = "http://" + where.host + ":" + std::to_string(st.port) + config.path;
  st.serving = true;
}

PrometheusExporter::~PrometheusExporter() = default;
PrometheusExporter::PrometheusExporter(PrometheusExporter&&) noexcept = default;
PrometheusExporter& PrometheusExporter::operator=(PrometheusExporter&&) noexcept = default;

bool PrometheusExporter::serving() const noexcept { return impl_ && impl_->status.serving; }
int PrometheusExporter::port() const noexcept { return impl_ ? impl_->status.port : 0; }
PrometheusStatus const& PrometheusExporter::status() const noexcept {
  static PrometheusStatus const moved_from{false, {}, {}, 0, {}, false, "moved from"};
  return impl_ ? impl_->status : moved_from;
}
bool PrometheusExporter::available() noexcept { return true; }

PrometheusStatus serve_from_env() {
  static std::mutex mu;
  static std::unique_ptr<PrometheusExporter> exporter;
  std::lock_guard<std::mutex> lock(mu);
  (void)write_json_report_at_exit();
  if (exporter) return exporter->status();
  char const* env = std::getenv("PBM_PROMETHEUS_ADDR");
  if (env == nullptr || *env == '\0') {
    PrometheusStatus st;
    st.error = "PBM_PROMETHEUS_ADDR not set";
    return st;
  }
  PrometheusConfig config;
  config.address = env;
  try {
    exporter = std::make_unique<PrometheusExporter>(config);
  } catch (std::invalid_argument const& e) {
    PrometheusStatus st;
    st.address = env;
    st.error = e.what();
    detail::log_once(std::string("exporter: ") + e.what());
    return st;
  }
  return exporter->status();
}

}  // namespace pbm::exporters
