// CUDA graphs, stream capture and the legacy default stream rule end to end on a CPU: pbm attached
// to the stand-in libcupti (fake_cupti.cpp), the test delivering runtime/driver API callbacks with
// real CUDA 13.0 parameter structs and return values as CUPTI would; graphs, stream flags and memory
// kinds come from the stand-in driver (fake_libcuda*.cpp: graphs are fake_graph.hpp's structs;
// streams 0x5000 blocking, 0x6000 non-blocking; memory 0x1000 pageable, 0x2000 pinned, 0x3000 device).
#include "fake_cupti_session.hpp"
#include "fake_graph.hpp"

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/policy.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <gtest/gtest.h>

#include <cupti.h>

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

using ApiFn = std::uint32_t (*)(int, std::uint32_t, int, std::uint32_t, void const*, void const*);
ApiFn g_api = nullptr;

constexpr auto kRt = CUPTI_CB_DOMAIN_RUNTIME_API;
constexpr auto kDrv = CUPTI_CB_DOMAIN_DRIVER_API;

template <class T>
T* at(std::uintptr_t a) {
  return reinterpret_cast<T*>(a);
}

struct Recorder : pt::Observer {
  std::mutex mu;
  std::vector<pt::Violation> violations;
  std::vector<pt::MemcpyEvent> copies;
  void on_memcpy(pt::MemcpyEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    copies.push_back(ev);
  }
  void on_violation(pt::Violation const& v) override {
    std::lock_guard<std::mutex> lock(mu);
    violations.push_back(v);
  }
};

/// A runtime call (entry, `inside`, exit returning `returned`); false when pbm did not enable it.
template <class Inside>
bool call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params, int returned, Inside inside) {
  std::uint32_t const id = g_api(domain, cbid, 1, 0, params, nullptr);
  if (id == 0) return false;
  inside();
  if (domain == kRt) {
    auto const r = static_cast<cudaError_t>(returned);
    g_api(domain, cbid, 0, id, params, &r);
  } else {
    auto const r = static_cast<CUresult>(returned);
    g_api(domain, cbid, 0, id, params, &r);
  }
  return true;
}
bool call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params, int returned = 0) {
  return call(domain, cbid, params, returned, [] {});
}

class GraphsAndCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fake_driver()) GTEST_SKIP() << "a real libcuda.so.1 is loaded: the stand-in driver's graphs are not reachable";
    std::string const not_attached = pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH);
    ASSERT_TRUE(not_attached.empty()) << not_attached;
    g_api = pbm_test::fake_cupti_hook<ApiFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_api_returning");
    ASSERT_NE(g_api, nullptr);
    pt::add_observer(recorder);
  }
  void TearDown() override {
    if (!fake_driver()) return;
    pt::remove_observer(recorder);
    pt::set_legacy_stream_rule(false);
    pt::set_mode(pt::Mode::count);
  }
  static bool fake_driver() {
    ::dlopen(PBM_FAKE_CUPTI_PATH, RTLD_LAZY);  // and the stand-in libcuda.so.1 beside it, unless a driver is loaded
    return pbm_test::stand_in_driver_loaded();
  }
  std::uint64_t syncs(pt::SyncApi api, bool expected) { return pt::counters().sync_count(api, expected, ""); }
  std::uint64_t copies(pt::Direction d, pt::MemoryKind m, bool expected) {
    return pt::counters().memcpy_count(d, m, expected, "");
  }
  Recorder recorder;
};

/// A graph as stream capture makes it: a kernel, a device-to-pageable copy of 256 bytes, a
/// pinned-to-device copy of 4 KiB, a host node, and a child graph holding one more host node.
struct TestGraph {
  pbm_fake::FakeNode kernel, dtoh, htod, host, child_node, child_host;
  pbm_fake::FakeGraph child, graph;
  TestGraph() {
    kernel.type = CU_GRAPH_NODE_TYPE_KERNEL;
    dtoh.type = CU_GRAPH_NODE_TYPE_MEMCPY;
    dtoh.copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    dtoh.copy.srcDevice = 0x3000;
    dtoh.copy.dstMemoryType = CU_MEMORYTYPE_HOST;
    dtoh.copy.dstHost = at<void>(0x1000);
    dtoh.copy.WidthInBytes = 256;
    dtoh.copy.Height = 1;
    dtoh.copy.Depth = 1;
    htod.type = CU_GRAPH_NODE_TYPE_MEMCPY;
    htod.copy.srcMemoryType = CU_MEMORYTYPE_UNIFIED;  // captured cudaMemcpyAsync(cudaMemcpyDefault)
    htod.copy.srcDevice = 0x2000;
    htod.copy.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
    htod.copy.dstDevice = 0x3000;
    htod.copy.WidthInBytes = 4096;
    htod.copy.Height = 1;
    htod.copy.Depth = 1;
    host.type = CU_GRAPH_NODE_TYPE_HOST;
    child_host.type = CU_GRAPH_NODE_TYPE_HOST;
    child.count = 1;
    child.nodes[0] = &child_host;
    child_node.type = CU_GRAPH_NODE_TYPE_GRAPH;
    child_node.child = &child;
    graph.count = 5;
    graph.nodes[0] = &kernel;
    graph.nodes[1] = &dtoh;
    graph.nodes[2] = &htod;
    graph.nodes[3] = &host;
    graph.nodes[4] = &child_node;
  }
  CUgraph handle() { return reinterpret_cast<CUgraph>(&graph); }
};

/// A graph of one host node: what an update turns an executable into, in the update tests.
struct OneHostNode {
  pbm_fake::FakeNode host;
  pbm_fake::FakeGraph graph;
  OneHostNode() {
    host.type = CU_GRAPH_NODE_TYPE_HOST;
    graph.count = 1;
    graph.nodes[0] = &host;
  }
  CUgraph handle() { return reinterpret_cast<CUgraph>(&graph); }
};

}  // namespace

TEST_F(GraphsAndCapture, EachReplayReportsTheGraphsCopiesAndHostNodesAtItsLaunch) {
  TestGraph g;
  cudaGraphExec_t exec = nullptr;
  cudaGraphInstantiateWithFlags_v11040_params inst{&exec, reinterpret_cast<cudaGraph_t>(g.handle()), 0};
  // What instantiate returns is read at its exit: the executable graph.
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphInstantiateWithFlags_v11040, &inst, cudaSuccess, [&] {
    exec = reinterpret_cast<cudaGraphExec_t>(0x9100);
  }));
  std::uint64_t const dtoh0 = copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false);
  std::uint64_t const htod0 = copies(pt::Direction::HtoD, pt::MemoryKind::pinned, true);
  std::uint64_t const host0 = syncs(pt::SyncApi::graph_host_node, true);
  cudaGraphLaunch_v10000_params launch{exec, nullptr};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, &launch));
  EXPECT_EQ(copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false) - dtoh0, 3u) << "one per replay";
  EXPECT_EQ(copies(pt::Direction::HtoD, pt::MemoryKind::pinned, true) - htod0, 3u);
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 6u) << "two host nodes (one in the child graph) per replay";
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, false), 0u) << "never a host sync";
  {
    std::lock_guard<std::mutex> lock(recorder.mu);
    ASSERT_GE(recorder.copies.size(), 6u);
    EXPECT_EQ(recorder.copies.back().bytes, 4096u);
  }

  // Inside forbid(memcpy): each replay's device-to-host copy is a violation of the launch call.
  recorder.violations.clear();
  {
    pt::Forbid forbid(pt::What::memcpy);
    ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, &launch));
  }
  ASSERT_EQ(recorder.violations.size(), 2u);  // both copies: memcpy is forbidden
  EXPECT_EQ(recorder.violations[0].api, "cudaGraphLaunch");
  EXPECT_TRUE(recorder.violations[0].is_memcpy);
  EXPECT_EQ(recorder.violations[0].memcpy.direction, pt::Direction::DtoH);
  EXPECT_TRUE(recorder.violations[0].at_call_site);

  // The driver launch under the runtime one is its alias: one replay, not two.
  std::uint64_t const before = copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false);
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, &launch, cudaSuccess, [&] {
    cuGraphLaunch_params d{reinterpret_cast<CUgraphExec>(exec), nullptr};
    call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &d);
  }));
  EXPECT_EQ(copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false) - before, 1u);

  // Destroyed: its handle's later launches report nothing.
  cudaGraphExecDestroy_v10000_params destroy{exec};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphExecDestroy_v10000, &destroy));
  std::uint64_t const after_destroy = copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false);
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, &launch));
  EXPECT_EQ(copies(pt::Direction::DtoH, pt::MemoryKind::pageable, false), after_destroy);
}

TEST_F(GraphsAndCapture, AFailedInstantiateOrAnUpdateIsReadAgain) {
  TestGraph g;
  CUgraphExec exec = reinterpret_cast<CUgraphExec>(0x9200);
  cuGraphInstantiateWithFlags_params inst{&exec, g.handle(), 0};
  // Failed: nothing cached.
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphInstantiateWithFlags, &inst, CUDA_ERROR_INVALID_VALUE));
  std::uint64_t const host0 = syncs(pt::SyncApi::graph_host_node, true);
  cuGraphLaunch_params launch{exec, nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true), host0);
  // Updated to a graph with one host node: replays report one.
  OneHostNode one;
  cuGraphExecUpdate_v2_params update{exec, one.handle(), nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecUpdate_v2, &update));
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 1u);
}

// pbm's own graphs (a kernel node and an event record node per completion, up to two per
// completion and 64 completions per chunk) have nothing a replay would report: they must not take
// the cache's room and push the user's graphs out of it.
TEST_F(GraphsAndCapture, GraphsWithNothingToReportTakeNoRoomFromTheUsersGraphs) {
  TestGraph g;
  CUgraphExec exec = reinterpret_cast<CUgraphExec>(0x9300);
  cuGraphInstantiateWithFlags_params inst{&exec, g.handle(), 0};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphInstantiateWithFlags, &inst));
  pbm_fake::FakeNode kernel, record;
  kernel.type = CU_GRAPH_NODE_TYPE_KERNEL;
  record.type = CU_GRAPH_NODE_TYPE_EVENT_RECORD;
  pbm_fake::FakeGraph quiet;
  quiet.count = 2;
  quiet.nodes[0] = &kernel;
  quiet.nodes[1] = &record;
  for (std::uintptr_t i = 0; i < 4096 + 100; ++i) {  // more than GraphCache::kMaxGraphs
    CUgraphExec other = reinterpret_cast<CUgraphExec>(0x100000 + 16 * i);
    cuGraphInstantiateWithFlags_params q{&other, reinterpret_cast<CUgraph>(&quiet), 0};
    ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphInstantiateWithFlags, &q));
  }
  std::uint64_t const host0 = syncs(pt::SyncApi::graph_host_node, true);
  cuGraphLaunch_params launch{exec, nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 2u) << "the user's graph was pushed out of the cache";
  cuGraphExecDestroy_params destroy{exec};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecDestroy, &destroy));
}

TEST_F(GraphsAndCapture, AGraphThatCameToReportByAnUpdateIsReportedAtItsLaunch) {
  // Instantiated with nothing to report (as pbm's own push and pop graphs: no memcpy or host node):
  // while no kept graph reports anything, launches are judged as nothing without a lookup.
  pbm_fake::FakeGraph empty;
  empty.count = 0;
  CUgraphExec exec = reinterpret_cast<CUgraphExec>(0x9400);
  cuGraphInstantiateWithFlags_params inst{&exec, reinterpret_cast<CUgraph>(&empty), 0};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphInstantiateWithFlags, &inst));
  std::uint64_t const host0 = syncs(pt::SyncApi::graph_host_node, true);
  cuGraphLaunch_params launch{exec, nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true), host0);
  // The same executable updated to a host node: from now on each launch reports it.
  OneHostNode one;
  cuGraphExecUpdate_v2_params update{exec, one.handle(), nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecUpdate_v2, &update));
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 1u);
  // Updated back to nothing, then to the host node again: counted once more, not lost.
  cuGraphExecUpdate_v2_params back{exec, reinterpret_cast<CUgraph>(&empty), nullptr};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecUpdate_v2, &back));
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 1u);
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecUpdate_v2, &update));
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, &launch));
  EXPECT_EQ(syncs(pt::SyncApi::graph_host_node, true) - host0, 2u);
  cuGraphExecDestroy_params destroy{exec};
  ASSERT_TRUE(call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuGraphExecDestroy, &destroy));
}

TEST_F(GraphsAndCapture, ACallThatBreaksACaptureIsReportedWithItsApiAndStack) {
  std::uint64_t const before = pt::counters().violation_count(pt::Rule::sync_in_capture);
  cudaStreamSynchronize_v3020_params p{at<CUstream_st>(0x6100)};
  // The runtime call fails with cudaErrorStreamCaptureUnsupported; its driver call underneath too.
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, &p,
                   cudaErrorStreamCaptureUnsupported, [] {
                     cuStreamSynchronize_params d{at<CUstream_st>(0x6100)};
                     call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize, &d, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
                   }));
  EXPECT_EQ(pt::counters().violation_count(pt::Rule::sync_in_capture) - before, 1u) << "reported once, by the runtime call";
  std::vector<pt::Violation> found;
  for (pt::Violation const& v : recorder.violations)
    if (v.rule == pt::Rule::sync_in_capture) found.push_back(v);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].api, "cudaStreamSynchronize");
  EXPECT_EQ(found[0].sync.api, pt::SyncApi::stream_synchronize);
  EXPECT_EQ(found[0].mode, pt::Mode::warn) << "said even in count mode: the capture has failed";
  EXPECT_TRUE(found[0].at_call_site);
  EXPECT_FALSE(found[0].backtrace.empty());

  // A blocking copy and an allocation refused during capture: same rule, their own APIs.
  cudaMemcpy_v3020_params copy{at<void>(0x1000), at<void>(0x3000), 64, cudaMemcpyDeviceToHost};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, &copy, cudaErrorStreamCaptureImplicit));
  void* ptr = nullptr;
  cudaMalloc_v3020_params alloc{&ptr, 64};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020, &alloc, cudaErrorStreamCaptureInvalidated));
  EXPECT_EQ(pt::counters().violation_count(pt::Rule::sync_in_capture) - before, 3u);
  EXPECT_EQ(recorder.violations.back().api, "cudaMalloc");

  // Success, or another error: nothing.
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, &p, cudaSuccess));
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, &p, cudaErrorInvalidResourceHandle));
  EXPECT_EQ(pt::counters().violation_count(pt::Rule::sync_in_capture) - before, 3u);
}

TEST_F(GraphsAndCapture, LegacyStreamRuleCountsLegacyWorkOnlyBesideABlockingStream) {
  cudaLaunchKernel_v7000_params on_legacy{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, nullptr};
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy))
      << "off by default: no launch callback at all";
  pt::set_legacy_stream_rule(true);
  EXPECT_TRUE(pt::status().legacy_stream_rule);
  auto legacy = [this] { return syncs(pt::SyncApi::legacy_stream, true); };
  std::uint64_t const l0 = legacy();
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_EQ(legacy(), l0) << "no blocking stream yet: nothing to serialise with";

  // A non-blocking stream changes nothing; a blocking one (cudaStreamCreate has no flags) does.
  cudaStream_t nonblocking = nullptr, blocking = nullptr;
  cudaStreamCreateWithFlags_v5000_params nb{&nonblocking, cudaStreamNonBlocking};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamCreateWithFlags_v5000, &nb, cudaSuccess,
                   [&] { nonblocking = at<CUstream_st>(0x7100); }));
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_EQ(legacy(), l0);
  cudaStreamCreate_v3020_params b{&blocking};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamCreate_v3020, &b, cudaSuccess,
                   [&] { blocking = at<CUstream_st>(0x7200); }));
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_EQ(legacy() - l0, 1u);
  EXPECT_EQ(syncs(pt::SyncApi::legacy_stream, false), 0u) << "never a violation";

  // Kernels, async and synchronous copies, memsets: each once, the driver call under a runtime one not again.
  cudaMemcpyAsync_v3020_params copy{at<void>(0x3000), at<void>(0x2000), 64, cudaMemcpyHostToDevice, nullptr};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &copy));
  cudaMemsetAsync_v3020_params set{at<void>(0x3000), 0, 64, cudaStreamLegacy};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020, &set));
  cudaMemcpy_v3020_params sync_copy{at<void>(0x3000), at<void>(0x3100), 64, cudaMemcpyDeviceToDevice};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, &sync_copy));
  cuLaunchKernel_params drv{nullptr, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy, cudaSuccess,
                   [&] { call(kDrv, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, &drv); }));
  EXPECT_EQ(legacy() - l0, 5u);

  // Not the legacy stream: per-thread default streams, explicit streams, 0 through a _ptsz call.
  cudaLaunchKernel_v7000_params per_thread{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, cudaStreamPerThread};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &per_thread));
  cudaLaunchKernel_v7000_params explicit_stream{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, blocking};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &explicit_stream));
  cudaLaunchKernel_ptsz_v7000_params ptsz{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, nullptr};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000, &ptsz));
  EXPECT_EQ(legacy() - l0, 5u);

  // The blocking stream destroyed: nothing left to serialise with.
  cudaStreamDestroy_v5050_params gone{blocking};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamDestroy_v5050, &gone));
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_EQ(legacy() - l0, 5u);

  // A blocking stream made before pbm attached is learned from its flags when work goes to it.
  cudaLaunchKernel_v7000_params on_old{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, at<CUstream_st>(0x5300)};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_old));
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_EQ(legacy() - l0, 6u);
  cudaStreamDestroy_v5050_params old_gone{at<CUstream_st>(0x5300)};
  ASSERT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaStreamDestroy_v5050, &old_gone));

  // Off again: the launch callbacks are disabled.
  pt::set_legacy_stream_rule(false);
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
  EXPECT_FALSE(pt::status().legacy_stream_rule);
}

TEST_F(GraphsAndCapture, LegacyStreamRuleFromTheEnvironment) {
  pt::stop();
  ::setenv("PBM_LEGACY_STREAM", "1", 1);
  pt::Config config;
  config.mode = pt::Mode::count;
  config.set_nvtx_injection = false;
  pt::start(config);
  ::unsetenv("PBM_LEGACY_STREAM");
  EXPECT_TRUE(pt::status().legacy_stream_rule);
  cudaLaunchKernel_v7000_params on_legacy{nullptr, {1, 1, 1}, {1, 1, 1}, nullptr, 0, nullptr};
  EXPECT_TRUE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy)) << "launch callbacks enabled";
  pt::start(config);  // started again without it: off
  EXPECT_FALSE(pt::status().legacy_stream_rule);
  EXPECT_FALSE(call(kRt, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, &on_legacy));
}
