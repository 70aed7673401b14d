// Reads typed values from a fuzzer's bytes. Past the end every read yields zeros, so a short input
// is still a complete (if dull) case. Works with gcc too (no <fuzzer/FuzzedDataProvider.h>), so the
// corpus replay runs in the normal build.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

namespace pbm::fuzz {

class Input {
 public:
  Input(std::uint8_t const* data, std::size_t size) noexcept : data_(data), size_(size) {}

  std::size_t remaining() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  template <class T>
  T take() noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    T v{};
    fill(&v, sizeof v);
    return v;
  }
  /// Copies up to `n` bytes into dst; what the input lacks is zero.
  void fill(void* dst, std::size_t n) noexcept {
    std::size_t const k = std::min(n, size_);
    if (k != 0) std::memcpy(dst, data_, k);
    if (k < n) std::memset(static_cast<unsigned char*>(dst) + k, 0, n - k);
    data_ += k;
    size_ -= k;
  }
  /// A length byte (0..max_len) followed by that many bytes: any bytes at all, NUL included.
  std::string take_string(std::size_t max_len) {
    std::size_t const len = std::min<std::size_t>(take<std::uint8_t>() % (max_len + 1), size_);
    std::string s(reinterpret_cast<char const*>(data_), len);
    data_ += len;
    size_ -= len;
    return s;
  }
  /// A uniformly-ish chosen index below n (n > 0).
  std::size_t pick(std::size_t n) noexcept { return take<std::uint8_t>() % n; }

 private:
  std::uint8_t const* data_;
  std::size_t size_;
};

}  // namespace pbm::fuzz

/// A broken property: abort with a message (libFuzzer then saves the input as a crash-* file).
#define PBM_FUZZ_CHECK(cond, msg)                                                              \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "pbm fuzz: property failed at %s:%d: %s: %s\n", __FILE__, __LINE__, \
                   #cond, std::string(msg).c_str());                                           \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
