// Per-mailbox series: push/pop records, bytes and calls, drops, occupancy and capacity of every
// live pbm::Mailbox. collect() (samples.hpp) adds them as a built-in source; add_source() takes the
// same formatting for mailboxes pbm does not own (host-side rings).
//
// Reading costs no memcpy and no synchronisation: pbm::mailboxes() reads the stats snapshot that
// the mailboxes' own kernels leave in mapped host memory, and host-side call counters. No CUDA
// call is made. Names, types and labels: pbm/telemetry/metric_table.hpp.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <pbm/exporters/samples.hpp>
#include <pbm/registry.hpp>

#include <vector>

namespace pbm::exporters {

/// Pure: the samples for `mailboxes`, one series per metric and mailbox (and stream class where a
/// count is split by class), labelled {mailbox, device[, stream_class]}:
///   pbm_push_records_total, pbm_pop_records_total, pbm_dropped_records_total,
///   pbm_push_bytes_total, pbm_pop_bytes_total (records x stride),
///   pbm_push_calls_total{stream_class}, pbm_pop_calls_total{stream_class} (host-launched calls;
///   both classes always present, zero included),
///   pbm_occupancy_records, pbm_capacity_records (gauges).
/// No `rank` label: collect() adds it. Mailboxes with the same name on the same device give samples
/// with the same labels, which collect() sums into one series. A mailbox with `live` false (the
/// summed counts of destroyed ones) adds to the counters only, not to the gauges.
std::vector<Sample> mailbox_samples(std::vector<MailboxInfo> const& mailboxes);

/// mailbox_samples of pbm::mailboxes() and pbm::retired_mailboxes(): what collect() adds, so a
/// counter never goes back when a mailbox is destroyed. No CUDA call, no memcpy, no sync.
std::vector<Sample> mailbox_samples();

}  // namespace pbm::exporters
