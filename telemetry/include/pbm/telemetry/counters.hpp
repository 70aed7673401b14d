// pbm telemetry counters: memcpys, syncs, violations and the layer's own health.
//
// Lock-free on the hot path: every increment is a relaxed atomic add into a fixed array indexed by
// label values; a new NVTX range name takes one slot of a bounded table (CAS, no lock). Range names
// beyond the cap fold into "other"; an empty range stack is "none".
// Thread-safety: all member functions are thread-safe. snapshot() is not atomic across counters
// (each value is individually consistent), which is what Prometheus scrapes expect.
#pragma once

#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/metric_table.hpp>
#include <pbm/telemetry/policy.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pbm::telemetry {

/// One exported value: Prometheus-style name, labels and value.
struct CounterSample {
  using Type = MetricType;
  std::string name;
  std::map<std::string, std::string> labels;
  std::uint64_t value{0};
  Type type{Type::counter};
};

/// Telemetry health (the pbm_telemetry_* series).
struct Health {
  std::atomic<bool> cupti_attached{false};
  std::atomic<bool> subscriber_taken{false};   ///< another CUPTI client holds the subscriber
  std::atomic<std::uint64_t> dropped_records{0};   ///< CUPTI's own count (cuptiActivityGetNumDroppedRecords)
  std::atomic<std::uint64_t> buffers_processed{0};
  std::atomic<std::uint64_t> records_processed{0};
  std::atomic<std::uint64_t> buffer_pool_exhausted{0};  ///< buffer requests refused: pool empty
  std::atomic<std::uint64_t> unattributed_records{0};   ///< records with no matching API call
};

/// Range names are kept (label values, range stacks) cut to this many bytes, at a UTF-8 character
/// boundary: a user string of any length costs at most this much wherever it is copied.
inline constexpr std::size_t kMaxRangeNameBytes = 256;
/// `name` cut to kMaxRangeNameBytes, never inside a UTF-8 sequence.
std::string_view bounded_range_name(std::string_view name) noexcept;

/// Bounded table of NVTX range names used as label values.
class RangeLabels {
 public:
  static constexpr std::size_t kNone = 0;  ///< index of "none" (no open range)
  explicit RangeLabels(std::size_t cap);
  ~RangeLabels();
  RangeLabels(RangeLabels const&) = delete;
  RangeLabels& operator=(RangeLabels const&) = delete;

  /// Index for `name`: kNone for "", 1..cap for the first `cap` distinct names, other() after.
  std::size_t index(std::string_view name) noexcept;
  /// Like index() without taking a slot: npos for a name not seen while the table has room.
  std::size_t find(std::string_view name) const noexcept;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t other() const noexcept { return cap_ + 1; }
  std::size_t size() const noexcept { return cap_ + 2; }
  std::size_t cap() const noexcept { return cap_; }
  /// Label value for an index ("none", a range name, or "other").
  std::string label(std::size_t index) const;

 private:
  struct Slot;
  std::size_t cap_;
  std::unique_ptr<Slot[]> slots_;
  std::atomic<std::size_t> used_{0};
};

class Counters {
 public:
  static constexpr std::size_t kDefaultRangeCap = 32;
  explicit Counters(std::size_t range_label_cap = kDefaultRangeCap);
  Counters(Counters const&) = delete;
  Counters& operator=(Counters const&) = delete;

  /// `range` is the innermost open NVTX range name ("" for none).
  void add_memcpy(Direction d, MemoryKind memory, bool expected, std::string_view range,
                  std::uint64_t bytes) noexcept;
  void add_memset(std::uint64_t bytes) noexcept;
  void add_sync(SyncApi api, bool expected, std::string_view range) noexcept;
  void add_violation(Rule rule) noexcept;

  std::uint64_t memcpy_count(Direction d, MemoryKind memory, bool expected, std::string_view range) const;
  std::uint64_t memcpy_bytes(Direction d, MemoryKind memory, bool expected, std::string_view range) const;
  std::uint64_t sync_count(SyncApi api, bool expected, std::string_view range) const;
  std::uint64_t violation_count(Rule rule) const noexcept;
  /// Totals over all labels (convenient for tests and summaries).
  std::uint64_t memcpy_total(bool expected) const noexcept;
  std::uint64_t sync_total(bool expected) const noexcept;
  std::uint64_t violation_total() const noexcept;

  Health& health() noexcept { return health_; }
  Health const& health() const noexcept { return health_; }
  std::size_t range_label_cap() const noexcept { return ranges_.cap(); }

  /// Pure read of these counters: every non-zero memcpy/memset/sync series, plus violations by rule
  /// and health, which are always present (zero included) so alerts have a series to watch from the
  /// start. Names, types and labels from metric_table.hpp. No environment, no mailbox registry, no
  /// `rank` label: exporters::collect() adds the mailboxes and the rank.
  std::vector<CounterSample> snapshot() const;

 private:
  std::size_t memcpy_slot(Direction d, MemoryKind m, bool expected, std::size_t range) const noexcept;
  std::size_t sync_slot(SyncApi a, bool expected, std::size_t range) const noexcept;

  RangeLabels ranges_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> memcpy_count_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> memcpy_bytes_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> sync_count_;
  std::array<std::atomic<std::uint64_t>, kRuleCount> violations_{};
  std::atomic<std::uint64_t> memset_count_{0};
  std::atomic<std::uint64_t> memset_bytes_{0};
  Health health_;
};

}  // namespace pbm::telemetry
