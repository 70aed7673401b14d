// Per-mailbox metrics for exporters: push/pop records, bytes and calls, drops, occupancy and
// capacity of every live pbm::Mailbox, as CounterSamples next to telemetry's own counters.
//
// Reading costs no memcpy and no synchronisation: pbm::mailboxes() reads the stats snapshot that
// the mailboxes' own kernels leave in mapped host memory, and host-side call counters. No CUDA
// call is made. Counters::snapshot() includes these samples.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <pbm/registry.hpp>
#include <pbm/telemetry/counters.hpp>

#include <string>
#include <vector>

namespace pbm::telemetry {

/// The `rank` label value: env RANK, else LOCAL_RANK, else "" (no rank label). Read at each call,
/// under the lock with which telemetry also sets NVTX_INJECTION64_PATH (never a racing getenv).
std::string rank_from_env();

/// Pure: the samples for `mailboxes`, one series per metric and mailbox (and stream class where a
/// count is split by class), labelled {mailbox, device[, stream_class][, rank]}:
///   pbm_push_records_total, pbm_pop_records_total, pbm_dropped_records_total,
///   pbm_push_bytes_total, pbm_pop_bytes_total (records x stride),
///   pbm_push_calls_total{stream_class}, pbm_pop_calls_total{stream_class} (host-launched calls;
///   both classes always present, zero included),
///   pbm_occupancy_records, pbm_capacity_records (gauges).
/// A `rank` label is added when `rank` is not empty. Mailboxes with the same name on the same
/// device are summed into one series (label sets must be unique). A mailbox with `live` false (the
/// summed counts of destroyed ones) adds to the counters only, not to the gauges.
std::vector<CounterSample> mailbox_samples(std::vector<MailboxInfo> const& mailboxes, std::string const& rank = {});

/// mailbox_samples of pbm::mailboxes() and pbm::retired_mailboxes(), with rank_from_env(). No CUDA
/// call, no memcpy, no sync.
std::vector<CounterSample> mailbox_samples();

}  // namespace pbm::telemetry
