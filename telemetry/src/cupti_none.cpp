// Built without CUPTI (PBM_WITH_CUPTI=OFF, or libcupti not found at configure time).
#include "source.hpp"

namespace pbm::telemetry::detail {

bool source_built() noexcept { return false; }
AttachResult source_attach(Settings const&) noexcept {
  return {false, false, "CUPTI unavailable: pbm was built without CUPTI (PBM_WITH_CUPTI); counters and guards only"};
}
void source_detach() noexcept {}
void source_flush() noexcept {}
void source_exit() noexcept {}
void source_after_fork_in_child() noexcept {}
void source_set_legacy_rule(bool) noexcept {}
std::string cupti_library_path() { return {}; }
void forget_library_for_testing() noexcept {}

}  // namespace pbm::telemetry::detail
