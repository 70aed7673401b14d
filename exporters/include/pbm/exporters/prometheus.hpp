// Prometheus exporter: serves collect() (pbm/exporters/samples.hpp) as the text exposition format
// over HTTP, pull model. Values are read at scrape time; a scrape makes no CUDA call.
//
//   pbm::exporters::PrometheusExporter exporter;          // 127.0.0.1:9464 or $PBM_PROMETHEUS_ADDR
//   if (!exporter.serving()) std::fprintf(stderr, "%s\n", exporter.status().error.c_str());
//
// Run-time failures (port in use, no permission, built without prometheus-cpp) never throw and never
// stop the program: serving() is false and status().error says why (also logged once to stderr).
// Thread-safety: const member functions are thread-safe; construction and destruction are not
// concurrent with other calls on the same object. Scrapes run on the exporter's own threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace pbm::exporters {

inline constexpr char const* kDefaultPrometheusAddress = "127.0.0.1:9464";

struct PrometheusConfig {
  /// "host:port", "[v6]:port" or "port" (host 127.0.0.1). Empty: env PBM_PROMETHEUS_ADDR, else
  /// kDefaultPrometheusAddress. Port 0 picks a free port (see PrometheusStatus::port).
  std::string address;
  /// HTTP path of the metrics.
  std::string path{"/metrics"};
  /// HTTP worker threads (concurrent scrapes served at once; more wait in the accept queue).
  std::size_t threads{2};
  /// Basic authentication. Both empty: env PBM_PROMETHEUS_BASIC_AUTH ("user:password"), else none.
  std::string basic_auth_user;
  std::string basic_auth_password;
};

struct PrometheusStatus {
  bool serving{false};
  std::string address;  ///< the address asked for, after env and defaults
  std::string host;     ///< host part of address
  int port{0};          ///< the port listened on (the picked one for port 0); 0 when not serving
  std::string url;      ///< http://host:port/path when serving
  bool basic_auth{false};
  std::string error;    ///< why not serving (empty when serving)
};

class PrometheusExporter {
 public:
  /// Starts listening. Throws std::invalid_argument (with the bad value) for a malformed address,
  /// an empty or relative path, zero threads, or a user without password; any other failure is
  /// reported by status().
  explicit PrometheusExporter(PrometheusConfig config = {});
  ~PrometheusExporter();  ///< stops listening; waits for scrapes in flight
  PrometheusExporter(PrometheusExporter&&) noexcept;
  PrometheusExporter& operator=(PrometheusExporter&&) noexcept;
  PrometheusExporter(PrometheusExporter const&) = delete;
  PrometheusExporter& operator=(PrometheusExporter const&) = delete;

  bool serving() const noexcept;
  int port() const noexcept;
  PrometheusStatus const& status() const noexcept;

  /// True when pbm was built with prometheus-cpp (PBM_WITH_PROMETHEUS).
  static bool available() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The text exposition of collect() as a scrape would return it (format 0.0.4). For logs and
/// tests; needs no server. Thread-safe.
std::string render_text();

/// For programs that want metrics from the environment alone: when PBM_PROMETHEUS_ADDR is set,
/// starts one process-wide exporter (kept until exit) and returns its status; otherwise returns a
/// status with serving false and error "PBM_PROMETHEUS_ADDR not set". When PBM_REPORT_JSON is set,
/// also arranges the JSON report at exit (pbm/exporters/json_report.hpp). Idempotent.
PrometheusStatus serve_from_env();

}  // namespace pbm::exporters
