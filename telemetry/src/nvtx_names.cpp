// NVTX callbacks: range stacks and handle names. A per-thread cache (ThreadState::names) sits in
// front of the shared maps: every range push and pop resolves a domain and a registered string, and
// taking the maps' lock for each cost count mode a measurable share of a launch-bound loop.
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
#include <unordered_map>

namespace pbm::telemetry::detail {
namespace {

/// NVTX handles -> names. A handle's name never changes while it lives; a domain destroyed
/// (nvtxDomainDestroy) bumps the generation and every thread's cache starts over.
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

NameCache& cache() {
  NameCache& c = this_thread().names;
  std::uint64_t const now = names().generation.load(std::memory_order_acquire);
  if (c.generation != now) {
    for (NameCache::Entry& e : c.entries) e.key = nullptr;
    c.generation = now;
  }
  return c;
}

/// The name for `key` in `map`, through the thread's cache; `unknown` when not learned (yet).
std::string lookup(std::unordered_map<void const*, std::string> const& map, void const* key, char const* unknown) {
  NameCache::Entry& hit = cache().slot(key);
  if (hit.key == key) return hit.name;
  Names& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  auto it = map.find(key);
  if (it == map.end()) return unknown;  // not cached: it may be learned later
  hit.key = key;
  hit.name = it->second;
  return hit.name;
}

std::string domain_name(nvtxDomainHandle_t domain) {
  if (domain == nullptr) return {};
  return lookup(names().domains, domain, "(unknown domain)");
}

std::string message_of(nvtxEventAttributes_t const* attributes) {
  if (attributes == nullptr) return {};
  switch (attributes->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return attributes->message.ascii != nullptr ? attributes->message.ascii : "";
    case NVTX_MESSAGE_TYPE_REGISTERED:
      // Registered before pbm attached: the name is unknown here (MARKER records still have it).
      if (attributes->message.registered == nullptr) return "(registered string)";
      return lookup(names().strings, attributes->message.registered, "(registered string)");
    default:
      return "(non-ASCII message)";
  }
}

void learn(std::unordered_map<void const*, std::string>& map, void const* handle, char const* name) {
  Names& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  map[handle] = name;
}

}  // namespace

void on_nvtx_callback(CUpti_CallbackId cbid, CUpti_NvtxData const* data) {
  if (data == nullptr) return;
  void const* params = data->functionParams;
  switch (cbid) {
    case CUPTI_CBID_NVTX_nvtxRangePushA: {
      char const* message = params != nullptr ? static_cast<nvtxRangePushA_params const*>(params)->message : nullptr;
      nvtx_push("", message != nullptr ? message : "");
      break;
    }
    case CUPTI_CBID_NVTX_nvtxRangePushEx:
      if (params != nullptr) nvtx_push("", message_of(static_cast<nvtxRangePushEx_params const*>(params)->eventAttrib));
      break;
    case CUPTI_CBID_NVTX_nvtxRangePop:
      nvtx_pop("");
      break;
    case CUPTI_CBID_NVTX_nvtxDomainRangePushEx:
      if (auto const* p = static_cast<nvtxDomainRangePushEx_params const*>(params)) {
        nvtx_push(domain_name(p->domain), message_of(p->core.eventAttrib));
      }
      break;
    case CUPTI_CBID_NVTX_nvtxDomainRangePop:
      if (params != nullptr) nvtx_pop(domain_name(static_cast<nvtxDomainRangePop_params const*>(params)->domain));
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
      n.generation.fetch_add(1, std::memory_order_acq_rel);  // a handle may be reused
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
