// GPU tests: real CUPTI detection on a real device. Each case is its own ctest process
// (gtest_discover_tests), since CUPTI and NVTX injection are process-wide. Skips without a device.
#include "engine.hpp"
#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/nvtx.hpp>
#include <pbm/telemetry/policy.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <cuda.h>
#include <cuda_runtime.h>
#include <cupti.h>
#include <gtest/gtest.h>
#include <nvtx3/nvToolsExt.h>

#include <dlfcn.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

struct Recorder : pt::Observer {
  std::mutex mu;
  std::vector<pt::MemcpyEvent> copies;
  std::vector<pt::SyncEvent> syncs;
  std::vector<pt::Violation> violations;
  void on_violation(pt::Violation const& v) override {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(v);
  }
  void on_memcpy(pt::MemcpyEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    copies.push_back(ev);
  }
  void on_sync(pt::SyncEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    syncs.push_back(ev);
  }
};

constexpr std::size_t kBytes = 1 << 20;

class TelemetryGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_device()) GTEST_SKIP() << "no CUDA device";
    CHECK_CUDA(cudaFree(nullptr));  // create the context before measuring
    pt::Config config;
    config.mode = pt::Mode::count;
    config.marker_activity = true;  // PbmNvtxRangesReachCuptiAsDomainPbm checks MARKER records
    pt::start(config);
    pt::Status const st = pt::status();
    if (st.subscriber_taken) GTEST_SKIP() << "another CUPTI client holds the subscriber: " << st.reason;
    ASSERT_TRUE(st.attached) << st.reason;
    CHECK_CUDA(cudaMalloc(&device_, kBytes));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    pt::flush();
    pt::add_observer(recorder_);
  }
  void TearDown() override {
    pt::remove_observer(recorder_);
    if (device_ != nullptr) cudaFree(device_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  pt::Counters& c() { return pt::counters(); }

  void* device_{nullptr};
  cudaStream_t stream_{nullptr};
  Recorder recorder_;
};

}  // namespace

TEST_F(TelemetryGpu, SynchronousDeviceToHostCopyIsCaughtWithRange) {
  std::vector<char> host(kBytes);  // pageable
  auto const copies_before = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "d2h_range");
  auto const dtoh_before = c().violation_count(pt::Rule::memcpy_dtoh);
  nvtxRangePushA("d2h_range");
  CHECK_CUDA(cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost));
  nvtxRangePop();
  pt::flush();
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "d2h_range") - copies_before, 1u);
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_dtoh) - dtoh_before, 1u);
  EXPECT_GE(c().sync_count(pt::SyncApi::memcpy_sync, false, "d2h_range"), 1u);
  std::lock_guard<std::mutex> lock(recorder_.mu);
  auto it = std::find_if(recorder_.copies.begin(), recorder_.copies.end(),
                         [](pt::MemcpyEvent const& e) { return e.direction == pt::Direction::DtoH; });
  ASSERT_NE(it, recorder_.copies.end());
  EXPECT_EQ(it->bytes, kBytes);
  EXPECT_EQ(it->thread, pd::current_thread_id());
  ASSERT_FALSE(it->ranges.empty());
  EXPECT_EQ(it->ranges.back().name, "d2h_range");
}

TEST_F(TelemetryGpu, PageableAsyncCopyIsCaught) {
  std::vector<char> host(kBytes, 1);  // pageable
  auto const before = c().violation_count(pt::Rule::memcpy_pageable);
  CHECK_CUDA(cudaMemcpyAsync(device_, host.data(), kBytes, cudaMemcpyHostToDevice, stream_));
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_pageable) - before, 1u);
  EXPECT_GE(c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pageable, false, ""), 1u);
}

TEST_F(TelemetryGpu, PinnedAsyncCopyIsExpected) {
  void* pinned = nullptr;
  CHECK_CUDA(cudaMallocHost(&pinned, kBytes));
  pt::flush();
  auto const violations_before = c().violation_total();
  auto const expected_before = c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "");
  CHECK_CUDA(cudaMemcpyAsync(device_, pinned, kBytes, cudaMemcpyHostToDevice, stream_));
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "") - expected_before, 1u);
  EXPECT_EQ(c().violation_total(), violations_before);
  cudaFreeHost(pinned);
}

TEST_F(TelemetryGpu, StreamSynchronizeIsCaughtOnceWithRange) {
  auto const before = c().sync_count(pt::SyncApi::stream_synchronize, false, "sync_range");
  nvtxRangePushA("sync_range");
  CHECK_CUDA(cudaStreamSynchronize(stream_));
  nvtxRangePop();
  pt::flush();  // the SYNCHRONIZATION record must not count it again
  EXPECT_EQ(c().sync_count(pt::SyncApi::stream_synchronize, false, "sync_range") - before, 1u);
}

TEST_F(TelemetryGpu, DeviceSynchronizeIsCaughtOnce) {
  auto const before = c().sync_count(pt::SyncApi::device_synchronize, false, "");
  auto const ctx_before = c().sync_total(false) - before;
  CHECK_CUDA(cudaDeviceSynchronize());
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::device_synchronize, false, ""), before + 1);
  // Its context-synchronize record (when CUDA emits one) is deduplicated.
  EXPECT_EQ(c().sync_total(false) - c().sync_count(pt::SyncApi::device_synchronize, false, ""), ctx_before);
}

TEST_F(TelemetryGpu, EventSynchronizeIsCaught) {
  cudaEvent_t event{};
  CHECK_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  CHECK_CUDA(cudaEventRecord(event, stream_));
  auto const before = c().sync_count(pt::SyncApi::event_synchronize, false, "");
  CHECK_CUDA(cudaEventSynchronize(event));
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::event_synchronize, false, "") - before, 1u);
  cudaEventDestroy(event);
}

TEST_F(TelemetryGpu, PbmOwnWaitIsExpected) {
  auto const before = c().sync_count(pt::SyncApi::stream_synchronize, true, "");
  {
    pbm::ExpectedSyncScope pbm_wait;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  EXPECT_EQ(c().sync_count(pt::SyncApi::stream_synchronize, true, "") - before, 1u);
}

TEST_F(TelemetryGpu, AssertModeAbortsWithAReportNamingTheRange) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<char> host(kBytes);
  EXPECT_DEATH(
      {
        pt::set_mode(pt::Mode::assert_);
        nvtxRangePushA("fatal_range");
        (void)cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost);
        pt::flush();
      },
      "unexpected (sync|memcpy)(.|\n)*fatal_range(.|\n)*aborting");
}

TEST_F(TelemetryGpu, PbmNvtxRangesReachCuptiAsDomainPbm) {
  {
    PBM_NVTX_RANGE(push, push);  // what Mailbox::push opens: domain "pbm", registered "pbm::push"
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  pt::flush();
  auto const observed = pd::engine().observed_ranges();
  EXPECT_NE(std::find(observed.begin(), observed.end(),
                      std::make_pair(std::string("pbm"), std::string(pbm::nvtx::msg::push::message))),
            observed.end())
      << "MARKER records did not carry domain pbm / pbm::push (is NVTX_INJECTION64_PATH set?)";
  // The API callback saw the same range open on this thread.
  std::lock_guard<std::mutex> lock(recorder_.mu);
  ASSERT_FALSE(recorder_.syncs.empty());
  pt::RangeStack const& ranges = recorder_.syncs.back().ranges;
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.back().domain, "pbm");
  EXPECT_EQ(ranges.back().name, pbm::nvtx::msg::push::message);
}

TEST_F(TelemetryGpu, ActivityRecordsModeJudgesTheSameCopiesFromRecords) {
  // Default: copies are judged at their API call (no MEMCPY records). With activity_records the
  // same copy is judged from its CUPTI record: same direction, memory and rule.
  pt::detach();
  pt::Config config;
  config.mode = pt::Mode::count;
  config.activity_records = true;
  pt::start(config);
  ASSERT_TRUE(pt::status().attached) << pt::status().reason;
  std::vector<char> host(kBytes);  // pageable
  auto const records_before = c().health().records_processed.load();
  auto const dtoh_before = c().violation_count(pt::Rule::memcpy_dtoh);
  auto const copies_before = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "rec_range");
  nvtxRangePushA("rec_range");
  CHECK_CUDA(cudaMemcpy(host.data(), device_, kBytes, cudaMemcpyDeviceToHost));
  nvtxRangePop();
  pt::flush();
  EXPECT_GT(c().health().records_processed.load(), records_before) << "no activity record arrived";
  EXPECT_EQ(c().violation_count(pt::Rule::memcpy_dtoh) - dtoh_before, 1u);
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "rec_range") - copies_before, 1u)
      << "counted once: the call did not also produce an event";
  // Back to the default for the other tests.
  pt::detach();
  pt::Config defaults;
  defaults.mode = pt::Mode::count;
  defaults.marker_activity = true;
  pt::start(defaults);
  ASSERT_TRUE(pt::status().attached) << pt::status().reason;
}

TEST_F(TelemetryGpu, StepsAsideForAnotherSubscriberAndReattaches) {
  pt::detach();
  CUpti_SubscriberHandle other{};
  auto noop = [](void*, CUpti_CallbackDomain, CUpti_CallbackId, void const*) {};
  ASSERT_EQ(cuptiSubscribe(&other, noop, nullptr), CUPTI_SUCCESS);
  EXPECT_FALSE(pt::attach());
  pt::Status const st = pt::status();
  EXPECT_TRUE(st.subscriber_taken);
  EXPECT_FALSE(st.attached);
  EXPECT_TRUE(c().health().subscriber_taken.load());
  // The application keeps running: CUDA works, nothing is counted.
  auto const before = c().sync_total(false);
  CHECK_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(c().sync_total(false), before);
  ASSERT_EQ(cuptiUnsubscribe(other), CUPTI_SUCCESS);
  EXPECT_TRUE(pt::attach()) << pt::status().reason;
  CHECK_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(c().sync_total(false), before + 1);
}

// ---------------------------------------------------------------- implicit synchronisations
// Each API that synchronises implicitly (telemetry/README.md, "APIs watched") is caught inside a
// Forbid(sync) scope with its API name, its own SyncApi, and a backtrace through the test body.
namespace {

/// Runs `body` inside Forbid(what, throw_at_exit) and returns what the guard threw (nothing: empty).
template <class Body>
std::vector<pt::Violation> violations_of(pt::What what, Body body) {
  try {
    pt::Forbid guard(what, pt::Forbid::Options{true});
    body();
  } catch (pt::ViolationError const& e) {
    return e.violations();
  }
  return {};
}

/// The one sync violation of `api` with this SyncApi, whose backtrace passes through `test_name`.
void expect_caught(std::vector<pt::Violation> const& vs, char const* api, pt::SyncApi kind, char const* test_name) {
  auto it = std::find_if(vs.begin(), vs.end(), [&](pt::Violation const& v) { return !v.is_memcpy && v.api == api; });
  ASSERT_NE(it, vs.end()) << api << " was not caught (" << vs.size() << " violation(s))";
  EXPECT_EQ(it->rule, pt::Rule::sync_forbidden);
  EXPECT_EQ(it->sync.api, kind) << pt::to_string(it->sync.api);
  EXPECT_EQ(it->sync.api_name, api);
  EXPECT_TRUE(it->at_call_site);
  bool names_test = false;
  for (std::string const& frame : it->backtrace) names_test |= frame.find(test_name) != std::string::npos;
  EXPECT_TRUE(names_test) << "the backtrace of " << api << " does not pass through " << test_name;
  EXPECT_EQ(std::count_if(vs.begin(), vs.end(), [&](pt::Violation const& v) { return !v.is_memcpy && v.api == api; }), 1)
      << api << " reported more than once (driver aliases?)";
}

std::string describe(std::vector<pt::Violation> const& vs) {
  std::string out;
  for (pt::Violation const& v : vs) out += "\n  " + pt::format_report(v);
  return out;
}

/// Driver API entry points, from the libcuda.so.1 the runtime loaded (the test links no libcuda:
/// it must start, and skip, on a machine without a driver).
template <class Fn>
Fn driver_fn(char const* name) {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  return driver != nullptr ? reinterpret_cast<Fn>(dlsym(driver, name)) : nullptr;
}
using MemAllocFn = CUresult (*)(CUdeviceptr*, std::size_t);
using MemFreeFn = CUresult (*)(CUdeviceptr);
using MemHostAllocFn = CUresult (*)(void**, std::size_t, unsigned);
using MemFreeHostFn = CUresult (*)(void*);

__global__ void scale_kernel(float* data, int n) {
  int const i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) data[i] *= 2.0f;
}

}  // namespace

TEST_F(TelemetryGpu, ImplicitSyncFreeIsCaught) {
  void* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, kBytes));
  auto const before = c().sync_count(pt::SyncApi::free, false, "");
  auto const vs = violations_of(pt::What::sync, [&] { EXPECT_EQ(cudaFree(p), cudaSuccess); });
  expect_caught(vs, "cudaFree", pt::SyncApi::free, "ImplicitSyncFreeIsCaught");
  EXPECT_EQ(c().sync_count(pt::SyncApi::free, false, "") - before, 1u) << "one sync, its driver calls are aliases";
}

TEST_F(TelemetryGpu, ImplicitSyncDriverMemFreeIsCaught) {
  auto const mem_alloc = driver_fn<MemAllocFn>("cuMemAlloc_v2");
  auto const mem_free = driver_fn<MemFreeFn>("cuMemFree_v2");
  ASSERT_TRUE(mem_alloc != nullptr && mem_free != nullptr);
  CUdeviceptr p = 0;
  ASSERT_EQ(mem_alloc(&p, kBytes), CUDA_SUCCESS);
  auto const vs = violations_of(pt::What::sync, [&] { EXPECT_EQ(mem_free(p), CUDA_SUCCESS); });
  expect_caught(vs, "cuMemFree", pt::SyncApi::free, "ImplicitSyncDriverMemFreeIsCaught");
}

TEST_F(TelemetryGpu, ImplicitSyncMallocIsCaught) {
  void* p = nullptr;
  auto const vs = violations_of(pt::What::sync, [&] { EXPECT_EQ(cudaMalloc(&p, kBytes), cudaSuccess); });
  expect_caught(vs, "cudaMalloc", pt::SyncApi::malloc, "ImplicitSyncMallocIsCaught");
  cudaFree(p);
  auto const mem_alloc = driver_fn<MemAllocFn>("cuMemAlloc_v2");
  auto const mem_free = driver_fn<MemFreeFn>("cuMemFree_v2");
  ASSERT_TRUE(mem_alloc != nullptr && mem_free != nullptr);
  CUdeviceptr d = 0;
  auto const drv = violations_of(pt::What::sync, [&] { EXPECT_EQ(mem_alloc(&d, kBytes), CUDA_SUCCESS); });
  expect_caught(drv, "cuMemAlloc", pt::SyncApi::malloc, "ImplicitSyncMallocIsCaught");
  mem_free(d);
  // Pitched and array allocations are device memory allocations too.
  void* pitched = nullptr;
  std::size_t pitch = 0;
  cudaChannelFormatDesc const desc = cudaCreateChannelDesc<float>();
  cudaArray_t array = nullptr;
  auto const others = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaMallocPitch(&pitched, &pitch, 256, 64), cudaSuccess);
    EXPECT_EQ(cudaMallocArray(&array, &desc, 64, 64), cudaSuccess);
  });
  expect_caught(others, "cudaMallocPitch", pt::SyncApi::malloc, "ImplicitSyncMallocIsCaught");
  expect_caught(others, "cudaMallocArray", pt::SyncApi::malloc, "ImplicitSyncMallocIsCaught");
  pt::Expect cleanup;
  cudaFree(pitched);
  cudaFreeArray(array);
}

TEST_F(TelemetryGpu, ImplicitSyncHostAllocAndFreeHostAreCaught) {
  void* a = nullptr;
  void* b = nullptr;
  auto const vs = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaMallocHost(&a, kBytes), cudaSuccess);
    EXPECT_EQ(cudaHostAlloc(&b, kBytes, cudaHostAllocDefault), cudaSuccess);
  });
  expect_caught(vs, "cudaMallocHost", pt::SyncApi::host_alloc, "ImplicitSyncHostAllocAndFreeHostAreCaught");
  expect_caught(vs, "cudaHostAlloc", pt::SyncApi::host_alloc, "ImplicitSyncHostAllocAndFreeHostAreCaught");
  auto const freed = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaFreeHost(a), cudaSuccess);
    EXPECT_EQ(cudaFreeHost(b), cudaSuccess);
  });
  ASSERT_EQ(freed.size(), 2u) << describe(freed);
  expect_caught({freed[0]}, "cudaFreeHost", pt::SyncApi::free_host, "ImplicitSyncHostAllocAndFreeHostAreCaught");
  auto const host_alloc = driver_fn<MemHostAllocFn>("cuMemHostAlloc");
  auto const free_host = driver_fn<MemFreeHostFn>("cuMemFreeHost");
  ASSERT_TRUE(host_alloc != nullptr && free_host != nullptr);
  void* d = nullptr;
  auto const drv = violations_of(pt::What::sync, [&] { EXPECT_EQ(host_alloc(&d, kBytes, 0), CUDA_SUCCESS); });
  expect_caught(drv, "cuMemHostAlloc", pt::SyncApi::host_alloc, "ImplicitSyncHostAllocAndFreeHostAreCaught");
  auto const drv_free = violations_of(pt::What::sync, [&] { EXPECT_EQ(free_host(d), CUDA_SUCCESS); });
  expect_caught(drv_free, "cuMemFreeHost", pt::SyncApi::free_host, "ImplicitSyncHostAllocAndFreeHostAreCaught");
}

TEST_F(TelemetryGpu, ImplicitSyncHostRegisterAndUnregisterAreCaught) {
  std::vector<char> host(kBytes);
  auto const reg = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaHostRegister(host.data(), kBytes, cudaHostRegisterDefault), cudaSuccess);
  });
  expect_caught(reg, "cudaHostRegister", pt::SyncApi::host_register, "ImplicitSyncHostRegisterAndUnregisterAreCaught");
  auto const unreg = violations_of(pt::What::sync, [&] { EXPECT_EQ(cudaHostUnregister(host.data()), cudaSuccess); });
  expect_caught(unreg, "cudaHostUnregister", pt::SyncApi::host_unregister,
                "ImplicitSyncHostRegisterAndUnregisterAreCaught");
}

TEST_F(TelemetryGpu, ImplicitSyncFreeArrayIsCaught) {
  cudaChannelFormatDesc const desc = cudaCreateChannelDesc<float>();
  cudaArray_t array = nullptr;
  CHECK_CUDA(cudaMallocArray(&array, &desc, 64, 64));
  auto const vs = violations_of(pt::What::sync, [&] { EXPECT_EQ(cudaFreeArray(array), cudaSuccess); });
  expect_caught(vs, "cudaFreeArray", pt::SyncApi::free_array, "ImplicitSyncFreeArrayIsCaught");
}

TEST_F(TelemetryGpu, ImplicitSyncSetLimitAndCacheConfigAreCaught) {
  std::size_t fifo = 0;
  CHECK_CUDA(cudaDeviceGetLimit(&fifo, cudaLimitPrintfFifoSize));
  cudaFuncCache cache{};
  CHECK_CUDA(cudaDeviceGetCacheConfig(&cache));
  auto const vs = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, fifo), cudaSuccess);
    EXPECT_EQ(cudaDeviceSetCacheConfig(cache), cudaSuccess);
  });
  expect_caught(vs, "cudaDeviceSetLimit", pt::SyncApi::set_limit, "ImplicitSyncSetLimitAndCacheConfigAreCaught");
  expect_caught(vs, "cudaDeviceSetCacheConfig", pt::SyncApi::set_cache_config,
                "ImplicitSyncSetLimitAndCacheConfigAreCaught");
}

TEST_F(TelemetryGpu, ImplicitSyncMemsetOnPinnedOrManagedMemoryIsCaughtAndOnDeviceMemoryIsNot) {
  void* managed = nullptr;
  void* pinned = nullptr;
  CHECK_CUDA(cudaMallocManaged(&managed, kBytes));
  CHECK_CUDA(cudaMallocHost(&pinned, kBytes));
  auto const on_device = violations_of(pt::What::sync, [&] { EXPECT_EQ(cudaMemset(device_, 0, kBytes), cudaSuccess); });
  EXPECT_TRUE(on_device.empty()) << "cudaMemset on device memory is asynchronous to the host" << describe(on_device);
  auto const vs = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaMemset(managed, 0, kBytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(pinned, 0, kBytes), cudaSuccess);
  });
  ASSERT_EQ(vs.size(), 2u) << describe(vs);
  expect_caught({vs[0]}, "cudaMemset", pt::SyncApi::memset_sync,
                "ImplicitSyncMemsetOnPinnedOrManagedMemoryIsCaughtAndOnDeviceMemoryIsNot");
  expect_caught({vs[1]}, "cudaMemset", pt::SyncApi::memset_sync,
                "ImplicitSyncMemsetOnPinnedOrManagedMemoryIsCaughtAndOnDeviceMemoryIsNot");
  CHECK_CUDA(cudaDeviceSynchronize());
  cudaFree(managed);
  cudaFreeHost(pinned);
}

TEST_F(TelemetryGpu, BlockingCopyDeviceToPageableIsASyncAndStillACopy) {
  std::vector<char> host(kBytes);  // pageable
  auto const copies_before = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "");
  auto const vs = violations_of(pt::What::sync, [&] {  // forbid(memcpy=False, sync=True)
    EXPECT_EQ(cudaMemcpyAsync(host.data(), device_, kBytes, cudaMemcpyDeviceToHost, stream_), cudaSuccess);
  });
  expect_caught(vs, "cudaMemcpyAsync", pt::SyncApi::memcpy_blocking, "BlockingCopyDeviceToPageableIsASyncAndStillACopy");
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "") - copies_before, 1u)
      << "the copy is counted exactly as before";
}

TEST_F(TelemetryGpu, BlockingCopyPageableToDeviceIsASync) {
  std::vector<char> host(kBytes, 1);  // pageable: the call returns once the source is staged
  auto const vs = violations_of(pt::What::sync, [&] {
    EXPECT_EQ(cudaMemcpyAsync(device_, host.data(), kBytes, cudaMemcpyHostToDevice, stream_), cudaSuccess);
  });
  expect_caught(vs, "cudaMemcpyAsync", pt::SyncApi::memcpy_blocking, "BlockingCopyPageableToDeviceIsASync");
  pt::Expect expect;
  CHECK_CUDA(cudaStreamSynchronize(stream_));
}

TEST_F(TelemetryGpu, ImplicitSyncNegativesStayClean) {
  // Nothing here makes the host wait: kernels, event record, stream waits, queries, stream-ordered
  // allocation, a memset on device memory (async), cudaFree(nullptr), pinned non-blocking host-to-device copies and
  // device-to-device copies (async, and a cudaMemcpy device to device). Sync-only work under Forbid(all) (forbid(sync=True)) and all of it under Forbid(sync)
  // (forbid(memcpy=False, sync=True)): no violation at all.
  float* data = static_cast<float*>(device_);
  int const n = static_cast<int>(kBytes / sizeof(float));
  void* pinned = nullptr;
  void* other = nullptr;
  CHECK_CUDA(cudaMallocHost(&pinned, kBytes));
  CHECK_CUDA(cudaMalloc(&other, kBytes));
  cudaEvent_t event{};
  CHECK_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  cudaStream_t second{};
  CHECK_CUDA(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking));
  CHECK_CUDA(cudaDeviceSynchronize());
  auto sync_free_work = [&] {
    scale_kernel<<<(n + 255) / 256, 256, 0, stream_>>>(data, n);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    EXPECT_EQ(cudaEventRecord(event, stream_), cudaSuccess);
    EXPECT_EQ(cudaStreamWaitEvent(second, event, 0), cudaSuccess);
    (void)cudaStreamQuery(stream_);
    (void)cudaEventQuery(event);
    void* scratch = nullptr;
    EXPECT_EQ(cudaMallocAsync(&scratch, kBytes, second), cudaSuccess);
    EXPECT_EQ(cudaMemsetAsync(scratch, 0, kBytes, second), cudaSuccess);
    EXPECT_EQ(cudaFreeAsync(scratch, second), cudaSuccess);
    EXPECT_EQ(cudaMemset(other, 0, kBytes), cudaSuccess);  // device memory: asynchronous to the host
    EXPECT_EQ(cudaFree(nullptr), cudaSuccess);  // frees nothing ("no operation is performed")
  };
  // Steady state: the kernel's module is loaded and the stream-ordered pool exists (lazy loading and
  // the first cudaMallocAsync may allocate; that is set-up, not what this test is about).
  sync_free_work();
  CHECK_CUDA(cudaDeviceSynchronize());
  auto const all = violations_of(pt::What::all, sync_free_work);
  EXPECT_TRUE(all.empty()) << describe(all);
  auto const sync_only = violations_of(pt::What::sync, [&] {
    sync_free_work();
    EXPECT_EQ(cudaMemcpyAsync(other, pinned, kBytes, cudaMemcpyHostToDevice, stream_), cudaSuccess);
    EXPECT_EQ(cudaMemcpyAsync(other, device_, kBytes, cudaMemcpyDeviceToDevice, stream_), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(other, device_, kBytes, cudaMemcpyDeviceToDevice), cudaSuccess);
  });
  EXPECT_TRUE(sync_only.empty()) << describe(sync_only);
  {
    pt::Expect expect;
    CHECK_CUDA(cudaDeviceSynchronize());
  }
  cudaStreamDestroy(second);
  cudaEventDestroy(event);
  cudaFree(other);
  cudaFreeHost(pinned);
}

// ---------------------------------------------------------------- CUDA graphs, capture, legacy stream
namespace {
void CUDART_CB count_run(void* runs) { ++*static_cast<int*>(runs); }

bool backtrace_names(pt::Violation const& v, char const* test_name) {
  for (std::string const& frame : v.backtrace)
    if (frame.find(test_name) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_F(TelemetryGpu, GraphMemcpyAndHostNodesAreReportedAtEachReplay) {
  // A hand-built graph: a device-to-pinned copy, then a host node. No API call copies at replay;
  // pbm reads the nodes at instantiation and reports them at each cudaGraphLaunch, in its range.
  void* pinned = nullptr;
  CHECK_CUDA(cudaMallocHost(&pinned, kBytes));
  cudaGraph_t graph{};
  CHECK_CUDA(cudaGraphCreate(&graph, 0));
  cudaGraphNode_t copy{}, host{};
  CHECK_CUDA(cudaGraphAddMemcpyNode1D(&copy, graph, nullptr, 0, pinned, device_, kBytes, cudaMemcpyDeviceToHost));
  int runs = 0;
  cudaHostNodeParams host_params{&count_run, &runs};
  CHECK_CUDA(cudaGraphAddHostNode(&host, graph, &copy, 1, &host_params));
  cudaGraphExec_t exec{};
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  auto const copies0 = c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pinned, false, "graph_range");
  auto const hosts0 = c().sync_count(pt::SyncApi::graph_host_node, true, "graph_range");
  nvtxRangePushA("graph_range");
  for (int i = 0; i < 3; ++i) CHECK_CUDA(cudaGraphLaunch(exec, stream_));
  nvtxRangePop();
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(c().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pinned, false, "graph_range") - copies0, 3u)
      << "one device-to-host copy per replay";
  EXPECT_EQ(c().sync_count(pt::SyncApi::graph_host_node, true, "graph_range") - hosts0, 3u);
  {
    std::lock_guard<std::mutex> lock(recorder_.mu);
    auto it = std::find_if(recorder_.copies.begin(), recorder_.copies.end(),
                           [](pt::MemcpyEvent const& e) { return e.direction == pt::Direction::DtoH; });
    ASSERT_NE(it, recorder_.copies.end());
    EXPECT_EQ(it->bytes, kBytes);
    EXPECT_EQ(it->thread, pd::current_thread_id());
  }
  // Inside forbid(memcpy): the replay's copy is a violation of cudaGraphLaunch, at the launch's call site.
  auto const vs = violations_of(pt::What::memcpy, [&] { EXPECT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess); });
  auto it = std::find_if(vs.begin(), vs.end(), [](pt::Violation const& v) { return v.is_memcpy; });
  ASSERT_NE(it, vs.end()) << "the replay's copy was not reported";
  EXPECT_EQ(it->api, "cudaGraphLaunch");
  EXPECT_EQ(it->memcpy.direction, pt::Direction::DtoH);
  EXPECT_TRUE(backtrace_names(*it, "GraphMemcpyAndHostNodesAreReportedAtEachReplay")) << describe(vs);
  {
    pt::Expect expect;
    CHECK_CUDA(cudaStreamSynchronize(stream_));
  }
  CHECK_CUDA(cudaGraphExecDestroy(exec));
  CHECK_CUDA(cudaGraphDestroy(graph));
  CHECK_CUDA(cudaFreeHost(pinned));
}

TEST_F(TelemetryGpu, ASyncDuringStreamCaptureIsReportedWithItsApi) {
  float* data = static_cast<float*>(device_);
  int const n = static_cast<int>(kBytes / sizeof(float));
  auto const before = c().violation_count(pt::Rule::sync_in_capture);
  CHECK_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal));
  scale_kernel<<<(n + 255) / 256, 256, 0, stream_>>>(data, n);
  cudaError_t const refused = cudaStreamSynchronize(stream_);
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(stream_, &graph);
  if (graph != nullptr) cudaGraphDestroy(graph);
  (void)cudaGetLastError();
  ASSERT_EQ(refused, cudaErrorStreamCaptureUnsupported) << cudaGetErrorString(refused);
  EXPECT_EQ(c().violation_count(pt::Rule::sync_in_capture) - before, 1u);
  std::lock_guard<std::mutex> lock(recorder_.mu);
  auto it = std::find_if(recorder_.violations.begin(), recorder_.violations.end(),
                         [](pt::Violation const& v) { return v.rule == pt::Rule::sync_in_capture; });
  ASSERT_NE(it, recorder_.violations.end());
  EXPECT_EQ(it->api, "cudaStreamSynchronize");
  EXPECT_EQ(it->sync.api, pt::SyncApi::stream_synchronize);
  EXPECT_TRUE(backtrace_names(*it, "ASyncDuringStreamCaptureIsReportedWithItsApi")) << describe(recorder_.violations);
}

TEST_F(TelemetryGpu, LegacyStreamRuleCountsLegacyWorkBesideABlockingStream) {
  float* data = static_cast<float*>(device_);
  int const n = static_cast<int>(kBytes / sizeof(float));
  int const blocks = (n + 255) / 256;
  pt::set_legacy_stream_rule(true);
  auto legacy = [&] { return c().sync_count(pt::SyncApi::legacy_stream, true, ""); };
  auto const l0 = legacy();
  scale_kernel<<<blocks, 256>>>(data, n);  // the legacy stream, but no blocking stream to serialise with
  EXPECT_EQ(legacy(), l0);
  cudaStream_t blocking{};
  CHECK_CUDA(cudaStreamCreate(&blocking));
  scale_kernel<<<blocks, 256, 0, blocking>>>(data, n);            // its own stream: not legacy
  scale_kernel<<<blocks, 256, 0, cudaStreamPerThread>>>(data, n);  // per-thread default: not legacy
  scale_kernel<<<blocks, 256, 0, stream_>>>(data, n);              // non-blocking: not legacy
  EXPECT_EQ(legacy(), l0);
  scale_kernel<<<blocks, 256>>>(data, n);                                          // 1
  CHECK_CUDA(cudaMemsetAsync(data, 0, kBytes / 2, nullptr));                       // 2
  CHECK_CUDA(cudaMemcpyAsync(data, data + n / 2, kBytes / 2, cudaMemcpyDeviceToDevice, nullptr));  // 3
  EXPECT_EQ(legacy() - l0, 3u) << "a kernel, a memset and a copy on the legacy stream, each once";
  EXPECT_EQ(c().sync_count(pt::SyncApi::legacy_stream, false, ""), 0u) << "never a violation";
  CHECK_CUDA(cudaStreamDestroy(blocking));
  scale_kernel<<<blocks, 256>>>(data, n);
  EXPECT_EQ(legacy() - l0, 3u) << "the blocking stream is gone";
  pt::set_legacy_stream_rule(false);
  {
    pt::Expect expect;
    CHECK_CUDA(cudaDeviceSynchronize());
  }
}

int main(int argc, char** argv) {
  // NVTX reads NVTX_INJECTION64_PATH once, at the first NVTX call: set it before anything else.
  pt::ensure_nvtx_injection();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
