// The program's environment, finding the injection library, spawning.
#include "launch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace pbm::guard {
namespace {

std::string value(std::vector<std::string> const& env, std::string const& key) {
  for (std::string const& e : env)
    if (e.rfind(key + "=", 0) == 0) return e.substr(key.size() + 1);
  return "(unset)";
}

GuardSettings settings() {
  GuardSettings s;
  s.inject_library = "/opt/pbm/lib/libpbm_inject.so";
  s.nvtx_injection = "/usr/local/cuda/lib64/libcupti.so.13";
  s.report_dir = "/tmp/pbm-guard-1";
  return s;
}

TEST(ChildEnvironment, SetsInjectionNvtxAndReportDir) {
  std::vector<std::string> notes;
  std::vector<std::string> const env = child_environment({"PATH=/bin", "HOME=/root"}, settings(), &notes);
  EXPECT_EQ(value(env, "PATH"), "/bin");
  EXPECT_EQ(value(env, "CUDA_INJECTION64_PATH"), "/opt/pbm/lib/libpbm_inject.so");
  EXPECT_EQ(value(env, "NVTX_INJECTION64_PATH"), "/usr/local/cuda/lib64/libcupti.so.13");
  EXPECT_EQ(value(env, "PBM_CUPTI_PATH"), "/usr/local/cuda/lib64/libcupti.so.13");
  EXPECT_EQ(value(env, "PBM_GUARD_REPORT_DIR"), "/tmp/pbm-guard-1");
  EXPECT_EQ(value(env, "PBM_MODE"), "(unset)");
  EXPECT_EQ(value(env, "PBM_PROMETHEUS_ADDR"), "(unset)");
  EXPECT_TRUE(notes.empty());
}

TEST(ChildEnvironment, ModeAndPrometheusOverrideTheUsers) {
  GuardSettings s = settings();
  s.mode = "warn";
  s.prometheus = "127.0.0.1:9500";
  std::vector<std::string> const env = child_environment({"PBM_MODE=assert"}, s, nullptr);
  EXPECT_EQ(value(env, "PBM_MODE"), "warn");
  EXPECT_EQ(value(env, "PBM_PROMETHEUS_ADDR"), "127.0.0.1:9500");
  EXPECT_EQ(std::count_if(env.begin(), env.end(), [](std::string const& e) { return e.rfind("PBM_MODE=", 0) == 0; }), 1);
}

TEST(ChildEnvironment, KeepsTheUsersNvtxAndCuptiChoices) {
  std::vector<std::string> notes;
  std::vector<std::string> const env = child_environment(
      {"NVTX_INJECTION64_PATH=/my/nvtx.so", "PBM_CUPTI_PATH=/my/cupti.so", "CUDA_INJECTION64_PATH=/other/tool.so"},
      settings(), &notes);
  EXPECT_EQ(value(env, "NVTX_INJECTION64_PATH"), "/my/nvtx.so");
  EXPECT_EQ(value(env, "PBM_CUPTI_PATH"), "/my/cupti.so");
  EXPECT_EQ(value(env, "CUDA_INJECTION64_PATH"), "/opt/pbm/lib/libpbm_inject.so");
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("/other/tool.so"), std::string::npos);
  EXPECT_NE(notes[1].find("/my/nvtx.so"), std::string::npos);
}

TEST(ChildEnvironment, NoCuptiMeansNoNvtxAndANote) {
  GuardSettings s = settings();
  s.nvtx_injection.clear();
  std::vector<std::string> notes;
  std::vector<std::string> const env = child_environment({}, s, &notes);
  EXPECT_EQ(value(env, "NVTX_INJECTION64_PATH"), "(unset)");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("libcupti not found"), std::string::npos);
}

TEST(FindInjectLibrary, BesideTheBinaryOrInstalled) {
  char tmpl[] = "/tmp/pbm-guard-find-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string const root = tmpl;
  ASSERT_EQ(::mkdir((root + "/bin").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((root + "/lib").c_str(), 0755), 0);
  ::unsetenv(kInjectLibEnv);
  std::string searched;
  EXPECT_EQ(find_inject_library(root + "/bin/pbm-guard", &searched), "");
  EXPECT_NE(searched.find(root + "/bin/libpbm_inject.so"), std::string::npos) << searched;
  std::ofstream(root + "/lib/libpbm_inject.so") << "x";
  EXPECT_EQ(find_inject_library(root + "/bin/pbm-guard", &searched), root + "/lib/libpbm_inject.so");
  std::ofstream(root + "/bin/libpbm_inject.so") << "x";
  EXPECT_EQ(find_inject_library(root + "/bin/pbm-guard", &searched), root + "/bin/libpbm_inject.so");
  ::setenv(kInjectLibEnv, "/nonexistent/libpbm_inject.so", 1);
  EXPECT_EQ(find_inject_library(root + "/bin/pbm-guard", &searched), "");
  ::unsetenv(kInjectLibEnv);
  std::remove((root + "/bin/libpbm_inject.so").c_str());
  std::remove((root + "/lib/libpbm_inject.so").c_str());
  remove_dir(root + "/bin");
  remove_dir(root + "/lib");
  remove_dir(root);
}

TEST(Spawn, PassesStatusAndEnvironment) {
  std::string error;
  EXPECT_EQ(spawn_and_wait({"/bin/sh", "-c", "exit 5"}, {"PATH=/bin:/usr/bin"}, &error), 5);
  EXPECT_EQ(spawn_and_wait({"/bin/sh", "-c", "test \"$X\" = 42"}, {"X=42"}, &error), 0);
  EXPECT_EQ(spawn_and_wait({"/bin/sh", "-c", "kill -TERM $$"}, {}, &error), 128 + 15);
  EXPECT_EQ(spawn_and_wait({"/nonexistent/program"}, {}, &error), 127);
  EXPECT_NE(error.find("/nonexistent/program"), std::string::npos);
}

TEST(TempDir, MadeAndRemoved) {
  std::string error;
  std::string const dir = make_temp_dir(&error);
  ASSERT_FALSE(dir.empty()) << error;
  std::ofstream(dir + "/report-1.json") << "{}";
  remove_dir(dir);
  EXPECT_NE(::access(dir.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace pbm::guard
