// Plain data shared by host-launched kernels and the host: where a launch reports its result
// (pinned mapped host memory, read by the host without a memcpy or sync), the per-launch
// coordination cell its blocks share (device memory), and the stats snapshot.
#pragma once

#include <pbm/detail/config.hpp>
#include <pbm/layout.hpp>

#include <cstdint>

namespace pbm::detail {

/// In pinned, mapped host memory. The kernel's last block publishes the launch's outcome in `done`
/// with one 8-byte store: count, error and the launch's generation packed together (done_word), so
/// the host never sees a count without its generation and the kernel needs no fence between them.
/// stalled_at is written before `done`, behind a system-scope fence, when the error says so.
struct alignas(64) ResultSlot {
  std::uint64_t done;        // done_word(generation, count, error); 0 before the first launch
  std::uint64_t stalled_at;  // with release_stalled: the position never released, counted from initial_position
  std::uint8_t pad[64 - 16];
};

/// The generation bits a done word keeps. A slot is reused only after the host saw its previous
/// launch's word, so the stale word always holds the previous generation: 24 bits never alias.
inline constexpr std::uint64_t kGenerationMask = (std::uint64_t{1} << 24) - 1;

/// count (< 2^32: never more than a mailbox's capacity, at most 2^31), error (a DeviceError,
/// < 256) and the generation's low 24 bits, in one word.
PBM_HD constexpr std::uint64_t done_word(std::uint64_t generation, std::uint64_t count, std::uint32_t error) noexcept {
  return ((generation & kGenerationMask) << 40) | (std::uint64_t{error & 0xffu} << 32) | (count & 0xffffffffu);
}
PBM_HD constexpr bool done_matches(std::uint64_t word, std::uint64_t generation) noexcept {
  return (word >> 40) == (generation & kGenerationMask);
}
PBM_HD constexpr std::uint64_t done_count(std::uint64_t word) noexcept { return word & 0xffffffffu; }
PBM_HD constexpr std::uint32_t done_error(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>((word >> 32) & 0xffu);
}

/// In device memory, one per ResultSlot. A push's first block to arrive publishes the launch's
/// reservation here (arrived, ready, base, count, error); a pop's blocks leave what they read and
/// found (from_max, from_min_inverted, gap_inverted, error). The last block to finish resets the cell.
/// A slot (and so its cell) is reused only after the host saw `done`, so launches never share one.
struct alignas(64) LaunchCell {
  unsigned int arrived;
  unsigned int finished;
  unsigned int ready;
  std::uint32_t error;
  unsigned long long base;
  unsigned long long count;
  unsigned long long gap_inverted;  // a pop's first uncommitted record found by any block, bitwise inverted (0: none)
  unsigned long long from_max;           // the largest and (inverted) smallest `consume` a pop's blocks
  unsigned long long from_min_inverted;  // read: equal when they all read the same
  std::uint8_t pad[64 - 56];
};

static_assert(kMaxCapacity <= 0xffffffffull, "done_word packs a count of at most 32 bits");

/// In pinned, mapped host memory, one per mailbox: written by the last block of every
/// host-launched push/pop. Each field holds a value it had during the launch that wrote it (a
/// one-block pop writes the counters it read at its start, and the positions it moved as it left
/// them); concurrent launches may interleave their writes, so readers merge monotonic fields by max.
struct alignas(64) StatsSnapshot {
  std::uint64_t reserve;
  std::uint64_t consume;
  std::uint64_t release;
  std::uint64_t dropped;
  std::uint64_t pop_calls;
  std::uint64_t initial_position;
  std::uint32_t error;   // last DeviceError seen by a launch
  std::uint32_t reserved;
  // 1 + (position - initial_position) of the record the last pop that took fewer than it asked
  // for stopped at (not committed when it scanned); 0 before any such pop. Stats::head_uncommitted.
  std::uint64_t pop_gap;
};

}  // namespace pbm::detail
