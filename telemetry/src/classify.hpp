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

/// An "async" copy (cudaMemcpyAsync, cuMemcpyDtoHAsync, ...) that the host waits for, by its memory
/// kinds (CUDA Runtime API, "API synchronization behavior", Memcpy, asynchronous): device (or
/// managed) to pageable host returns once the copy completed; pageable host to device returns once
/// the source is staged; host to host is fully synchronous. False when either kind is unknown (never
/// a guess), and for synchronous copies (those are memcpy_sync already).
bool copy_blocks_host(MemcpyEvent const& ev) noexcept;

/// A non-Async memset whose target is of this kind blocks the host: "fully synchronous" for pinned
/// host memory and Unified Memory, "asynchronous with respect to the host" for device memory (same
/// section, Memset). Unknown: not counted.
bool memset_blocks_host(MemoryKind target) noexcept;

/// The current allow-list (immutable snapshot; cheap to take).
std::shared_ptr<std::vector<std::string> const> allow_list_snapshot();
/// The allow-list as the calling thread last loaded it, reloaded when set_range_allow_list() has
/// run since: a judged call costs one atomic load, not a shared_ptr's atomic load (a lock in
/// libstdc++) and two reference counts. Valid until this thread's next call of it.
std::vector<std::string> const& allow_list_cached();

}  // namespace pbm::telemetry::detail
