// Errors: a typed exception for CUDA failures (with the error's name and file:line) and
// std::invalid_argument for bad input. Destructors use the _NOEXCEPT variant, which logs.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace pbm {

/// A CUDA runtime call failed. what() names the call, the error and where.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(cudaError_t code, char const* expr, char const* file, int line);
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

/// The device reported that a mailbox header is invalid (corrupted, never initialised, or
/// initialised for another stride). Bad input: the operation changed nothing.
class header_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
[[noreturn]] void throw_cuda_error(cudaError_t code, char const* expr, char const* file, int line);
[[noreturn]] void throw_invalid_argument(std::string const& message, char const* file, int line);
void log_cuda_error(cudaError_t code, char const* expr, char const* file, int line) noexcept;
}  // namespace detail

}  // namespace pbm

/// Evaluates a CUDA runtime call; on failure clears the sticky-free error state and throws
/// pbm::cuda_error naming the call, the error and file:line.
#define PBM_CUDA_TRY(call)                                                      \
  do {                                                                          \
    cudaError_t const pbm_status_ = (call);                                     \
    if (pbm_status_ != cudaSuccess) {                                           \
      static_cast<void>(cudaGetLastError());                                    \
      ::pbm::detail::throw_cuda_error(pbm_status_, #call, __FILE__, __LINE__);  \
    }                                                                           \
  } while (0)

/// Like PBM_CUDA_TRY but never throws: logs to stderr. For destructors.
#define PBM_CUDA_TRY_NOEXCEPT(call)                                             \
  do {                                                                          \
    cudaError_t const pbm_status_ = (call);                                     \
    if (pbm_status_ != cudaSuccess) {                                           \
      static_cast<void>(cudaGetLastError());                                    \
      ::pbm::detail::log_cuda_error(pbm_status_, #call, __FILE__, __LINE__);    \
    }                                                                           \
  } while (0)

/// Precondition on the caller's input: throws std::invalid_argument with `message`.
#define PBM_EXPECTS(cond, message)                                              \
  do {                                                                          \
    if (!(cond)) ::pbm::detail::throw_invalid_argument((message), __FILE__, __LINE__); \
  } while (0)
