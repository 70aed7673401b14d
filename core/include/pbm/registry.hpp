// The registry of live mailboxes: what exporters and telemetry read to report push/pop counts,
// drops and occupancy. Reading it makes no CUDA call: counts come from the stats snapshots the
// mailboxes' own kernels leave in mapped host memory, and from host-side call counters.
// Thread-safety: all functions are thread-safe. A reader never owns a mailbox: mailboxes() copies
// the values under the registry's lock, and destroying a Mailbox waits for a call reading it.
#pragma once

#include <pbm/mailbox.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pbm {

/// One live mailbox, as seen now. Arrays indexed by StreamClass (focus = 0, peripheral = 1).
struct MailboxInfo {
  std::string name;
  int device = 0;
  Stats stats{};
  std::uint64_t push_calls[2] = {0, 0};
  std::uint64_t pop_calls[2] = {0, 0};
  std::uint64_t push_requested_records = 0;  // records asked to be pushed (pushed + dropped by host pushes)
  std::uint64_t pop_requested_records = 0;   // sum of max_records over pops
  /// false: the summed final counts of destroyed mailboxes (retired_mailboxes()); their gauges
  /// (stats.occupancy, stats.capacity) are 0.
  bool live = true;
};

/// Every Mailbox alive now, in creation order.
std::vector<MailboxInfo> mailboxes();

/// The counts of every Mailbox destroyed so far, as its last stats snapshot had them when it was
/// destroyed, summed per (name, device, stride), in order of first destruction; `live` is false.
/// Exporters add them to the live ones, so a counter never goes back when a mailbox goes and a
/// report written at exit still holds every record pushed. At most 1024 entries: past 1023 distinct
/// keys, later ones are summed under the name "(other)", so a program that names mailboxes
/// uniquely stays bounded.
std::vector<MailboxInfo> retired_mailboxes();

}  // namespace pbm
