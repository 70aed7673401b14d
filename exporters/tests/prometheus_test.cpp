// The Prometheus exporter over real HTTP on loopback.
#include "http_get.hpp"

#include <pbm/exporters/prometheus.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;
using pe::testing::http_get;

namespace {

pe::PrometheusConfig on(std::string address) {
  pe::PrometheusConfig c;
  c.address = std::move(address);
  return c;
}

class PrometheusExporter : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!pe::PrometheusExporter::available()) GTEST_SKIP() << "built without prometheus-cpp (PBM_WITH_PROMETHEUS)";
    ::unsetenv("PBM_PROMETHEUS_ADDR");
    ::unsetenv("PBM_PROMETHEUS_BASIC_AUTH");
  }
};

}  // namespace

TEST_F(PrometheusExporter, PortZeroPicksAFreePortAndServesMetrics) {
  pe::PrometheusExporter exporter(on("127.0.0.1:0"));
  ASSERT_TRUE(exporter.serving()) << exporter.status().error;
  EXPECT_GT(exporter.port(), 0);
  EXPECT_EQ(exporter.status().url, "http://127.0.0.1:" + std::to_string(exporter.port()) + "/metrics");
  auto const r = http_get(exporter.port());
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE pbm_build_info gauge"), std::string::npos);
  EXPECT_NE(r.body.find("pbm_violations_total{rule=\"sync_unexpected\"}"), std::string::npos);
  EXPECT_NE(r.headers.find("Content-Type: text/plain"), std::string::npos) << r.headers;
}

TEST_F(PrometheusExporter, ScrapeReadsCountersNow) {
  pe::PrometheusExporter exporter(on("0"));
  ASSERT_TRUE(exporter.serving()) << exporter.status().error;
  auto value = [&] {
    std::string const body = http_get(exporter.port()).body;
    std::string const key = "pbm_violations_total{rule=\"memcpy_forbidden\"} ";
    std::size_t const at = body.find(key);
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + key.size()));
  };
  double const before = value();
  ASSERT_GE(before, 0);
  pt::counters().add_violation(pt::Rule::memcpy_forbidden);
  pt::counters().add_violation(pt::Rule::memcpy_forbidden);
  EXPECT_EQ(value(), before + 2);
}

TEST_F(PrometheusExporter, PortInUseIsAClearErrorAndTheProgramGoesOn) {
  pe::PrometheusExporter first(on("127.0.0.1:0"));
  ASSERT_TRUE(first.serving());
  std::string const taken = "127.0.0.1:" + std::to_string(first.port());
  pe::PrometheusExporter second(on(taken));  // must not throw or abort
  EXPECT_FALSE(second.serving());
  EXPECT_EQ(second.port(), 0);
  EXPECT_NE(second.status().error.find("cannot listen on " + taken), std::string::npos) << second.status().error;
  EXPECT_NE(second.status().error.find("Address already in use"), std::string::npos) << second.status().error;
  EXPECT_EQ(http_get(first.port()).status, 200);  // the first one is unharmed
}

TEST_F(PrometheusExporter, AddressFromEnvironmentAndLoopbackByDefault) {
  ::setenv("PBM_PROMETHEUS_ADDR", "127.0.0.1:0", 1);
  pe::PrometheusExporter from_env;
  ::unsetenv("PBM_PROMETHEUS_ADDR");
  EXPECT_EQ(from_env.status().address, "127.0.0.1:0");
  EXPECT_TRUE(from_env.serving()) << from_env.status().error;

  pe::PrometheusExporter by_port(on("0"));
  EXPECT_EQ(by_port.status().host, "127.0.0.1");
  pe::PrometheusExporter empty_host(on(":0"));
  EXPECT_EQ(empty_host.status().host, "127.0.0.1");

  pe::PrometheusExporter defaults;  // may find 9464 taken: either way, loopback and no throw
  EXPECT_EQ(defaults.status().address, pe::kDefaultPrometheusAddress);
  EXPECT_EQ(defaults.status().host, "127.0.0.1");
}

TEST_F(PrometheusExporter, MalformedConfigurationThrowsWithTheValue) {
  for (char const* bad : {"localhost:http", "127.0.0.1:70000", "[::1", "::1:9464", "1.2.3.4:", "a,b:1"}) {
    try {
      pe::PrometheusExporter e(on(bad));
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (std::invalid_argument const& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  pe::PrometheusConfig c = on("0");
  c.path = "metrics";
  EXPECT_THROW(pe::PrometheusExporter{c}, std::invalid_argument);
  c = on("0");
  c.basic_auth_user = "only-user";
  EXPECT_THROW(pe::PrometheusExporter{c}, std::invalid_argument);
  ::setenv("PBM_PROMETHEUS_BASIC_AUTH", "no-colon", 1);
  EXPECT_THROW(pe::PrometheusExporter{on("0")}, std::invalid_argument);
  ::unsetenv("PBM_PROMETHEUS_BASIC_AUTH");
}

TEST_F(PrometheusExporter, BasicAuth) {
  pe::PrometheusConfig c = on("127.0.0.1:0");
  c.basic_auth_user = "scraper";
  c.basic_auth_password = "s3cret";
  pe::PrometheusExporter exporter(c);
  ASSERT_TRUE(exporter.serving()) << exporter.status().error;
  EXPECT_TRUE(exporter.status().basic_auth);
  EXPECT_EQ(http_get(exporter.port()).status, 401);
  EXPECT_EQ(http_get(exporter.port(), "/metrics", "scraper:wrong").status, 401);
  EXPECT_EQ(http_get(exporter.port(), "/metrics", "scrape:s3cret").status, 401);
  auto const ok = http_get(exporter.port(), "/metrics", "scraper:s3cret");
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("pbm_build_info"), std::string::npos);
}

TEST_F(PrometheusExporter, BasicAuthFromEnvironment) {
  ::setenv("PBM_PROMETHEUS_BASIC_AUTH", "env-user:env-pass", 1);
  pe::PrometheusExporter exporter(on("0"));
  ::unsetenv("PBM_PROMETHEUS_BASIC_AUTH");
  ASSERT_TRUE(exporter.serving());
  EXPECT_EQ(http_get(exporter.port()).status, 401);
  EXPECT_EQ(http_get(exporter.port(), "/metrics", "env-user:env-pass").status, 200);
}

TEST_F(PrometheusExporter, CustomPathAndMove) {
  pe::PrometheusConfig c = on("0");
  c.path = "/pbm";
  pe::PrometheusExporter a(c);
  ASSERT_TRUE(a.serving());
  int const port = a.port();
  pe::PrometheusExporter b(std::move(a));
  EXPECT_FALSE(a.serving());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(b.port(), port);
  EXPECT_EQ(http_get(port, "/pbm").status, 200);
  EXPECT_EQ(http_get(port, "/metrics").status, 404);
}

TEST_F(PrometheusExporter, ServeFromEnvironment) {
  EXPECT_FALSE(pe::serve_from_env().serving);  // PBM_PROMETHEUS_ADDR unset
  ::setenv("PBM_PROMETHEUS_ADDR", "127.0.0.1:0", 1);
  pe::PrometheusStatus const st = pe::serve_from_env();
  ::unsetenv("PBM_PROMETHEUS_ADDR");
  ASSERT_TRUE(st.serving) << st.error;
  EXPECT_EQ(pe::serve_from_env().port, st.port);  // one process-wide exporter
  EXPECT_EQ(http_get(st.port).status, 200);
}

TEST(PrometheusExporterWithout, StubSaysWhy) {
  if (pe::PrometheusExporter::available()) GTEST_SKIP() << "built with prometheus-cpp";
  pe::PrometheusExporter e(on("0"));
  EXPECT_FALSE(e.serving());
  EXPECT_NE(e.status().error.find("PBM_WITH_PROMETHEUS"), std::string::npos);
}
