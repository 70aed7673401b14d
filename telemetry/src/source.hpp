// The CUPTI source behind the public facade (telemetry.cpp). Implemented by cupti_source.cpp
// when built with CUPTI, else by cupti_none.cpp. Callers serialise (the facade's mutex).
#pragma once

#include <cstddef>
#include <string>

namespace pbm::telemetry::detail {

struct AttachResult {
  bool attached{false};
  bool subscriber_taken{false};
  std::string reason;  // one line
};

bool source_built() noexcept;
AttachResult source_attach(std::size_t buffer_count, std::size_t buffer_size, bool activity_records,
                           bool marker_activity) noexcept;
void source_detach() noexcept;
void source_flush() noexcept;
/// At process exit: flush the last records, then stop handling callbacks without calling into
/// CUPTI again. Disabling or unsubscribing there crashed (H100, exit status 139 of every program
/// under pbm-guard: cuptiActivityDisable faulted inside libcupti once its own exit-time teardown
/// had run, which happens first when NVTX loaded libcupti as its injection).
void source_exit() noexcept;
/// Absolute path of the libcupti this process loaded (dlopen; loads it if needed). "" when not
/// built with CUPTI or libcupti cannot be loaded.
std::string cupti_library_path();
/// Tests only: forget the loaded libcupti (unless attached) so the next attach reads
/// PBM_CUPTI_PATH again.
void forget_library_for_testing() noexcept;

}  // namespace pbm::telemetry::detail
