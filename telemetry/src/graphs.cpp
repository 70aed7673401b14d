// CUDA graphs' nodes per executable graph, and the streams the legacy default stream serialises
// against (graphs.hpp).
#include "graphs.hpp"

#include <cupti.h>  // the runtime/driver parameter structs (generated_*_meta.h)

#include <dlfcn.h>

#include <algorithm>

namespace pbm::telemetry::detail {
namespace {

/// A driver function from the libcuda the process already loaded (never loads one, never the
/// runtime: this runs inside CUPTI callbacks). Null where it is missing.
template <class Fn>
Fn driver_function(char const* name) noexcept {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
  return driver != nullptr ? reinterpret_cast<Fn>(dlsym(driver, name)) : Fn{nullptr};
}

struct GraphApi {
  CUresult (*get_nodes)(CUgraph, CUgraphNode*, std::size_t*) = nullptr;
  CUresult (*node_type)(CUgraphNode, CUgraphNodeType*) = nullptr;
  CUresult (*memcpy_params)(CUgraphNode, CUDA_MEMCPY3D*) = nullptr;
  CUresult (*child_graph)(CUgraphNode, CUgraph*) = nullptr;
};

GraphApi const* graph_api() noexcept {
  static GraphApi const api = [] {
    GraphApi a;
    a.get_nodes = driver_function<decltype(a.get_nodes)>("cuGraphGetNodes");
    a.node_type = driver_function<decltype(a.node_type)>("cuGraphNodeGetType");
    a.memcpy_params = driver_function<decltype(a.memcpy_params)>("cuGraphMemcpyNodeGetParams");
    a.child_graph = driver_function<decltype(a.child_graph)>("cuGraphChildGraphNodeGetGraph");
    return a;
  }();
  bool const complete = api.get_nodes && api.node_type && api.memcpy_params && api.child_graph;
  return complete ? &api : nullptr;
}

/// One end of a memcpy node: host memory by its pointer (pinned or pageable), device memory and
/// arrays by their type, unified addressing by what the pointer is.
MemoryKind end_kind(CUmemorytype type, void const* host, CUdeviceptr device, MemoryKindOf kind_of) {
  switch (type) {
    case CU_MEMORYTYPE_HOST: return kind_of(host);
    case CU_MEMORYTYPE_DEVICE: return MemoryKind::device;
    case CU_MEMORYTYPE_ARRAY: return MemoryKind::array;
    case CU_MEMORYTYPE_UNIFIED: return kind_of(reinterpret_cast<void const*>(device));
    default: return MemoryKind::unknown;
  }
}

Direction copy_direction(MemoryKind src, MemoryKind dst) noexcept {
  auto as_device = [](MemoryKind k) { return k == MemoryKind::array ? MemoryKind::device : k; };
  return direction_between(as_device(src), as_device(dst));
}

bool add_nodes(GraphApi const& api, CUgraph graph, MemoryKindOf kind_of, int depth, GraphSummary& out) {
  std::size_t count = 0;
  if (api.get_nodes(graph, nullptr, &count) != CUDA_SUCCESS) return false;
  std::vector<CUgraphNode> nodes(count);
  if (count != 0 && api.get_nodes(graph, nodes.data(), &count) != CUDA_SUCCESS) return false;
  nodes.resize(std::min(count, nodes.size()));
  for (CUgraphNode node : nodes) {
    CUgraphNodeType type{};
    if (api.node_type(node, &type) != CUDA_SUCCESS) {
      out.complete = false;
      continue;
    }
    if (type == CU_GRAPH_NODE_TYPE_HOST) {
      ++out.host_nodes;
    } else if (type == CU_GRAPH_NODE_TYPE_MEMCPY) {
      CUDA_MEMCPY3D p{};
      if (api.memcpy_params(node, &p) != CUDA_SUCCESS) {
        out.complete = false;
        continue;
      }
      MemcpyEvent ev;
      ev.src_kind = end_kind(p.srcMemoryType, p.srcHost, p.srcDevice, kind_of);
      ev.dst_kind = end_kind(p.dstMemoryType, p.dstHost, p.dstDevice, kind_of);
      ev.direction = copy_direction(ev.src_kind, ev.dst_kind);
      ev.bytes = static_cast<std::uint64_t>(p.WidthInBytes) * std::max<std::size_t>(p.Height, 1) *
                 std::max<std::size_t>(p.Depth, 1);
      ev.is_async = true;
      out.copies.push_back(ev);
    } else if (type == CU_GRAPH_NODE_TYPE_GRAPH) {
      CUgraph child = nullptr;
      if (depth >= 8 || api.child_graph(node, &child) != CUDA_SUCCESS || !add_nodes(api, child, kind_of, depth + 1, out))
        out.complete = false;
    }
  }
  return true;
}

}  // namespace

std::optional<GraphSummary> inspect_graph(CUgraph graph, MemoryKindOf kind_of) {
  GraphApi const* api = graph_api();
  if (api == nullptr || graph == nullptr) return std::nullopt;
  GraphSummary out;
  if (!add_nodes(*api, graph, kind_of, 0, out)) return std::nullopt;
  return out;
}

void GraphCache::put(void const* exec, GraphSummary summary) {
  if (!reports(summary)) {
    erase(exec);  // its replays report nothing, as for an executable never cached: no room taken
    return;
  }
  auto shared = std::make_shared<GraphSummary const>(std::move(summary));
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = by_exec_.insert_or_assign(exec, std::move(shared));
  (void)it;
  if (!inserted) return;  // updated: the same executable, still reporting
  reporting_.fetch_add(1, std::memory_order_acq_rel);
  order_.push_back(exec);
  while (by_exec_.size() > kMaxGraphs && !order_.empty()) {
    if (by_exec_.erase(order_.front()) != 0) reporting_.fetch_sub(1, std::memory_order_acq_rel);
    order_.erase(order_.begin());
  }
}

std::shared_ptr<GraphSummary const> GraphCache::get(void const* exec) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_exec_.find(exec);
  return it == by_exec_.end() ? nullptr : it->second;
}

void GraphCache::erase(void const* exec) {
  std::lock_guard<std::mutex> lock(mu_);
  forget_locked(exec);
}

void GraphCache::forget_locked(void const* exec) {
  if (by_exec_.erase(exec) == 0) return;
  reporting_.fetch_sub(1, std::memory_order_acq_rel);
  order_.erase(std::find(order_.begin(), order_.end(), exec));
}

std::size_t GraphCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_exec_.size();
}

GraphCache& graph_cache() {
  static GraphCache* const cache = new GraphCache();
  return *cache;
}

bool is_legacy_stream(CUstream stream, bool per_thread_api) noexcept {
  if (stream == CU_STREAM_LEGACY) return true;
  if (stream == CU_STREAM_PER_THREAD) return false;
  return stream == nullptr && !per_thread_api;
}

void StreamTable::created(CUstream stream, bool blocking) {
  if (stream == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocking_by_stream_.find(stream);
  if (it != blocking_by_stream_.end()) {  // a handle reused after a destroy pbm did not see
    if (it->second) blocking_count_.fetch_sub(1, std::memory_order_relaxed);
    blocking_by_stream_.erase(it);
  }
  if (blocking_by_stream_.size() >= kMaxStreams) return;
  blocking_by_stream_.emplace(stream, blocking);
  if (blocking) blocking_count_.fetch_add(1, std::memory_order_relaxed);
}

void StreamTable::destroyed(CUstream stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocking_by_stream_.find(stream);
  if (it == blocking_by_stream_.end()) return;
  if (it->second) blocking_count_.fetch_sub(1, std::memory_order_relaxed);
  blocking_by_stream_.erase(it);
}

void StreamTable::used(CUstream stream) {
  if (stream == nullptr || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (blocking_by_stream_.count(stream) != 0 || blocking_by_stream_.size() >= kMaxStreams) return;
  unsigned int flags = 0;
  if (get_flags_ == nullptr || get_flags_(stream, &flags) != CUDA_SUCCESS) return;
  bool const blocking = (flags & CU_STREAM_NON_BLOCKING) == 0;
  blocking_by_stream_.emplace(stream, blocking);
  if (blocking) blocking_count_.fetch_add(1, std::memory_order_relaxed);
}

StreamTable& stream_table() {
  static StreamTable* const table = new StreamTable(driver_function<StreamTable::GetFlags>("cuStreamGetFlags"));
  return *table;
}

#define PBM_RT_STREAM(id, type, expr) \
  case CUPTI_RUNTIME_TRACE_CBID_##id: { auto const* p = static_cast<type##_params const*>(params); return CallStream{expr, per_thread}; }
#define PBM_DRV_STREAM(id, type, expr) \
  case CUPTI_DRIVER_TRACE_CBID_##id: { auto const* p = static_cast<type##_params const*>(params); return CallStream{expr, per_thread}; }

std::optional<CallStream> stream_of_call(CUpti_CallbackDomain domain, CUpti_CallbackId cbid, void const* params) noexcept {
  if (params == nullptr) return std::nullopt;
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    bool per_thread = false;
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchCooperativeKernel_ptsz_v9000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset2DAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset3DAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy3DAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbolAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbolAsync_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_ptsz_v10000:
        per_thread = true;
        break;
      default:
        break;
    }
    switch (cbid) {
      PBM_RT_STREAM(cudaLaunchKernel_v7000, cudaLaunchKernel_v7000, p->stream)
      PBM_RT_STREAM(cudaLaunchKernel_ptsz_v7000, cudaLaunchKernel_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaLaunchKernelExC_v11060, cudaLaunchKernelExC_v11060, p->config ? p->config->stream : nullptr)
      PBM_RT_STREAM(cudaLaunchKernelExC_ptsz_v11060, cudaLaunchKernelExC_ptsz_v11060,
                    p->config ? p->config->stream : nullptr)
      PBM_RT_STREAM(cudaLaunchCooperativeKernel_v9000, cudaLaunchCooperativeKernel_v9000, p->stream)
      PBM_RT_STREAM(cudaLaunchCooperativeKernel_ptsz_v9000, cudaLaunchCooperativeKernel_ptsz_v9000, p->stream)
      PBM_RT_STREAM(cudaMemsetAsync_v3020, cudaMemsetAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemsetAsync_ptsz_v7000, cudaMemsetAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemset2DAsync_v3020, cudaMemset2DAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemset2DAsync_ptsz_v7000, cudaMemset2DAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemset3DAsync_v3020, cudaMemset3DAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemset3DAsync_ptsz_v7000, cudaMemset3DAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpyAsync_v3020, cudaMemcpyAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemcpyAsync_ptsz_v7000, cudaMemcpyAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpy2DAsync_v3020, cudaMemcpy2DAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemcpy2DAsync_ptsz_v7000, cudaMemcpy2DAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpy3DAsync_v3020, cudaMemcpy3DAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemcpy3DAsync_ptsz_v7000, cudaMemcpy3DAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpyToSymbolAsync_v3020, cudaMemcpyToSymbolAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemcpyToSymbolAsync_ptsz_v7000, cudaMemcpyToSymbolAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpyFromSymbolAsync_v3020, cudaMemcpyFromSymbolAsync_v3020, p->stream)
      PBM_RT_STREAM(cudaMemcpyFromSymbolAsync_ptsz_v7000, cudaMemcpyFromSymbolAsync_ptsz_v7000, p->stream)
      PBM_RT_STREAM(cudaMemcpyPeerAsync_v4000, cudaMemcpyPeerAsync_v4000, p->stream)
      PBM_RT_STREAM(cudaGraphLaunch_v10000, cudaGraphLaunch_v10000, p->stream)
      PBM_RT_STREAM(cudaGraphLaunch_ptsz_v10000, cudaGraphLaunch_ptsz_v10000, p->stream)
      default: return std::nullopt;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    bool per_thread = false;
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD8Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD16Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD32Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32Async_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2_ptsz:
      case CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz:
        per_thread = true;
        break;
      default:
        break;
    }
    switch (cbid) {
      PBM_DRV_STREAM(cuLaunchKernel, cuLaunchKernel, p->hStream)
      PBM_DRV_STREAM(cuLaunchKernel_ptsz, cuLaunchKernel_ptsz, p->hStream)
      PBM_DRV_STREAM(cuLaunchKernelEx, cuLaunchKernelEx, p->config ? p->config->hStream : nullptr)
      PBM_DRV_STREAM(cuLaunchKernelEx_ptsz, cuLaunchKernelEx_ptsz, p->config ? p->config->hStream : nullptr)
      PBM_DRV_STREAM(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel, p->hStream)
      PBM_DRV_STREAM(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD8Async, cuMemsetD8Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD8Async_ptsz, cuMemsetD8Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD16Async, cuMemsetD16Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD16Async_ptsz, cuMemsetD16Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD32Async, cuMemsetD32Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD32Async_ptsz, cuMemsetD32Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D8Async, cuMemsetD2D8Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D8Async_ptsz, cuMemsetD2D8Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D16Async, cuMemsetD2D16Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D16Async_ptsz, cuMemsetD2D16Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D32Async, cuMemsetD2D32Async, p->hStream)
      PBM_DRV_STREAM(cuMemsetD2D32Async_ptsz, cuMemsetD2D32Async_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemcpyAsync, cuMemcpyAsync, p->hStream)
      PBM_DRV_STREAM(cuMemcpyAsync_ptsz, cuMemcpyAsync_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2, p->hStream)
      PBM_DRV_STREAM(cuMemcpyHtoDAsync_v2_ptsz, cuMemcpyHtoDAsync_v2_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2, p->hStream)
      PBM_DRV_STREAM(cuMemcpyDtoHAsync_v2_ptsz, cuMemcpyDtoHAsync_v2_ptsz, p->hStream)
      PBM_DRV_STREAM(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2, p->hStream)
      PBM_DRV_STREAM(cuMemcpyDtoDAsync_v2_ptsz, cuMemcpyDtoDAsync_v2_ptsz, p->hStream)
      PBM_DRV_STREAM(cuGraphLaunch, cuGraphLaunch, p->hStream)
      PBM_DRV_STREAM(cuGraphLaunch_ptsz, cuGraphLaunch_ptsz, p->hStream)
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

#undef PBM_RT_STREAM
#undef PBM_DRV_STREAM

bool runs_on_legacy_stream_implicitly(CUpti_CallbackDomain domain, CUpti_CallbackId cbid) noexcept {
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) {
    switch (cbid) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy3D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToSymbol_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromSymbol_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyToArray_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyFromArray_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DToArray_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DFromArray_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset2D_v3020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaMemset3D_v3020:
        return true;
      default:
        return false;
    }
  }
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) {
    switch (cbid) {
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpy:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoD_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoH_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoD_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpy2D_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemcpy3D_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD8_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD16_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD32_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D8_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D16_v2:
      case CUPTI_DRIVER_TRACE_CBID_cuMemsetD2D32_v2:
        return true;
      default:
        return false;
    }
  }
  return false;
}

}  // namespace pbm::telemetry::detail
