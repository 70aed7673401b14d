// Helpers for GPU tests: skip with a reason when no device is visible, check CUDA calls.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace pbm_test {

/// CUDA devices visible to this process; 0 without a driver or device.
inline int visible_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return 0;
  }
  return n;
}

inline bool have_device() { return visible_devices() > 0; }

#define PBM_REQUIRE_GPU()                                            \
  do {                                                               \
    if (!::pbm_test::have_device()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define PBM_TEST_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

/// A 16-byte test record: producer id, sequence number, checksum of both, a fixed tag.
struct Rec {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t check;
  std::uint32_t pad;
};
static_assert(sizeof(Rec) == 16);

__host__ __device__ inline std::uint32_t checksum(std::uint32_t producer, std::uint32_t seq) {
  return producer * 2654435761u ^ (seq * 40503u + 7u);
}

/// n records of `producer` with sequence numbers first, first + 1, ...
inline std::vector<Rec> make_records(std::uint32_t producer, std::uint32_t first, std::uint32_t n) {
  std::vector<Rec> v(n);
  for (std::uint32_t i = 0; i < n; ++i) v[i] = Rec{producer, first + i, checksum(producer, first + i), 0xABCDu};
  return v;
}

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
