// Per-mailbox samples from pbm::mailboxes(): pure formatting, no CUDA call.
#include <pbm/telemetry/mailbox_metrics.hpp>

#include <pbm/stream.hpp>

#include <cstdlib>

namespace pbm::telemetry {
namespace {

void add(std::vector<CounterSample>& out, char const* name, std::map<std::string, std::string> labels,
         std::uint64_t value, CounterSample::Type type) {
  for (CounterSample& s : out) {  // same name and labels: sum (mailboxes sharing a name)
    if (s.name == name && s.labels == labels) {
      s.value += value;
      return;
    }
  }
  out.push_back(CounterSample{name, std::move(labels), value, type});
}

}  // namespace

std::string rank_from_env() {
  for (char const* var : {"RANK", "LOCAL_RANK"}) {
    if (char const* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  }
  return {};
}

std::vector<CounterSample> mailbox_samples(std::vector<MailboxInfo> const& mailboxes, std::string const& rank) {
  constexpr auto kCounter = CounterSample::Type::counter;
  constexpr auto kGauge = CounterSample::Type::gauge;
  std::vector<CounterSample> out;
  out.reserve(mailboxes.size() * 11);
  for (MailboxInfo const& m : mailboxes) {
    std::map<std::string, std::string> labels{{"mailbox", m.name}, {"device", std::to_string(m.device)}};
    if (!rank.empty()) labels["rank"] = rank;
    Stats const& s = m.stats;
    add(out, "pbm_push_records_total", labels, s.pushed, kCounter);
    add(out, "pbm_pop_records_total", labels, s.popped, kCounter);
    add(out, "pbm_dropped_records_total", labels, s.dropped, kCounter);
    add(out, "pbm_push_bytes_total", labels, s.pushed * s.stride, kCounter);
    add(out, "pbm_pop_bytes_total", labels, s.popped * s.stride, kCounter);
    for (StreamClass cls : {StreamClass::focus, StreamClass::peripheral}) {
      auto by_class = labels;
      by_class["stream_class"] = to_string(cls);
      int const i = static_cast<int>(cls);
      add(out, "pbm_push_calls_total", by_class, m.push_calls[i], kCounter);
      add(out, "pbm_pop_calls_total", std::move(by_class), m.pop_calls[i], kCounter);
    }
    add(out, "pbm_occupancy_records", labels, s.occupancy, kGauge);
    add(out, "pbm_capacity_records", std::move(labels), s.capacity, kGauge);
  }
  return out;
}

std::vector<CounterSample> mailbox_samples() { return mailbox_samples(pbm::mailboxes(), rank_from_env()); }

}  // namespace pbm::telemetry
