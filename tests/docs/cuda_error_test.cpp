// What a user without a GPU reads when pbm gives up: "no CUDA driver" where libcuda.so.1 cannot be
// loaded, not CUDA's "driver version is insufficient" (README: CUDA failures throw pbm::cuda_error
// with the error's name and file:line). On a machine with a driver the runtime's own text stays.
#include <pbm/error.hpp>
#include <pbm/mailbox.hpp>

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <string>

namespace {

bool driver_loadable() {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver != nullptr) dlclose(driver);
  return driver != nullptr;
}

TEST(CudaErrorMessage, InsufficientDriverWithoutDriverSaysNoDriver) {
  std::string const what = pbm::cuda_error(cudaErrorInsufficientDriver, "cudaGetDeviceCount(&n)", "x.cpp", 7).what();
  if (driver_loadable()) {
    EXPECT_NE(what.find("cudaErrorInsufficientDriver"), std::string::npos) << what;
  } else {
    EXPECT_NE(what.find("no CUDA driver (libcuda.so.1 not loadable)"), std::string::npos) << what;
    EXPECT_EQ(what.find("version is insufficient"), std::string::npos) << what;
  }
  EXPECT_NE(what.find("cudaGetDeviceCount(&n)"), std::string::npos) << what;  // still says which call, where
  EXPECT_NE(what.find("x.cpp:7"), std::string::npos) << what;
}

TEST(CudaErrorMessage, OtherErrorsKeepTheRuntimeText) {
  std::string const what = pbm::cuda_error(cudaErrorInvalidValue, "f()", "x.cpp", 1).what();
  EXPECT_NE(what.find("cudaErrorInvalidValue"), std::string::npos) << what;
  EXPECT_NE(what.find(cudaGetErrorString(cudaErrorInvalidValue)), std::string::npos) << what;
}

TEST(CudaErrorMessage, MailboxWithoutDriver) {
  if (driver_loadable()) GTEST_SKIP() << "libcuda.so.1 loads here: this case is for machines without a driver";
  try {
    pbm::Mailbox box(1024, 64);
    FAIL() << "a Mailbox was constructed without a CUDA driver";
  } catch (pbm::cuda_error const& e) {
    std::string const what = e.what();
    EXPECT_NE(what.find("no CUDA driver (libcuda.so.1 not loadable)"), std::string::npos) << what;
    EXPECT_EQ(what.find("version is insufficient"), std::string::npos) << what;
  }
}

}  // namespace
