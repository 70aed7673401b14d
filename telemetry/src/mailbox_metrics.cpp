// Per-mailbox samples from pbm::mailboxes(): pure formatting, no CUDA call.
#include <pbm/telemetry/mailbox_metrics.hpp>

#include <pbm/stream.hpp>

#include "environment.hpp"
#include "sample_set.hpp"

#include <iterator>

namespace pbm::telemetry {

std::string rank_from_env() { return detail::rank(); }

std::vector<CounterSample> mailbox_samples(std::vector<MailboxInfo> const& mailboxes, std::string const& rank) {
  constexpr auto kCounter = CounterSample::Type::counter;
  constexpr auto kGauge = CounterSample::Type::gauge;
  detail::SampleSet out;  // same name and labels: summed (mailboxes sharing a name)
  for (MailboxInfo const& m : mailboxes) {
    std::map<std::string, std::string> labels{{"mailbox", m.name}, {"device", std::to_string(m.device)}};
    if (!rank.empty()) labels["rank"] = rank;
    Stats const& s = m.stats;
    out.add("pbm_push_records_total", labels, s.pushed, kCounter);
    out.add("pbm_pop_records_total", labels, s.popped, kCounter);
    out.add("pbm_dropped_records_total", labels, s.dropped, kCounter);
    out.add("pbm_push_bytes_total", labels, s.pushed * s.stride, kCounter);
    out.add("pbm_pop_bytes_total", labels, s.popped * s.stride, kCounter);
    for (StreamClass cls : {StreamClass::focus, StreamClass::peripheral}) {
      auto by_class = labels;
      by_class["stream_class"] = to_string(cls);
      int const i = static_cast<int>(cls);
      out.add("pbm_push_calls_total", by_class, m.push_calls[i], kCounter);
      out.add("pbm_pop_calls_total", std::move(by_class), m.pop_calls[i], kCounter);
    }
    if (!m.live) continue;  // a destroyed mailbox's counts only (retired_mailboxes())
    out.add("pbm_occupancy_records", labels, s.occupancy, kGauge);
    out.add("pbm_capacity_records", std::move(labels), s.capacity, kGauge);
  }
  return std::move(out).take();
}

std::vector<CounterSample> mailbox_samples() {
  std::vector<MailboxInfo> all = pbm::mailboxes();
  std::vector<MailboxInfo> retired = pbm::retired_mailboxes();
  all.insert(all.end(), std::make_move_iterator(retired.begin()), std::make_move_iterator(retired.end()));
  return mailbox_samples(all, rank_from_env());
}

}  // namespace pbm::telemetry
