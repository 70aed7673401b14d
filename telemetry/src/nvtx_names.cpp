// NVTX callbacks: range stacks and handle names. Per-thread caches (ThreadState::domain_names,
// string_names) sit in front of the shared maps: every range push and pop resolves a domain and a
// registered string, and taking the maps' lock for each cost count mode a measurable share of a
// launch-bound loop. Names are passed on as views into those caches: no copy until the range stack.
#include "nvtx_names.hpp"

#include "scope.hpp"
#include "thread_state.hpp"

#include <pbm/nvtx.hpp>

#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtCuda.h>
#include <nvtx3/nvToolsExtCudaRt.h>
#include <nvtx3/nvToolsExtSync.h>
#include <generated_nvtx_meta.h>  // not included by cupti.h

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pbm::telemetry::detail {
namespace {

/// NVTX handles -> names. A handle's name never changes while it lives. Every change to the maps
/// bumps the generation, and every thread's caches start over: a domain destroyed
/// (nvtxDomainDestroy: its handle may be reused) or a name learned (a handle cached as unknown may
/// have a name now). Both are rare (registration happens once per string), so the caches can keep
/// misses too: a string registered before pbm attached costs a cache hit, not the lock, per range.
struct Names {
  std::mutex mu;
  std::unordered_map<void const*, std::string> domains;
  std::unordered_map<void const*, std::string> strings;
  std::atomic<std::uint64_t> generation{1};
};

Names& names() {
  static Names* const n = new Names();  // callbacks may come during exit
  return *n;
}

NameCache& fresh(NameCache& c) {
  std::uint64_t const now = names().generation.load(std::memory_order_acquire);
  if (c.generation != now) {
    for (NameCache::Entry& e : c.entries) e.key = nullptr;
    c.generation = now;
  }
  return c;
}

/// The name for `key` in `map`, through `cache` (one of the calling thread's); `unknown` when not
/// learned (yet). The view lives until the next lookup through the same cache.
std::string_view lookup(NameCache& cache, std::unordered_map<void const*, std::string> const& map, void const* key,
                        char const* unknown) {
  NameCache::Entry& hit = fresh(cache).slot(key);
  if (hit.key == key) return hit.name;
  Names& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  auto it = map.find(key);
  hit.key = key;
  hit.name = it != map.end() ? std::string_view(it->second) : std::string_view(unknown);
  return hit.name;
}

std::string_view domain_name(ThreadState& thread, nvtxDomainHandle_t domain) {
  if (domain == nullptr) return {};
  return lookup(thread.domain_names, names().domains, domain, "(unknown domain)");
}

std::string_view message_of(ThreadState& thread, nvtxEventAttributes_t const* attributes) {
  if (attributes == nullptr) return {};
  switch (attributes->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return attributes->message.ascii != nullptr ? std::string_view(attributes->message.ascii) : std::string_view();
    case NVTX_MESSAGE_TYPE_REGISTERED:
      // Registered before pbm attached: the name is unknown here (MARKER records still have it).
      if (attributes->message.registered == nullptr) return "(registered string)";
      return lookup(thread.string_names, names().strings, attributes->message.registered,
                    "(registered string)");
    default:
      return "(non-ASCII message)";
  }
}

void learn(std::unordered_map<void const*, std::string>& map, void const* handle, char const* name) {
  Names& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  map[handle] = name;
  n.generation.fetch_add(1, std::memory_order_acq_rel);  // caches may hold this handle as unknown
}

}  // namespace

void on_nvtx_callback(ThreadState& thread, CUpti_CallbackId cbid, CUpti_NvtxData const* data) {
  if (data == nullptr) return;
  void const* params = data->functionParams;
  switch (cbid) {
    case CUPTI_CBID_NVTX_nvtxRangePushA: {
      char const* message = params != nullptr ? static_cast<nvtxRangePushA_params const*>(params)->message : nullptr;
      cupti_fed(thread).ranges.push("", message != nullptr ? message : "");
      break;
    }
    case CUPTI_CBID_NVTX_nvtxRangePushEx:
      if (params != nullptr) {
        cupti_fed(thread).ranges.push("", message_of(thread, static_cast<nvtxRangePushEx_params const*>(params)->eventAttrib));
      }
      break;
    case CUPTI_CBID_NVTX_nvtxRangePop:
      cupti_fed(thread).ranges.pop("");
      break;
    case CUPTI_CBID_NVTX_nvtxDomainRangePushEx:
      if (auto const* p = static_cast<nvtxDomainRangePushEx_params const*>(params)) {
        cupti_fed(thread).ranges.push(domain_name(thread, p->domain), message_of(thread, p->core.eventAttrib));
      }
      break;
    case CUPTI_CBID_NVTX_nvtxDomainRangePop:
      if (params != nullptr) {
        cupti_fed(thread).ranges.pop(domain_name(thread, static_cast<nvtxDomainRangePop_params const*>(params)->domain));
      }
      break;
    case CUPTI_CBID_NVTX_nvtxDomainCreateA: {
      auto const* p = static_cast<nvtxDomainCreateA_params const*>(params);
      auto const* handle = static_cast<nvtxDomainHandle_t const*>(data->functionReturnValue);
      if (p != nullptr && handle != nullptr && *handle != nullptr && p->name != nullptr) learn(names().domains, *handle, p->name);
      break;
    }
    case CUPTI_CBID_NVTX_nvtxDomainRegisterStringA: {
      auto const* p = static_cast<nvtxDomainRegisterStringA_params const*>(params);
      auto const* handle = static_cast<nvtxStringHandle_t const*>(data->functionReturnValue);
      if (p != nullptr && handle != nullptr && *handle != nullptr && p->string != nullptr) learn(names().strings, *handle, p->string);
      break;
    }
    case CUPTI_CBID_NVTX_nvtxDomainDestroy: {
      if (params == nullptr) break;
      Names& n = names();
      std::lock_guard<std::mutex> lock(n.mu);
      n.domains.erase(static_cast<nvtxDomainDestroy_params const*>(params)->domain);
      n.generation.fetch_add(1, std::memory_order_acq_rel);  // the handle may be reused
      break;
    }
    default:
      break;
  }
}

void learn_pbm_domain() {
#ifndef NVTX_DISABLE
  nvtxDomainHandle_t pbm_domain = nvtx3::v1::domain::get<pbm::nvtx::domain>();
  if (pbm_domain != nullptr) learn(names().domains, pbm_domain, pbm::nvtx::domain::name);
#endif
}

}  // namespace pbm::telemetry::detail
