// BoundMailbox: what pbm.Mailbox holds. The mailbox adopted over a (hdr, payload) pair, bound once:
// the shared pbm::Mailbox, its geometry and device are kept, so a push or pop checks its one tensor
// argument, allocates its outputs and launches; no geometry from tensor sizes, no cache lookup.
// The tensor functions (pbm_push_bytes_cuda ...) and torch.ops.pbm reach the same pbm::Mailbox
// through the cache of adopted.hpp. Host-only C++ (no nvcc).
//
// The GIL: held while a call checks and launches (a few microseconds, never waiting for another
// thread), released only where it waits (pop's count, construction). Releasing it costs a hand-off
// each way, and when another Python thread is runnable, taking it back can wait for that thread's
// switch interval (5 ms by default): around a launch that would cost more than it frees.
// Thread-safety: every call may be made from any thread at once (the members never change after
// construction; pbm::Mailbox's calls are thread-safe).
#pragma once

#include "common.hpp"

#include <ATen/ATen.h>
#include <pbm/mailbox.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace pbm::python {

class BoundMailbox {
 public:
  /// Checks hdr and payload as the tensor functions do, then takes the mailbox adopted over them:
  /// from the cache (pbm_alloc put it there), else adopted now, which validates the header on the
  /// device (synchronises once; pbm::header_error for a bad header). Call without the GIL.
  BoundMailbox(at::Tensor hdr, at::Tensor payload);

  /// Pushes records (contiguous uint8 CUDA, n x stride bytes) on the current stream; returns the
  /// count pushed as a 0-dim int64 CUDA tensor. Never waits.
  at::Tensor push(at::Tensor const& records) const;
  /// push, plus the handle of the launch.
  std::pair<at::Tensor, Handle> push_async(at::Tensor const& records) const;
  /// Pops up to max_records (at most the capacity) on the current stream into a new
  /// [count, stride] uint8 tensor. Waits for this pop's count only, without the GIL.
  at::Tensor pop(std::int64_t max_records, std::string const& wait, std::uint64_t spin_ns) const;
  /// (buffer of max_records x stride bytes, 0-dim int64 CUDA count, handle). Never waits.
  std::tuple<at::Tensor, at::Tensor, Handle> pop_async(std::int64_t max_records) const;
  /// From mapped host memory: no CUDA call.
  Stats stats() const { return mailbox_->stats(); }
  /// Launches the stats snapshot kernel on the current stream. Never waits.
  void refresh_stats() const;

  /// The reference cycle of bench/torch_bench.py, in C++ on this mailbox and the current stream:
  /// `iters` times push(records) (its count written to `push_count` when given, as push() does),
  /// pop_bulk_async of as many records into dst, wait(spin). Returns each cycle's nanoseconds
  /// (steady_clock); throws std::runtime_error when a pop's count is not the number pushed.
  /// Runs without the GIL.
  std::vector<std::int64_t> cycle_ns(at::Tensor const& records, at::Tensor const& dst, std::int64_t iters,
                                     at::Tensor const* push_count) const;

  at::Tensor const& hdr() const noexcept { return hdr_; }
  at::Tensor const& payload() const noexcept { return payload_; }
  std::uint64_t capacity() const noexcept { return capacity_; }
  std::int64_t stride() const noexcept { return stride_; }
  int device() const noexcept { return device_; }

 private:
  /// Records in `t` (n x stride bytes): one set of checks, each with the tensor functions' message.
  std::uint64_t records_in(at::Tensor const& t, char const* what) const;
  cudaStream_t current_stream() const;
  at::Tensor empty(at::IntArrayRef sizes, at::ScalarType dtype) const;

  at::Tensor hdr_;  // held: the memory outlives every launch made through this object
  at::Tensor payload_;
  std::shared_ptr<Mailbox> mailbox_;
  std::uint64_t capacity_ = 0;
  std::int64_t stride_ = 0;
  c10::DeviceIndex device_ = 0;
};

/// Registers BoundMailbox and _cxx_cycle_ns in the module (after Handle).
void bind_mailbox_class(pybind11::module_& m);

}  // namespace pbm::python
