// libcupti loaded at run time (dlopen), so a program linked with pbm::telemetry starts and runs
// where libcupti is missing: start() then reports why and detection stays off.
// Private to telemetry/. Types come from the CUPTI headers; no CUPTI symbol is linked.
#pragma once

#include <cupti.h>

#include <string>

namespace pbm::telemetry::detail {

/// The CUPTI functions pbm calls, resolved from the loaded libcupti. Immutable once loaded.
struct CuptiApi {
  std::string path;  ///< the file dlopen loaded (absolute when known)
  decltype(&cuptiGetVersion) GetVersion{};
  decltype(&cuptiGetResultString) GetResultString{};
  decltype(&cuptiSetThreadIdType) SetThreadIdType{};
  decltype(&cuptiSubscribe) Subscribe{};
  decltype(&cuptiUnsubscribe) Unsubscribe{};
  decltype(&cuptiEnableCallback) EnableCallback{};
  decltype(&cuptiEnableDomain) EnableDomain{};
  decltype(&cuptiActivityRegisterCallbacks) ActivityRegisterCallbacks{};
  decltype(&cuptiActivityEnable) ActivityEnable{};
  decltype(&cuptiActivityDisable) ActivityDisable{};
  decltype(&cuptiActivityFlushAll) ActivityFlushAll{};
  decltype(&cuptiActivityGetNextRecord) ActivityGetNextRecord{};
  decltype(&cuptiActivityGetNumDroppedRecords) ActivityGetNumDroppedRecords{};
  decltype(&cuptiGetStreamIdEx) GetStreamIdEx{};
  decltype(&cuptiFinalize) Finalize{};
};

/// Loads libcupti once and returns its function table, or nullptr with a one-line reason in
/// *error. Where: `path` when not empty (only there: Config::cupti_path or PBM_CUPTI_PATH); else
/// the soname (libcupti.so.<major>) by the dynamic loader's search; else the toolkit's copy found
/// at configure time, then `cuda_home` and /usr/local/cuda. A failure is not cached (the next call
/// tries again). Thread-safe; the table is never freed (CUPTI may call back during exit).
CuptiApi const* load_cupti(std::string const& path, std::string const& cuda_home, std::string* error);

/// The table if libcupti is loaded already, else nullptr. Lock-free.
CuptiApi const* loaded_cupti() noexcept;

/// Tests only: forget the loaded table (the library stays mapped) so the next load_cupti() looks
/// for it again. Must not be called while CUPTI is attached.
void forget_cupti_for_testing() noexcept;

}  // namespace pbm::telemetry::detail
