// Checks on user pointers and streams, without synchronising: where memory lives and how large
// its allocation is (driver's cuMemGetAddressRange, fetched at run time so nothing links libcuda).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pbm::detail {

/// Throws std::invalid_argument naming the pointer unless it is non-null and `alignment`-byte
/// aligned. No CUDA call.
void check_aligned(void const* ptr, std::size_t alignment, char const* what);

/// Throws std::invalid_argument unless [ptr, ptr + bytes) is device (or managed) memory of
/// `device` inside one allocation, 4-byte aligned. `what` names the argument in the message.
void check_device_buffer(void const* ptr, std::uint64_t bytes, int device, char const* what);

/// Throws std::invalid_argument when `stream` belongs to another device than `device`.
void check_stream_device(cudaStream_t stream, int device);

}  // namespace pbm::detail
