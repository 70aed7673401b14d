#include "pointer.hpp"

#include <pbm/error.hpp>

#include <cuda.h>

#include <sstream>

namespace pbm::detail {

namespace {
using GetAddressRange = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);

GetAddressRange address_range_fn() {
  static GetAddressRange const fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &p, 12000, cudaEnableDefault, &status) !=
            cudaSuccess ||
        status != cudaDriverEntryPointSuccess) {
      static_cast<void>(cudaGetLastError());
      return GetAddressRange{nullptr};
    }
    return reinterpret_cast<GetAddressRange>(p);
  }();
  return fn;
}

std::string hex(void const* p) {
  std::ostringstream os;
  os << p;
  return os.str();
}
}  // namespace

void check_device_buffer(void const* ptr, std::uint64_t bytes, int device, char const* what) {
  PBM_EXPECTS(ptr != nullptr || bytes == 0, std::string(what) + " is null");
  if (bytes == 0) return;
  PBM_EXPECTS(reinterpret_cast<std::uintptr_t>(ptr) % 4 == 0,
              std::string(what) + " " + hex(ptr) + " is not 4-byte aligned");
  cudaPointerAttributes attr{};
  cudaError_t const err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    PBM_EXPECTS(false, std::string(what) + " " + hex(ptr) + " is not CUDA memory (" + cudaGetErrorName(err) + ")");
  }
  PBM_EXPECTS(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged,
              std::string(what) + " " + hex(ptr) + " is host memory; device memory is required");
  PBM_EXPECTS(attr.type == cudaMemoryTypeManaged || attr.device == device,
              std::string(what) + " " + hex(ptr) + " is on device " + std::to_string(attr.device) +
                  ", the mailbox on device " + std::to_string(device));
  if (GetAddressRange const range = address_range_fn()) {
    CUdeviceptr base = 0;
    size_t size = 0;
    if (range(&base, &size, reinterpret_cast<CUdeviceptr>(ptr)) == CUDA_SUCCESS) {
      auto const offset = reinterpret_cast<CUdeviceptr>(ptr) - base;
      PBM_EXPECTS(offset + bytes <= size, std::string(what) + " is too small: " + std::to_string(bytes) +
                                              " bytes needed, " + std::to_string(size - offset) +
                                              " available in its allocation");
    }
  }
}

void check_stream_device(cudaStream_t stream, int device) {
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread) return;  // current device's
  int stream_device = -1;
  cudaError_t const err = cudaStreamGetDevice(stream, &stream_device);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    PBM_EXPECTS(false, std::string("invalid stream (") + cudaGetErrorName(err) + ")");
  }
  PBM_EXPECTS(stream_device == device, "stream is on device " + std::to_string(stream_device) +
                                           ", the mailbox on device " + std::to_string(device));
}

}  // namespace pbm::detail
