// Peer access between devices: validation, the capability query, and enabling it idempotently.
#include <pbm/peer.hpp>

#include <pbm/stream.hpp>

#include <cuda_runtime_api.h>

#include <string>

namespace pbm {
namespace {

int visible_devices() {
  int count = 0;
  PBM_CUDA_TRY(cudaGetDeviceCount(&count));
  return count;
}

void check_device(int device, int device_count, char const* role) {
  PBM_EXPECTS(device >= 0 && device < device_count,
              std::string("no CUDA device ") + std::to_string(device) + " (" + role + " of peer access; " +
                  std::to_string(device_count) + " visible)");
}

}  // namespace

peer_access_error::peer_access_error(int from_device, int to_device)
    : std::invalid_argument("pbm: CUDA device " + std::to_string(from_device) + " cannot access memory of device " +
                            std::to_string(to_device) +
                            " (cudaDeviceCanAccessPeer: 0; no P2P path between them, e.g. no NVLink and P2P "
                            "disabled over PCIe)"),
      from_(from_device),
      to_(to_device) {}

void validate_peer_devices(int from_device, int to_device, int device_count) {
  check_device(from_device, device_count, "from_device");
  check_device(to_device, device_count, "to_device");
}

bool can_access_peer(int from_device, int to_device) {
  validate_peer_devices(from_device, to_device, visible_devices());
  if (from_device == to_device) return true;  // cudaDeviceCanAccessPeer says 0 for (d, d)
  int can = 0;
  PBM_CUDA_TRY(cudaDeviceCanAccessPeer(&can, from_device, to_device));
  return can != 0;
}

void enable_peer_access(int from_device, int to_device) {
  if (!can_access_peer(from_device, to_device)) throw peer_access_error(from_device, to_device);
  if (from_device == to_device) return;
  DeviceGuard guard(from_device);  // cudaDeviceEnablePeerAccess acts on the current device
  cudaError_t const status = cudaDeviceEnablePeerAccess(to_device, 0);
  if (status == cudaSuccess) return;
  static_cast<void>(cudaGetLastError());  // the runtime also records it as the last error
  if (status == cudaErrorPeerAccessAlreadyEnabled) return;
  detail::throw_cuda_error(status, "cudaDeviceEnablePeerAccess(to_device, 0)", __FILE__, __LINE__);
}

}  // namespace pbm
