// Per-mailbox samples from MailboxInfo: pure formatting, no CUDA call.
#include <pbm/exporters/mailbox_metrics.hpp>

#include <pbm/stream.hpp>
#include <pbm/telemetry/metric_table.hpp>

#include <iterator>
#include <map>
#include <string>

namespace pbm::exporters {

std::vector<Sample> mailbox_samples(std::vector<MailboxInfo> const& mailboxes) {
  using telemetry::MetricId;
  using Labels = std::map<std::string, std::string>;
  std::vector<Sample> out;
  auto add = [&out](MetricId id, Labels const& labels, std::uint64_t value) {
    telemetry::Metric const& m = telemetry::metric(id);
    out.push_back(Sample{std::string(m.name), labels, value, m.type});
  };
  for (MailboxInfo const& m : mailboxes) {
    Labels const labels{{"mailbox", m.name}, {"device", std::to_string(m.device)}};
    Stats const& s = m.stats;
    add(MetricId::push_records, labels, s.pushed);
    add(MetricId::pop_records, labels, s.popped);
    add(MetricId::dropped_records, labels, s.dropped);
    add(MetricId::push_bytes, labels, s.pushed * s.stride);
    add(MetricId::pop_bytes, labels, s.popped * s.stride);
    for (StreamClass cls : {StreamClass::focus, StreamClass::peripheral}) {
      Labels by_class = labels;
      by_class["stream_class"] = to_string(cls);
      int const i = static_cast<int>(cls);
      add(MetricId::push_calls, by_class, m.push_calls[i]);
      add(MetricId::pop_calls, by_class, m.pop_calls[i]);
    }
    if (!m.live) continue;  // a destroyed mailbox's counts only (retired_mailboxes())
    add(MetricId::occupancy_records, labels, s.occupancy);
    add(MetricId::capacity_records, labels, s.capacity);
  }
  return out;
}

std::vector<Sample> mailbox_samples() {
  std::vector<MailboxInfo> all = pbm::mailboxes();
  std::vector<MailboxInfo> retired = pbm::retired_mailboxes();
  all.insert(all.end(), std::make_move_iterator(retired.begin()), std::make_move_iterator(retired.end()));
  return mailbox_samples(all);
}

}  // namespace pbm::exporters
