#include <pbm/error.hpp>

#include <cstdio>
#include <string>

namespace pbm {

namespace {
std::string describe(cudaError_t code, char const* expr, char const* file, int line) {
  return std::string("CUDA error ") + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ") in " + expr +
         " at " + file + ":" + std::to_string(line);
}
}  // namespace

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
