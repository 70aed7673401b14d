// CUPTI's activity buffers on a CPU: pbm attaches to a stand-in libcupti (fake_cupti.cpp, loaded
// through PBM_CUPTI_PATH like the real one) and the test plays CUPTI: it asks for buffers until the
// bounded pool is empty, hands buffers back full of real CUDA 13.0 records, and reports records
// that CUPTI dropped. Every drop is counted where the exporter reads it, records are decoded, and
// nothing crashes (the real buffer callbacks of cupti_source.cpp run, not a copy of them).
#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cupti_activity.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifndef PBM_FAKE_CUPTI_PATH
#error "PBM_FAKE_CUPTI_PATH must name the fake libcupti"
#endif

namespace pt = pbm::telemetry;

namespace {

constexpr std::size_t kBuffers = 2;
constexpr std::size_t kBufferSize = 4096;

using RequestFn = std::uint8_t* (*)(std::size_t*);
using CompleteFn = void (*)(std::uint8_t*, std::size_t, std::size_t, std::size_t);

class CuptiBuffers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::setenv("PBM_CUPTI_PATH", PBM_FAKE_CUPTI_PATH, 1);
    ::unsetenv("PBM_CUPTI_KINDS");
    pt::Config config;
    config.mode = pt::Mode::count;
    config.buffer_count = kBuffers;
    config.buffer_size = kBufferSize;
    config.set_nvtx_injection = false;
    pt::start(config);
  }
  void SetUp() override {
    pt::Status const st = pt::status();
    ASSERT_TRUE(st.attached) << "could not attach to the fake libcupti: " << st.reason;
    void* lib = ::dlopen(PBM_FAKE_CUPTI_PATH, RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(lib, nullptr) << "pbm did not load " << PBM_FAKE_CUPTI_PATH;
    request_ = reinterpret_cast<RequestFn>(::dlsym(lib, "pbm_fake_cupti_request"));
    complete_ = reinterpret_cast<CompleteFn>(::dlsym(lib, "pbm_fake_cupti_complete"));
    ASSERT_NE(request_, nullptr);
    ASSERT_NE(complete_, nullptr);
  }
  static pt::Health const& health() { return pt::counters().health(); }

  RequestFn request_ = nullptr;
  CompleteFn complete_ = nullptr;
};

CUpti_ActivityMemcpy6 dtoh_pageable(std::uint64_t bytes) {
  CUpti_ActivityMemcpy6 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  r.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
  r.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  r.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
  r.bytes = bytes;
  return r;
}

std::uint64_t sample(char const* name) {
  for (pt::CounterSample const& s : pt::counters().snapshot())
    if (s.name == name) return s.value;
  return ~0ull;
}

}  // namespace

TEST_F(CuptiBuffers, AnEmptyPoolRefusesAndCountsAndBuffersComeBack) {
  std::uint64_t const exhausted = health().buffer_pool_exhausted.load();
  std::vector<std::uint8_t*> taken;
  for (std::size_t i = 0; i < kBuffers; ++i) {
    std::size_t size = 0;
    std::uint8_t* b = request_(&size);
    ASSERT_NE(b, nullptr) << "buffer " << i << " of a pool of " << kBuffers;
    EXPECT_EQ(size, kBufferSize);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 8, 0u) << "CUPTI needs 8-byte aligned buffers";
    taken.push_back(b);
  }
  std::size_t size = 123;
  EXPECT_EQ(request_(&size), nullptr) << "the pool is bounded: the third request is declined";
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(health().buffer_pool_exhausted.load(), exhausted + 1);
  EXPECT_EQ(sample("pbm_telemetry_buffer_pool_exhausted_total"), exhausted + 1);

  for (std::uint8_t* b : taken) complete_(b, kBufferSize, 0, 0);  // empty buffers come back
  std::uint8_t* again = request_(&size);
  EXPECT_NE(again, nullptr) << "a completed buffer returns to the pool";
  complete_(again, kBufferSize, 0, 0);
}

TEST_F(CuptiBuffers, DroppedRecordsAreCountedAndTheRestDecoded) {
  std::uint64_t const dropped = health().dropped_records.load();
  std::uint64_t const processed = health().records_processed.load();
  std::uint64_t const buffers = health().buffers_processed.load();
  std::uint64_t const copies = pt::counters().memcpy_total(false) + pt::counters().memcpy_total(true);

  std::size_t size = 0;
  std::uint8_t* b = request_(&size);
  ASSERT_NE(b, nullptr);
  std::size_t valid = 0;
  for (std::uint64_t i = 0; i < 3; ++i) {
    CUpti_ActivityMemcpy6 const r = dtoh_pageable(64 << i);
    std::memcpy(b + valid, &r, sizeof r);
    valid += sizeof r;
  }
  complete_(b, size, valid, 17);  // CUPTI also had to drop 17 records

  EXPECT_EQ(health().dropped_records.load(), dropped + 17);
  EXPECT_EQ(sample("pbm_telemetry_dropped_records_total"), dropped + 17);
  EXPECT_EQ(health().records_processed.load(), processed + 3);
  EXPECT_EQ(health().buffers_processed.load(), buffers + 1);
  EXPECT_EQ(pt::counters().memcpy_total(false) + pt::counters().memcpy_total(true), copies + 3);
}

TEST_F(CuptiBuffers, ABufferCutShortOrDeclinedIsSurvived) {
  std::uint64_t const processed = health().records_processed.load();
  std::uint64_t const dropped = health().dropped_records.load();
  std::size_t size = 0;
  std::uint8_t* b = request_(&size);
  ASSERT_NE(b, nullptr);
  CUpti_ActivityMemcpy6 const r = dtoh_pageable(8);
  std::memcpy(b, &r, sizeof r);
  std::memcpy(b + sizeof r, &r, sizeof r);
  complete_(b, size, sizeof r + sizeof r / 2, 0);  // the second record is incomplete: not read
  EXPECT_EQ(health().records_processed.load(), processed + 1);
  complete_(nullptr, 0, 0, 5);                       // no buffer at all, only drops
  EXPECT_EQ(health().dropped_records.load(), dropped + 5);
  std::uint8_t* again = request_(&size);
  EXPECT_NE(again, nullptr) << "the buffer cut short came back to the pool";
  complete_(again, size, 0, 0);
}
