// Lock-free counters: relaxed atomic adds into fixed arrays indexed by label values.
#include <pbm/telemetry/counters.hpp>

#include "fnv.hpp"
#include "sample_set.hpp"

#include <algorithm>
#include <stdexcept>

namespace pbm::telemetry {
namespace {

using detail::fnv1a;

constexpr std::size_t kMaxRangeCap = 4096;

}  // namespace

std::string_view bounded_range_name(std::string_view name) noexcept {
  if (name.size() <= kMaxRangeNameBytes) return name;
  std::size_t n = kMaxRangeNameBytes;
  while (n > 0 && (static_cast<unsigned char>(name[n]) & 0xc0) == 0x80) --n;  // not inside a character
  return name.substr(0, n);
}


// A slot is written once by the thread that claimed it, then published with `ready`.
struct RangeLabels::Slot {
  std::atomic<bool> ready{false};
  std::uint64_t hash{0};
  std::string name;
};

std::size_t checked_cap(std::size_t cap) {
  if (cap > kMaxRangeCap) {
    throw std::invalid_argument("pbm telemetry: range label cap " + std::to_string(cap) + " exceeds " +
                                std::to_string(kMaxRangeCap));
  }
  return cap;
}

RangeLabels::RangeLabels(std::size_t cap) : cap_(checked_cap(cap)), slots_(new Slot[cap == 0 ? 1 : cap]) {}
RangeLabels::~RangeLabels() = default;

std::size_t RangeLabels::find(std::string_view name) const noexcept {
  if (name.empty()) return kNone;
  name = bounded_range_name(name);
  std::uint64_t const h = fnv1a(name);
  std::size_t const used = std::min(used_.load(std::memory_order_acquire), cap_);
  for (std::size_t i = 0; i < used; ++i) {
    Slot const& s = slots_[i];
    if (s.ready.load(std::memory_order_acquire) && s.hash == h && s.name == name) return i + 1;
  }
  return used >= cap_ ? other() : npos;
}

std::size_t RangeLabels::index(std::string_view name) noexcept {
  name = bounded_range_name(name);
  std::size_t const found = find(name);
  if (found != npos) return found;
  std::size_t const claimed = used_.fetch_add(1, std::memory_order_acq_rel);
  if (claimed >= cap_) return other();
  // Two threads inserting the same new name may both claim a slot; snapshot() merges by label.
  Slot& s = slots_[claimed];
  try {
    s.name.assign(name);
  } catch (...) {
    return other();  // slot stays unpublished; counted under "other"
  }
  s.hash = fnv1a(name);
  s.ready.store(true, std::memory_order_release);
  return claimed + 1;
}

std::string RangeLabels::label(std::size_t index) const {
  if (index == kNone) return "none";
  if (index == other()) return "other";
  Slot const& s = slots_[index - 1];
  return s.ready.load(std::memory_order_acquire) ? s.name : "other";
}

Counters::Counters(std::size_t range_label_cap)
    : ranges_(range_label_cap),
      memcpy_count_(new std::atomic<std::uint64_t>[kDirectionCount * kMemoryKindCount * 2 * ranges_.size()]()),
      memcpy_bytes_(new std::atomic<std::uint64_t>[kDirectionCount * kMemoryKindCount * 2 * ranges_.size()]()),
      sync_count_(new std::atomic<std::uint64_t>[kSyncApiCount * 2 * ranges_.size()]()) {}

std::size_t Counters::memcpy_slot(Direction d, MemoryKind m, bool expected, std::size_t range) const noexcept {
  return ((static_cast<std::size_t>(d) * kMemoryKindCount + static_cast<std::size_t>(m)) * 2 +
          (expected ? 1 : 0)) * ranges_.size() + range;
}

std::size_t Counters::sync_slot(SyncApi a, bool expected, std::size_t range) const noexcept {
  return (static_cast<std::size_t>(a) * 2 + (expected ? 1 : 0)) * ranges_.size() + range;
}

void Counters::add_memcpy(Direction d, MemoryKind memory, bool expected, std::string_view range,
                          std::uint64_t bytes) noexcept {
  std::size_t const slot = memcpy_slot(d, memory, expected, ranges_.index(range));
  memcpy_count_[slot].fetch_add(1, std::memory_order_relaxed);
  memcpy_bytes_[slot].fetch_add(bytes, std::memory_order_relaxed);
}

void Counters::add_memset(std::uint64_t bytes) noexcept {
  memset_count_.fetch_add(1, std::memory_order_relaxed);
  memset_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void Counters::add_sync(SyncApi api, bool expected, std::string_view range) noexcept {
  sync_count_[sync_slot(api, expected, ranges_.index(range))].fetch_add(1, std::memory_order_relaxed);
}

void Counters::add_violation(Rule rule) noexcept {
  violations_[static_cast<std::size_t>(rule)].fetch_add(1, std::memory_order_relaxed);
}

// Queries never take a label slot; a name never counted reads as zero.
std::uint64_t Counters::memcpy_count(Direction d, MemoryKind memory, bool expected, std::string_view range) const {
  std::size_t const r = ranges_.find(range);
  return r == RangeLabels::npos ? 0 : memcpy_count_[memcpy_slot(d, memory, expected, r)].load(std::memory_order_relaxed);
}
std::uint64_t Counters::memcpy_bytes(Direction d, MemoryKind memory, bool expected, std::string_view range) const {
  std::size_t const r = ranges_.find(range);
  return r == RangeLabels::npos ? 0 : memcpy_bytes_[memcpy_slot(d, memory, expected, r)].load(std::memory_order_relaxed);
}
std::uint64_t Counters::sync_count(SyncApi api, bool expected, std::string_view range) const {
  std::size_t const r = ranges_.find(range);
  return r == RangeLabels::npos ? 0 : sync_count_[sync_slot(api, expected, r)].load(std::memory_order_relaxed);
}
std::uint64_t Counters::violation_count(Rule rule) const noexcept {
  return violations_[static_cast<std::size_t>(rule)].load(std::memory_order_relaxed);
}

std::uint64_t Counters::memcpy_total(bool expected) const noexcept {
  std::uint64_t sum = 0;
  for (std::size_t d = 0; d < kDirectionCount; ++d)
    for (std::size_t m = 0; m < kMemoryKindCount; ++m)
      for (std::size_t r = 0; r < ranges_.size(); ++r)
        sum += memcpy_count_[memcpy_slot(Direction(d), MemoryKind(m), expected, r)].load(std::memory_order_relaxed);
  return sum;
}

std::uint64_t Counters::sync_total(bool expected) const noexcept {
  std::uint64_t sum = 0;
  for (std::size_t a = 0; a < kSyncApiCount; ++a)
    for (std::size_t r = 0; r < ranges_.size(); ++r)
      sum += sync_count_[sync_slot(SyncApi(a), expected, r)].load(std::memory_order_relaxed);
  return sum;
}

std::uint64_t Counters::violation_total() const noexcept {
  std::uint64_t sum = 0;
  for (auto const& v : violations_) sum += v.load(std::memory_order_relaxed);
  return sum;
}

std::vector<CounterSample> Counters::snapshot() const {
  detail::SampleSet ranged;  // several range slots may carry one label ("other", a raced name)
  auto expected_label = [](std::size_t e) { return e ? std::string("true") : std::string("false"); };
  for (std::size_t d = 0; d < kDirectionCount; ++d)
    for (std::size_t m = 0; m < kMemoryKindCount; ++m)
      for (std::size_t e = 0; e < 2; ++e)
        for (std::size_t r = 0; r < ranges_.size(); ++r) {
          std::size_t const slot = memcpy_slot(Direction(d), MemoryKind(m), e != 0, r);
          std::uint64_t const n = memcpy_count_[slot].load(std::memory_order_relaxed);
          if (n == 0) continue;
          std::map<std::string, std::string> labels{{"direction", std::string(to_string(Direction(d)))},
                                                    {"memory", std::string(to_string(MemoryKind(m)))},
                                                    {"expected", expected_label(e)},
                                                    {"range", ranges_.label(r)}};
          ranged.add(metric(MetricId::memcpy_total), labels, n);
          ranged.add(metric(MetricId::memcpy_bytes), std::move(labels),
                     memcpy_bytes_[slot].load(std::memory_order_relaxed));
        }
  for (std::size_t a = 0; a < kSyncApiCount; ++a)
    for (std::size_t e = 0; e < 2; ++e)
      for (std::size_t r = 0; r < ranges_.size(); ++r) {
        std::uint64_t const n = sync_count_[sync_slot(SyncApi(a), e != 0, r)].load(std::memory_order_relaxed);
        if (n == 0) continue;
        ranged.add(metric(MetricId::sync_total),
                   {{"api", std::string(to_string(SyncApi(a)))}, {"expected", expected_label(e)},
                    {"range", ranges_.label(r)}},
                   n);
      }
  std::vector<CounterSample> out = std::move(ranged).take();
  auto add = [&out](MetricId id, std::uint64_t value, std::map<std::string, std::string> labels = {}) {
    Metric const& m = metric(id);
    out.push_back(CounterSample{std::string(m.name), std::move(labels), value, m.type});
  };
  if (std::uint64_t n = memset_count_.load(std::memory_order_relaxed); n != 0) {
    add(MetricId::memset_total, n);
    add(MetricId::memset_bytes, memset_bytes_.load(std::memory_order_relaxed));
  }
  for (std::size_t r = 0; r < kRuleCount; ++r) {
    add(MetricId::violations, violations_[r].load(std::memory_order_relaxed),
        {{"rule", std::string(to_string(Rule(r)))}});
  }
  add(MetricId::telemetry_cupti_attached, health_.cupti_attached.load() ? 1 : 0);
  add(MetricId::telemetry_subscriber_taken, health_.subscriber_taken.load() ? 1 : 0);
  add(MetricId::telemetry_dropped_records, health_.dropped_records.load());
  add(MetricId::telemetry_buffers_processed, health_.buffers_processed.load());
  add(MetricId::telemetry_records_processed, health_.records_processed.load());
  add(MetricId::telemetry_buffer_pool_exhausted, health_.buffer_pool_exhausted.load());
  add(MetricId::telemetry_unattributed_records, health_.unattributed_records.load());
  return out;
}

}  // namespace pbm::telemetry
