// The stand-in driver's CUDA graphs and stream flags (fake_libcuda.cpp's other half, in the same
// library; apart because cuda.h's declarations clash with that file's untyped cuPointerGetAttributes).
#if !defined(PBM_OTHER_LIBCUDA)
#include <cstdint>

// Graphs (fake_graph.hpp) for graph inspection: cuGraphGetNodes, cuGraphNodeGetType,
// cuGraphMemcpyNodeGetParams, cuGraphChildGraphNodeGetGraph, as the driver answers them.
#include "fake_graph.hpp"

#include <algorithm>

extern "C" __attribute__((visibility("default"))) CUresult cuGraphGetNodes(CUgraph graph, CUgraphNode* nodes,
                                                                         size_t* count) {
  auto const* g = reinterpret_cast<pbm_fake::FakeGraph const*>(graph);
  if (g == nullptr || count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (nodes == nullptr) {
    *count = g->count;
    return CUDA_SUCCESS;
  }
  std::size_t const n = std::min(*count, g->count);
  for (std::size_t i = 0; i < n; ++i) nodes[i] = reinterpret_cast<CUgraphNode>(g->nodes[i]);
  *count = n;
  return CUDA_SUCCESS;
}
extern "C" __attribute__((visibility("default"))) CUresult cuGraphNodeGetType(CUgraphNode node, CUgraphNodeType* type) {
  if (node == nullptr || type == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *type = reinterpret_cast<pbm_fake::FakeNode const*>(node)->type;
  return CUDA_SUCCESS;
}
extern "C" __attribute__((visibility("default"))) CUresult cuGraphMemcpyNodeGetParams(CUgraphNode node,
                                                                                    CUDA_MEMCPY3D* params) {
  auto const* n = reinterpret_cast<pbm_fake::FakeNode const*>(node);
  if (n == nullptr || params == nullptr || n->type != CU_GRAPH_NODE_TYPE_MEMCPY) return CUDA_ERROR_INVALID_VALUE;
  *params = n->copy;
  return CUDA_SUCCESS;
}
extern "C" __attribute__((visibility("default"))) CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode node,
                                                                                       CUgraph* graph) {
  auto const* n = reinterpret_cast<pbm_fake::FakeNode const*>(node);
  if (n == nullptr || graph == nullptr || n->type != CU_GRAPH_NODE_TYPE_GRAPH) return CUDA_ERROR_INVALID_VALUE;
  *graph = reinterpret_cast<CUgraph>(n->child);
  return CUDA_SUCCESS;
}
// Streams: 0x5000... blocking, 0x6000... non-blocking (CU_STREAM_NON_BLOCKING); others unknown.
extern "C" __attribute__((visibility("default"))) CUresult cuStreamGetFlags(CUstream stream, unsigned int* flags) {
  switch (reinterpret_cast<std::uintptr_t>(stream) >> 12) {
    case 0x5: *flags = CU_STREAM_DEFAULT; return CUDA_SUCCESS;
    case 0x6: *flags = CU_STREAM_NON_BLOCKING; return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_HANDLE;
  }
}
#endif
