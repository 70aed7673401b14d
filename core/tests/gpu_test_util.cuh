// Helpers for GPU tests: skip with a reason when no device is visible, check CUDA calls.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace pbm_test {

inline bool have_device() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return false;
  }
  return n > 0;
}

#define PBM_REQUIRE_GPU()                                            \
  do {                                                               \
    if (!::pbm_test::have_device()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define PBM_TEST_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

/// Owning device buffer for tests.
template <class T>
struct DeviceBuffer {
  explicit DeviceBuffer(std::size_t n) : size(n) {
    if (cudaMalloc(&ptr, n * sizeof(T)) != cudaSuccess) ptr = nullptr;
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;
  std::vector<T> to_host() const {  // tests may copy; the library may not
    std::vector<T> out(size);
    cudaMemcpy(out.data(), ptr, size * sizeof(T), cudaMemcpyDeviceToHost);
    return out;
  }
  /// Synchronises: a pageable cudaMemcpy may return before its DMA lands, and the kernels under
  /// test run on non-blocking streams that do not order after the legacy stream.
  void from_host(std::vector<T> const& in) {
    cudaMemcpy(ptr, in.data(), in.size() * sizeof(T), cudaMemcpyHostToDevice);
    cudaDeviceSynchronize();
  }
  void fill(int byte) {
    cudaMemset(ptr, byte, size * sizeof(T));
    cudaDeviceSynchronize();
  }
  T* ptr = nullptr;
  std::size_t size;
};

}  // namespace pbm_test
