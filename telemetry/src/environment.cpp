// Every getenv/setenv of telemetry, under one lock.
#include "environment.hpp"

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace pbm::telemetry::detail {
namespace {

std::mutex& env_mu() {
  static std::mutex* const mu = new std::mutex();  // used at exit and in fork handlers
  return *mu;
}

/// getenv as a string; "" when unset. Caller holds env_mu().
std::string get(char const* name) {
  char const* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

bool flag(std::string const& v, bool fallback) {
  if (v.empty()) return fallback;
  return !(v[0] == '0' || v[0] == 'n' || v[0] == 'N' || v[0] == 'f' || v[0] == 'F');
}

std::vector<std::string> split_list(std::string const& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

}  // namespace

Settings resolve(Config const& config) {
  std::string mode, allow, activity, markers, cupti_path, cuda_home, nvtx_callbacks, driver_callbacks, time_callbacks, legacy;
  std::optional<std::string> kinds;
  {
    std::lock_guard<std::mutex> lock(env_mu());
    mode = get("PBM_MODE");
    allow = get("PBM_NVTX_ALLOW");
    activity = get("PBM_CUPTI_ACTIVITY");
    markers = get("PBM_CUPTI_MARKERS");
    cupti_path = get("PBM_CUPTI_PATH");
    cuda_home = get("CUDA_HOME");
    nvtx_callbacks = get("PBM_CUPTI_NVTX_CALLBACKS");
    driver_callbacks = get("PBM_CUPTI_DRIVER_CALLBACKS");
    time_callbacks = get("PBM_CUPTI_TIME_CALLBACKS");
    legacy = get("PBM_LEGACY_STREAM");
    if (char const* v = std::getenv("PBM_CUPTI_KINDS")) kinds = v;
  }
  Settings s;
  s.config = config;
  if (!s.config.mode) {
    s.config.mode = Mode::count;
    if (!mode.empty()) {
      try {
        s.config.mode = parse_mode(mode);
      } catch (std::invalid_argument const&) {
        throw std::invalid_argument("PBM_MODE: invalid value '" + mode +
                                    "' (expected one of: off, count, warn, assert)");
      }
    }
  }
  s.config.allowed_ranges = split_list(allow);
  s.config.allowed_ranges.insert(s.config.allowed_ranges.end(), config.allowed_ranges.begin(),
                                 config.allowed_ranges.end());
  s.config.activity_records = config.activity_records || flag(activity, false);
  s.config.marker_activity = config.marker_activity || flag(markers, false);
  s.config.legacy_stream_rule = config.legacy_stream_rule || flag(legacy, false);
  if (s.config.cupti_path.empty()) s.config.cupti_path = cupti_path;
  s.cuda_home = cuda_home;
  s.cupti_kinds = kinds;
  s.nvtx_callbacks = flag(nvtx_callbacks, true);
  s.driver_callbacks = flag(driver_callbacks, true);
  s.time_callbacks = flag(time_callbacks, false);
  return s;
}

std::pair<std::string, std::string> cupti_search_from_environment() {
  std::lock_guard<std::mutex> lock(env_mu());
  return {get("PBM_CUPTI_PATH"), get("CUDA_HOME")};
}

std::string nvtx_injection() {
  std::lock_guard<std::mutex> lock(env_mu());
  return get("NVTX_INJECTION64_PATH");
}

std::string set_nvtx_injection_if_unset(std::string const& path) {
  std::lock_guard<std::mutex> lock(env_mu());
  std::string current = get("NVTX_INJECTION64_PATH");
  if (!current.empty() || path.empty()) return current;
  ::setenv("NVTX_INJECTION64_PATH", path.c_str(), /*overwrite=*/1);
  return path;
}

std::string rank() {
  std::lock_guard<std::mutex> lock(env_mu());
  for (char const* var : {"RANK", "LOCAL_RANK"}) {
    std::string v = get(var);
    if (!v.empty()) return v;
  }
  return {};
}

void environment_lock_before_fork() noexcept { env_mu().lock(); }
void environment_unlock_after_fork() noexcept { env_mu().unlock(); }

}  // namespace pbm::telemetry::detail
