// The stand-in driver's CUDA graphs (fake_libcuda.cpp), shared with the tests that build them: a
// CUgraph is a FakeGraph*, a CUgraphNode a FakeNode*.
#pragma once

#include <cuda.h>

#include <cstddef>

namespace pbm_fake {

struct FakeGraph;
struct FakeNode {
  CUgraphNodeType type{CU_GRAPH_NODE_TYPE_EMPTY};
  CUDA_MEMCPY3D copy{};       // CU_GRAPH_NODE_TYPE_MEMCPY
  FakeGraph* child{nullptr};  // CU_GRAPH_NODE_TYPE_GRAPH
};
struct FakeGraph {
  std::size_t count{0};
  FakeNode* nodes[16]{};
};

}  // namespace pbm_fake
