// Samples summed by (name, labels), in first-seen order. Private to telemetry/.
#pragma once

#include <pbm/telemetry/counters.hpp>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <string>
#include <utility>
#include <vector>

namespace pbm::telemetry::detail {

/// A sample with the same name and labels as one added before is summed into it (range slots
/// that fold into one label: "other", a name two threads raced to insert). Constant time per add (hashing the name and labels).
class SampleSet {
 public:
  void add(Metric const& metric, std::map<std::string, std::string> labels, std::uint64_t value) {
    std::string name(metric.name);
    auto [it, fresh] = index_.try_emplace(key(name, labels), samples_.size());
    if (!fresh) {
      samples_[it->second].value += value;
      return;
    }
    samples_.push_back(CounterSample{std::move(name), std::move(labels), value, metric.type});
  }
  std::vector<CounterSample> take() && { return std::move(samples_); }

 private:
  static std::string key(std::string const& name, std::map<std::string, std::string> const& labels) {
    std::string k = name;
    for (auto const& [label, value] : labels) {
      k += '\0';
      k += label;
      k += '\0';
      k += value;
    }
    return k;
  }
  std::vector<CounterSample> samples_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace pbm::telemetry::detail
