// Peer access between CUDA devices: lets kernels on one GPU push into a mailbox on another.
//
// After enable_peer_access(from, to), kernels running on `from` may use the MailboxRef of a
// mailbox allocated on `to` with the device API (pbm/device.cuh: try_push, warp_push). The host
// API is unchanged: Mailbox::push, pop_bulk_async, pop_bulk and refresh_stats still launch on the
// mailbox's own device, with streams and buffers of that device.
//
// Ordering across devices. The ring's atomics are device-scoped (cuda::thread_scope_device), so
// the CUDA memory model orders them only among threads of one device. Hand a mailbox from one
// device to another at a kernel boundary: the peer producer kernel completes, an event recorded
// after it is waited on by the owner device's stream (pbm::handoff, or Event::record +
// Event::wait_on), and only then does the owner pop. Producer kernels on two devices pushing into
// one mailbox at the same time, or a peer push racing a pop on the owner, are not covered by the
// memory model with device-scoped atomics (docs/MULTI_GPU.md).
//
// Thread-safety: all functions are thread-safe (peer access is per-context state in the driver).
#pragma once

#include <pbm/error.hpp>

#include <stdexcept>
#include <string>

namespace pbm {

/// Two devices that exist but cannot access each other's memory (no P2P path between them:
/// cudaDeviceCanAccessPeer reported 0). what() names both devices. Derives from
/// std::invalid_argument: asking for peer access between such devices is a request that cannot be met.
class peer_access_error : public std::invalid_argument {
 public:
  peer_access_error(int from_device, int to_device);
  int from_device() const noexcept { return from_; }
  int to_device() const noexcept { return to_; }

 private:
  int from_;
  int to_;
};

/// Pure: checks that `from_device` and `to_device` are ordinals in [0, device_count). Throws
/// std::invalid_argument naming the bad ordinal and how many devices are visible. No CUDA call.
void validate_peer_devices(int from_device, int to_device, int device_count);

/// True when kernels on `from_device` can access memory of `to_device` once peer access is
/// enabled (cudaDeviceCanAccessPeer). A device can always access its own memory: (d, d) is true.
/// Throws std::invalid_argument for an ordinal that is negative or not visible, pbm::cuda_error
/// when the runtime fails (no driver, no device at all). Does not synchronise.
bool can_access_peer(int from_device, int to_device);

/// Lets kernels on `from_device` access memory allocated on `to_device` (one direction; call
/// again with the devices swapped for the other). Already enabled is success. (d, d) is a no-op:
/// a device always accesses its own memory. The current device is the same after the call as
/// before (pbm::DeviceGuard).
/// Throws std::invalid_argument for an ordinal that is negative or not visible,
/// pbm::peer_access_error (an std::invalid_argument) when the two devices have no peer path, and
/// pbm::cuda_error for any other runtime failure. Does not synchronise.
void enable_peer_access(int from_device, int to_device);

}  // namespace pbm
