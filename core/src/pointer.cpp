// Pointer classification (pbm/pointer.hpp) and the checks on user pointers and streams
// (pointer.hpp here).
#include "pointer.hpp"

#include <pbm/error.hpp>
#include <pbm/pointer.hpp>

#include <cuda.h>
#include <dlfcn.h>

#include <cstdlib>
#include <sstream>

namespace pbm {

namespace {
using GetPointerAttributes = CUresult (*)(unsigned, CUpointer_attribute*, void**, CUdeviceptr);

/// cuPointerGetAttributes from the driver the process already loaded (loading it if needed), never
/// through the runtime: classify_pointer runs inside CUPTI callbacks. Null where libcuda is missing.
GetPointerAttributes pointer_attributes_fn() noexcept {
  static GetPointerAttributes const fn = [] {
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    if (driver == nullptr) driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    return driver != nullptr ? reinterpret_cast<GetPointerAttributes>(dlsym(driver, "cuPointerGetAttributes"))
                             : GetPointerAttributes{nullptr};
  }();
  return fn;
}
}  // namespace

PointerInfo classify_pointer(void const* ptr, bool with_device) noexcept {
  PointerInfo info;
  if (ptr == nullptr) return info;
  GetPointerAttributes const get = pointer_attributes_fn();
  if (get == nullptr) return info;
  unsigned int memory_type = 0;  // CUmemorytype; 0 when not a CUDA pointer
  unsigned int managed = 0;      // documented as a boolean; zeroed wider so any width reads right
  int ordinal = -1;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
  void* data[] = {&memory_type, &managed, &ordinal};
  if (get(with_device ? 3 : 2, attrs, data, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return info;
  info.device = with_device ? ordinal : -1;
  if (managed != 0) {
    info.kind = MemoryKind::managed;
    return info;
  }
  switch (memory_type) {
    case 0: info.kind = MemoryKind::pageable; break;  // not a CUDA pointer: ordinary host memory
    case CU_MEMORYTYPE_HOST: info.kind = MemoryKind::pinned; break;
    case CU_MEMORYTYPE_DEVICE: info.kind = MemoryKind::device; break;
    case CU_MEMORYTYPE_ARRAY: info.kind = MemoryKind::array; break;
    case CU_MEMORYTYPE_UNIFIED: info.kind = MemoryKind::managed; break;
    default: info.kind = MemoryKind::unknown; break;
  }
  return info;
}

}  // namespace pbm

namespace pbm::detail {

namespace {
using GetAddressRange = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);

void* driver_entry(char const* name) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult status{};
  if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &status) != cudaSuccess ||
      status != cudaDriverEntryPointSuccess) {
    static_cast<void>(cudaGetLastError());
    return nullptr;
  }
  return p;
}

GetAddressRange address_range_fn() {
  static GetAddressRange const fn = reinterpret_cast<GetAddressRange>(driver_entry("cuMemGetAddressRange"));
  return fn;
}

std::string hex(void const* p) {
  std::ostringstream os;
  os << p;
  return os.str();
}

/// Where a pointer lives. One driver call (classify_pointer) on every push and pop, instead of
/// cudaPointerGetAttributes' runtime call: the runtime layer (and CUPTI's callback dispatch on
/// it, in count mode) is skipped. Falls back to the runtime call where the driver cannot say.
struct Location {
  bool cuda{false};     // allocated, mapped or registered with CUDA
  bool device{false};   // device memory (or managed)
  bool managed{false};
  int ordinal{-1};
};

Location locate(void const* ptr, char const* what) {
  Location loc;
  PointerInfo const info = classify_pointer(ptr, /*with_device=*/true);
  if (info.kind != MemoryKind::unknown) {
    loc.cuda = info.kind != MemoryKind::pageable;
    loc.managed = info.kind == MemoryKind::managed;
    loc.device = info.kind == MemoryKind::device || loc.managed;
    loc.ordinal = info.device;
    return loc;
  }
  cudaPointerAttributes attr{};
  cudaError_t const err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    PBM_EXPECTS(false, std::string(what) + " " + hex(ptr) + " is not CUDA memory (" + cudaGetErrorName(err) + ")");
  }
  loc.cuda = attr.type != cudaMemoryTypeUnregistered;
  loc.managed = attr.type == cudaMemoryTypeManaged;
  loc.device = attr.type == cudaMemoryTypeDevice || loc.managed;
  loc.ordinal = attr.device;
  return loc;
}

}  // namespace

void check_aligned(void const* ptr, std::size_t alignment, char const* what) {
  PBM_EXPECTS(ptr != nullptr, std::string(what) + " is null");
  PBM_EXPECTS(reinterpret_cast<std::uintptr_t>(ptr) % alignment == 0,
              std::string(what) + " " + hex(ptr) + " is not " + std::to_string(alignment) + "-byte aligned");
}

namespace {
/// Where a pointer lives and its allocation's range, from one cuPointerGetAttributes call (the
/// buffer check on every push and pop). False where that call cannot say; locate() and
/// cuMemGetAddressRange then answer.
bool locate_with_range(void const* ptr, Location& loc, CUdeviceptr& base, std::size_t& size) {
  GetPointerAttributes const get = pointer_attributes_fn();
  if (get == nullptr) return false;
  unsigned int memory_type = 0;  // CUmemorytype; 0 when not a CUDA pointer
  unsigned int managed = 0;
  int ordinal = -1;
  CUdeviceptr start = 0;
  std::size_t bytes = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                 CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  void* data[] = {&memory_type, &managed, &ordinal, &start, &bytes};
  if (get(5, attrs, data, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return false;
  if (managed == 0 && memory_type != CU_MEMORYTYPE_DEVICE) return false;  // the rare cases: the full path
  loc.cuda = true;
  loc.managed = managed != 0;
  loc.device = true;
  loc.ordinal = ordinal;
  base = start;
  size = bytes;
  return bytes != 0;
}
}  // namespace

void check_device_buffer(void const* ptr, std::uint64_t bytes, int device, char const* what) {
  PBM_EXPECTS(ptr != nullptr || bytes == 0, std::string(what) + " is null");
  if (bytes == 0) return;
  PBM_EXPECTS(reinterpret_cast<std::uintptr_t>(ptr) % 4 == 0,
              std::string(what) + " " + hex(ptr) + " is not 4-byte aligned");
  Location loc;
  CUdeviceptr base = 0;
  std::size_t size = 0;
  bool have_range = locate_with_range(ptr, loc, base, size);
  if (!have_range) loc = locate(ptr, what);
  PBM_EXPECTS(loc.device, std::string(what) + " " + hex(ptr) + " is host memory" +
                              (loc.cuda ? " (pinned or registered)" : "") + "; device memory is required");
  PBM_EXPECTS(loc.managed || loc.ordinal == device,
              std::string(what) + " " + hex(ptr) + " is on device " + std::to_string(loc.ordinal) +
                  ", the mailbox on device " + std::to_string(device));
  if (!have_range) {
    GetAddressRange const range = address_range_fn();
    have_range = range != nullptr && range(&base, &size, reinterpret_cast<CUdeviceptr>(ptr)) == CUDA_SUCCESS;
  }
  if (have_range) {
    auto const offset = reinterpret_cast<CUdeviceptr>(ptr) - base;
    PBM_EXPECTS(offset + bytes <= size, std::string(what) + " is too small: " + std::to_string(bytes) +
                                            " bytes needed, " + std::to_string(size - offset) +
                                            " available in its allocation");
  }
}

namespace {
bool default_stream(cudaStream_t stream) noexcept {
  return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

[[noreturn]] void invalid_stream(cudaError_t err) {
  static_cast<void>(cudaGetLastError());
  PBM_EXPECTS(false, std::string("invalid stream (") + cudaGetErrorName(err) + ")");
  std::abort();  // not reached: PBM_EXPECTS(false, ...) throws
}

void expect_device(int stream_device, int device) {
  PBM_EXPECTS(stream_device == device, "stream is on device " + std::to_string(stream_device) +
                                           ", the mailbox on device " + std::to_string(device));
}
}  // namespace

void check_stream_device(cudaStream_t stream, int device) {
  if (default_stream(stream)) return;  // current device's
  int stream_device = -1;
  cudaError_t const err = cudaStreamGetDevice(stream, &stream_device);
  if (err != cudaSuccess) invalid_stream(err);
  expect_device(stream_device, device);
}

StreamFacts stream_facts(cudaStream_t stream) {
  struct Entry {
    unsigned long long id;
    StreamFacts facts;
    bool valid;
  };
  constexpr unsigned kEntries = 4;
  thread_local Entry cache[kEntries] = {};  // trivially destructible: nothing runs at thread exit
  thread_local unsigned next = 0;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaError_t err = cudaStreamIsCapturing(stream, &status);
  if (err != cudaSuccess) {
    static_cast<void>(cudaGetLastError());  // e.g. the legacy stream during another thread's global capture
    return StreamFacts{-1, 0, true};
  }
  if (status != cudaStreamCaptureStatusNone) return StreamFacts{-1, 0, true};
  unsigned long long id = 0;
  err = cudaStreamGetId(stream, &id);
  if (err != cudaSuccess) invalid_stream(err);
  for (Entry const& e : cache)
    if (e.valid && e.id == id) return e.facts;
  StreamFacts facts{-1, 0, false};
  if (!default_stream(stream)) {
    err = cudaStreamGetDevice(stream, &facts.device);
    if (err != cudaSuccess) invalid_stream(err);
  }
  err = cudaStreamGetPriority(stream, &facts.priority);
  if (err != cudaSuccess) invalid_stream(err);
  cache[next] = Entry{id, facts, true};
  next = (next + 1) % kEntries;
  return facts;
}

StreamFacts checked_stream_facts(cudaStream_t stream, int device) {
  StreamFacts const facts = stream_facts(stream);
  if (facts.device >= 0) expect_device(facts.device, device);
  return facts;
}

}  // namespace pbm::detail
