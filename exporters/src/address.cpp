#include "address.hpp"

#include <cstdlib>
#include <stdexcept>

namespace pbm::exporters::detail {

ListenAddress parse_address(std::string const& text) {
  auto bad = [&text](char const* why) {
    return std::invalid_argument("pbm exporter: invalid listen address '" + text + "': " + why +
                                 " (expected host:port, [v6]:port or port)");
  };
  ListenAddress a;
  std::string port;
  if (text.empty()) throw bad("empty");
  if (text.front() == '[') {
    std::size_t const close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw bad("bad IPv6 form");
    a.host = text.substr(0, close + 1);
    port = text.substr(close + 2);
  } else if (std::size_t const colon = text.rfind(':'); colon == std::string::npos) {
    a.host = "127.0.0.1";
    port = text;
  } else {
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.empty()) a.host = "127.0.0.1";  // ":9464" stays on loopback; say 0.0.0.0 to open it
    if (a.host.find(':') != std::string::npos) throw bad("IPv6 hosts need brackets");
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw bad("port must be a number 0-65535");
  a.port = std::stoi(port);
  if (a.port > 65535) throw bad("port must be a number 0-65535");
  for (char c : a.host)
    if (c == ',' || c == ' ' || c == '\t') throw bad("one host only");
  return a;
}

PrometheusConfig resolve(PrometheusConfig config) {
  if (config.address.empty()) {
    char const* env = std::getenv("PBM_PROMETHEUS_ADDR");
    config.address = (env != nullptr && *env != '\0') ? env : kDefaultPrometheusAddress;
  }
  (void)parse_address(config.address);
  if (config.path.empty() || config.path.front() != '/')
    throw std::invalid_argument("pbm exporter: path must start with '/', got '" + config.path + "'");
  if (config.threads == 0 || config.threads > 64)
    throw std::invalid_argument("pbm exporter: threads must be 1-64, got " + std::to_string(config.threads));
  if (config.basic_auth_user.empty() && config.basic_auth_password.empty()) {
    if (char const* env = std::getenv("PBM_PROMETHEUS_BASIC_AUTH"); env != nullptr && *env != '\0') {
      std::string const v = env;
      std::size_t const colon = v.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
        throw std::invalid_argument("PBM_PROMETHEUS_BASIC_AUTH: expected 'user:password'");
      config.basic_auth_user = v.substr(0, colon);
      config.basic_auth_password = v.substr(colon + 1);
    }
  }
  if (config.basic_auth_user.empty() != config.basic_auth_password.empty())
    throw std::invalid_argument("pbm exporter: basic auth needs both a user and a password");
  if (config.basic_auth_user.find(':') != std::string::npos)
    throw std::invalid_argument("pbm exporter: basic auth user '" + config.basic_auth_user + "' contains ':'");
  return config;
}

}  // namespace pbm::exporters::detail
