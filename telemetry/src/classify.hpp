// The policy's decision for one event: pure functions of the event and the captured scope.
// Private to telemetry/; visible to tests.
#pragma once

#include "scope.hpp"

#include <pbm/telemetry/events.hpp>
#include <pbm/telemetry/policy.hpp>

#include <memory>
#include <string>
#include <vector>

namespace pbm::telemetry::detail {

struct Verdict {
  bool expected{true};
  Rule rule{Rule::sync_unexpected};  // meaningful when !expected
};

/// True when any open range's name, or "domain:name", is on the list.
bool allow_listed(RangeStack const& ranges, std::vector<std::string> const& allow);

Verdict classify_memcpy(MemcpyEvent const& ev, ScopeRule scope, RangeStack const& ranges,
                        std::vector<std::string> const& allow) noexcept;
Verdict classify_sync(SyncApi api, ScopeRule scope, bool pbm_wait, RangeStack const& ranges,
                      std::vector<std::string> const& allow) noexcept;

/// The current allow-list (immutable snapshot; cheap to take).
std::shared_ptr<std::vector<std::string> const> allow_list_snapshot();

}  // namespace pbm::telemetry::detail
