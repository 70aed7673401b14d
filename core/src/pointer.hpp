// Checks on user pointers and streams, without synchronising: where memory lives and how large
// its allocation is (the driver's cuPointerGetAttributes, fetched at run time so nothing links
// libcuda), and what a push or pop needs to know of its stream.
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

/// What a push or pop needs to know of its stream.
struct StreamFacts {
  int device;     // -1 for the null, legacy and per-thread default streams (the current device's), and
                  // while captured
  int priority;   // cudaStreamGetPriority; 0 while captured
  bool captured;  // work enqueued now becomes a node of a graph being captured (or the stream cannot say)
};

/// A stream's facts. cudaStreamIsCapturing first (it is capture-safe): while the stream is captured
/// no other query is made, as some invalidate a capture. Otherwise the device and priority come from
/// a cache of each thread's last few streams keyed by the stream's unique id (cudaStreamGetId: one
/// runtime call on a hit instead of two queries; a stream destroyed and another created at the same
/// address gets a new id). Throws std::invalid_argument for an invalid stream. No synchronisation.
StreamFacts stream_facts(cudaStream_t stream);

/// stream_facts, then check_stream_device's check on its device.
StreamFacts checked_stream_facts(cudaStream_t stream, int device);

}  // namespace pbm::detail
