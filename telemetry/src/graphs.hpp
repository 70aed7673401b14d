// CUDA graphs and the legacy default stream: what a replay or a launch does that the API call alone
// does not say. Private to telemetry/ (CUDA driver types); visible to tests.
//
// A graph's memcpy and host nodes run at every replay without an API call of their own. pbm reads
// an executable graph's nodes once, when it is instantiated (cudaGraphInstantiate* and cuGraph-
// Instantiate* exit callbacks, and again after a successful cudaGraphExecUpdate), keeps what matters
// per executable graph, and reports it at each cudaGraphLaunch (cupti_source.cpp).
//
// The legacy default stream serialises against every blocking stream of its context. StreamTable
// knows which streams are blocking: from their creation (cudaStreamCreate*, cuStreamCreate*), or,
// for streams made before pbm attached, from cuStreamGetFlags the first time work is issued to them.
#pragma once

#include "decoder.hpp"

#include <pbm/telemetry/events.hpp>

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace pbm::telemetry::detail {

/// What one replay of an executable graph does that pbm reports, child graphs included.
struct GraphSummary {
  std::vector<MemcpyEvent> copies;  ///< memcpy nodes: direction, memory kinds, bytes
  std::uint32_t host_nodes{0};      ///< host nodes: the stream waits for a host function
  bool complete{true};              ///< false: a node or child graph could not be read
};

/// Reads `graph`'s nodes through the driver already loaded in the process (cuGraphGetNodes,
/// cuGraphNodeGetType, cuGraphMemcpyNodeGetParams, cuGraphChildGraphNodeGetGraph), child graphs to
/// a depth of 8. Memory kinds come from `kind_of`. nullopt when the driver lacks these functions or
/// the graph cannot be listed. Makes driver calls: call it from an API callback, never a scrape.
std::optional<GraphSummary> inspect_graph(CUgraph graph, MemoryKindOf kind_of);

/// What inspect_graph found, per executable graph with something to report (a memcpy or host node;
/// a graph of kernels and event nodes, such as pbm's own, is not kept). Bounded: past kMaxGraphs executables the oldest is
/// forgotten (its replays then report nothing). Thread-safe.
class GraphCache {
 public:
  static constexpr std::size_t kMaxGraphs = 4096;
  void put(void const* exec, GraphSummary summary);
  std::shared_ptr<GraphSummary const> get(void const* exec) const;
  void erase(void const* exec);
  std::size_t size() const;
  /// Executables kept (each reports something). While there are none, a graph launch needs no
  /// lookup and no context (pbm's own graphs: a kernel and an event record). Lock-free read; exact
  /// once put/erase have returned.
  std::size_t reporting() const noexcept { return reporting_.load(std::memory_order_acquire); }

 private:
  static bool reports(GraphSummary const& s) noexcept { return s.host_nodes > 0 || !s.copies.empty(); }
  void forget_locked(void const* exec);
  mutable std::mutex mu_;
  std::unordered_map<void const*, std::shared_ptr<GraphSummary const>> by_exec_;
  std::vector<void const*> order_;  // insertion order, for eviction
  std::atomic<std::size_t> reporting_{0};
};
GraphCache& graph_cache();  // never destroyed: callbacks may come during exit

/// The legacy default stream: CUstream 0 for an API without the _ptsz/_ptds suffix, and
/// CU_STREAM_LEGACY (0x1) for any. CU_STREAM_PER_THREAD (0x2), and 0 for a per-thread API, are not.
bool is_legacy_stream(CUstream stream, bool per_thread_api) noexcept;

/// Blocking streams (created without cudaStreamNonBlocking / CU_STREAM_NON_BLOCKING), known from
/// their creation or from cuStreamGetFlags at first use. Bounded at kMaxStreams entries (then
/// unseen streams are not looked up). Thread-safe.
class StreamTable {
 public:
  static constexpr std::size_t kMaxStreams = 65536;
  using GetFlags = CUresult (*)(CUstream, unsigned int*);
  explicit StreamTable(GetFlags get_flags) : get_flags_(get_flags) {}
  void created(CUstream stream, bool blocking);
  void destroyed(CUstream stream);
  /// Work issued to `stream` (not a legacy or per-thread handle): learns its flags if new.
  void used(CUstream stream);
  /// Blocking streams known to exist now.
  std::size_t blocking() const noexcept { return blocking_count_.load(std::memory_order_relaxed); }

 private:
  GetFlags get_flags_;
  mutable std::mutex mu_;
  std::unordered_map<CUstream, bool> blocking_by_stream_;
  std::atomic<std::size_t> blocking_count_{0};
};
StreamTable& stream_table();  // with the loaded driver's cuStreamGetFlags; never destroyed

/// The stream a watched call issues work to, from its parameters: kernel launches, async copies
/// and memsets, graph launches. `per_thread_api` says whether the callback id is a _ptsz/_ptds one.
/// nullopt for calls without a stream parameter pbm decodes.
struct CallStream {
  CUstream stream{nullptr};
  bool per_thread_api{false};
};
std::optional<CallStream> stream_of_call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params) noexcept;

/// True for the synchronous copies and memsets (no stream parameter) that run on the legacy default
/// stream: the non-_ptds cudaMemcpy*/cudaMemset* and cuMemcpy*/cuMemsetD* calls pbm watches.
bool runs_on_legacy_stream_implicitly(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) noexcept;

}  // namespace pbm::telemetry::detail
