// Where a pointer's memory lives, as the CUDA driver says: pbm's one pointer classifier. The
// mailbox's argument checks and telemetry's copy and memset decoding both ask it.
// Thread-safety: classify_pointer may be called from any thread, CUPTI callbacks included.
#pragma once

#include <cstdint>

namespace pbm {

/// The kind of memory a pointer points into.
enum class MemoryKind : std::uint8_t {
  pageable,  // host memory CUDA does not know (malloc, the stack)
  pinned,    // page-locked or registered host memory
  device,    // device memory
  managed,   // Unified Memory (managed)
  array,     // a CUDA array
  unknown,   // the driver could not say: null pointer, no driver, or the driver refused the pointer
};

struct PointerInfo {
  MemoryKind kind = MemoryKind::unknown;
  int device = -1;  // ordinal of the device the memory belongs to, when asked for; -1 otherwise
};

/// Classifies `ptr` with one cuPointerGetAttributes call, resolved once from the libcuda the
/// process has loaded (or loads). Makes no runtime API call, so CUPTI callbacks may use it.
/// Does not synchronise; never throws. `with_device`: also asks for the device ordinal.
PointerInfo classify_pointer(void const* ptr, bool with_device = false) noexcept;

}  // namespace pbm
