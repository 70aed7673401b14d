// Implicit synchronisations end to end on a CPU: pbm attached to the stand-in libcupti
// (fake_cupti.cpp, through PBM_CUPTI_PATH), the test delivering runtime/driver API callbacks with
// real CUDA 13.0 parameter structs exactly as CUPTI would; memory kinds come from the stand-in
// libcuda's cuPointerGetAttributes (fake_libcuda.cpp: 0x1000 pageable, 0x2000 pinned, 0x3000
// device, 0x4000 managed). This is the path of cupti_source.cpp handle_api: which callbacks are
// enabled, memsets judged by their target, "async" copies the host waits for.
#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/policy.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include "fake_cupti_session.hpp"

#include <gtest/gtest.h>

#include <cupti.h>
#include <generated_nvtx_meta.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#ifndef PBM_FAKE_CUPTI_PATH
#error "PBM_FAKE_CUPTI_PATH must name the fake libcupti"
#endif

namespace pt = pbm::telemetry;

namespace {

using ApiFn = std::uint32_t (*)(int, std::uint32_t, int, std::uint32_t, void const*);
ApiFn g_api = nullptr;

constexpr auto kRt = CUPTI_CB_DOMAIN_RUNTIME_API;
constexpr auto kDrv = CUPTI_CB_DOMAIN_DRIVER_API;

void* at(std::uintptr_t a) { return reinterpret_cast<void*>(a); }

struct Recorder : pt::Observer {
  std::mutex mu;
  std::vector<pt::SyncEvent> syncs;
  std::vector<pt::Violation> violations;
  std::size_t copies = 0;
  void on_sync(pt::SyncEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    syncs.push_back(ev);
  }
  void on_memcpy(pt::MemcpyEvent const&, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    ++copies;
  }
  void on_violation(pt::Violation const& v) override {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(v);
  }
};

/// A CUDA call as CUPTI reports it: entry, whatever the call does underneath (`inside`), exit.
/// False when pbm did not enable the callback.
template <class Inside>
bool call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params, Inside inside) {
  std::uint32_t const id = g_api(domain, cbid, 1, 0, params);
  if (id == 0) return false;
  inside();
  g_api(domain, cbid, 0, id, params);
  return true;
}
bool call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params = nullptr) {
  return call(domain, cbid, params, [] {});
}

class ImplicitSyncCallbacks : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string const not_attached = pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH);
    ASSERT_TRUE(not_attached.empty()) << not_attached;
    g_api = pbm_test::fake_cupti_hook<ApiFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_api");
    ASSERT_NE(g_api, nullptr);
    pt::add_observer(recorder);
  }
  void TearDown() override {
    pt::remove_observer(recorder);
    pt::set_mode(pt::Mode::count);
  }
  /// Memory kinds need the stand-in driver's cuPointerGetAttributes; where a real driver was loaded
  /// first (a GPU machine), it answers for the fake addresses with an error instead.
  static bool fake_driver() { return pbm_test::stand_in_driver_loaded(); }
  /// The sync violations (copies outside an Expect scope break their own rules in count mode).
  std::vector<pt::Violation> sync_violations() {
    std::vector<pt::Violation> out;
    for (pt::Violation const& v : recorder.violations)
      if (!v.is_memcpy) out.push_back(v);
    return out;
  }
  std::uint64_t syncs(pt::SyncApi api, bool expected = false) { return pt::counters().sync_count(api, expected, ""); }
  Recorder recorder;
};

}  // namespace

TEST_F(ImplicitSyncCallbacks, FreeIsCaughtOnceWithItsDriverCallsUnderneath) {
  std::uint64_t const before = syncs(pt::SyncApi::free);
  std::uint64_t const expected_before = syncs(pt::SyncApi::free, /*expected=*/true);
  std::uint64_t const ctx_before = syncs(pt::SyncApi::context_synchronize);
  {
    pt::Forbid forbid(pt::What::sync);
    cudaFree_v3020_params p{at(0x3000)};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, &p, [] {
      cuMemFree_v2_params d{0x3000};
      EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, &d));
      EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize));
    }));
  }
  EXPECT_EQ(syncs(pt::SyncApi::free) - before, 1u);
  EXPECT_EQ(syncs(pt::SyncApi::context_synchronize), ctx_before) << "the wait inside cudaFree is cudaFree's";
  ASSERT_EQ(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].api, "cudaFree");
  EXPECT_EQ(recorder.violations[0].rule, pt::Rule::sync_forbidden);
  // The driver call made directly is one of its own (outside the scope: counted, expected).
  cuMemFree_v2_params d{0x3000};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, &d));
  EXPECT_EQ(syncs(pt::SyncApi::free) - before, 1u);
  EXPECT_EQ(syncs(pt::SyncApi::free, /*expected=*/true) - expected_before, 1u);
}

TEST_F(ImplicitSyncCallbacks, AFreeOfNullIsNoSync) {
  std::uint64_t const before = syncs(pt::SyncApi::free);
  pt::Forbid forbid(pt::What::sync);
  cudaFree_v3020_params p{nullptr};  // cudaFree(0): creates the context, frees nothing
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, &p, [] {
    EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize));  // anything underneath is its alias
  }));
  cuMemFree_v2_params d{0};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, &d));
  EXPECT_EQ(syncs(pt::SyncApi::free), before);
  EXPECT_TRUE(recorder.violations.empty());
}

TEST_F(ImplicitSyncCallbacks, HostAllocationsRegistrationsLimitsAndCacheConfigAreCaught) {
  struct Case {
    CUpti_CallbackDomain domain;
    CUpti_CallbackId cbid;
    pt::SyncApi api;
    char const* name;
  } const cases[] = {
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMallocHost_v3020, pt::SyncApi::host_alloc, "cudaMallocHost"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaHostAlloc_v3020, pt::SyncApi::host_alloc, "cudaHostAlloc"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemHostAlloc, pt::SyncApi::host_alloc, "cuMemHostAlloc"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaFreeHost_v3020, pt::SyncApi::free_host, "cudaFreeHost"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaHostRegister_v4000, pt::SyncApi::host_register, "cudaHostRegister"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemHostRegister_v2, pt::SyncApi::host_register, "cuMemHostRegister"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaHostUnregister_v4000, pt::SyncApi::host_unregister, "cudaHostUnregister"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020, pt::SyncApi::malloc, "cudaMalloc"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2, pt::SyncApi::malloc, "cuMemAlloc"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaFreeArray_v3020, pt::SyncApi::free_array, "cudaFreeArray"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuArrayDestroy, pt::SyncApi::free_array, "cuArrayDestroy"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSetLimit_v3020, pt::SyncApi::set_limit, "cudaDeviceSetLimit"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSetLimit, pt::SyncApi::set_limit, "cuCtxSetLimit"},
      {kRt, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSetCacheConfig_v3020, pt::SyncApi::set_cache_config,
       "cudaDeviceSetCacheConfig"},
      {kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSetCacheConfig, pt::SyncApi::set_cache_config, "cuCtxSetCacheConfig"},
  };
  for (Case const& c : cases) {
    SCOPED_TRACE(c.name);
    recorder.violations.clear();
    std::uint64_t const before = syncs(c.api);
    pt::Forbid forbid(pt::What::sync);
    ASSERT_TRUE(call(c.domain, c.cbid)) << c.name << " is not enabled";
    EXPECT_EQ(syncs(c.api) - before, 1u);
    ASSERT_EQ(recorder.violations.size(), 1u);
    EXPECT_EQ(recorder.violations[0].api, c.name);
    EXPECT_EQ(recorder.violations[0].sync.api, c.api);
  }
}

TEST_F(ImplicitSyncCallbacks, StreamOrderedAllocationIsNotWatched) {
  pt::Forbid forbid(pt::What::sync);
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_v11020));
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_v11020));
  EXPECT_FALSE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync));
  EXPECT_FALSE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync));
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020));
  EXPECT_TRUE(recorder.violations.empty());
}

TEST_F(ImplicitSyncCallbacks, MemsetBlocksOnlyOnPinnedOrManagedMemory) {
  if (!fake_driver()) GTEST_SKIP() << "a real libcuda.so.1 was loaded first: no fake memory kinds";
  std::uint64_t const before = syncs(pt::SyncApi::memset_sync);
  pt::Forbid forbid(pt::What::sync);
  cudaMemset_v3020_params device{at(0x3000), 0, 64};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, &device, [] {
    cuMemsetD8_v2_params d{0x3000, 0, 64};  // the runtime's own driver call: an alias
    EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2, &d));
  }));
  cuMemsetD32_v2_params device_drv{0x3000, 0, 16};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2, &device_drv));
  EXPECT_EQ(syncs(pt::SyncApi::memset_sync), before) << "device memory: asynchronous with respect to the host";
  EXPECT_TRUE(recorder.violations.empty());

  cudaMemset_v3020_params pinned{at(0x2000), 0, 64};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, &pinned, [] {
    cuMemsetD8_v2_params d{0x2000, 0, 64};
    EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2, &d));
  }));
  cuMemsetD2D8_v2_params managed{0x4000, 64, 0, 16, 2};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2, &managed));
  EXPECT_EQ(syncs(pt::SyncApi::memset_sync) - before, 2u);
  ASSERT_EQ(recorder.violations.size(), 2u);
  EXPECT_EQ(recorder.violations[0].api, "cudaMemset");
  EXPECT_EQ(recorder.violations[1].api, "cuMemsetD2D8");
  EXPECT_EQ(recorder.violations[1].sync.api, pt::SyncApi::memset_sync);
}

TEST_F(ImplicitSyncCallbacks, AsyncCopyToPageableMemoryIsABlockingSyncAndStillACopy) {
  if (!fake_driver()) GTEST_SKIP() << "a real libcuda.so.1 was loaded first: no fake memory kinds";
  std::uint64_t const before = syncs(pt::SyncApi::memcpy_blocking);
  std::uint64_t const total_before = pt::counters().sync_total(false);
  std::uint64_t const copies_before = pt::counters().memcpy_total(false) + pt::counters().memcpy_total(true);
  {
    pt::Forbid forbid(pt::What::sync);  // forbid(memcpy=False, sync=True)
    cudaMemcpyAsync_v3020_params d2h{at(0x1000), at(0x3000), 64, cudaMemcpyDeviceToHost, nullptr};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &d2h, [] {
      cuMemcpyDtoHAsync_v2_params d{at(0x1000), 0x3000, 64, nullptr};
      EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2, &d));
    }));
    cuMemcpyHtoDAsync_v2_params h2d{0x3000, at(0x1000), 64, nullptr};  // pageable upload: returns once staged
    ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2, &h2d));
  }
  EXPECT_EQ(syncs(pt::SyncApi::memcpy_blocking) - before, 2u);
  EXPECT_EQ(pt::counters().sync_total(false) - total_before, 2u) << "sync.total sees them";
  EXPECT_EQ(pt::counters().memcpy_total(false) + pt::counters().memcpy_total(true) - copies_before, 2u)
      << "each still counts as one copy";
  auto const v = sync_violations();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].api, "cudaMemcpyAsync");
  EXPECT_EQ(v[0].sync.api, pt::SyncApi::memcpy_blocking);
  EXPECT_EQ(v[0].rule, pt::Rule::sync_forbidden);
  EXPECT_EQ(v[1].api, "cuMemcpyHtoDAsync");
  // The copies themselves are judged by the memcpy rules exactly as before (no memcpy forbid here).
  for (pt::Violation const& c : recorder.violations)
    if (c.is_memcpy) EXPECT_NE(c.rule, pt::Rule::memcpy_forbidden);
}

TEST_F(ImplicitSyncCallbacks, PinnedAndDeviceToDeviceAsyncCopiesStayClean) {
  if (!fake_driver()) GTEST_SKIP() << "a real libcuda.so.1 was loaded first: no fake memory kinds";
  std::uint64_t const before = pt::counters().sync_total(false) + pt::counters().sync_total(true);
  std::uint64_t const blocking_before = syncs(pt::SyncApi::memcpy_blocking);
  {
    pt::Forbid forbid(pt::What::sync);
    cudaMemcpyAsync_v3020_params h2d{at(0x3000), at(0x2000), 64, cudaMemcpyHostToDevice, nullptr};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &h2d));
    cudaMemcpyAsync_v3020_params d2h{at(0x2000), at(0x3000), 64, cudaMemcpyDeviceToHost, nullptr};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000, &d2h));
    cudaMemcpyAsync_v3020_params d2d{at(0x3100), at(0x3000), 64, cudaMemcpyDeviceToDevice, nullptr};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &d2d));
    cudaMemcpy_v3020_params sync_d2d{at(0x3100), at(0x3000), 64, cudaMemcpyDeviceToDevice};
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, &sync_d2d));
    EXPECT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamQuery_v3020));
    EXPECT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020));
  }
  auto const v = sync_violations();
  EXPECT_TRUE(v.empty()) << v.size() << " sync violation(s), first: " << (v.empty() ? "" : v[0].api);
  EXPECT_EQ(syncs(pt::SyncApi::memcpy_blocking), blocking_before);
  EXPECT_EQ(pt::counters().sync_total(false) + pt::counters().sync_total(true) - before, 2u)
      << "the query and the stream wait, counted as non-blocking";
}

TEST_F(ImplicitSyncCallbacks, MeasurementSwitchesLeaveTheDriverDomainOrNvtxOff) {
  using NvtxFn = int (*)(std::uint32_t, void const*);
  auto const nvtx = pbm_test::fake_cupti_hook<NvtxFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_nvtx");
  ASSERT_NE(nvtx, nullptr);
  nvtxRangePop_params pop{nullptr};
  auto restart_with = [](char const* name, char const* value) {
    pt::stop();
    if (value != nullptr) ::setenv(name, value, 1); else ::unsetenv(name);
    return pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH);
  };
  ASSERT_EQ(restart_with("PBM_CUPTI_DRIVER_CALLBACKS", "0"), "");
  EXPECT_FALSE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize)) << "no driver callback enabled";
  EXPECT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020));
  EXPECT_NE(nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &pop), 0);
  ASSERT_EQ(restart_with("PBM_CUPTI_DRIVER_CALLBACKS", nullptr), "");
  EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize)) << "the default: driver callbacks on";
  ASSERT_EQ(restart_with("PBM_CUPTI_NVTX_CALLBACKS", "0"), "");
  EXPECT_EQ(nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &pop), 0) << "no NVTX callback enabled";
  EXPECT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize));
  ASSERT_EQ(restart_with("PBM_CUPTI_NVTX_CALLBACKS", nullptr), "");
  EXPECT_NE(nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &pop), 0);
}

TEST_F(ImplicitSyncCallbacks, TimedCallbacksAddUpTheirTimePerDomainOnlyWhenAskedTo) {
  using NvtxFn = int (*)(std::uint32_t, void const*);
  auto const nvtx = pbm_test::fake_cupti_hook<NvtxFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_nvtx");
  ASSERT_NE(nvtx, nullptr);
  auto restart_timed = [](bool timed) {
    pt::stop();
    if (timed) ::setenv("PBM_CUPTI_TIME_CALLBACKS", "1", 1); else ::unsetenv("PBM_CUPTI_TIME_CALLBACKS");
    return pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH);
  };
  auto some_calls = [&] {  // 100 API callbacks (a sync's entry) and 100 NVTX callbacks
    nvtxRangePushA_params push{"timed"};
    nvtxRangePop_params pop{nullptr};
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020));
      ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize));
      ASSERT_NE(nvtx(CUPTI_CBID_NVTX_nvtxRangePushA, &push), 0);
      ASSERT_NE(nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &pop), 0);
    }
  };
  ASSERT_EQ(restart_timed(false), "");
  pt::Status const before = pt::status();
  some_calls();
  pt::Status const untimed = pt::status();
  EXPECT_GE(untimed.api_callbacks - before.api_callbacks, 100u);
  EXPECT_EQ(untimed.nvtx_callbacks - before.nvtx_callbacks, 100u);
  EXPECT_EQ(untimed.api_callback_ns, before.api_callback_ns) << "not timed unless asked";
  EXPECT_EQ(untimed.nvtx_callback_ns, before.nvtx_callback_ns);

  ASSERT_EQ(restart_timed(true), "");
  pt::Status const start = pt::status();
  some_calls();
  pt::Status const timed = pt::status();
  std::uint64_t const api_ns = timed.api_callback_ns - start.api_callback_ns;
  std::uint64_t const nvtx_ns = timed.nvtx_callback_ns - start.nvtx_callback_ns;
  EXPECT_GT(api_ns, 0u);
  EXPECT_GT(nvtx_ns, 0u);
  // Per callback, between nothing and a millisecond: time, not a count or garbage.
  EXPECT_LT(api_ns / (timed.api_callbacks - start.api_callbacks), 1000000u);
  EXPECT_LT(nvtx_ns / (timed.nvtx_callbacks - start.nvtx_callbacks), 1000000u);

  ASSERT_EQ(restart_timed(false), "");
  pt::Status const again = pt::status();
  some_calls();
  EXPECT_EQ(pt::status().api_callback_ns, again.api_callback_ns) << "off again after a start without it";
}
