// The CPU side of "what does an intercepted call cost": nanoseconds per CUPTI callback pbm handles,
// through the stand-in libcupti (fake_cupti.cpp), attached against detached, in one process.
//
//   telemetry_callback_cost [--blocks N] [--calls N] [--only SCENARIO]
//
// Scenarios (each delivers CUPTI's callbacks for one call, as the real libcupti would):
//   pbm_ranges        the small loop's NVTX ranges: pbm::push, pbm::pop_bulk_async, pbm::wait in
//                     domain "pbm" (nvtxDomainRangePushEx with a registered string, then
//                     nvtxDomainRangePop): 6 callbacks per call
//   pbm_ranges_early  the same, with the strings registered before pbm attached (pbm never saw
//                     their nvtxDomainRegisterStringA), as in bench/telemetry_overhead.cu
//   ascii_range       nvtxRangePushA("cost.nvtx") + nvtxRangePop: 2 callbacks
//   stream_wait       cudaStreamWaitEvent with cuStreamWaitEvent under it, entry and exit: 4
//                     callbacks, judged as a stream_wait_event sync and counted
//   pbm_push_graph    what a pbm::push costs since pushes and pops launch their own graphs: the
//                     pbm::push range around cudaGraphLaunch with cuGraphLaunch under it, of an
//                     executable pbm never saw instantiated: 6 callbacks
//
// Per scenario: --blocks pairs of blocks of --calls calls, attached (telemetry started, count mode)
// and detached (telemetry::detach(): the stand-in delivers nothing), order alternating (A B, B A,
// ...); ns per callback of each block = block time / (calls x callbacks per call). Reported: the
// median and p25..p75 of attached - detached over block pairs. Every attached block must have had
// every callback delivered and every detached block none (exit 1 otherwise). The stand-in's own
// dispatch (a mutex and a set lookup per callback) is in both states; what differs is pbm's work.
#include "fake_cupti_session.hpp"

#include <pbm/telemetry/telemetry.hpp>

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <cupti.h>
#include <generated_nvtx_meta.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace pt = pbm::telemetry;

namespace {

using ApiFn = std::uint32_t (*)(int, std::uint32_t, int, std::uint32_t, void const*);
using NvtxFn = int (*)(std::uint32_t, void const*, void const*);

ApiFn g_api = nullptr;
NvtxFn g_nvtx = nullptr;

// Handles as NVTX would return them: stable, distinct, never dereferenced.
alignas(16) char g_domain_storage[16];
alignas(16) char g_string_storage[4][16];
nvtxDomainHandle_t const kDomain = reinterpret_cast<nvtxDomainHandle_t>(&g_domain_storage);
char const* const kMessages[3] = {"pbm::push", "pbm::pop_bulk_async", "pbm::wait"};

nvtxStringHandle_t string_handle(int i) { return reinterpret_cast<nvtxStringHandle_t>(&g_string_storage[i]); }

/// Delivers nvtxDomainCreateA("pbm") and the registration of the three messages.
void teach_names() {
  nvtxDomainCreateA_params create{"pbm"};
  g_nvtx(CUPTI_CBID_NVTX_nvtxDomainCreateA, &create, &kDomain);
  for (int i = 0; i < 3; ++i) {
    nvtxDomainRegisterStringA_params reg{kDomain, kMessages[i]};
    nvtxStringHandle_t const h = string_handle(i);
    g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRegisterStringA, &reg, &h);
  }
}

/// Opens a pbm range with registered message `handle` (nvtxDomainRangePushEx); callbacks delivered.
int pbm_range_push(nvtxStringHandle_t handle) {
  nvtxEventAttributes_t attributes{};
  attributes.version = NVTX_VERSION;
  attributes.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  attributes.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  attributes.message.registered = handle;
  nvtxDomainRangePushEx_params push{kDomain, {&attributes}};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRangePushEx, &push, nullptr);
}

/// Closes the innermost pbm range (nvtxDomainRangePop); callbacks delivered.
int pbm_range_pop() {
  nvtxDomainRangePop_params pop{kDomain};
  return g_nvtx(CUPTI_CBID_NVTX_nvtxDomainRangePop, &pop, nullptr);
}

/// One pbm range (push then pop) with registered message `handle`; callbacks delivered.
int pbm_range(nvtxStringHandle_t handle) { return pbm_range_push(handle) + pbm_range_pop(); }

struct Scenario {
  char const* name;
  int callbacks;                // per call
  std::function<int()> call;    // returns the callbacks delivered
};

double ns_per_callback(Scenario const& s, int calls, bool* all_delivered, bool attached) {
  int delivered = 0;
  auto const t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) delivered += s.call();
  auto const t1 = std::chrono::steady_clock::now();
  int const expected = attached ? calls * s.callbacks : 0;
  if (delivered != expected) *all_delivered = false;
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / (static_cast<double>(calls) * s.callbacks);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  int blocks = 10, calls = 20000;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    if (a == "--blocks" && i + 1 < argc) blocks = std::atoi(argv[++i]);
    else if (a == "--calls" && i + 1 < argc) calls = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--blocks N] [--calls N] [--only SCENARIO]\n", argv[0]);
      return 2;
    }
  }
  if (blocks <= 0 || calls <= 0) return 2;
  if (std::string const why = pbm_test::attach_fake_cupti(PBM_FAKE_CUPTI_PATH); !why.empty()) {
    std::fprintf(stderr, "SKIP: %s\n", why.c_str());
    return 77;
  }
  g_api = pbm_test::fake_cupti_hook<ApiFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_api");
  g_nvtx = pbm_test::fake_cupti_hook<NvtxFn>(PBM_FAKE_CUPTI_PATH, "pbm_fake_cupti_nvtx_returning");
  if (g_api == nullptr || g_nvtx == nullptr) {
    std::fprintf(stderr, "the stand-in libcupti lacks its hooks\n");
    return 1;
  }
  // Strings registered while detached (pbm_ranges_early) are never learned: handle 3.
  std::vector<Scenario> scenarios;
  scenarios.push_back({"pbm_ranges", 6, [] { return pbm_range(string_handle(0)) + pbm_range(string_handle(1)) + pbm_range(string_handle(2)); }});
  scenarios.push_back({"pbm_ranges_early", 6, [] {
                         return pbm_range(string_handle(3)) + pbm_range(string_handle(3)) + pbm_range(string_handle(3));
                       }});
  scenarios.push_back({"ascii_range", 2, [] {
                         nvtxRangePushA_params push{"cost.nvtx"};
                         nvtxRangePop_params pop{nullptr};
                         return g_nvtx(CUPTI_CBID_NVTX_nvtxRangePushA, &push, nullptr) +
                                g_nvtx(CUPTI_CBID_NVTX_nvtxRangePop, &pop, nullptr);
                       }});
  scenarios.push_back({"stream_wait", 4, [] {
                         cudaStreamWaitEvent_v3020_params rt{};
                         cuStreamWaitEvent_params drv{};
                         int n = 0;
                         std::uint32_t const c = g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020, 1, 0, &rt);
                         n += c != 0;
                         std::uint32_t const d = g_api(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent, 1, 0, &drv);
                         n += d != 0;
                         if (d != 0) n += g_api(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent, 0, d, &drv) != 0;
                         if (c != 0) n += g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020, 0, c, &rt) != 0;
                         return n;
                       }});

  scenarios.push_back({"pbm_push_graph", 6, [] {
                         int n = pbm_range_push(string_handle(0));
                         cudaGraphLaunch_v10000_params rt{reinterpret_cast<cudaGraphExec_t>(0x7100), nullptr};
                         cuGraphLaunch_params drv{reinterpret_cast<CUgraphExec>(0x7100), nullptr};
                         std::uint32_t const c = g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, 1, 0, &rt);
                         n += c != 0;
                         std::uint32_t const d = g_api(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, 1, 0, &drv);
                         n += d != 0;
                         if (d != 0) n += g_api(CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch, 0, d, &drv) != 0;
                         if (c != 0) n += g_api(CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, 0, c, &rt) != 0;
                         return n + pbm_range_pop();
                       }});

  teach_names();  // attached: pbm learns "pbm" and the three messages
  bool ok = true;
  std::printf("%-17s %9s %9s %12s %21s  (ns per callback, %d block pairs x %d calls)\n", "scenario", "detached",
              "attached", "cost median", "cost p25..p75", blocks, calls);
  for (Scenario const& s : scenarios) {
    if (!only.empty() && only != s.name) continue;
    std::vector<double> on, off, diff;
    bool delivered = true;
    auto measure = [&](bool attached) {
      if (attached) pt::attach(); else pt::detach();
      ns_per_callback(s, calls / 10 + 1, &delivered, attached);  // warm-up in this state
      return ns_per_callback(s, calls, &delivered, attached);
    };
    for (int b = 0; b < blocks; ++b) {
      double a = 0, d = 0;
      if (b % 2 == 0) { a = measure(true); d = measure(false); }
      else { d = measure(false); a = measure(true); }
      on.push_back(a);
      off.push_back(d);
      diff.push_back(a - d);
    }
    pt::attach();
    if (!delivered) {
      std::fprintf(stderr, "%s: an attached block missed callbacks, or a detached block got some\n", s.name);
      ok = false;
    }
    std::printf("%-17s %9.1f %9.1f %12.1f %10.1f..%-10.1f\n", s.name, quantile(off, 0.5), quantile(on, 0.5),
                quantile(diff, 0.5), quantile(diff, 0.25), quantile(diff, 0.75));
    std::printf("RESULT {\"scenario\": \"%s\", \"callbacks_per_call\": %d, \"detached_ns\": %.2f, \"attached_ns\": %.2f, "
                "\"cost_ns_median\": %.2f, \"cost_ns_p25\": %.2f, \"cost_ns_p75\": %.2f}\n",
                s.name, s.callbacks, quantile(off, 0.5), quantile(on, 0.5), quantile(diff, 0.5), quantile(diff, 0.25),
                quantile(diff, 0.75));
  }
  pt::stop();
  return ok ? 0 : 1;
}
