// Attaching pbm's telemetry to the stand-in libcupti (fake_cupti.cpp) for a test, and reaching the
// stand-in's hooks and driver. Shared by the suites that deliver API callbacks through it.
#pragma once

#include <pbm/telemetry/telemetry.hpp>

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace pbm_test {

/// Starts telemetry in count mode on the stand-in libcupti at `path` (no NVTX injection). Returns ""
/// when attached, else why not.
inline std::string attach_fake_cupti(char const* path) {
  ::setenv("PBM_CUPTI_PATH", path, 1);
  pbm::telemetry::Config config;
  config.mode = pbm::telemetry::Mode::count;
  config.set_nvtx_injection = false;
  pbm::telemetry::start(config);
  pbm::telemetry::Status const st = pbm::telemetry::status();
  return st.attached ? std::string() : "could not attach to the fake libcupti: " + st.reason;
}

/// A hook the loaded stand-in libcupti at `path` exports (pbm_fake_cupti_api, ...); nullptr when that
/// library or the hook is not loaded.
template <class Fn>
Fn fake_cupti_hook(char const* path, char const* name) {
  void* lib = ::dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  return lib != nullptr ? reinterpret_cast<Fn>(::dlsym(lib, name)) : nullptr;
}

/// True when the process's libcuda.so.1 is the stand-in (fake_libcuda.cpp), not a real driver loaded
/// first (a GPU machine), which answers for the fake addresses and handles with errors.
inline bool stand_in_driver_loaded() {
  void* driver = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  return driver != nullptr && ::dlsym(driver, "pbm_fake_libcuda_marker") != nullptr;
}

}  // namespace pbm_test
