// Host API checks that need no GPU: input validation happens before any CUDA call, errors carry
// the bad value, CUDA failures become typed exceptions with the error's name and file:line.
#include <pbm/error.hpp>
#include <pbm/mailbox.hpp>
#include <pbm/pointer.hpp>
#include <pbm/stream.hpp>

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace {

// Move-only, and moves never throw (the vector of mailboxes a user keeps relies on it).
static_assert(std::is_nothrow_move_constructible_v<pbm::Mailbox>);
static_assert(std::is_nothrow_move_assignable_v<pbm::Mailbox>);
static_assert(!std::is_copy_constructible_v<pbm::Mailbox> && !std::is_copy_assignable_v<pbm::Mailbox>);

std::string message_of(std::uint64_t capacity, std::uint32_t stride) {
  try {
    pbm::validate_geometry(capacity, stride);
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return {};
}

TEST(HostApi, GeometryErrorsNameTheBadValue) {
  EXPECT_NE(message_of(0, 16).find("capacity must be at least 1"), std::string::npos);
  EXPECT_NE(message_of(pbm::kMaxCapacity + 1, 16).find(std::to_string(pbm::kMaxCapacity + 1)), std::string::npos);
  EXPECT_NE(message_of(8, 0).find("stride must be positive"), std::string::npos);
  EXPECT_NE(message_of(8, 6).find("multiple of 4 bytes, got 6"), std::string::npos);
  EXPECT_NE(message_of(8, pbm::kMaxStride + 4).find(std::to_string(pbm::kMaxStride + 4)), std::string::npos);
  EXPECT_NE(message_of(pbm::kMaxCapacity, pbm::kMaxStride).find("exceeds the maximum"), std::string::npos);
  EXPECT_EQ(message_of(1, 4), "");
  EXPECT_EQ(message_of(1024, 64), "");
}

TEST(HostApi, ConstructorRejectsBadGeometryBeforeTouchingTheDevice) {
  // Holds with or without a GPU: validation comes first.
  EXPECT_THROW(pbm::Mailbox(0, 16), std::invalid_argument);
  EXPECT_THROW(pbm::Mailbox(16, 10), std::invalid_argument);
}

TEST(HostApi, MissingDeviceIsAClearError) {
  int count = 0;
  cudaError_t const err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    static_cast<void>(cudaGetLastError());
    try {
      pbm::Mailbox mailbox(16, 16);
      FAIL() << "a mailbox was created without a device";
    } catch (pbm::cuda_error const& e) {
      std::string const what = e.what();
      EXPECT_NE(what.find("cudaGetDeviceCount"), std::string::npos) << what;
      EXPECT_NE(what.find("host_api_test") == std::string::npos ? what.find("mailbox.cu") : 0, std::string::npos)
          << "file:line missing: " << what;
      EXPECT_NE(e.code(), cudaSuccess);
    }
  } else {
    try {
      pbm::Mailbox mailbox(16, 16, count + 3);
      FAIL() << "a mailbox was created on a device that does not exist";
    } catch (std::invalid_argument const& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device " + std::to_string(count + 3)), std::string::npos);
    }
  }
}

TEST(HostApi, AdoptRejectsMisalignedMemoryBeforeAnyCudaCall) {
  // 4-byte aligned, not 8: the header's 64-bit atomics would fault (a sticky CUDA error). The
  // check needs no device, so it holds here with or without a GPU.
  auto message = [](void* header, void* payload) -> std::string {
    try {
      pbm::Mailbox::adopt(header, payload, 16, 16, 0, "misaligned", false);
    } catch (std::invalid_argument const& e) {
      return e.what();
    }
    return "no std::invalid_argument";
  };
  auto* const header = reinterpret_cast<void*>(std::uintptr_t{0x7f0000010004});
  auto* const payload = reinterpret_cast<void*>(std::uintptr_t{0x7f0000020000});
  std::string const what = message(header, payload);
  EXPECT_NE(what.find("mailbox header 0x7f0000010004"), std::string::npos) << what;
  EXPECT_NE(what.find(std::to_string(alignof(pbm::RingHeader)) + "-byte aligned"), std::string::npos) << what;
  std::string const at64 = message(reinterpret_cast<void*>(std::uintptr_t{0x7f0000010040}), payload);
  EXPECT_NE(at64.find("aligned"), std::string::npos) << at64;
  std::string const odd_payload = message(reinterpret_cast<void*>(std::uintptr_t{0x7f0000010000}),
                                          reinterpret_cast<void*>(std::uintptr_t{0x7f0000020002}));
  EXPECT_NE(odd_payload.find("mailbox payload 0x7f0000020002 is not 4-byte aligned"), std::string::npos)
      << odd_payload;
  EXPECT_NE(message(nullptr, payload).find("mailbox header is null"), std::string::npos);
}

TEST(HostApi, CudaErrorNamesTheCallTheErrorAndTheLine) {
  pbm::cuda_error const e(cudaErrorInvalidValue, "cudaFoo(x)", "file.cu", 42);
  std::string const what = e.what();
  EXPECT_NE(what.find("cudaErrorInvalidValue"), std::string::npos);
  EXPECT_NE(what.find("cudaFoo(x)"), std::string::npos);
  EXPECT_NE(what.find("file.cu:42"), std::string::npos);
  EXPECT_EQ(e.code(), cudaErrorInvalidValue);
}

TEST(HostApi, CudaTryThrowsTypedErrorAndExpectsThrowsInvalidArgument) {
  auto fails = [] { PBM_CUDA_TRY(cudaErrorMemoryAllocation); };
  EXPECT_THROW(fails(), pbm::cuda_error);
  auto bad = [] { PBM_EXPECTS(1 + 1 == 3, "arithmetic is broken"); };
  try {
    bad();
    FAIL();
  } catch (std::invalid_argument const& e) {
    EXPECT_STREQ(e.what(), "pbm: arithmetic is broken");
  }
}

TEST(HostApi, DeviceErrorsHaveReadableNames) {
  EXPECT_NE(std::string(pbm::to_string(pbm::DeviceError::bad_magic)).find("magic"), std::string::npos);
  EXPECT_NE(std::string(pbm::to_string(pbm::DeviceError::stride_mismatch)).find("stride"), std::string::npos);
  EXPECT_STREQ(pbm::to_string(pbm::StreamClass::focus), "focus");
  EXPECT_STREQ(pbm::to_string(pbm::StreamClass::peripheral), "peripheral");
}

TEST(HostApi, EmptyHandleRefusesUse) {
  pbm::OpHandle handle;
  EXPECT_FALSE(handle.valid());
  EXPECT_THROW(static_cast<void>(handle.ready()), std::logic_error);
  EXPECT_THROW(static_cast<void>(handle.wait()), std::logic_error);
  EXPECT_EQ(handle.event(), nullptr);
}

}  // namespace

TEST(HostApi, StreamClassComesFromThePriorityAndTheDeviceRange) {
  constexpr pbm::PriorityRange hopper{0, -5};  // least, greatest (numerically lowest)
  static_assert(pbm::stream_class_for(-5, hopper) == pbm::StreamClass::focus);
  EXPECT_EQ(pbm::stream_class_for(-5, hopper), pbm::StreamClass::focus);
  EXPECT_EQ(pbm::stream_class_for(0, hopper), pbm::StreamClass::peripheral);
  EXPECT_EQ(pbm::stream_class_for(-2, hopper), pbm::StreamClass::peripheral);  // between: not the focus priority
  constexpr pbm::PriorityRange flat{0, 0};  // a device without priorities: nothing is focus
  EXPECT_EQ(pbm::stream_class_for(0, flat), pbm::StreamClass::peripheral);
}

TEST(HostApi, ClassifyPointerOfNullIsUnknownAndNeverThrows) {
  pbm::PointerInfo const info = pbm::classify_pointer(nullptr, true);
  EXPECT_EQ(info.kind, pbm::MemoryKind::unknown);
  EXPECT_EQ(info.device, -1);
  int on_the_stack = 0;  // pageable where a driver is loaded, unknown where there is none
  pbm::MemoryKind const kind = pbm::classify_pointer(&on_the_stack).kind;
  EXPECT_TRUE(kind == pbm::MemoryKind::pageable || kind == pbm::MemoryKind::unknown) << static_cast<int>(kind);
}
