// Helpers shared by the engine's CPU tests: an observer that records what it sees, an API call as
// CUPTI's callbacks describe it, and a fake address space for the parameters of copy calls.
#pragma once

#include "engine.hpp"

#include <pbm/telemetry/observer.hpp>

#include <cstdint>
#include <utility>
#include <vector>

namespace pbm_test {

namespace pt = pbm::telemetry;
namespace pd = pbm::telemetry::detail;

struct Recorder : pt::Observer {
  std::vector<std::pair<pt::MemcpyEvent, bool>> copies;
  std::vector<std::pair<pt::SyncEvent, bool>> syncs;
  std::vector<pt::Violation> violations;
  void on_memcpy(pt::MemcpyEvent const& ev, bool expected) override { copies.emplace_back(ev, expected); }
  void on_sync(pt::SyncEvent const& ev, bool expected) override { syncs.emplace_back(ev, expected); }
  void on_violation(pt::Violation const& v) override { violations.push_back(v); }
};

inline pd::ApiCall api_call(pd::ApiCall::Class cls, std::uint32_t correlation, char const* name,
                            pt::SyncApi api = pt::SyncApi::unknown, bool runtime = true) {
  pd::ApiCall c;
  c.runtime = runtime;
  c.correlation = correlation;
  c.name = name;
  c.cls = cls;
  c.sync_api = api;
  return c;
}

/// A fake address space: 0x1000... pageable host, 0x2000... pinned, 0x3000... device, 0x4000... managed.
inline pt::MemoryKind fake_kind(void const* p) {
  switch (reinterpret_cast<std::uintptr_t>(p) >> 12) {
    case 0x1: return pt::MemoryKind::pageable;
    case 0x2: return pt::MemoryKind::pinned;
    case 0x3: return pt::MemoryKind::device;
    case 0x4: return pt::MemoryKind::managed;
    default: return pt::MemoryKind::unknown;
  }
}
inline void* at(std::uintptr_t a) { return reinterpret_cast<void*>(a); }

}  // namespace pbm_test
