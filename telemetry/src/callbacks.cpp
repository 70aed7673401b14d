// The runtime and driver API callbacks pbm enables: functions that copy or synchronise (explicitly,
// or implicitly: telemetry/README.md, "APIs watched", says why each one is here), CUDA graphs'
// instantiation and launch, and, for the opt-in legacy default stream rule, launches and streams.
// Ids checked against cupti_runtime_cbid.h / cupti_driver_cbid.h of CUDA 13.0. Stream-ordered
// allocation (cudaMallocAsync/cudaFreeAsync, cuMemAllocAsync/cuMemFreeAsync) is deliberately absent:
// it does not synchronise.
#include "decoder.hpp"

#include <cupti_driver_cbid.h>
#include <cupti_runtime_cbid.h>

namespace pbm::telemetry::detail {
namespace {

constexpr auto kSyncCopy = ApiCall::Class::memcpy_sync;
constexpr auto kAsyncCopy = ApiCall::Class::memcpy_async;
constexpr auto kSync = ApiCall::Class::sync;
constexpr auto kNone = SyncApi::unknown;
// Non-Async memsets: judged as memset_sync only when the target is pinned host or managed memory
// (cupti_source.cpp reads it from the parameters); on device memory they become Class::quiet.
constexpr auto kMemset = SyncApi::memset_sync;

constexpr auto kGraphLaunch = ApiCall::Class::graph_launch;
constexpr auto kBook = ApiCall::Class::bookkeeping;
constexpr auto kQuiet = ApiCall::Class::quiet;
constexpr auto kLegacy = CallbackSpec::Group::legacy_rule;

#define PBM_RT(base, suffix, cls, api) CallbackSpec{CUPTI_RUNTIME_TRACE_CBID_##base##suffix, #base, cls, api}
#define PBM_DRV(base, suffix, cls, api) CallbackSpec{CUPTI_DRIVER_TRACE_CBID_##base##suffix, #base, cls, api}
// The legacy default stream rule's callbacks (CallbackSpec::Group::legacy_rule).
#define PBM_RT_L(base, suffix, cls) CallbackSpec{CUPTI_RUNTIME_TRACE_CBID_##base##suffix, #base, cls, kNone, kLegacy}
#define PBM_DRV_L(base, suffix, cls) CallbackSpec{CUPTI_DRIVER_TRACE_CBID_##base##suffix, #base, cls, kNone, kLegacy}

}  // namespace

std::vector<CallbackSpec> const& runtime_callbacks() {
  static std::vector<CallbackSpec> const specs{
      // Synchronous copies block the host (a device-to-device cudaMemcpy does not; the
      // callback reads its kind to tell).
      PBM_RT(cudaMemcpy, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpy, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpy2D, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpy2D, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpy3D, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpy3D, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpyToSymbol, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpyToSymbol, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpyFromSymbol, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpyFromSymbol, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpyPeer, _v4000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpy3DPeer, _v4000, kSyncCopy, kNone), PBM_RT(cudaMemcpy3DPeer, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpyToArray, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpyToArray, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpyFromArray, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpyFromArray, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpy2DToArray, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpy2DToArray, _ptds_v7000, kSyncCopy, kNone),
      PBM_RT(cudaMemcpy2DFromArray, _v3020, kSyncCopy, kNone), PBM_RT(cudaMemcpy2DFromArray, _ptds_v7000, kSyncCopy, kNone),
      // Async copies: watched so their records (pageable!) are judged in the caller's scope.
      PBM_RT(cudaMemcpyAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpyAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy2DAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpy2DAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy3DAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpy3DAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyToSymbolAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpyToSymbolAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyFromSymbolAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpyFromSymbolAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyPeerAsync, _v4000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy3DPeerAsync, _v4000, kAsyncCopy, kNone), PBM_RT(cudaMemcpy3DPeerAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyToArrayAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpyToArrayAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyFromArrayAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpyFromArrayAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy2DToArrayAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpy2DToArrayAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy2DFromArrayAsync, _v3020, kAsyncCopy, kNone), PBM_RT(cudaMemcpy2DFromArrayAsync, _ptsz_v7000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyBatchAsync, _v12080, kAsyncCopy, kNone), PBM_RT(cudaMemcpyBatchAsync, _ptsz_v12080, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpyBatchAsync, _v13000, kAsyncCopy, kNone), PBM_RT(cudaMemcpyBatchAsync, _ptsz_v13000, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy3DBatchAsync, _v12080, kAsyncCopy, kNone), PBM_RT(cudaMemcpy3DBatchAsync, _ptsz_v12080, kAsyncCopy, kNone),
      PBM_RT(cudaMemcpy3DBatchAsync, _v13000, kAsyncCopy, kNone), PBM_RT(cudaMemcpy3DBatchAsync, _ptsz_v13000, kAsyncCopy, kNone),
      // Synchronisations.
      PBM_RT(cudaStreamSynchronize, _v3020, kSync, SyncApi::stream_synchronize),
      PBM_RT(cudaStreamSynchronize, _ptsz_v7000, kSync, SyncApi::stream_synchronize),
      PBM_RT(cudaDeviceSynchronize, _v3020, kSync, SyncApi::device_synchronize),
      PBM_RT(cudaThreadSynchronize, _v3020, kSync, SyncApi::device_synchronize),
      PBM_RT(cudaEventSynchronize, _v3020, kSync, SyncApi::event_synchronize),
      PBM_RT(cudaStreamQuery, _v3020, kSync, SyncApi::stream_query),
      PBM_RT(cudaStreamQuery, _ptsz_v7000, kSync, SyncApi::stream_query),
      PBM_RT(cudaEventQuery, _v3020, kSync, SyncApi::event_query),
      PBM_RT(cudaStreamWaitEvent, _v3020, kSync, SyncApi::stream_wait_event),
      PBM_RT(cudaStreamWaitEvent, _ptsz_v7000, kSync, SyncApi::stream_wait_event),
      // Implicit synchronisations.
      PBM_RT(cudaFree, _v3020, kSync, SyncApi::free),
      PBM_RT(cudaFreeHost, _v3020, kSync, SyncApi::free_host),
      PBM_RT(cudaMallocHost, _v3020, kSync, SyncApi::host_alloc),
      PBM_RT(cudaHostAlloc, _v3020, kSync, SyncApi::host_alloc),
      PBM_RT(cudaHostRegister, _v4000, kSync, SyncApi::host_register),
      PBM_RT(cudaHostUnregister, _v4000, kSync, SyncApi::host_unregister),
      PBM_RT(cudaMalloc, _v3020, kSync, SyncApi::malloc),
      // Other device memory allocations ("a device memory allocation" serialises the device).
      // cudaMallocManaged is not one of them: CUDA documents no synchronisation for it.
      PBM_RT(cudaMallocPitch, _v3020, kSync, SyncApi::malloc),
      PBM_RT(cudaMalloc3D, _v3020, kSync, SyncApi::malloc),
      PBM_RT(cudaMallocArray, _v3020, kSync, SyncApi::malloc),
      PBM_RT(cudaMalloc3DArray, _v3020, kSync, SyncApi::malloc),
      PBM_RT(cudaMallocMipmappedArray, _v5000, kSync, SyncApi::malloc),
      PBM_RT(cudaFreeArray, _v3020, kSync, SyncApi::free_array),
      PBM_RT(cudaFreeMipmappedArray, _v5000, kSync, SyncApi::free_array),
      PBM_RT(cudaDeviceSetLimit, _v3020, kSync, SyncApi::set_limit),
      PBM_RT(cudaThreadSetLimit, _v3020, kSync, SyncApi::set_limit),
      PBM_RT(cudaDeviceSetCacheConfig, _v3020, kSync, SyncApi::set_cache_config),
      PBM_RT(cudaThreadSetCacheConfig, _v3020, kSync, SyncApi::set_cache_config),
      PBM_RT(cudaMemset, _v3020, kSync, kMemset), PBM_RT(cudaMemset, _ptds_v7000, kSync, kMemset),
      PBM_RT(cudaMemset2D, _v3020, kSync, kMemset), PBM_RT(cudaMemset2D, _ptds_v7000, kSync, kMemset),
      PBM_RT(cudaMemset3D, _v3020, kSync, kMemset), PBM_RT(cudaMemset3D, _ptds_v7000, kSync, kMemset),
      // CUDA graphs (graphs.hpp): nodes read at instantiation, reported at each launch; a capture
      // that a watched call breaks is reported at that call's exit.
      PBM_RT(cudaGraphLaunch, _v10000, kGraphLaunch, kNone), PBM_RT(cudaGraphLaunch, _ptsz_v10000, kGraphLaunch, kNone),
      PBM_RT(cudaGraphInstantiate, _v10000, kBook, kNone), PBM_RT(cudaGraphInstantiate, _v12000, kBook, kNone),
      PBM_RT(cudaGraphInstantiateWithFlags, _v11040, kBook, kNone),
      PBM_RT(cudaGraphInstantiateWithParams, _v12000, kBook, kNone),
      PBM_RT(cudaGraphInstantiateWithParams, _ptsz_v12000, kBook, kNone),
      PBM_RT(cudaGraphExecUpdate, _v10020, kBook, kNone),
      PBM_RT(cudaGraphExecDestroy, _v10000, kBook, kNone),
      // The legacy default stream rule (opt-in): kernels and async memsets, and which streams block.
      PBM_RT_L(cudaLaunchKernel, _v7000, kQuiet), PBM_RT_L(cudaLaunchKernel, _ptsz_v7000, kQuiet),
      PBM_RT_L(cudaLaunchKernelExC, _v11060, kQuiet), PBM_RT_L(cudaLaunchKernelExC, _ptsz_v11060, kQuiet),
      PBM_RT_L(cudaLaunchCooperativeKernel, _v9000, kQuiet), PBM_RT_L(cudaLaunchCooperativeKernel, _ptsz_v9000, kQuiet),
      PBM_RT_L(cudaMemsetAsync, _v3020, kQuiet), PBM_RT_L(cudaMemsetAsync, _ptsz_v7000, kQuiet),
      PBM_RT_L(cudaMemset2DAsync, _v3020, kQuiet), PBM_RT_L(cudaMemset2DAsync, _ptsz_v7000, kQuiet),
      PBM_RT_L(cudaMemset3DAsync, _v3020, kQuiet), PBM_RT_L(cudaMemset3DAsync, _ptsz_v7000, kQuiet),
      PBM_RT_L(cudaStreamCreate, _v3020, kBook), PBM_RT_L(cudaStreamCreateWithFlags, _v5000, kBook),
      PBM_RT_L(cudaStreamCreateWithPriority, _v5050, kBook),
      PBM_RT_L(cudaStreamDestroy, _v3020, kBook), PBM_RT_L(cudaStreamDestroy, _v5050, kBook),
  };
  return specs;
}

std::vector<CallbackSpec> const& driver_callbacks() {
  static std::vector<CallbackSpec> const specs{
      // Synchronous copies with host memory on one side.
      PBM_DRV(cuMemcpy, , kSyncCopy, kNone), PBM_DRV(cuMemcpy, _ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoD, , kSyncCopy, kNone), PBM_DRV(cuMemcpyHtoD, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoD, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoH, , kSyncCopy, kNone), PBM_DRV(cuMemcpyDtoH, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoH, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoA, , kSyncCopy, kNone), PBM_DRV(cuMemcpyHtoA, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoA, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoH, , kSyncCopy, kNone), PBM_DRV(cuMemcpyAtoH, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoH, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy2D, , kSyncCopy, kNone), PBM_DRV(cuMemcpy2D, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy2D, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy2DUnaligned, , kSyncCopy, kNone), PBM_DRV(cuMemcpy2DUnaligned, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy2DUnaligned, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy3D, , kSyncCopy, kNone), PBM_DRV(cuMemcpy3D, _v2, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy3D, _v2_ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpyPeer, , kSyncCopy, kNone), PBM_DRV(cuMemcpyPeer, _ptds, kSyncCopy, kNone),
      PBM_DRV(cuMemcpy3DPeer, , kSyncCopy, kNone), PBM_DRV(cuMemcpy3DPeer, _ptds, kSyncCopy, kNone),
      // Device-to-device copies do not block the host even when "synchronous".
      PBM_DRV(cuMemcpyDtoD, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyDtoD, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoD, _v2_ptds, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoA, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyDtoA, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoD, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyAtoD, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoA, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyAtoA, _v2, kAsyncCopy, kNone),
      // Async copies.
      PBM_DRV(cuMemcpyAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyAsync, _ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoDAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyHtoDAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoDAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoHAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyDtoHAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoHAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoDAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyDtoDAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyDtoDAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoAAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyHtoAAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyHtoAAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoHAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyAtoHAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyAtoHAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy2DAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpy2DAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy2DAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy3DAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpy3DAsync, _v2, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy3DAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyPeerAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyPeerAsync, _ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy3DPeerAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpy3DPeerAsync, _ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyBatchAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpyBatchAsync, _ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpyBatchAsync, _v2, kAsyncCopy, kNone), PBM_DRV(cuMemcpyBatchAsync, _v2_ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy3DBatchAsync, , kAsyncCopy, kNone), PBM_DRV(cuMemcpy3DBatchAsync, _ptsz, kAsyncCopy, kNone),
      PBM_DRV(cuMemcpy3DBatchAsync, _v2, kAsyncCopy, kNone), PBM_DRV(cuMemcpy3DBatchAsync, _v2_ptsz, kAsyncCopy, kNone),
      // Synchronisations.
      PBM_DRV(cuStreamSynchronize, , kSync, SyncApi::stream_synchronize),
      PBM_DRV(cuStreamSynchronize, _ptsz, kSync, SyncApi::stream_synchronize),
      PBM_DRV(cuCtxSynchronize, , kSync, SyncApi::context_synchronize),
      PBM_DRV(cuCtxSynchronize, _v2, kSync, SyncApi::context_synchronize),
      PBM_DRV(cuEventSynchronize, , kSync, SyncApi::event_synchronize),
      PBM_DRV(cuStreamQuery, , kSync, SyncApi::stream_query),
      PBM_DRV(cuStreamQuery, _ptsz, kSync, SyncApi::stream_query),
      PBM_DRV(cuEventQuery, , kSync, SyncApi::event_query),
      PBM_DRV(cuStreamWaitEvent, , kSync, SyncApi::stream_wait_event),
      PBM_DRV(cuStreamWaitEvent, _ptsz, kSync, SyncApi::stream_wait_event),
      // Implicit synchronisations (under a runtime call they are its aliases: engine.cpp api_enter).
      PBM_DRV(cuMemFree, , kSync, SyncApi::free), PBM_DRV(cuMemFree, _v2, kSync, SyncApi::free),
      PBM_DRV(cuMemFreeHost, , kSync, SyncApi::free_host),
      PBM_DRV(cuMemAllocHost, , kSync, SyncApi::host_alloc), PBM_DRV(cuMemAllocHost, _v2, kSync, SyncApi::host_alloc),
      PBM_DRV(cuMemHostAlloc, , kSync, SyncApi::host_alloc), PBM_DRV(cuMemHostAlloc, _v2, kSync, SyncApi::host_alloc),
      PBM_DRV(cuMemHostRegister, , kSync, SyncApi::host_register),
      PBM_DRV(cuMemHostRegister, _v2, kSync, SyncApi::host_register),
      PBM_DRV(cuMemHostUnregister, , kSync, SyncApi::host_unregister),
      PBM_DRV(cuMemAlloc, , kSync, SyncApi::malloc), PBM_DRV(cuMemAlloc, _v2, kSync, SyncApi::malloc),
      PBM_DRV(cuMemAllocPitch, , kSync, SyncApi::malloc), PBM_DRV(cuMemAllocPitch, _v2, kSync, SyncApi::malloc),
      PBM_DRV(cuArrayCreate, , kSync, SyncApi::malloc), PBM_DRV(cuArrayCreate, _v2, kSync, SyncApi::malloc),
      PBM_DRV(cuArray3DCreate, , kSync, SyncApi::malloc), PBM_DRV(cuArray3DCreate, _v2, kSync, SyncApi::malloc),
      PBM_DRV(cuMipmappedArrayCreate, , kSync, SyncApi::malloc),
      PBM_DRV(cuArrayDestroy, , kSync, SyncApi::free_array),
      PBM_DRV(cuMipmappedArrayDestroy, , kSync, SyncApi::free_array),
      PBM_DRV(cuCtxSetLimit, , kSync, SyncApi::set_limit),
      PBM_DRV(cuCtxSetCacheConfig, , kSync, SyncApi::set_cache_config),
      // Memsets: only the _v2 calls (the 32-bit legacy ones carry no decodable pointer).
      PBM_DRV(cuMemsetD8, _v2, kSync, kMemset), PBM_DRV(cuMemsetD8, _v2_ptds, kSync, kMemset),
      PBM_DRV(cuMemsetD16, _v2, kSync, kMemset), PBM_DRV(cuMemsetD16, _v2_ptds, kSync, kMemset),
      PBM_DRV(cuMemsetD32, _v2, kSync, kMemset), PBM_DRV(cuMemsetD32, _v2_ptds, kSync, kMemset),
      PBM_DRV(cuMemsetD2D8, _v2, kSync, kMemset), PBM_DRV(cuMemsetD2D8, _v2_ptds, kSync, kMemset),
      PBM_DRV(cuMemsetD2D16, _v2, kSync, kMemset), PBM_DRV(cuMemsetD2D16, _v2_ptds, kSync, kMemset),
      PBM_DRV(cuMemsetD2D32, _v2, kSync, kMemset), PBM_DRV(cuMemsetD2D32, _v2_ptds, kSync, kMemset),
      // CUDA graphs.
      PBM_DRV(cuGraphLaunch, , kGraphLaunch, kNone), PBM_DRV(cuGraphLaunch, _ptsz, kGraphLaunch, kNone),
      PBM_DRV(cuGraphInstantiate, , kBook, kNone), PBM_DRV(cuGraphInstantiate, _v2, kBook, kNone),
      PBM_DRV(cuGraphInstantiateWithFlags, , kBook, kNone),
      PBM_DRV(cuGraphInstantiateWithParams, , kBook, kNone), PBM_DRV(cuGraphInstantiateWithParams, _ptsz, kBook, kNone),
      PBM_DRV(cuGraphExecUpdate, , kBook, kNone), PBM_DRV(cuGraphExecUpdate, _v2, kBook, kNone),
      PBM_DRV(cuGraphExecDestroy, , kBook, kNone),
      // The legacy default stream rule (opt-in).
      PBM_DRV_L(cuLaunchKernel, , kQuiet), PBM_DRV_L(cuLaunchKernel, _ptsz, kQuiet),
      PBM_DRV_L(cuLaunchKernelEx, , kQuiet), PBM_DRV_L(cuLaunchKernelEx, _ptsz, kQuiet),
      PBM_DRV_L(cuLaunchCooperativeKernel, , kQuiet), PBM_DRV_L(cuLaunchCooperativeKernel, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD8Async, , kQuiet), PBM_DRV_L(cuMemsetD8Async, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD16Async, , kQuiet), PBM_DRV_L(cuMemsetD16Async, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD32Async, , kQuiet), PBM_DRV_L(cuMemsetD32Async, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD2D8Async, , kQuiet), PBM_DRV_L(cuMemsetD2D8Async, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD2D16Async, , kQuiet), PBM_DRV_L(cuMemsetD2D16Async, _ptsz, kQuiet),
      PBM_DRV_L(cuMemsetD2D32Async, , kQuiet), PBM_DRV_L(cuMemsetD2D32Async, _ptsz, kQuiet),
      PBM_DRV_L(cuStreamCreate, , kBook), PBM_DRV_L(cuStreamCreateWithPriority, , kBook),
      PBM_DRV_L(cuStreamDestroy, , kBook), PBM_DRV_L(cuStreamDestroy, _v2, kBook),
  };
  return specs;
}

#undef PBM_RT
#undef PBM_DRV
#undef PBM_RT_L
#undef PBM_DRV_L

namespace {

/// Spec by callback id, indexed directly: this runs in every enabled API callback, and a scan of
/// the lists cost a quarter of count mode's time per intercepted call (perf, CPU, stand-in CUPTI).
class SpecIndex {
 public:
  explicit SpecIndex(std::vector<CallbackSpec> const& specs) {
    CUpti_CallbackId top = 0;
    for (CallbackSpec const& s : specs) top = s.cbid > top ? s.cbid : top;
    by_id_.assign(static_cast<std::size_t>(top) + 1, nullptr);
    for (CallbackSpec const& s : specs) {
      if (by_id_[s.cbid] == nullptr) by_id_[s.cbid] = &s;  // the first spec of an id, as the scan did
    }
  }
  CallbackSpec const* find(CUpti_CallbackId cbid) const noexcept {
    return cbid < by_id_.size() ? by_id_[cbid] : nullptr;
  }

 private:
  std::vector<CallbackSpec const*> by_id_;
};

}  // namespace

CallbackSpec const* find_callback(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) noexcept {
  static SpecIndex const* const runtime = new SpecIndex(runtime_callbacks());  // never destroyed:
  static SpecIndex const* const driver = new SpecIndex(driver_callbacks());    // callbacks at exit
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) return runtime->find(cbid);
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) return driver->find(cbid);
  return nullptr;
}

}  // namespace pbm::telemetry::detail
