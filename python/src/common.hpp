// What the mailbox binding units (mailbox_ext.cpp, bound_mailbox.cpp) share: the Python handle of a
// push or pop in flight, the parsing of wait modes and record counts, stats as a dict. Host-only C++.
#pragma once

#include <pbm/mailbox.hpp>

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace pbm::python {

/// Throws std::invalid_argument (ValueError) unless mode is 'spin', 'block' or 'spin_then_block'.
WaitPolicy parse_wait(std::string const& mode, std::uint64_t spin_ns);

/// n as a record count; throws std::invalid_argument naming `what` when n < 0.
std::uint64_t checked_records(std::int64_t n, char const* what);

/// pushed, popped, dropped, pop_calls, occupancy, capacity, stride. Needs the GIL.
pybind11::dict stats_dict(Stats const& s);

/// A push or pop in flight: ready() reads pinned mapped memory (no CUDA call); wait() waits for
/// this operation only (an expected wait, pbm's own) and returns the count. Copies share the handle.
/// Thread-safety: as pbm::OpHandle (const calls from any thread).
class Handle {
 public:
  explicit Handle(OpHandle h) : handle_(std::make_shared<OpHandle>(std::move(h))) {}

  bool ready() const { return handle_->ready(); }
  /// Releases the GIL while it waits.
  std::uint64_t wait(std::string const& mode, std::uint64_t spin_ns) const {
    WaitPolicy const policy = parse_wait(mode, spin_ns);
    pybind11::gil_scoped_release nogil;
    return handle_->wait(policy);
  }
  void wait_on(std::uintptr_t stream) const {
    pybind11::gil_scoped_release nogil;
    handle_->wait_on(reinterpret_cast<cudaStream_t>(stream));
  }
  std::uintptr_t event() const { return reinterpret_cast<std::uintptr_t>(handle_->event()); }
  std::uint64_t requested() const { return handle_->requested(); }

 private:
  std::shared_ptr<OpHandle> handle_;
};

}  // namespace pbm::python
