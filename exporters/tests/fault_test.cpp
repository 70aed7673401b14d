// Faults at the exporter's edges: user strings in label values (NVTX range names are whatever the
// program passed to nvtxRangePush), the listening address, and credentials that are almost right.
// Its own executable: the range names it adds to the process's counters stay out of the other
// exporter tests when a whole binary runs in one process (scripts/sanitize).
#include "http_get.hpp"

#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;

namespace {

pe::PrometheusConfig on(std::string address) {
  pe::PrometheusConfig c;
  c.address = std::move(address);
  return c;
}

bool valid_utf8(std::string const& s, std::string* where = nullptr) {
  for (std::size_t i = 0; i < s.size();) {
    auto const c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size() && !(n == 2 && c < 0xc2);
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    if (!ok) {
      if (where != nullptr) *where = s.substr(i > 40 ? i - 40 : 0, 80);
      return false;
    }
    i += n;
  }
  return true;
}

/// One sample line of the text exposition format (0.0.4): name, labels with their escapes undone,
/// and a value. False when the line is not well-formed.
bool parse_sample(std::string const& line, std::string* name, std::map<std::string, std::string>* labels) {
  auto name_char = [](char c, bool first) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
           (!first && std::isdigit(static_cast<unsigned char>(c)));
  };
  std::size_t i = 0;
  while (i < line.size() && name_char(line[i], i == 0)) ++i;
  if (i == 0) return false;
  *name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (bool first = true;; first = false) {
      if (i < line.size() && line[i] == '}' && first) break;
      std::size_t const k0 = i;
      while (i < line.size() && name_char(line[i], i == k0) && line[i] != ':') ++i;
      if (i == k0 || line.compare(i, 2, "=\"") != 0) return false;
      std::string const key = line.substr(k0, i - k0);
      i += 2;
      std::string value;
      for (; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] != '\\') {
          value += line[i];
          continue;
        }
        if (++i >= line.size()) return false;
        switch (line[i]) {
          case 'n': value += '\n'; break;
          case '\\': value += '\\'; break;
          case '"': value += '"'; break;
          default: return false;
        }
      }
      if (i >= line.size()) return false;
      ++i;  // closing quote
      (*labels)[key] = value;
      if (i < line.size() && line[i] == ',') {
        ++i;
        if (i < line.size() && line[i] == '}') break;  // a trailing comma is allowed
        continue;
      }
      if (i < line.size() && line[i] == '}') break;
      return false;
    }
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  std::string const value = line.substr(i + 1);
  if (value == "Nan" || value == "NaN" || value == "+Inf" || value == "-Inf") return true;
  return !value.empty() && value.find_first_not_of("0123456789.eE+-") == std::string::npos;
}

/// The range label values of pbm_sync_total in an exposition, or an error on the first bad line.
std::vector<std::string> sync_ranges(std::string const& text) {
  std::vector<std::string> ranges;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string name;
    std::map<std::string, std::string> labels;
    EXPECT_TRUE(parse_sample(line, &name, &labels)) << "not a sample line: " << line;
    if (name == "pbm_sync_total" && labels.count("range") != 0) ranges.push_back(labels.at("range"));
  }
  return ranges;
}

bool contains(std::vector<std::string> const& v, std::string const& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A range name with every character the text format must escape.
std::string const kAwkwardRange = "say \"hi\"\\n\nnext line\\";

/// The listening address of `port` in /proc/net/tcp (hex "0100007F" for 127.0.0.1), "" if none.
std::string ipv4_listen_address(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, state;
    if (!(fields >> sl >> local >> remote >> state)) continue;
    if (state == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, want) == 0)
      return local.substr(0, local.size() - 5);
  }
  return {};
}

/// GET /metrics with a raw Authorization header line (or none); returns the status code.
int get_with_header(int port, std::string const& header) {
  int const fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return 0;
  }
  std::string const req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n" + header + (header.empty() ? "" : "\r\n") + "\r\n";
  std::string raw;
  if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return raw.rfind("HTTP/1.", 0) == 0 && raw.size() > 12 ? std::stoi(raw.substr(9, 3)) : 0;
}

class ExporterFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("PBM_PROMETHEUS_ADDR");
    ::unsetenv("PBM_PROMETHEUS_BASIC_AUTH");
  }
  static bool serving_available() { return pe::PrometheusExporter::available(); }
};

}  // namespace

TEST_F(ExporterFaults, RangeNamesAreEscapedInTheTextFormat) {
  pt::counters().add_sync(pt::SyncApi::stream_synchronize, false, kAwkwardRange);
  std::string const text = pe::render_text();
  EXPECT_NE(text.find(R"(range="say \"hi\"\\n\nnext line\\")"), std::string::npos) << text;
  EXPECT_TRUE(contains(sync_ranges(text), kAwkwardRange)) << "the label does not read back as the range name";
}

TEST_F(ExporterFaults, RangeNamesAreEscapedInAScrape) {
  if (!serving_available()) GTEST_SKIP() << "built without prometheus-cpp";
  pt::counters().add_sync(pt::SyncApi::event_synchronize, false, kAwkwardRange);
  pe::PrometheusExporter exporter(on("127.0.0.1:0"));
  ASSERT_TRUE(exporter.serving()) << exporter.status().error;
  auto const r = pe::testing::http_get(exporter.port());
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(contains(sync_ranges(r.body), kAwkwardRange)) << r.body;
}

TEST_F(ExporterFaults, RangeNamesThatAreNotUtf8KeepTheExpositionValid) {
  // Prometheus rejects a whole scrape with "invalid UTF-8 label value" (and promtool the whole
  // text): one Latin-1 NVTX range name must not take every pbm series offline.
  pt::counters().add_sync(pt::SyncApi::stream_synchronize, false, "caf\xe9");
  pt::counters().add_sync(pt::SyncApi::stream_synchronize, false, std::string("\xff\xfe\x80 tail\0x", 9));
  std::string where;
  std::string const text = pe::render_text();
  EXPECT_TRUE(valid_utf8(text, &where)) << "render_text() is not UTF-8 near: " << where;
  if (serving_available()) {
    pe::PrometheusExporter exporter(on("127.0.0.1:0"));
    ASSERT_TRUE(exporter.serving()) << exporter.status().error;
    auto const r = pe::testing::http_get(exporter.port());
    ASSERT_EQ(r.status, 200);
    EXPECT_TRUE(valid_utf8(r.body, &where)) << "the scrape is not UTF-8 near: " << where;
  }
}

TEST_F(ExporterFaults, JsonReportIsWrittenWhatEverTheRangeNames) {
  // nlohmann::json::dump() throws on invalid UTF-8: the report must still be written (pbm-guard
  // reads it; without it the run looks like one that never reported).
  pt::counters().add_sync(pt::SyncApi::stream_synchronize, false, "caf\xe9");
  pt::counters().add_sync(pt::SyncApi::stream_synchronize, false, kAwkwardRange);
  std::string text;
  ASSERT_NO_THROW(text = pe::json_report());
  nlohmann::json doc;
  ASSERT_NO_THROW(doc = nlohmann::json::parse(text));
  bool awkward_found = false;
  for (auto const& s : doc["metrics"]["pbm_sync_total"]["samples"])
    awkward_found |= s["labels"]["range"] == kAwkwardRange;
  EXPECT_TRUE(awkward_found) << "the JSON report does not read back the range name";
  char tmpl[] = "/tmp/pbm-fault-report-XXXXXX";
  int const fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(pe::write_json_report(tmpl), "");
  std::remove(tmpl);
}

TEST_F(ExporterFaults, ListensOnLoopbackUnlessToldOtherwise) {
  if (!serving_available()) GTEST_SKIP() << "built without prometheus-cpp";
  if (!std::ifstream("/proc/net/tcp")) GTEST_SKIP() << "no /proc/net/tcp";
  for (char const* address : {"0", ":0", "127.0.0.1:0"}) {
    pe::PrometheusExporter exporter(on(address));
    ASSERT_TRUE(exporter.serving()) << exporter.status().error;
    EXPECT_EQ(ipv4_listen_address(exporter.port()), "0100007F") << address << ": the socket is not on 127.0.0.1";
  }
  ::setenv("PBM_PROMETHEUS_ADDR", "0", 1);  // the environment gives a port only: still loopback
  pe::PrometheusExporter from_env;
  ::unsetenv("PBM_PROMETHEUS_ADDR");
  ASSERT_TRUE(from_env.serving()) << from_env.status().error;
  EXPECT_EQ(ipv4_listen_address(from_env.port()), "0100007F");
  pe::PrometheusExporter open(on("0.0.0.0:0"));  // told otherwise
  ASSERT_TRUE(open.serving()) << open.status().error;
  EXPECT_EQ(ipv4_listen_address(open.port()), "00000000");
}

TEST_F(ExporterFaults, BasicAuthRejectsNearMissesAndMalformedHeaders) {
  if (!serving_available()) GTEST_SKIP() << "built without prometheus-cpp";
  pe::PrometheusConfig c = on("127.0.0.1:0");
  c.basic_auth_user = "scraper";
  c.basic_auth_password = "s3cret";
  pe::PrometheusExporter exporter(c);
  ASSERT_TRUE(exporter.serving()) << exporter.status().error;
  int const port = exporter.port();
  using pe::testing::base64;
  ASSERT_EQ(get_with_header(port, "Authorization: Basic " + base64("scraper:s3cret")), 200);
  std::vector<std::string> const near_misses = {
      "scraper:s3cre", "scraper:s3cretX", "scraper:S3cret", "Scraper:s3cret", "scraper:", ":s3cret", "scraper",
      "scraper:s3cret:", "scrapers3cret", ":", "", "scraper:s3cret\n", std::string("scraper:s3cret\0", 15)};
  for (std::string const& credentials : near_misses) {
    EXPECT_EQ(get_with_header(port, "Authorization: Basic " + base64(credentials)), 401)
        << "accepted '" << credentials << "'";
  }
  std::vector<std::string> const malformed = {
      "Authorization: Basic", "Authorization: Basic !!!!", "Authorization: basic",
      "Authorization: Bearer " + base64("scraper:s3cret"), "Authorization: " + base64("scraper:s3cret"),
      "Authorization: Basic " + base64("scraper:s3cret") + "=", "Authorization: Basic " + std::string(16384, 'A')};
  for (std::string const& header : malformed) {
    int const status = get_with_header(port, header);  // 401, or a refusal of an oversized header
    EXPECT_TRUE(status == 401 || (status >= 400 && header.size() > 8192))
        << status << " for '" << header.substr(0, 60) << "'";
  }
  EXPECT_EQ(get_with_header(port, ""), 401);
  EXPECT_EQ(get_with_header(port, "Authorization: Basic " + base64("scraper:s3cret")), 200) << "still serving";
}
