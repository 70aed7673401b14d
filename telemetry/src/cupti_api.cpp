// dlopen of libcupti and its function table.
#include "cupti_api.hpp"

#include <atomic>
#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <memory>
#include <mutex>
#include <vector>

#ifndef PBM_CUPTI_SONAME
#define PBM_CUPTI_SONAME "libcupti.so"
#endif
#ifndef PBM_CUPTI_BUILD_PATH
#define PBM_CUPTI_BUILD_PATH ""
#endif

namespace pbm::telemetry::detail {
namespace {

std::atomic<CuptiApi const*> g_api{nullptr};

std::mutex& load_mutex() {
  static std::mutex* const m = new std::mutex();
  return *m;
}

template <class Fn>
bool resolve(void* handle, char const* name, Fn& fn, std::string* missing) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  if (fn == nullptr && missing->empty()) *missing = name;
  return fn != nullptr;
}

std::string real_path_of(void* symbol, std::string const& fallback) {
  Dl_info info{};
  if (symbol == nullptr || dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return fallback;
  char resolved[PATH_MAX];
  return realpath(info.dli_fname, resolved) != nullptr ? std::string(resolved) : std::string(info.dli_fname);
}

std::vector<std::string> candidates(std::string const& path, std::string const& cuda_home, bool* explicit_path) {
  std::vector<std::string> out;
  if (!path.empty()) {
    *explicit_path = true;
    out.push_back(path);
    return out;
  }
  *explicit_path = false;
  out.emplace_back(PBM_CUPTI_SONAME);
  if (*PBM_CUPTI_BUILD_PATH != '\0') out.emplace_back(PBM_CUPTI_BUILD_PATH);
  std::vector<std::string> roots;
  if (!cuda_home.empty()) roots.push_back(cuda_home);
  roots.emplace_back("/usr/local/cuda");
  for (std::string const& root : roots) {
    out.push_back(root + "/extras/CUPTI/lib64/" PBM_CUPTI_SONAME);
    out.push_back(root + "/lib64/" PBM_CUPTI_SONAME);
  }
  return out;
}

}  // namespace

CuptiApi const* loaded_cupti() noexcept { return g_api.load(std::memory_order_acquire); }

CuptiApi const* load_cupti(std::string const& path, std::string const& cuda_home, std::string* error) {
  if (CuptiApi const* api = loaded_cupti()) return api;
  std::lock_guard<std::mutex> lock(load_mutex());
  if (CuptiApi const* api = loaded_cupti()) return api;

  bool explicit_path = false;
  std::string first_error;
  for (std::string const& name : candidates(path, cuda_home, &explicit_path)) {
    dlerror();
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      if (first_error.empty()) {
        char const* e = dlerror();
        first_error = e != nullptr ? e : name + ": cannot open";
      }
      continue;
    }
    auto api = std::make_unique<CuptiApi>();
    std::string missing;
    bool ok = resolve(handle, "cuptiGetVersion", api->GetVersion, &missing);
    ok &= resolve(handle, "cuptiGetResultString", api->GetResultString, &missing);
    ok &= resolve(handle, "cuptiSetThreadIdType", api->SetThreadIdType, &missing);
    ok &= resolve(handle, "cuptiSubscribe", api->Subscribe, &missing);
    ok &= resolve(handle, "cuptiUnsubscribe", api->Unsubscribe, &missing);
    ok &= resolve(handle, "cuptiEnableCallback", api->EnableCallback, &missing);
    ok &= resolve(handle, "cuptiEnableDomain", api->EnableDomain, &missing);
    ok &= resolve(handle, "cuptiActivityRegisterCallbacks", api->ActivityRegisterCallbacks, &missing);
    ok &= resolve(handle, "cuptiActivityEnable", api->ActivityEnable, &missing);
    ok &= resolve(handle, "cuptiActivityDisable", api->ActivityDisable, &missing);
    ok &= resolve(handle, "cuptiActivityFlushAll", api->ActivityFlushAll, &missing);
    ok &= resolve(handle, "cuptiActivityGetNextRecord", api->ActivityGetNextRecord, &missing);
    ok &= resolve(handle, "cuptiActivityGetNumDroppedRecords", api->ActivityGetNumDroppedRecords, &missing);
    ok &= resolve(handle, "cuptiGetStreamIdEx", api->GetStreamIdEx, &missing);
    ok &= resolve(handle, "cuptiFinalize", api->Finalize, &missing);
    if (!ok) {
      if (first_error.empty()) first_error = name + " lacks " + missing + " (too old a CUPTI?)";
      continue;  // keep it mapped: it may be in use by someone else
    }
    api->path = real_path_of(reinterpret_cast<void*>(api->GetVersion), name);
    CuptiApi const* published = api.release();  // never freed: CUPTI may call back during exit
    g_api.store(published, std::memory_order_release);
    return published;
  }
  if (error != nullptr) {
    *error = explicit_path
                 ? "CUPTI unavailable: libcupti not loadable from PBM_CUPTI_PATH or Config::cupti_path (" + first_error +
                       "); detection disabled, counters and guards still work"
                 : "CUPTI unavailable: libcupti not found (" + first_error +
                       "); set PBM_CUPTI_PATH or LD_LIBRARY_PATH; detection disabled, counters and guards still work";
  }
  return nullptr;
}

void forget_cupti_for_testing() noexcept {
  // Kept reachable, never freed (callbacks may still hold it): LeakSanitizer must not call it a leak.
  static auto* retired = new std::vector<CuptiApi const*>();
  if (CuptiApi const* old = g_api.exchange(nullptr, std::memory_order_acq_rel)) {
    try {
      retired->push_back(old);
    } catch (...) {
    }
  }
}

}  // namespace pbm::telemetry::detail
