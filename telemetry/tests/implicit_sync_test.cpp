// Implicit synchronisations (telemetry/README.md, "APIs watched"): the callbacks pbm enables for
// them, the memsets and "async" copies the host waits for, and how the engine judges them. CPU only:
// CallbackSpec tables, parameters decoded from real CUDA 13.0 parameter structs, ApiCalls fed to
// an engine the way the CUPTI source feeds it.
#include "classify.hpp"
#include "decoder.hpp"
#include "engine_test_util.hpp"
#include "thread_state.hpp"

#include <pbm/expected.hpp>
#include <pbm/telemetry/policy.hpp>

#include <gtest/gtest.h>

#include <cupti.h>
#include <cupti_driver_cbid.h>
#include <cupti_runtime_cbid.h>

#include <string>
#include <vector>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

using pbm_test::at;
using pbm_test::fake_kind;
using pbm_test::Recorder;

struct Expected {
  CUpti_CallbackDomain domain;
  CUpti_CallbackId cbid;
  char const* name;
  pt::SyncApi api;
  char const* api_name;
};

// Every implicitly synchronising API with its twin, as the README's table lists them.
std::vector<Expected> const& implicit_syncs() {
  constexpr auto R = CUPTI_CB_DOMAIN_RUNTIME_API;
  constexpr auto D = CUPTI_CB_DOMAIN_DRIVER_API;
  using S = pt::SyncApi;
  static std::vector<Expected> const v{
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, "cudaFree", S::free, "free"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemFree, "cuMemFree", S::free, "free"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, "cuMemFree", S::free, "free"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaFreeHost_v3020, "cudaFreeHost", S::free_host, "free_host"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemFreeHost, "cuMemFreeHost", S::free_host, "free_host"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMallocHost_v3020, "cudaMallocHost", S::host_alloc, "host_alloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaHostAlloc_v3020, "cudaHostAlloc", S::host_alloc, "host_alloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAllocHost, "cuMemAllocHost", S::host_alloc, "host_alloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAllocHost_v2, "cuMemAllocHost", S::host_alloc, "host_alloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemHostAlloc, "cuMemHostAlloc", S::host_alloc, "host_alloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemHostAlloc_v2, "cuMemHostAlloc", S::host_alloc, "host_alloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaHostRegister_v4000, "cudaHostRegister", S::host_register, "host_register"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemHostRegister, "cuMemHostRegister", S::host_register, "host_register"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemHostRegister_v2, "cuMemHostRegister", S::host_register, "host_register"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaHostUnregister_v4000, "cudaHostUnregister", S::host_unregister,
       "host_unregister"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemHostUnregister, "cuMemHostUnregister", S::host_unregister, "host_unregister"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020, "cudaMalloc", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc, "cuMemAlloc", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2, "cuMemAlloc", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMallocPitch_v3020, "cudaMallocPitch", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc3D_v3020, "cudaMalloc3D", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMallocArray_v3020, "cudaMallocArray", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc3DArray_v3020, "cudaMalloc3DArray", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMallocMipmappedArray_v5000, "cudaMallocMipmappedArray", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAllocPitch, "cuMemAllocPitch", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemAllocPitch_v2, "cuMemAllocPitch", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuArrayCreate, "cuArrayCreate", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuArrayCreate_v2, "cuArrayCreate", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuArray3DCreate, "cuArray3DCreate", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuArray3DCreate_v2, "cuArray3DCreate", S::malloc, "malloc"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMipmappedArrayCreate, "cuMipmappedArrayCreate", S::malloc, "malloc"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaFreeArray_v3020, "cudaFreeArray", S::free_array, "free_array"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaFreeMipmappedArray_v5000, "cudaFreeMipmappedArray", S::free_array, "free_array"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuArrayDestroy, "cuArrayDestroy", S::free_array, "free_array"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMipmappedArrayDestroy, "cuMipmappedArrayDestroy", S::free_array, "free_array"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSetLimit_v3020, "cudaDeviceSetLimit", S::set_limit, "set_limit"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaThreadSetLimit_v3020, "cudaThreadSetLimit", S::set_limit, "set_limit"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuCtxSetLimit, "cuCtxSetLimit", S::set_limit, "set_limit"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSetCacheConfig_v3020, "cudaDeviceSetCacheConfig", S::set_cache_config,
       "set_cache_config"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaThreadSetCacheConfig_v3020, "cudaThreadSetCacheConfig", S::set_cache_config,
       "set_cache_config"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuCtxSetCacheConfig, "cuCtxSetCacheConfig", S::set_cache_config, "set_cache_config"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, "cudaMemset", S::memset_sync, "memset_sync"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_ptds_v7000, "cudaMemset", S::memset_sync, "memset_sync"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_v3020, "cudaMemset2D", S::memset_sync, "memset_sync"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_ptds_v7000, "cudaMemset2D", S::memset_sync, "memset_sync"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_v3020, "cudaMemset3D", S::memset_sync, "memset_sync"},
      {R, CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_ptds_v7000, "cudaMemset3D", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2, "cuMemsetD8", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2_ptds, "cuMemsetD8", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD16_v2, "cuMemsetD16", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD16_v2_ptds, "cuMemsetD16", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2, "cuMemsetD32", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2_ptds, "cuMemsetD32", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2, "cuMemsetD2D8", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2_ptds, "cuMemsetD2D8", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16_v2, "cuMemsetD2D16", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16_v2_ptds, "cuMemsetD2D16", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32_v2, "cuMemsetD2D32", S::memset_sync, "memset_sync"},
      {D, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32_v2_ptds, "cuMemsetD2D32", S::memset_sync, "memset_sync"},
  };
  return v;
}

}  // namespace

TEST(ImplicitSyncCallbacks, EveryImplicitlySynchronisingApiIsWatchedUnderItsOwnName) {
  for (Expected const& e : implicit_syncs()) {
    SCOPED_TRACE(e.name);
    auto const* spec = pd::find_callback(e.domain, e.cbid);
    ASSERT_NE(spec, nullptr) << e.name << " (cbid " << e.cbid << ") is not watched";
    EXPECT_STREQ(spec->name, e.name);
    EXPECT_EQ(spec->cls, pd::ApiCall::Class::sync);
    EXPECT_EQ(spec->sync_api, e.api);
    EXPECT_EQ(pt::to_string(e.api), e.api_name);
    EXPECT_TRUE(pt::blocks_host(e.api));
  }
}

TEST(ImplicitSyncCallbacks, StreamOrderedAndManagedAllocationAndAsyncMemsetsAreNotWatched) {
  for (CUpti_CallbackId cbid :
       {CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_v11020, CUPTI_RUNTIME_TRACE_CBID_cudaMallocAsync_ptsz_v11020,
        CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_v11020, CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_ptsz_v11020,
        CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_v3020, CUPTI_RUNTIME_TRACE_CBID_cudaMallocManaged_v6000}) {
    EXPECT_EQ(pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, cbid), nullptr) << "runtime cbid " << cbid;
  }
  for (CUpti_CallbackId cbid :
       {CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync, CUPTI_DRIVER_TRACE_CBID_cuMemAllocAsync_ptsz,
        CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync, CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync_ptsz,
        CUPTI_DRIVER_TRACE_CBID_cuEventRecord, CUPTI_DRIVER_TRACE_CBID_cuMemAllocManaged}) {
    EXPECT_EQ(pd::find_callback(CUPTI_CB_DOMAIN_DRIVER_API, cbid), nullptr) << "driver cbid " << cbid;
  }
  // Async memsets are watched only by the opt-in legacy default stream rule, and never judged as syncs.
  for (auto const* spec :
       {pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020),
        pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_ptsz_v7000),
        pd::find_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemsetD8Async)}) {
    ASSERT_NE(spec, nullptr);
    EXPECT_EQ(spec->group, pd::CallbackSpec::Group::legacy_rule);
    EXPECT_EQ(spec->cls, pd::ApiCall::Class::quiet);
  }
}

TEST(ImplicitSyncNames, EveryApiHasItsOwnNameAndBlocksTheHost) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < pt::kSyncApiCount; ++i) {
    auto const api = static_cast<pt::SyncApi>(i);
    std::string const name(pt::to_string(api));
    if (api != pt::SyncApi::unknown) EXPECT_NE(name, "unknown") << "SyncApi " << i << " has no name";
    for (std::string const& seen : names) EXPECT_NE(seen, name);
    names.push_back(name);
  }
  EXPECT_EQ(static_cast<std::size_t>(pt::SyncApi::unknown) + 1, pt::kSyncApiCount);
  for (pt::SyncApi api : {pt::SyncApi::memcpy_blocking, pt::SyncApi::free, pt::SyncApi::free_host,
                          pt::SyncApi::host_alloc, pt::SyncApi::host_register, pt::SyncApi::host_unregister,
                          pt::SyncApi::malloc, pt::SyncApi::free_array, pt::SyncApi::set_limit,
                          pt::SyncApi::set_cache_config, pt::SyncApi::memset_sync}) {
    EXPECT_TRUE(pt::blocks_host(api)) << pt::to_string(api);
  }
}

TEST(FreesNothing, AFreeOfNullIsNoSync) {
  cudaFree_v3020_params null_free{nullptr};
  cudaFree_v3020_params real_free{at(0x3000)};
  EXPECT_TRUE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, &null_free));
  EXPECT_FALSE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, &real_free));
  cudaFreeHost_v3020_params null_host{nullptr};
  EXPECT_TRUE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFreeHost_v3020, &null_host));
  cudaFreeArray_v3020_params null_array{nullptr};
  EXPECT_TRUE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFreeArray_v3020, &null_array));
  cuMemFree_v2_params null_drv{0};
  cuMemFree_v2_params real_drv{0x3000};
  EXPECT_TRUE(pd::frees_nothing(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, &null_drv));
  EXPECT_FALSE(pd::frees_nothing(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2, &real_drv));
  cuArrayDestroy_params null_arr{nullptr};
  EXPECT_TRUE(pd::frees_nothing(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuArrayDestroy, &null_arr));
  // Not a free, or no parameters: never "nothing".
  EXPECT_FALSE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020, &null_free));
  EXPECT_FALSE(pd::frees_nothing(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020, nullptr));
}

// ---------------------------------------------------------------- memsets
TEST(MemsetTarget, RuntimeAndDriverMemsetsNameTheirTarget) {
  cudaMemset_v3020_params m{at(0x2000), 0, 16};
  EXPECT_EQ(pd::decode_memset_target(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, &m,
                                     &fake_kind),
            pt::MemoryKind::pinned);
  cudaMemset2D_v3020_params m2{at(0x4000), 64, 0, 16, 4};
  EXPECT_EQ(pd::decode_memset_target(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_ptds_v7000,
                                     &m2, &fake_kind),
            pt::MemoryKind::managed);
  cudaMemset3D_v3020_params m3{};
  m3.pitchedDevPtr.ptr = at(0x3000);
  EXPECT_EQ(pd::decode_memset_target(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_v3020, &m3,
                                     &fake_kind),
            pt::MemoryKind::device);
  cuMemsetD32_v2_params d{0x2000, 7u, 4};
  EXPECT_EQ(pd::decode_memset_target(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2, &d,
                                     &fake_kind),
            pt::MemoryKind::pinned);
  cuMemsetD2D8_v2_params d2{0x3000, 64, 1, 16, 2};
  EXPECT_EQ(pd::decode_memset_target(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2_ptds, &d2,
                                     &fake_kind),
            pt::MemoryKind::device);
  // Every watched memset decodes (an undecoded one would never be judged).
  for (Expected const& e : implicit_syncs()) {
    if (e.api != pt::SyncApi::memset_sync) continue;
    cuMemsetD8_v2_params any{0x2000, 0, 1};  // every layout starts with the target pointer
    EXPECT_TRUE(pd::decode_memset_target(e.domain, e.cbid, &any, &fake_kind).has_value()) << e.name;
  }
  EXPECT_FALSE(pd::decode_memset_target(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020,
                                        &m, &fake_kind).has_value());
  EXPECT_FALSE(pd::decode_memset_target(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020,
                                        nullptr, &fake_kind).has_value());
}

TEST(MemsetTarget, OnlyPinnedAndManagedTargetsBlockTheHost) {
  EXPECT_TRUE(pd::memset_blocks_host(pt::MemoryKind::pinned));
  EXPECT_TRUE(pd::memset_blocks_host(pt::MemoryKind::managed));
  EXPECT_FALSE(pd::memset_blocks_host(pt::MemoryKind::device));
  EXPECT_FALSE(pd::memset_blocks_host(pt::MemoryKind::unknown));
}

// ---------------------------------------------------------------- copies the host waits for
namespace {
pt::MemcpyEvent async_copy(pt::MemoryKind src, pt::MemoryKind dst, bool async = true) {
  pt::MemcpyEvent ev;
  ev.src_kind = src;
  ev.dst_kind = dst;
  ev.direction = pd::direction_between(src, dst);
  ev.is_async = async;
  return ev;
}
}  // namespace

TEST(BlockingCopy, PageableAndHostToHostAsyncCopiesBlockTheHost) {
  using K = pt::MemoryKind;
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::device, K::pageable)));   // returns once the copy completed
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::managed, K::pageable)));
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::pageable, K::device)));   // returns once staged
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::pageable, K::managed)));
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::pinned, K::pageable)));   // host to host: fully synchronous
  EXPECT_TRUE(pd::copy_blocks_host(async_copy(K::pinned, K::pinned)));
  // Not host syncs: pinned, device to device, and anything pbm cannot tell.
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::pinned, K::device)));
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::device, K::pinned)));
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::device, K::device)));
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::managed, K::device)));
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::unknown, K::pageable)));
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::pageable, K::unknown)));
  // A synchronous copy is a memcpy_sync already, never a second sync.
  EXPECT_FALSE(pd::copy_blocks_host(async_copy(K::device, K::pageable, /*async=*/false)));
}

TEST(BlockingCopy, DecodedAsyncCallsTellBlockingFromNot) {
  cudaMemcpyAsync_v3020_params d2h{at(0x1000), at(0x3000), 64, cudaMemcpyDeviceToHost, nullptr};
  auto ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &d2h,
                                 &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(pd::copy_blocks_host(*ev));
  cudaMemcpyAsync_v3020_params pinned_h2d{at(0x3000), at(0x2000), 64, cudaMemcpyHostToDevice, nullptr};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000,
                            &pinned_h2d, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_FALSE(pd::copy_blocks_host(*ev));
  cudaMemcpyAsync_v3020_params d2d{at(0x3000), at(0x3100), 64, cudaMemcpyDeviceToDevice, nullptr};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &d2d,
                            &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_FALSE(pd::copy_blocks_host(*ev));
  // A "synchronous" cudaMemcpy device to device is an async copy (class memcpy_async) and not blocking.
  cudaMemcpy_v3020_params sync_d2d{at(0x3000), at(0x3100), 64, cudaMemcpyDeviceToDevice};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, &sync_d2d,
                            &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_FALSE(pd::copy_blocks_host(*ev));
  cuMemcpyHtoDAsync_v2_params drv{0x3000, at(0x1000), 32, nullptr};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2, &drv, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_TRUE(pd::copy_blocks_host(*ev));
}

// ---------------------------------------------------------------- the engine
namespace {

using pbm_test::api_call;

class ImplicitSyncEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    pt::set_mode(pt::Mode::count);
    pt::set_range_allow_list({});
    engine.add_observer(recorder);
  }
  void TearDown() override { pt::set_mode(pt::Mode::count); }
  pd::Engine engine;
  Recorder recorder;
};

}  // namespace

TEST_F(ImplicitSyncEngine, EachImplicitSyncIsForbiddenInAForbidScopeUnderItsOwnName) {
  std::uint32_t corr = 1000;
  for (Expected const& e : implicit_syncs()) {
    SCOPED_TRACE(e.name);
    recorder.violations.clear();
    bool const runtime = e.domain == CUPTI_CB_DOMAIN_RUNTIME_API;
    pt::Forbid forbid(pt::What::sync);
    auto const c = api_call(pd::ApiCall::Class::sync, ++corr, e.name, e.api, runtime);
    EXPECT_TRUE(engine.api_enter(c));
    engine.api_exit(c);
    ASSERT_EQ(recorder.violations.size(), 1u);
    EXPECT_EQ(recorder.violations[0].rule, pt::Rule::sync_forbidden);
    EXPECT_EQ(recorder.violations[0].api, e.name);
    EXPECT_EQ(recorder.violations[0].sync.api, e.api);
    EXPECT_EQ(recorder.violations[0].sync.api_name, e.name);
    EXPECT_TRUE(recorder.violations[0].at_call_site);
    EXPECT_EQ(engine.counters().sync_count(e.api, false, ""), 0u + [&] {
      std::uint64_t n = 0;  // all cbids of this api so far
      for (Expected const& f : implicit_syncs()) {
        if (f.api == e.api) ++n;
        if (&f == &e) break;
      }
      return n;
    }());
  }
}

TEST_F(ImplicitSyncEngine, OutsideAForbidScopeAllocationsAndFreesAreExpectedBlockingWorkIsNot) {
  // Every program allocates and frees (PyTorch's caching allocator, pbm's constructors): counted,
  // expected, never a violation unless a forbid(sync) scope says so.
  std::uint32_t corr = 1;
  for (pt::SyncApi api : {pt::SyncApi::free, pt::SyncApi::free_host, pt::SyncApi::host_alloc, pt::SyncApi::host_register,
                          pt::SyncApi::host_unregister, pt::SyncApi::malloc, pt::SyncApi::free_array,
                          pt::SyncApi::set_limit, pt::SyncApi::set_cache_config}) {
    SCOPED_TRACE(std::string(pt::to_string(api)));
    auto const c = api_call(pd::ApiCall::Class::sync, corr++, "resource call", api);
    engine.api_enter(c);
    engine.api_exit(c);
    EXPECT_EQ(engine.counters().sync_count(api, true, ""), 1u);
    EXPECT_EQ(engine.counters().sync_count(api, false, ""), 0u);
  }
  EXPECT_TRUE(recorder.violations.empty());
  // Work the host waits for is unexpected outside a scope, as every explicit sync is.
  auto const m = api_call(pd::ApiCall::Class::sync, corr++, "cudaMemset", pt::SyncApi::memset_sync);
  engine.api_enter(m);
  engine.api_exit(m);
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::memset_sync, false, ""), 1u);
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::sync_unexpected), 1u);
  {
    pbm::ExpectedSyncScope pbm_own;  // what the Mailbox constructor/destructor hold around cudaMalloc/cudaFree
    pt::Forbid forbid(pt::What::sync);
    auto const a = api_call(pd::ApiCall::Class::sync, corr++, "cudaMalloc", pt::SyncApi::malloc);
    engine.api_enter(a);
    engine.api_exit(a);
  }
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::malloc, true, ""), 2u);
  EXPECT_EQ(recorder.violations.size(), 1u);
}

TEST_F(ImplicitSyncEngine, DriverCallsUnderARuntimeFreeAreItsAliases) {
  pt::Forbid forbid(pt::What::sync);
  auto const rt = api_call(pd::ApiCall::Class::sync, 10, "cudaFree", pt::SyncApi::free);
  auto const drv = api_call(pd::ApiCall::Class::sync, 11, "cuMemFree", pt::SyncApi::free, /*runtime=*/false);
  auto const ctx = api_call(pd::ApiCall::Class::sync, 12, "cuCtxSynchronize", pt::SyncApi::context_synchronize, false);
  EXPECT_TRUE(engine.api_enter(rt));
  EXPECT_FALSE(engine.api_enter(drv));
  engine.api_exit(drv);
  EXPECT_FALSE(engine.api_enter(ctx));  // a device-wide wait inside cudaFree is cudaFree's
  engine.api_exit(ctx);
  engine.api_exit(rt);
  EXPECT_EQ(engine.counters().sync_total(false), 1u);
  ASSERT_EQ(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].api, "cudaFree");
}

TEST_F(ImplicitSyncEngine, ABlockingAsyncCopyIsASyncAndStillACopy) {
  auto const c = api_call(pd::ApiCall::Class::memcpy_async, 20, "cudaMemcpyAsync");
  {
    pt::Forbid forbid(pt::What::sync);  // memcpy=False, sync=True
    ASSERT_TRUE(engine.api_enter(c));
    engine.api_blocking_copy(c);
    pt::MemcpyEvent ev;
    ev.direction = pt::Direction::DtoH;
    ev.src_kind = pt::MemoryKind::device;
    ev.dst_kind = pt::MemoryKind::pageable;
    ev.bytes = 64;
    ev.is_async = true;
    ev.runtime_correlation = c.correlation;
    engine.on_memcpy(ev, /*at_call_site=*/true);
    engine.api_exit(c);
  }
  EXPECT_EQ(engine.counters().sync_count(pt::SyncApi::memcpy_blocking, false, ""), 1u);
  EXPECT_EQ(engine.counters().sync_total(false), 1u) << "a budget's sync.total sees it";
  EXPECT_EQ(engine.counters().memcpy_total(false), 1u) << "the copy counts as before";
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::sync_forbidden), 1u);
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::memcpy_dtoh), 1u) << "judged as a copy as before";
  ASSERT_EQ(recorder.syncs.size(), 1u);
  EXPECT_EQ(recorder.syncs[0].first.api, pt::SyncApi::memcpy_blocking);
  EXPECT_EQ(recorder.syncs[0].first.api_name, "cudaMemcpyAsync");
  ASSERT_GE(recorder.violations.size(), 1u);
  EXPECT_EQ(recorder.violations[0].api, "cudaMemcpyAsync");
  EXPECT_EQ(recorder.violations[0].rule, pt::Rule::sync_forbidden);
}

TEST_F(ImplicitSyncEngine, AnAsyncCopyIsNoSyncUnlessItBlocksAndAQuietCallIsNothing) {
  pt::Forbid forbid(pt::What::sync);
  auto const c = api_call(pd::ApiCall::Class::memcpy_async, 30, "cudaMemcpyAsync");
  ASSERT_TRUE(engine.api_enter(c));
  engine.api_exit(c);
  // A memset on device memory: watched (its driver calls are aliases) but judged as nothing.
  auto const q = api_call(pd::ApiCall::Class::quiet, 31, "cudaMemset", pt::SyncApi::memset_sync);
  ASSERT_TRUE(engine.api_enter(q));
  auto const under = api_call(pd::ApiCall::Class::sync, 32, "cuMemsetD8", pt::SyncApi::memset_sync, false);
  EXPECT_FALSE(engine.api_enter(under));
  engine.api_exit(under);
  engine.api_exit(q);
  EXPECT_EQ(engine.counters().sync_total(false) + engine.counters().sync_total(true), 0u);
  EXPECT_TRUE(recorder.violations.empty());
  EXPECT_TRUE(recorder.syncs.empty());
  // Off: nothing counted even for a blocking copy.
  pt::ScopedMode off(pt::Mode::off);
  auto const o = api_call(pd::ApiCall::Class::memcpy_async, 33, "cudaMemcpyAsync");
  engine.api_enter(o);
  engine.api_blocking_copy(o);
  engine.api_exit(o);
  EXPECT_EQ(engine.counters().sync_total(false), 0u);
}
