// Real CUPTI structs (CUDA 13.0 layouts) through the entry point the buffer callback uses.
#include "decoder.hpp"
#include "engine_test_util.hpp"

#include <pbm/telemetry/policy.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <cupti.h>  // runtime/driver parameter structs for the copy-call tests
#include <cupti_driver_cbid.h>
#include <cupti_runtime_cbid.h>

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

namespace {

struct Recorder : pt::Observer {
  std::vector<pt::MemcpyEvent> copies;
  std::vector<pt::MemsetEvent> memsets;
  std::vector<pt::SyncEvent> syncs;
  std::vector<pd::MarkerEvent> markers;
  void on_memcpy(pt::MemcpyEvent const& ev, bool) override { copies.push_back(ev); }
  void on_memset(pt::MemsetEvent const& ev) override { memsets.push_back(ev); }
  void on_sync(pt::SyncEvent const& ev, bool) override { syncs.push_back(ev); }
  void on_marker(pd::MarkerEvent const& ev) override { markers.push_back(ev); }
};

CUpti_ActivityMemcpy6 memcpy_record(CUpti_ActivityMemcpyKind kind, CUpti_ActivityMemoryKind src,
                                    CUpti_ActivityMemoryKind dst) {
  CUpti_ActivityMemcpy6 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  r.copyKind = static_cast<std::uint8_t>(kind);
  r.srcKind = static_cast<std::uint8_t>(src);
  r.dstKind = static_cast<std::uint8_t>(dst);
  r.bytes = 1 << 20;
  r.start = 1000;
  r.end = 2500;
  r.deviceId = 0;
  r.contextId = 1;
  r.streamId = 13;
  r.correlationId = 77;
  r.runtimeCorrelationId = 76;
  return r;
}

class DecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pt::set_mode(pt::Mode::count);
    pt::set_range_allow_list({});
    engine.add_observer(recorder);
  }
  pd::Engine engine;
  Recorder recorder;
};

}  // namespace

TEST_F(DecoderTest, MemcpyDeviceToPageableHost) {
  auto r = memcpy_record(CUPTI_ACTIVITY_MEMCPY_KIND_DTOH, CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
                         CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE);
  ASSERT_TRUE(pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine));
  ASSERT_EQ(recorder.copies.size(), 1u);
  pt::MemcpyEvent const& ev = recorder.copies[0];
  EXPECT_EQ(ev.direction, pt::Direction::DtoH);
  EXPECT_EQ(ev.src_kind, pt::MemoryKind::device);
  EXPECT_EQ(ev.dst_kind, pt::MemoryKind::pageable);
  EXPECT_EQ(ev.bytes, 1u << 20);
  EXPECT_EQ(ev.stream, 13u);
  EXPECT_EQ(ev.context, 1u);
  EXPECT_EQ(ev.correlation, 77u);
  EXPECT_EQ(ev.runtime_correlation, 76u);
  EXPECT_EQ(ev.start_ns, 1000u);
  EXPECT_EQ(ev.end_ns, 2500u);
  EXPECT_FALSE(ev.is_async);
  EXPECT_EQ(engine.counters().memcpy_count(pt::Direction::DtoH, pt::MemoryKind::pageable, false, ""), 1u);
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::memcpy_dtoh), 1u);
}

TEST_F(DecoderTest, AsyncPinnedUploadIsExpected) {
  auto r = memcpy_record(CUPTI_ACTIVITY_MEMCPY_KIND_HTOD, CUPTI_ACTIVITY_MEMORY_KIND_PINNED,
                         CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
  r.flags = CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC;
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine);
  ASSERT_EQ(recorder.copies.size(), 1u);
  EXPECT_TRUE(recorder.copies[0].is_async);
  EXPECT_EQ(engine.counters().memcpy_count(pt::Direction::HtoD, pt::MemoryKind::pinned, true, ""), 1u);
  EXPECT_EQ(engine.counters().violation_total(), 0u);
}

TEST_F(DecoderTest, PageableAsyncUploadIsAViolation) {
  auto r = memcpy_record(CUPTI_ACTIVITY_MEMCPY_KIND_HTOD, CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE,
                         CUPTI_ACTIVITY_MEMORY_KIND_DEVICE);
  r.flags = CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC;
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine);
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::memcpy_pageable), 1u);
}

TEST(Decoder, DirectionsAndMemoryKinds) {
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_ATOH), pt::Direction::DtoH);
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_HTOA), pt::Direction::HtoD);
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_DTOD), pt::Direction::DtoD);
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_HTOH), pt::Direction::HtoH);
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_PTOP), pt::Direction::PtoP);
  EXPECT_EQ(pd::decode_direction(CUPTI_ACTIVITY_MEMCPY_KIND_UNKNOWN), pt::Direction::unknown);
  EXPECT_EQ(pd::decode_direction(200), pt::Direction::unknown);
  EXPECT_EQ(pd::decode_memory(CUPTI_ACTIVITY_MEMORY_KIND_MANAGED), pt::MemoryKind::managed);
  EXPECT_EQ(pd::decode_memory(CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC), pt::MemoryKind::device);
  EXPECT_EQ(pd::decode_memory(CUPTI_ACTIVITY_MEMORY_KIND_ARRAY), pt::MemoryKind::array);
  EXPECT_EQ(pd::decode_memory(CUPTI_ACTIVITY_MEMORY_KIND_UNKNOWN), pt::MemoryKind::unknown);
}

TEST_F(DecoderTest, Memset) {
  CUpti_ActivityMemset4 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  r.value = 0xab;
  r.bytes = 256;
  r.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  r.streamId = 3;
  r.correlationId = 9;
  r.flags = CUPTI_ACTIVITY_FLAG_MEMSET_ASYNC;
  ASSERT_TRUE(pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine));
  ASSERT_EQ(recorder.memsets.size(), 1u);
  EXPECT_EQ(recorder.memsets[0].memory, pt::MemoryKind::device);
  EXPECT_EQ(recorder.memsets[0].bytes, 256u);
  EXPECT_EQ(recorder.memsets[0].value, 0xabu);
  EXPECT_TRUE(recorder.memsets[0].is_async);
  auto samples = engine.counters().snapshot();
  auto it = std::find_if(samples.begin(), samples.end(), [](auto const& s) { return s.name == "pbm_memset_bytes_total"; });
  ASSERT_NE(it, samples.end());
  EXPECT_EQ(it->value, 256u);
}

TEST_F(DecoderTest, SynchronizationRecords) {
  CUpti_ActivitySynchronization2 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  r.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
  r.correlationId = 501;
  r.contextId = 1;
  r.streamId = 7;
  r.cudaEventId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
  r.start = 10;
  r.end = 20;
  ASSERT_TRUE(pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine));
  r.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE;  // cudaDeviceSynchronize
  r.streamId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
  r.correlationId = 502;
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine);
  r.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT;
  r.correlationId = 503;
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine);
  ASSERT_EQ(recorder.syncs.size(), 3u);
  EXPECT_EQ(recorder.syncs[0].api, pt::SyncApi::stream_synchronize);
  EXPECT_EQ(recorder.syncs[0].stream, 7u);
  EXPECT_EQ(recorder.syncs[0].correlation, 501u);
  EXPECT_EQ(recorder.syncs[0].start_ns, 10u);
  EXPECT_EQ(recorder.syncs[1].api, pt::SyncApi::context_synchronize);
  EXPECT_EQ(recorder.syncs[1].stream, 0u);  // "not applicable" is not a stream id
  EXPECT_EQ(recorder.syncs[2].api, pt::SyncApi::stream_wait_event);
  EXPECT_EQ(engine.counters().sync_total(false), 2u);  // stream wait event does not block the host
  EXPECT_EQ(engine.counters().sync_total(true), 1u);
}

TEST_F(DecoderTest, SyncRecordOfAHookedCallIsDeduplicated) {
  pd::ApiCall c;
  c.correlation = 600;
  c.name = "cudaStreamSynchronize";
  c.cls = pd::ApiCall::Class::sync;
  c.sync_api = pt::SyncApi::stream_synchronize;
  engine.api_enter(c);
  engine.api_exit(c);
  CUpti_ActivitySynchronization2 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  r.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
  r.correlationId = 600;
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&r), engine);
  EXPECT_EQ(engine.counters().sync_total(false), 1u);
}

TEST_F(DecoderTest, NvtxMarkers) {
  CUpti_ActivityMarker2 start;
  std::memset(&start, 0, sizeof start);
  start.kind = CUPTI_ACTIVITY_KIND_MARKER;
  start.flags = CUPTI_ACTIVITY_FLAG_MARKER_START;
  start.timestamp = 123;
  start.id = 42;
  start.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  start.objectId.pt.processId = 1000;
  start.objectId.pt.threadId = 1001;
  start.name = "push";
  start.domain = "pbm";
  CUpti_ActivityMarker2 end = start;
  end.flags = CUPTI_ACTIVITY_FLAG_MARKER_END;
  end.name = nullptr;
  end.domain = nullptr;
  ASSERT_TRUE(pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&start), engine));
  EXPECT_EQ(engine.marker_ranges(1001), (pt::RangeStack{{"pbm", "push"}}));
  pd::ingest_record(reinterpret_cast<CUpti_Activity const*>(&end), engine);
  EXPECT_TRUE(engine.marker_ranges(1001).empty());
  ASSERT_EQ(recorder.markers.size(), 2u);
  EXPECT_EQ(recorder.markers[0].kind, pd::MarkerEvent::Kind::start);
  EXPECT_EQ(recorder.markers[0].thread, 1001u);
  EXPECT_EQ(recorder.markers[0].process, 1000u);
  EXPECT_EQ(recorder.markers[0].domain, "pbm");
  EXPECT_EQ(recorder.markers[0].name, "push");
  EXPECT_EQ(recorder.markers[0].timestamp, 123u);
  EXPECT_EQ(recorder.markers[1].kind, pd::MarkerEvent::Kind::end);
  EXPECT_EQ(recorder.markers[1].id, 42u);
}

TEST_F(DecoderTest, KindsPbmDoesNotEnableAreIgnored) {
  CUpti_Activity kernel{};
  kernel.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  EXPECT_FALSE(pd::ingest_record(&kernel, engine));
  EXPECT_FALSE(pd::ingest_record(nullptr, engine));
  EXPECT_EQ(engine.counters().health().records_processed.load(), 0u);
}

TEST(Callbacks, OnlyCopiesAndSyncsAreWatched) {
  auto const* memcpy_spec = pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020);
  ASSERT_NE(memcpy_spec, nullptr);
  EXPECT_STREQ(memcpy_spec->name, "cudaMemcpy");
  EXPECT_EQ(memcpy_spec->cls, pd::ApiCall::Class::memcpy_sync);
  auto const* async = pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020);
  ASSERT_NE(async, nullptr);
  EXPECT_EQ(async->cls, pd::ApiCall::Class::memcpy_async);
  auto const* dev_sync = pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020);
  ASSERT_NE(dev_sync, nullptr);
  EXPECT_EQ(dev_sync->sync_api, pt::SyncApi::device_synchronize);
  auto const* dtoh = pd::find_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2);
  ASSERT_NE(dtoh, nullptr);
  EXPECT_STREQ(dtoh->name, "cuMemcpyDtoH");
  auto const* ctx_sync = pd::find_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize);
  ASSERT_NE(ctx_sync, nullptr);
  EXPECT_EQ(ctx_sync->sync_api, pt::SyncApi::context_synchronize);
  // Kernel launches are hooked only by the opt-in legacy default stream rule (a callback per launch).
  for (auto const* launch :
       {pd::find_callback(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000),
        pd::find_callback(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel)}) {
    ASSERT_NE(launch, nullptr);
    EXPECT_EQ(launch->group, pd::CallbackSpec::Group::legacy_rule);
    EXPECT_EQ(launch->cls, pd::ApiCall::Class::quiet);
  }
  EXPECT_EQ(pd::find_callback(CUPTI_CB_DOMAIN_NVTX, 1), nullptr);
  // No duplicate ids in a domain.
  for (auto const* specs : {&pd::runtime_callbacks(), &pd::driver_callbacks()}) {
    std::set<CUpti_CallbackId> ids;
    for (auto const& s : *specs) EXPECT_TRUE(ids.insert(s.cbid).second) << s.name << " listed twice";
  }
}

// ---------------------------------------------------------------- copies from API callback parameters
namespace {
using pbm_test::at;
using pbm_test::fake_kind;
}  // namespace

TEST(CopyCall, RuntimeMemcpyTakesDirectionFromKindAndMemoryFromThePointers) {
  cudaMemcpy_v3020_params p{at(0x1000), at(0x3000), 4, cudaMemcpyDeviceToHost};
  auto ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, &p, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::DtoH);
  EXPECT_EQ(ev->src_kind, pt::MemoryKind::device);
  EXPECT_EQ(ev->dst_kind, pt::MemoryKind::pageable);
  EXPECT_EQ(ev->bytes, 4u);
  EXPECT_FALSE(ev->is_async);

  cudaMemcpy_v3020_params d{at(0x2000), at(0x3000), 8, cudaMemcpyDefault};  // inferred from the pointers
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_ptds_v7000, &d, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::DtoH);
  EXPECT_EQ(ev->dst_kind, pt::MemoryKind::pinned);
}

TEST(CopyCall, AsyncPageableUploadAnd2DAndSymbolAndPeer) {
  cudaMemcpyAsync_v3020_params a{at(0x3000), at(0x1000), 256, cudaMemcpyHostToDevice, nullptr};
  auto ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &a, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::HtoD);
  EXPECT_EQ(ev->src_kind, pt::MemoryKind::pageable);
  EXPECT_TRUE(ev->is_async);

  cudaMemcpy2DAsync_v3020_params m{at(0x1000), 64, at(0x3000), 128, 16, 10, cudaMemcpyDeviceToHost, nullptr};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_v3020, &m, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->bytes, 160u) << "width x height, not the pitches";
  EXPECT_EQ(ev->direction, pt::Direction::DtoH);

  cudaMemcpyFromSymbol_v3020_params s{at(0x2000), at(0x9000), 12, 0, cudaMemcpyDeviceToHost};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbol_v3020, &s, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->src_kind, pt::MemoryKind::device) << "a symbol is device memory";
  EXPECT_EQ(ev->dst_kind, pt::MemoryKind::pinned);
  EXPECT_EQ(ev->direction, pt::Direction::DtoH);

  cudaMemcpyPeer_v4000_params peer{at(0x3000), 1, at(0x3100), 0, 64};
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyPeer_v4000, &peer, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::PtoP);
}

TEST(CopyCall, DriverCallsNameTheirDirection) {
  cuMemcpyDtoHAsync_v2_params d{at(0x1000), 0x3000, 32, nullptr};
  auto ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2, &d, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::DtoH);
  EXPECT_EQ(ev->dst_kind, pt::MemoryKind::pageable);
  EXPECT_TRUE(ev->is_async);

  cuMemcpy_params u{0x4000, 0x2000, 8};  // unified: pinned host -> managed
  ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuMemcpy, &u, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->direction, pt::Direction::HtoD);
  EXPECT_FALSE(ev->is_async);

  // Not decoded (3D copies): the caller counts the copy with an unknown direction.
  EXPECT_FALSE(pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy3D_v3020, &u,
                                    &fake_kind).has_value());
  EXPECT_FALSE(pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, nullptr,
                                    &fake_kind).has_value());
}

TEST(CopyCall, DirectionBetweenMemoryKinds) {
  EXPECT_EQ(pd::direction_between(pt::MemoryKind::pageable, pt::MemoryKind::device), pt::Direction::HtoD);
  EXPECT_EQ(pd::direction_between(pt::MemoryKind::managed, pt::MemoryKind::pinned), pt::Direction::DtoH);
  EXPECT_EQ(pd::direction_between(pt::MemoryKind::device, pt::MemoryKind::managed), pt::Direction::DtoD);
  EXPECT_EQ(pd::direction_between(pt::MemoryKind::pinned, pt::MemoryKind::pageable), pt::Direction::HtoH);
  EXPECT_EQ(pd::direction_between(pt::MemoryKind::unknown, pt::MemoryKind::device), pt::Direction::unknown);
}

TEST_F(DecoderTest, CopyJudgedAtItsCallUsesTheCallersScope) {
  // What the CUPTI source does without MEMCPY records: api_enter, then the decoded copy with the
  // call's correlation id, on the calling thread.
  pd::ApiCall c;
  c.correlation = 900;
  c.name = "cudaMemcpyAsync";
  c.cls = pd::ApiCall::Class::memcpy_async;
  ASSERT_TRUE(engine.api_enter(c));
  cudaMemcpyAsync_v3020_params p{at(0x1000), at(0x3000), 64, cudaMemcpyDeviceToHost, nullptr};
  auto ev = pd::decode_copy_call(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, &p, &fake_kind);
  ASSERT_TRUE(ev.has_value());
  ev->runtime_correlation = c.correlation;
  engine.on_memcpy(*ev);
  engine.api_exit(c);
  ASSERT_EQ(recorder.copies.size(), 1u);
  EXPECT_EQ(engine.counters().health().unattributed_records.load(), 0u) << "joined with its call";
  EXPECT_EQ(engine.counters().violation_count(pt::Rule::memcpy_dtoh), 1u);
  EXPECT_EQ(engine.counters().memcpy_total(false), 1u);

  // A driver call under a runtime call is an alias, not a second copy.
  pd::ApiCall rt = c;
  rt.correlation = 901;
  ASSERT_TRUE(engine.api_enter(rt));
  pd::ApiCall drv = c;
  drv.runtime = false;
  drv.correlation = 902;
  EXPECT_FALSE(engine.api_enter(drv));
  engine.api_exit(drv);
  engine.api_exit(rt);
}
