// Errors: a typed exception for CUDA failures (with the error's name and file:line) and
// std::invalid_argument for bad input. Destructors use the _NOEXCEPT variant, which logs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
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

/// A pop gave up waiting for an earlier pop's claim to be released (about a second): that claimant
/// stopped between claim and release (its kernel killed or faulted, e.g. on a peer GPU). This pop's
/// count() records were copied to its destination and are valid, but its slots stay claimed. The
/// mailbox is stalled for good: what it holds can still be popped (each pop waiting out the bound
/// and throwing this), new records are refused once the free slots are used; recreate it.
class stall_error : public std::runtime_error {
 public:
  stall_error(std::uint64_t count, std::uint64_t position);
  /// Records this pop copied to its destination (valid, in FIFO order).
  std::uint64_t count() const noexcept { return count_; }
  /// The first record never released, counted from the mailbox's initialisation (Stats::popped stops there).
  std::uint64_t position() const noexcept { return position_; }

 private:
  std::uint64_t count_;
  std::uint64_t position_;
};

/// A CUDA error as pbm reports it: "cudaErrorName (description)", except where the runtime reports
/// that it found no usable driver (cudaErrorInsufficientDriver, cudaErrorNoDevice,
/// cudaErrorStubLibrary, cudaErrorInitializationError) and libcuda.so.1 cannot be loaded at all:
/// then "cudaErrorInsufficientDriver: no CUDA driver (libcuda.so.1 not loadable)", not CUDA's
/// "driver version is insufficient". Thread-safe; tries dlopen only for those codes.
std::string describe_cuda_error(cudaError_t code);

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
