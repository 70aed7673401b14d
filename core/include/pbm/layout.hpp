// The mailbox's memory layout: the header that lives in device memory, its constants, and the
// limits on capacity and stride. Plain data, usable from host and device code.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pbm {

/// "PBMB" in ASCII: marks an initialised mailbox header.
inline constexpr std::uint32_t kMagic = 0x424D4250u;
/// Bumped whenever RingHeader's layout or meaning changes.
inline constexpr std::uint32_t kLayoutVersion = 2;

/// Records are copied in 4-byte words at least, so the stride is a multiple of 4.
inline constexpr std::uint32_t kStrideAlignment = 4;
inline constexpr std::uint32_t kMaxStride = 1u << 20;                 // 1 MiB per record
inline constexpr std::uint64_t kMaxCapacity = 1ull << 31;             // records
inline constexpr std::uint64_t kMaxPayloadBytes = 1ull << 40;         // 1 TiB

/// The mailbox header, in device memory, followed by `capacity` 64-bit slot sequence words.
///
/// Positions are 64-bit and only ever increase (mod 2^64): `reserve` counts records reserved by
/// producers (= pushed), `consume` records claimed by consumers, `release` records whose slots
/// consumers have finished reading (= popped). `free_slots` is capacity - (reserved - released),
/// decremented by producers before they reserve so that a full mailbox refuses instead of
/// overwriting. Slot i's sequence word holds p+1 once the record at position p (p % capacity == i)
/// is committed. Producer- and consumer-side words sit on separate 128-byte lines.
struct alignas(128) RingHeader {
  // line 0: written once at initialisation
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t stride;        // bytes per record, multiple of 4
  std::uint32_t reserved0;
  std::uint64_t capacity;      // records
  std::uint64_t initial_position;  // positions start here (tests start near 2^32 / 2^64)
  std::uint8_t pad0[128 - 32];
  // line 1: producers' positions (every reservation: one fetch_add)
  std::uint64_t reserve;
  std::uint8_t pad1[128 - 8];
  // line 2: producers' slot count (every reservation: a load and a fetch_sub; consumers give slots
  // back here) and drops (rarely). Apart from `reserve` so that the two atomics of a reservation
  // go to different lines (why: BENCHMARKS.md, "Why the missed goals are missed", figure 3).
  std::int64_t free_slots;
  std::uint64_t dropped;
  std::uint8_t pad2[128 - 16];
  // line 3: consumers
  std::uint64_t consume;
  std::uint64_t release;
  std::uint64_t pop_calls;
  std::uint8_t pad3[128 - 24];
};
static_assert(sizeof(RingHeader) == 512, "RingHeader layout changed: bump kLayoutVersion");

/// Bytes of header memory (header + slot sequence words) for `capacity` records.
constexpr std::size_t header_bytes(std::uint64_t capacity) noexcept {
  return sizeof(RingHeader) + static_cast<std::size_t>(capacity) * sizeof(std::uint64_t);
}

/// Error codes reported by device-side validation (see ResultSlot::error).
enum class DeviceError : std::uint32_t {
  none = 0,
  bad_magic = 1,      // the header was never initialised or is corrupted
  bad_version = 2,    // initialised by an incompatible pbm
  stride_mismatch = 3,  // caller's stride differs from the header's
  bad_geometry = 4,   // capacity/stride in the header are out of range
  release_stalled = 5,  // a pop gave up waiting for an earlier claim to be released (see ring.cuh)
};

/// Human-readable name of a DeviceError.
constexpr char const* to_string(DeviceError e) noexcept {
  switch (e) {
    case DeviceError::none: return "none";
    case DeviceError::bad_magic: return "bad magic (header not initialised or corrupted)";
    case DeviceError::bad_version: return "unsupported header layout version";
    case DeviceError::stride_mismatch: return "record stride does not match the mailbox header";
    case DeviceError::bad_geometry: return "capacity or stride in the header out of range";
    case DeviceError::release_stalled: return "an earlier claim was never released (mailbox stalled)";
  }
  return "unknown";
}

/// What a pop reports besides its count (device API and ring). With DeviceError::release_stalled
/// the pop's records were copied out and are valid, but its slots stay claimed: see
/// detail::release_in_order. stalled_at is then the first position never released (absolute, as
/// in the header; subtract initial_position to count from initialisation).
struct PopStatus {
  DeviceError error;
  std::uint64_t stalled_at;
};

}  // namespace pbm
