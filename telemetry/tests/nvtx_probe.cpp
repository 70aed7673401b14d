// Probe for the NVTX-compiled-out test (check_nvtx_symbols.cmake): pbm's range macro in a
// function, built twice, with and without NVTX_DISABLE.
#include <pbm/nvtx.hpp>

int pbm_range_probe(int x) {
  PBM_NVTX_RANGE(push, push);
  {
    PBM_NVTX_RANGE(pop, pop_bulk_async);
    x += 2;
  }
  PBM_NVTX_RANGE(wait, wait);
  return x + 1;
}

int main(int argc, char**) { return pbm_range_probe(argc) == argc + 3 ? 0 : 1; }
