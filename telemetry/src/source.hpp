// The CUPTI source behind the public facade (telemetry.cpp). Implemented by cupti_source.cpp
// when built with CUPTI, else by cupti_none.cpp. The facade serialises attach/detach/flush; exit and
// fork handlers call in without a lock.
#pragma once

#include "environment.hpp"

#include <cstddef>
#include <string>

namespace pbm::telemetry::detail {

struct AttachResult {
  bool attached{false};
  bool subscriber_taken{false};
  std::string reason;  // one line
};

bool source_built() noexcept;
AttachResult source_attach(Settings const& settings) noexcept;
void source_detach() noexcept;
void source_flush() noexcept;
/// At process exit: flush the last records, then ignore callbacks without calling into CUPTI
/// again (libcupti may have torn itself down first: docs/RELIABILITY.md).
void source_exit() noexcept;
/// In a forked child (pthread_atfork): ignore callbacks and never call CUPTI again.
/// Async-signal-safe.
void source_after_fork_in_child() noexcept;
/// The legacy default stream rule's callbacks on or off (now if attached, and at later attaches).
void source_set_legacy_rule(bool on) noexcept;
/// Absolute path of the libcupti this process loaded (dlopen; loads it if needed, looking where
/// PBM_CUPTI_PATH and CUDA_HOME say). "" when not built with CUPTI or libcupti cannot be loaded.
std::string cupti_library_path();
/// Tests only: forget the loaded libcupti (unless attached) so the next attach looks again.
void forget_library_for_testing() noexcept;

}  // namespace pbm::telemetry::detail
