#include <pbm/error.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <string>

namespace pbm {

namespace {
// The runtime says "driver version is insufficient" also when there is no driver at all.
bool driver_loadable() noexcept {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver != nullptr) dlclose(driver);
  return driver != nullptr;
}

bool says_no_driver(cudaError_t code) noexcept {
  return code == cudaErrorInsufficientDriver || code == cudaErrorNoDevice || code == cudaErrorStubLibrary ||
         code == cudaErrorInitializationError;
}

std::string describe(cudaError_t code, char const* expr, char const* file, int line) {
  return "CUDA error " + describe_cuda_error(code) + " in " + expr + " at " + file + ":" + std::to_string(line);
}
}  // namespace

std::string describe_cuda_error(cudaError_t code) {
  if (says_no_driver(code) && !driver_loadable()) {
    return std::string(cudaGetErrorName(code)) + ": no CUDA driver (libcuda.so.1 not loadable)";
  }
  return std::string(cudaGetErrorName(code)) + " (" + cudaGetErrorString(code) + ")";
}

cuda_error::cuda_error(cudaError_t code, char const* expr, char const* file, int line)
    : std::runtime_error(describe(code, expr, file, line)), code_(code) {}

stall_error::stall_error(std::uint64_t count, std::uint64_t position)
    : std::runtime_error("pbm: mailbox stalled: an earlier claim at position " + std::to_string(position) +
                         " was never released (its pop stopped between claim and release); this pop's " +
                         std::to_string(count) +
                         " records were copied and are valid, but the mailbox cannot free slots any more: "
                         "drain and recreate it"),
      count_(count),
      position_(position) {}

namespace detail {
void throw_cuda_error(cudaError_t code, char const* expr, char const* file, int line) {
  throw cuda_error(code, expr, file, line);
}
void throw_invalid_argument(std::string const& message, char const* file, int line) {
  (void)file;
  (void)line;
  throw std::invalid_argument("pbm: " + message);
}
void log_cuda_error(cudaError_t code, char const* expr, char const* file, int line) noexcept {
  std::fprintf(stderr, "pbm: ignored %s\n", describe(code, expr, file, line).c_str());
}
}  // namespace detail

}  // namespace pbm
