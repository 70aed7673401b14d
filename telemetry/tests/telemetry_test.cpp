// The facade on a machine without a GPU or driver (CI): it degrades, it does not crash.
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace pt = pbm::telemetry;

namespace {

bool have_driver() {
  for (char const* dir : {"/usr/lib/x86_64-linux-gnu/", "/usr/lib64/", "/usr/lib/", "/usr/local/cuda/compat/"}) {
    if (std::ifstream(std::string(dir) + "libcuda.so.1").good()) return true;
  }
  return false;
}

class TelemetryFacade : public ::testing::Test {
 protected:
  void TearDown() override {
    pt::stop();
    unsetenv("PBM_MODE");
    unsetenv("PBM_NVTX_ALLOW");
    pt::set_mode(pt::Mode::count);
    pt::set_range_allow_list({});
  }
};

}  // namespace

TEST_F(TelemetryFacade, StartWithoutDriverReportsDetachedWithAReason) {
  if (have_driver()) GTEST_SKIP() << "a CUDA driver is installed; this checks the no-driver path";
  pt::Config config;
  config.mode = pt::Mode::warn;
  ::testing::internal::CaptureStderr();
  ASSERT_NO_THROW(pt::start(config));
  EXPECT_FALSE(pt::attach());  // and again, still no crash
  std::string const err = ::testing::internal::GetCapturedStderr();
  pt::Status const st = pt::status();
  EXPECT_TRUE(st.started);
  EXPECT_FALSE(st.attached);
  EXPECT_FALSE(st.subscriber_taken);
  EXPECT_EQ(st.mode, pt::Mode::warn);
  EXPECT_NE(st.reason.find("CUPTI unavailable"), std::string::npos) << st.reason;
  // One line, logged once per process (none when a repeated run already logged it).
  auto const lines = std::count(err.begin(), err.end(), '\n');
  EXPECT_LE(lines, 1) << err;
  if (lines == 1) EXPECT_NE(err.find(st.reason), std::string::npos) << err;
  EXPECT_FALSE(pt::counters().health().cupti_attached.load());
  pt::flush();   // no-ops while detached
  pt::detach();
  EXPECT_FALSE(pt::status().attached);
}

TEST_F(TelemetryFacade, ModeFromEnvironment) {
  setenv("PBM_MODE", "warn", 1);
  pt::Config config;
  config.attach = false;
  pt::start(config);
  EXPECT_EQ(pt::get_mode(), pt::Mode::warn);
  // An explicit config mode wins over the environment.
  config.mode = pt::Mode::off;
  pt::start(config);
  EXPECT_EQ(pt::get_mode(), pt::Mode::off);
}

TEST_F(TelemetryFacade, BadModeInEnvironmentIsAClearError) {
  setenv("PBM_MODE", "loud", 1);
  pt::Config config;
  config.attach = false;
  try {
    pt::start(config);
    FAIL() << "start accepted PBM_MODE=loud";
  } catch (std::invalid_argument const& e) {
    std::string const what = e.what();
    EXPECT_NE(what.find("PBM_MODE"), std::string::npos) << what;
    EXPECT_NE(what.find("'loud'"), std::string::npos) << what;
  }
}

TEST_F(TelemetryFacade, AllowListFromEnvironmentAndConfig) {
  setenv("PBM_NVTX_ALLOW", " eval , checkpoint,", 1);
  pt::Config config;
  config.attach = false;
  config.allowed_ranges = {"pbm:wait"};
  pt::start(config);
  EXPECT_EQ(pt::range_allow_list(), (std::vector<std::string>{"eval", "checkpoint", "pbm:wait"}));
}

TEST_F(TelemetryFacade, InvalidBufferConfigIsRejected) {
  pt::Config config;
  config.attach = false;
  config.buffer_count = 0;
  EXPECT_THROW(pt::start(config), std::invalid_argument);
}

TEST_F(TelemetryFacade, StatusSaysWhetherCuptiIsBuiltIn) {
  pt::Status const st = pt::status();
#ifdef PBM_HAVE_CUPTI
  EXPECT_TRUE(st.cupti_built);
#else
  EXPECT_FALSE(st.cupti_built);
#endif
  EXPECT_FALSE(st.attached);
}

TEST_F(TelemetryFacade, EnsureNvtxInjectionPointsAtLibcupti) {
  char const* before = std::getenv("NVTX_INJECTION64_PATH");
  std::string const saved = before != nullptr ? before : "";
  unsetenv("NVTX_INJECTION64_PATH");
  std::string const path = pt::ensure_nvtx_injection();
#ifdef PBM_HAVE_CUPTI
  EXPECT_NE(path.find("libcupti.so"), std::string::npos) << path;
  EXPECT_TRUE(std::ifstream(path).good()) << path;
  EXPECT_EQ(path, std::getenv("NVTX_INJECTION64_PATH"));
#else
  EXPECT_EQ(path, "");
#endif
  // A value the user set is left alone.
  setenv("NVTX_INJECTION64_PATH", "/opt/tool/libinject.so", 1);
  EXPECT_EQ(pt::ensure_nvtx_injection(), "/opt/tool/libinject.so");
  if (saved.empty()) unsetenv("NVTX_INJECTION64_PATH"); else setenv("NVTX_INJECTION64_PATH", saved.c_str(), 1);
}
