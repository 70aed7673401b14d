// The figures pbm_bench measures. Each returns its results as JSON (BENCHMARKS.md describes the
// keys) and records failed checks in the context. `scaling`, when not null, receives the figure's
// part of figure 8 (how it changes with record size and batch size).
#pragma once

#include "harness.hpp"

namespace pbm::bench {

/// 1. Count-to-host latency of a small pop: pbm vs pop + memcpy + stream sync vs the mapped-write floor.
Json figure_count_latency(Context& ctx, Json* scaling);
/// 2. Host cost of pop_bulk_async (no wait) vs an empty kernel launch.
Json figure_call_cost(Context& ctx);
/// 3. Device-side push throughput: warp_push, block_push and try_push vs a plain kernel writing the
///    same bytes.
Json figure_push_throughput(Context& ctx, Json* scaling);
/// 4. Bulk pop bandwidth vs cudaMemcpyAsync device to device.
Json figure_pop_bandwidth(Context& ctx, Json* scaling);
/// 5. Producer/consumer pipeline on focus and peripheral streams; the focus stream's latency advantage.
Json figure_pipeline(Context& ctx);

}  // namespace pbm::bench
