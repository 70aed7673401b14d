// Marks host-side waits that pbm performs on purpose (PopHandle::wait and friends), so the
// telemetry layer can tell them from unexpected synchronisations.
// Thread-safety: the marker is thread-local; each thread has its own depth.
#pragma once

namespace pbm {

/// Depth of ExpectedSyncScope objects alive on the calling thread (0: none).
int expected_sync_depth() noexcept;

/// While alive, synchronisations issued by this thread are pbm's own, expected waits.
class ExpectedSyncScope {
 public:
  ExpectedSyncScope() noexcept;
  ~ExpectedSyncScope();
  ExpectedSyncScope(ExpectedSyncScope const&) = delete;
  ExpectedSyncScope& operator=(ExpectedSyncScope const&) = delete;
};

}  // namespace pbm
