// FNV-1a, 64-bit: range-name slots (counters.cpp) and violation sites (engine.cpp). Private to telemetry/.
#pragma once

#include <cstdint>
#include <string_view>

namespace pbm::telemetry::detail {

inline constexpr std::uint64_t kFnvOffset = 1469598103934665603ull;

/// `h` with the bytes of `s` mixed in; fnv1a(s) hashes `s` alone.
constexpr std::uint64_t fnv1a(std::string_view s, std::uint64_t h = kFnvOffset) noexcept {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace pbm::telemetry::detail
