// NVTX callbacks end to end on a CPU (nvtx_names.cpp, the range stack of scope.cpp): pbm attached
// to the stand-in libcupti (fake_cupti.cpp), the test delivering NVTX callbacks with real parameter
// structs and the handles NVTX would return, then a cudaStreamSynchronize whose sync event carries
// the ranges open at the call. Also the callback counts in Status.
#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include "fake_cupti_session.hpp"

#include <gtest/gtest.h>

#include <cupti.h>
#include <generated_nvtx_meta.h>

#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#ifndef PBM_FAKE_CUPTI_PATH
#error "PBM_FAKE_CUPTI_PATH must name the fake libcupti"
#endif

namespace pt = pbm::telemetry;

namespace pbm::telemetry {
// Readable failures: {domain, name}.
void PrintTo(Range const& r, std::ostream* os) { *os << "{\"" << r.domain << "\", \"" << r.name << "\"}"; }
}  // namespace pbm::telemetry

namespace {

using ApiFn = std::uint32_t (*)(int, std::uint32_t, int, std::uint32_t, void const*);
using NvtxFn = int (*)(std::uint32_t, void const*, void const*);
ApiFn g_api = nullptr;
NvtxFn g_nvtx = nullptr;

// Handles: never dereferenced. kSlotStride apart, two handles share a slot of a thread's name
// caches (thread_state.hpp NameCache: 32 slots of 16 bytes).
constexpr std::size_t kSlotStride = 32 * 16;
alignas(64) char g_handles[8 * kSlotStride];
void const* handle(std::size_t i) { return &g_handles[i * kSlotStride]; }

nvtxDomainHandle_t create_domain(void const* h, char const* name) {
  auto const domain = static_cast<nvtxDomainHandle_t>(const_cast<void*>(h));
  nvtxDomainCreateA_params p{name};
  g_nvtx(CUPTI_CBID_NVTX_nvtxDomainCreateA, &p, &domain);
  return domain;
}

nvtxStringHandle_t register_string(nvtxDomainHandle_t domain, void const* h, char const* text) {
  auto const string = static_cast<nvtxStringHandle_t>(const_cast<void*>(h));
  nvtxDomainRegisterStringA_params p{domain, text};
  g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRegisterStringA, &p, &string);
  return string;
}

bool push(nvtxDomainHandle_t domain, nvtxStringHandle_t message) {
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  a.message.registered = message;
  nvtxDomainRangePushEx_params p{domain, {&a}};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRangePushEx, &p, nullptr) != 0;
}

bool pop(nvtxDomainHandle_t domain) {
  nvtxDomainRangePop_params p{domain};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRangePop, &p, nullptr) != 0;
}

struct Syncs : pt::Observer {
  std::mutex mu;
  std::vector<pt::SyncEvent> seen;
  void on_sync(pt::SyncEvent const& ev, bool) override {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(ev);
  }
};

class NvtxNames : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string const not_attached = pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH);
    ASSERT_TRUE(not_attached.empty()) << not_attached;
    g_api = pbm_test::fake_cupti_hook<ApiFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_api");
    g_nvtx = pbm_test::fake_cupti_hook<NvtxFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_nvtx_returning");
    ASSERT_NE(g_api, nullptr);
    ASSERT_NE(g_nvtx, nullptr);
    pt::add_observer(syncs);
  }
  void TearDown() override { pt::remove_observer(syncs); }

  /// The ranges open on this thread, as the sync event of a cudaStreamSynchronize called now has them.
  pt::RangeStack ranges_at_a_call() {
    cudaStreamSynchronize_v3020_params p{nullptr};
    std::uint32_t const id = g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020,
                                   1, 0, &p);
    EXPECT_NE(id, 0u);
    g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, 0, id, &p);
    std::lock_guard<std::mutex> lock(syncs.mu);
    if (syncs.seen.empty()) return {{"(no sync event)", ""}};
    return syncs.seen.back().ranges;
  }
  Syncs syncs;
};

}  // namespace

TEST_F(NvtxNames, AStringRegisteredLaterIsNamedFromThenOn) {
  nvtxDomainHandle_t const app = create_domain(handle(0), "app");
  auto const step = static_cast<nvtxStringHandle_t>(const_cast<void*>(handle(5)));  // no other test registers it
  // Registered before pbm attached (pbm never saw it): unknown, and looked up once per thread only.
  ASSERT_TRUE(push(app, step));
  EXPECT_EQ(ranges_at_a_call(), (pt::RangeStack{{"app", "(registered string)"}}));
  ASSERT_TRUE(pop(app));
  // Its registration seen now: the same handle is named, though this thread remembered it as unknown.
  register_string(app, step, "step");
  ASSERT_TRUE(push(app, step));
  EXPECT_EQ(ranges_at_a_call(), (pt::RangeStack{{"app", "step"}}));
  ASSERT_TRUE(pop(app));
  EXPECT_EQ(ranges_at_a_call(), pt::RangeStack{});
}

TEST_F(NvtxNames, ADomainAndAStringInTheSameCacheSlotKeepTheirNames) {
  nvtxDomainHandle_t const lib = create_domain(handle(2), "lib");
  nvtxStringHandle_t const load = register_string(lib, handle(3), "load");  // same slot as the domain
  ASSERT_TRUE(push(lib, load));
  EXPECT_EQ(ranges_at_a_call(), (pt::RangeStack{{"lib", "load"}}));
  ASSERT_TRUE(pop(lib));
}

TEST_F(NvtxNames, APopLeavesTheRangesOfOtherDomainsInOrder) {
  nvtxDomainHandle_t const outer = create_domain(handle(0), "outer");
  nvtxDomainHandle_t const inner = create_domain(handle(2), "inner");
  nvtxStringHandle_t const a = register_string(outer, handle(1), "a");
  nvtxStringHandle_t const b = register_string(inner, handle(3), "a much longer name than fits a short string");
  ASSERT_TRUE(push(outer, a));
  ASSERT_TRUE(push(inner, b));
  ASSERT_TRUE(pop(outer));  // NVTX keeps a stack per domain: "outer"'s range ends under "inner"'s
  EXPECT_EQ(ranges_at_a_call(), (pt::RangeStack{{"inner", "a much longer name than fits a short string"}}));
  ASSERT_TRUE(push(outer, a));  // into the place the popped range left
  EXPECT_EQ(ranges_at_a_call(),
            (pt::RangeStack{{"inner", "a much longer name than fits a short string"}, {"outer", "a"}}));
  ASSERT_TRUE(pop(outer));
  ASSERT_TRUE(pop(inner));
  ASSERT_TRUE(push(inner, a));  // a short name where a long one was
  EXPECT_EQ(ranges_at_a_call(), (pt::RangeStack{{"inner", "a"}}));
  ASSERT_TRUE(pop(inner));
  EXPECT_EQ(ranges_at_a_call(), pt::RangeStack{});
}

TEST_F(NvtxNames, StatusCountsTheCallbacksPbmHandledOnEveryThread) {
  nvtxDomainHandle_t const app = create_domain(handle(0), "app");
  nvtxStringHandle_t const step = register_string(app, handle(1), "step");
  pt::Status const before = pt::status();
  ASSERT_TRUE(push(app, step));
  ranges_at_a_call();  // runtime entry and exit
  ASSERT_TRUE(pop(app));
  std::thread([&] {
    push(app, step);
    pop(app);
  }).join();  // a thread gone: its counts stay
  pt::Status const after = pt::status();
  EXPECT_EQ(after.nvtx_callbacks - before.nvtx_callbacks, 4u);
  EXPECT_EQ(after.api_callbacks - before.api_callbacks, 2u);
  // Detached: CUPTI delivers nothing, nothing is counted.
  pt::detach();
  EXPECT_FALSE(push(app, step));
  EXPECT_FALSE(pop(app));
  pt::Status const detached = pt::status();
  EXPECT_EQ(detached.nvtx_callbacks, after.nvtx_callbacks);
  EXPECT_EQ(detached.api_callbacks, after.api_callbacks);
  ASSERT_TRUE(pt::attach());
}
