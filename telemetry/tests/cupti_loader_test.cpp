// libcupti is loaded with dlopen: where it is missing (or is not CUPTI), start() does not throw,
// logs one line, and status() says why. No GPU needed.
#include "source.hpp"

#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace pt = pbm::telemetry;

namespace {

// One line naming the reason; none when the same reason was already logged by this process
// (a repeated run of the test in one process: log_once). ctest runs each test in its own process,
// and check_no_cupti.cmake checks the line of a fresh program.
void expect_logged_once(std::string const& err, std::string const& reason) {
  auto const lines = std::count(err.begin(), err.end(), '\n');
  EXPECT_LE(lines, 1) << err;
  if (lines == 1) EXPECT_NE(err.find(reason), std::string::npos) << err;
}

class CuptiLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    pt::stop();
    pbm::telemetry::detail::forget_library_for_testing();
  }
  void TearDown() override {
    pt::stop();
    unsetenv("PBM_CUPTI_PATH");
    pbm::telemetry::detail::forget_library_for_testing();  // later tests load the real one
    pt::set_mode(pt::Mode::count);
  }
  // start() with PBM_CUPTI_PATH=path; returns stderr.
  std::string start_with(char const* path) {
    setenv("PBM_CUPTI_PATH", path, 1);
    pt::Config config;
    config.mode = pt::Mode::count;
    config.set_nvtx_injection = false;  // leave the process's NVTX_INJECTION64_PATH alone
    ::testing::internal::CaptureStderr();
    EXPECT_NO_THROW(pt::start(config));
    EXPECT_FALSE(pt::attach());  // again: no crash, no second line
    return ::testing::internal::GetCapturedStderr();
  }
};

}  // namespace

TEST_F(CuptiLoader, MissingLibcuptiDegradesWithOneClearLine) {
  std::string const err = start_with("/nonexistent/pbm-test/libcupti.so.13");
  pt::Status const st = pt::status();
  EXPECT_TRUE(st.started);
  EXPECT_FALSE(st.attached);
  EXPECT_FALSE(st.subscriber_taken);
  EXPECT_NE(st.reason.find("CUPTI unavailable: libcupti not loadable from PBM_CUPTI_PATH"), std::string::npos)
      << st.reason;
  EXPECT_NE(st.reason.find("/nonexistent/pbm-test/libcupti.so.13"), std::string::npos) << st.reason;
  EXPECT_EQ(st.reason.find('\n'), std::string::npos) << st.reason;
  expect_logged_once(err, st.reason);
  EXPECT_FALSE(pt::counters().health().cupti_attached.load());
  // Guards and counters still work.
  pt::counters().add_violation(pt::Rule::memcpy_pageable);
  EXPECT_GE(pt::counters().violation_count(pt::Rule::memcpy_pageable), 1u);
  pt::flush();
  pt::detach();
}

TEST_F(CuptiLoader, ALibraryThatIsNotCuptiIsRefused) {
  std::string const err = start_with("libm.so.6");
  pt::Status const st = pt::status();
  EXPECT_FALSE(st.attached);
  EXPECT_NE(st.reason.find("lacks cuptiGetVersion"), std::string::npos) << st.reason;
  expect_logged_once(err, st.reason);
}

TEST_F(CuptiLoader, TheRealLibcuptiIsFoundWithoutHelp) {
  unsetenv("PBM_CUPTI_PATH");
  std::string const path = pbm::telemetry::detail::cupti_library_path();
  EXPECT_NE(path.find("libcupti.so"), std::string::npos) << path;
  EXPECT_EQ(path.front(), '/') << path;
}
