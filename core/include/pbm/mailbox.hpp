// pbm::Mailbox: the owning host object. A device-resident ring buffer of fixed-stride records.
//
// Every operation takes the stream it runs on and says whether it synchronises. push and
// pop_bulk_async never do: no memcpy, no stream/device/event synchronisation; each is one launch
// of a small CUDA graph the mailbox keeps (its kernel, then the record of the handle's event), or,
// while `stream` is being captured, one kernel launch and one event record. The count reaches the
// host through pinned mapped memory written by the kernel itself.
//
// Thread-safety: push, pop_bulk_async, pop_bulk, stats and ref may be called concurrently from
// any threads, on any streams of the mailbox's device. Construction, move and destruction must
// not race with other calls; destroying a mailbox while its kernels are in flight is a bug
// (the destructor frees device memory; cudaFree waits for the device).
#pragma once

#include <pbm/error.hpp>
#include <pbm/mailbox_ref.cuh>
#include <pbm/stream.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

namespace pbm {

namespace detail {
class CompletionPool;
struct Completion;
struct LaunchAccess;
struct StreamFacts;
struct MailboxState;
/// Takes a mailbox's state out of the registry (under the registry's lock, so no reader is left),
/// then frees it on the calling thread.
struct MailboxStateDeleter {
  void operator()(MailboxState* state) const noexcept;
};
/// Frees device memory a mailbox allocated (cudaFree: synchronises, marked as pbm's own expected
/// wait) with its device current; leaves memory it adopted (owned == false) alone. Never throws.
struct DeviceMemoryDeleter {
  int device = -1;
  bool owned = true;
  void operator()(void* memory) const noexcept;
};
}  // namespace detail

/// Counters and positions of a mailbox, from the stats snapshot in mapped host memory.
///
/// Stalls (see "Stalls" in pbm/detail/ring.cuh): a record reserved and never committed (a producer
/// kernel killed between reserve and commit), or records claimed and never released (a pop's kernel
/// killed between claim and release), stop the mailbox for good; nothing in it times out on its own.
/// A stalled commit: pops return 0 while head_uncommitted stays true and claimed stays put. A stalled
/// release: claimed - popped stays above 0 and pops throw pbm::stall_error after about a second.
/// Both also happen for an instant in normal operation, so look for them across snapshots.
struct Stats {
  std::uint64_t pushed = 0;     // records that went in (reserved) since initialisation
  std::uint64_t popped = 0;     // records fully popped (slots released)
  std::uint64_t dropped = 0;    // records refused because the mailbox was full
  std::uint64_t pop_calls = 0;  // non-empty pops that released their slots
  std::uint64_t occupancy = 0;  // pushed - popped: records in the mailbox or being popped
  std::uint64_t capacity = 0;
  std::uint32_t stride = 0;
  std::uint64_t claimed = 0;    // records claimed by pops: popped + being copied out (or stalled)
  /// The last host-launched pop that took fewer records than it asked for stopped at record `claimed`
  /// (the head), which had been reserved (pushed > claimed) but was not committed, and no pop has
  /// claimed past it since. True for a moment while a producer writes; if it stays true while pops
  /// return 0, that record will never be committed.
  bool head_uncommitted = false;
};

/// How PopHandle::wait and PushHandle::wait wait for the kernel.
enum class WaitMode : std::uint8_t {
  spin,             // poll the mapped result: lowest latency, burns a CPU core
  block,            // cudaEventSynchronize: sleeps (an expected sync, marked as pbm's own)
  spin_then_block,  // poll for WaitPolicy::spin_ns, then block (default)
};

struct WaitPolicy {
  WaitMode mode = WaitMode::spin_then_block;
  std::uint64_t spin_ns = 200'000;
};

/// The result of one host-launched push or pop. Move-only. ready() and count() read pinned mapped
/// memory (no CUDA call at all); wait() waits as the policy says. The event recorded after the
/// kernel is available for cross-stream handoff (wait_on).
class OpHandle {
 public:
  OpHandle() = default;
  ~OpHandle();
  OpHandle(OpHandle&&) noexcept;
  OpHandle& operator=(OpHandle&&) noexcept;
  OpHandle(OpHandle const&) = delete;
  OpHandle& operator=(OpHandle const&) = delete;

  /// True once the kernel has published its count. Never synchronises; no CUDA call.
  bool ready() const;
  /// Waits for the kernel (see WaitPolicy) and returns the count of records pushed/popped.
  /// Throws pbm::header_error when the device found the mailbox header invalid, pbm::stall_error
  /// when a pop gave up waiting for an earlier claim that was never released (its records were
  /// still popped: stall_error::count()). Synchronises with this operation only (an expected wait).
  std::uint64_t wait(WaitPolicy policy = {}) const;
  /// Makes `stream` wait for the operation (cudaStreamWaitEvent). Does not synchronise the host.
  void wait_on(cudaStream_t stream) const;
  /// The event recorded after the kernel.
  cudaEvent_t event() const noexcept;
  /// How many records were asked for (n for a push, max_records for a pop).
  std::uint64_t requested() const noexcept { return requested_; }
  bool valid() const noexcept { return completion_ != nullptr; }

 private:
  friend class Mailbox;
  friend struct detail::LaunchAccess;
  OpHandle(std::shared_ptr<detail::CompletionPool> pool, detail::Completion* completion, std::uint64_t generation,
           std::uint64_t requested) noexcept;
  void check_valid() const;

  std::shared_ptr<detail::CompletionPool> pool_;
  detail::Completion* completion_ = nullptr;
  std::uint64_t generation_ = 0;
  std::uint64_t requested_ = 0;
};

using PopHandle = OpHandle;
using PushHandle = OpHandle;

/// Owning and move-only. Destruction frees the device memory (cudaFree waits for the device) and
/// never throws; a moved-from mailbox owns nothing and refuses use (std::invalid_argument).
class Mailbox {
 public:
  /// Allocates and initialises a mailbox of `capacity_records` records of `record_stride` bytes
  /// on `device` (-1: the current device). Throws std::invalid_argument for a zero or too-large
  /// capacity, a stride that is zero, not a multiple of 4 or too large, or a missing device.
  /// Synchronises: allocation and initialisation finish before it returns.
  Mailbox(std::uint64_t capacity_records, std::uint32_t record_stride, int device = -1,
          std::string name = "mailbox");

  /// The device handle for kernels (pbm/device.cuh). Valid while the mailbox lives; empty once
  /// moved from.
  MailboxRef ref() const noexcept { return header_ != nullptr ? ref_ : MailboxRef{}; }

  /// Pushes n records (n × stride bytes of device memory at `records`, on this device, 4-byte
  /// aligned) in order with one reservation; what does not fit is dropped and counted.
  /// One launch on `stream` (see the top of this header). Does not synchronise. The handle gives
  /// the count pushed.
  /// `device_count`, when not null, is device memory where the kernel also writes the count
  /// (an unsigned 64-bit word), for callers that keep the count on the device.
  PushHandle push(void const* records, std::uint64_t n, cudaStream_t stream,
                  unsigned long long* device_count = nullptr);

  /// Pops up to max_records records (the longest committed FIFO prefix) into `dst` (device memory
  /// of at least max_records × stride bytes on this device, 4-byte aligned). One launch on `stream`
  /// (see the top of this header). Does not synchronise; the handle gives the count. The bytes of
  /// dst past count × stride are unspecified afterwards: a pop copies ahead of its claim, and may
  /// leave records there that it did not take.
  /// A pop stops at a record that was reserved and never committed, and gives up releasing its
  /// slots after about a second when an earlier pop never released its own (wait() then throws
  /// pbm::stall_error); either stalls the mailbox for good (see Stats).
  PopHandle pop_bulk_async(void* dst, std::uint64_t max_records, cudaStream_t stream,
                           unsigned long long* device_count = nullptr);

  /// pop_bulk_async + wait. Synchronises with this pop only (an expected wait).
  std::uint64_t pop_bulk(void* dst, std::uint64_t max_records, cudaStream_t stream, WaitPolicy policy = {});

  /// Counters from the snapshot the last host-launched push/pop left in mapped host memory.
  /// No CUDA call, no memcpy, no sync. Activity by user kernels shows after the next host-launched
  /// operation or refresh_stats().
  Stats stats() const;

  /// Launches a one-thread kernel on `stream` that refreshes the stats snapshot. Does not synchronise.
  void refresh_stats(cudaStream_t stream);

  std::uint64_t capacity() const noexcept { return ref().capacity(); }
  std::uint32_t stride() const noexcept { return ref().stride(); }
  int device() const noexcept { return device_; }
  std::string const& name() const noexcept { return name_; }

  /// For tests: positions start at `initial_position` (e.g. near 2^32 or 2^64) instead of 0.
  Mailbox(std::uint64_t capacity_records, std::uint32_t record_stride, int device, std::string name,
          std::uint64_t initial_position);

  /// Wraps device memory the caller owns and keeps alive longer than the mailbox (e.g. a binding's
  /// tensors): `header` of header_bytes(capacity) bytes and `payload` of capacity × stride bytes,
  /// both on `device`. With `initialize`, initialises the header (synchronises, like the
  /// constructor). Without, the header must have been initialised for this capacity and stride:
  /// every kernel validates it, and an operation on a bad header changes nothing and reports
  /// pbm::header_error from wait(). Throws std::invalid_argument for bad geometry or pointers (a
  /// header not aligned to alignof(RingHeader) = 128 bytes, a payload not aligned to 4), checked
  /// before any CUDA call.
  static Mailbox adopt(void* header, void* payload, std::uint64_t capacity_records, std::uint32_t record_stride,
                       int device, std::string name, bool initialize);

  /// True when the mailbox allocated (and will free) its memory; false for adopt().
  bool owns_memory() const noexcept { return header_.get_deleter().owned; }

 private:
  struct External {
    void* header;
    void* payload;
    bool initialize;
  };
  Mailbox(std::uint64_t capacity_records, std::uint32_t record_stride, int device, std::string name,
          std::uint64_t initial_position, External const* external);
  /// The checks of a push or pop; returns what they learned of the stream.
  detail::StreamFacts check_stream_and_pointer(void const* ptr, std::uint64_t records, cudaStream_t stream,
                                               char const* what) const;
  StreamClass class_of(detail::StreamFacts const& facts) const noexcept;
  void check_device_count(unsigned long long const* device_count) const;

  using DeviceMemory = std::unique_ptr<void, detail::DeviceMemoryDeleter>;

  MailboxRef ref_{};  // over header_ and payload_; meaningful while header_ is set
  // Members are destroyed last to first: the header and payload are freed, then the state leaves
  // the registry (a scrape reading it finishes first) and its pinned snapshot is freed, then the
  // pool is let go (handles still alive keep it, and their result slots). Each deleter makes the
  // mailbox's device current and marks its frees as pbm's own expected waits.
  std::shared_ptr<detail::CompletionPool> pool_;
  std::unique_ptr<detail::MailboxState, detail::MailboxStateDeleter> state_;  // snapshot, counters; listed in the registry
  DeviceMemory payload_;
  DeviceMemory header_;
  int device_ = -1;
  int multiprocessors_ = 1;
  int priority_least_ = 0;
  int priority_greatest_ = 0;
  std::string name_;
};

/// Checks capacity and stride as the constructor does; throws std::invalid_argument naming the
/// bad value. Exposed for bindings that allocate their own memory.
void validate_geometry(std::uint64_t capacity_records, std::uint32_t record_stride);

}  // namespace pbm
