// Mailboxes over caller-owned torch tensors: tensor checks, the geometry a header/payload pair
// implies, and the cache of adopted pbm::Mailbox objects (one per header tensor) so that a call does
// not rebuild host state. Host-only C++ (no nvcc).
// Thread-safety: all functions are thread-safe. None needs the GIL; callers release it.
#pragma once

#include <ATen/ATen.h>
#include <pbm/mailbox.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace pbm::python {

/// Capacity and stride implied by a header tensor (512 + 8 x capacity bytes) and its payload
/// (capacity x stride bytes).
struct Geometry {
  std::uint64_t capacity = 0;
  std::uint32_t stride = 0;
};

/// Throws std::invalid_argument (Python ValueError) unless `t` is a defined, contiguous uint8 CUDA
/// tensor. `what` names the argument in the message.
void check_byte_tensor(at::Tensor const& t, char const* what);

/// Throws std::invalid_argument unless `a` and `b` are on the same device.
void check_same_device(at::Tensor const& a, char const* a_name, at::Tensor const& b, char const* b_name);

/// Checks hdr and payload (byte tensors, same device, sizes consistent) and returns their geometry.
Geometry geometry_of(at::Tensor const& hdr, at::Tensor const& payload);

/// The mailbox adopted over (hdr, payload): from the cache, or adopted now. Adopting a header the
/// cache has not seen synchronises once: it validates the header on the device (a zero-record pop
/// on `stream`, then its wait), throwing pbm::header_error (Python pbm.HeaderError, a ValueError)
/// when the header is not an initialised pbm header for this geometry; nothing is changed then.
/// Throws std::invalid_argument when `hdr` is cached with another payload or geometry.
/// Expired entries (their tensors freed) are dropped only here, when a new header is adopted, since
/// destroying a mailbox frees its completion pool (cudaFree waits for the device).
std::shared_ptr<Mailbox> adopted(at::Tensor const& hdr, at::Tensor const& payload, Geometry g,
                                 cudaStream_t stream);

/// Adopts freshly allocated tensors with initialize=true (synchronises) and caches the mailbox.
std::shared_ptr<Mailbox> adopt_new(at::Tensor const& hdr, at::Tensor const& payload, Geometry g,
                                   std::string const& name);

/// The cached mailbox of `hdr`, or null. Never adopts, never synchronises.
std::shared_ptr<Mailbox> find_adopted(at::Tensor const& hdr);

/// Drops the cache entry of `hdr` (the mailbox is destroyed once no handle uses it). Returns whether
/// there was one. Frees the mailbox's completion pool: cudaFree waits for the device.
bool release_adopted(at::Tensor const& hdr);

/// Number of live cache entries (tests).
std::size_t adopted_count();

}  // namespace pbm::python
