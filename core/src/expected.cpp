#include <pbm/expected.hpp>

namespace pbm {
namespace {
thread_local int t_expected_depth = 0;
}
int expected_sync_depth() noexcept { return t_expected_depth; }
ExpectedSyncScope::ExpectedSyncScope() noexcept { ++t_expected_depth; }
ExpectedSyncScope::~ExpectedSyncScope() { --t_expected_depth; }
}  // namespace pbm
