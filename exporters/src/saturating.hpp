// Sums of exported counters saturate at 2^64 - 1 instead of wrapping: a wrapped total reads as a
// small number (nothing pushed, nothing copied). Private to exporters/.
#pragma once

#include <cstdint>
#include <limits>

namespace pbm::exporters::detail {

constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  return a > kMax - b ? kMax : a + b;
}

}  // namespace pbm::exporters::detail
