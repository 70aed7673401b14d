// Figures 1 and 2: what it costs the host to learn a pop's count, and to launch a pop.
//
// 1. Count-to-host latency (host steady_clock, GPU idle and the records committed at t0):
//      pbm       pop_bulk_async + OpHandle::wait(WaitMode::spin): the count arrives in pinned mapped
//                memory written by the pop kernel itself.
//      (a)       the original approach: the same pop kernel writes the count to device memory, then
//                cudaMemcpyAsync of the count into pinned host memory + cudaStreamSynchronize.
//                (Same kernel, so the difference is the count's way home; the process uses
//                cudaDeviceScheduleSpin, so the synchronize spins like pbm's wait.)
//      (b)       the floor: one <<<1,1>>> launch whose single store to pinned mapped memory a
//                spinning host sees. No pop can do better than a launch plus a write home.
//    The three are interleaved iteration by iteration, in rotating order.
// 2. Host cost of the call alone (no wait): pop_bulk_async vs an empty <<<1,32>>> launch (and a
//    launch + cudaEventRecord, which is what a pop call must do at least), in batches of 32 calls
//    that the GPU drains between batches (untimed), batches interleaved.
#include "figures.hpp"
#include "kernels.cuh"

#include <pbm/mailbox.hpp>

#include <cuda.h>
#include <pbm/stream.hpp>

#include <array>
#include <string>
#include <vector>

namespace pbm::detail {
/// For side-by-side runs: pushes and pops launch their kernels directly (core/src/mailbox.cu).
void set_kernel_launch_path(bool direct) noexcept;
}  // namespace pbm::detail

namespace pbm::bench {
namespace {

/// The variant figure 1 times beside pbm's own pop: the same pop launched directly.
struct TailVariant {
  bool kernel_launch;
  char const* key;
  char const* what;
};
constexpr TailVariant kTailVariants[] = {
    {true, "pbm_kernel_launch", "pbm launching its kernel with cudaLaunchKernel + cudaEventRecord instead of its graph"},
};

struct LatencyRun {
  Summary pbm, memcpy_sync, floor;
  std::vector<Summary> tails;  // pbm with each of the measured variants of the pop's tail
  std::uint64_t verified_records = 0;
};

enum Variant { kPbm = 0, kMemcpySync = 1, kFloor = 2 };

/// Figure 1 for one record stride and batch size.
LatencyRun count_latency(Context& ctx, std::uint32_t stride, std::uint64_t batch, int warmup, int iters,
                         std::vector<bool> const& tails = {}) {
  std::string const where = "count latency (" + bytes_label(stride) + " x " + std::to_string(batch) + ")";
  Stream stream(StreamClass::focus, ctx.device);
  Mailbox box(std::max<std::uint64_t>(4096, 2 * batch), stride, ctx.device, "bench_latency");
  std::size_t const bytes = static_cast<std::size_t>(batch) * stride;
  DeviceBuffer src(bytes), dst(bytes), device_count(sizeof(unsigned long long)), counters(sizeof(CheckCounters));
  HostBuffer<unsigned long long> host_count(1, /*mapped=*/false);  // (a): the memcpy's pinned target
  HostBuffer<unsigned long long> flag(1, /*mapped=*/true);         // (b): the floor's mapped word
  PBM_BENCH_CUDA(cudaMemsetAsync(counters.get(), 0, sizeof(CheckCounters), stream));
  fill_records(src.get(), batch, stride, 0, 1, stream);
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));

  WaitPolicy const spin = spin_policy();
  int const variants = 3 + static_cast<int>(tails.size());  // pbm, (a), (b), then pbm with each tail
  std::vector<std::vector<double>> us(static_cast<std::size_t>(variants));
  for (auto& v : us) v.reserve(static_cast<std::size_t>(iters));
  unsigned long long generation = 0;
  std::uint64_t expected_verified = 0;
  for (int it = 0; it < warmup + iters; ++it) {
    for (int k = 0; k < variants; ++k) {
      int const v = (it + k + 2) % variants;  // rotating order (the floor first in iteration 0): none always first
      bool const tail_variant = v >= 3;
      detail::set_kernel_launch_path(tail_variant && tails[static_cast<std::size_t>(v - 3)]);
      if (v != kFloor) {
        // Untimed setup: clear the destination, push `batch` records and wait for the push, so at
        // t0 the GPU is idle and the records are committed.
        PBM_BENCH_CUDA(cudaMemsetAsync(dst.get(), 0, bytes, stream));
        std::uint64_t const pushed = box.push(src.get(), batch, stream).wait(spin);
        if (!ctx.expect(pushed == batch, where + ": pushed " + std::to_string(pushed) + " records, expected " +
                                             std::to_string(batch)))
          return {};
      }
      std::int64_t t0 = 0, t1 = 0;
      std::uint64_t got = batch;
      if (v == kPbm || tail_variant) {
        t0 = now_ns();
        PopHandle h = box.pop_bulk_async(dst.get(), batch, stream);
        got = h.wait(spin);
        t1 = now_ns();
      } else if (v == kMemcpySync) {
        t0 = now_ns();
        PopHandle h = box.pop_bulk_async(dst.get(), batch, stream, device_count.get<unsigned long long>());
        cudaError_t const copied = cudaMemcpyAsync(host_count.host(), device_count.get(), sizeof(unsigned long long),
                                                   cudaMemcpyDeviceToHost, stream);
        cudaError_t const synced = cudaStreamSynchronize(stream);
        t1 = now_ns();
        PBM_BENCH_CUDA(copied);
        PBM_BENCH_CUDA(synced);
        got = host_count.load();
      } else {
        ++generation;
        t0 = now_ns();
        launch_flag_write(flag.device_ptr(), generation, stream);
        spin_until([&] { return flag.load() == generation; }, "the floor kernel's mapped write");
        t1 = now_ns();
        PBM_BENCH_LAUNCHED("flag_kernel");
      }
      if (v != kFloor) {
        if (!ctx.expect(got == batch, where + ": " + (v == kMemcpySync ? "(a)" : "pbm") + " popped " + std::to_string(got) +
                                          " records, expected " + std::to_string(batch)))
          return {};
        if (it % 16 == 0) {  // the bytes too, on a sample: the pop really copied the records
          verify_records(dst.get(), batch, stride, 0, 1, counters.get<CheckCounters>(), stream);
          PBM_BENCH_CUDA(cudaStreamSynchronize(stream));  // idle again before the next timed variant
          expected_verified += batch;
        }
      }
      if (it >= warmup) us[static_cast<std::size_t>(v)].push_back(static_cast<double>(t1 - t0) / 1e3);
    }
  }
  detail::set_kernel_launch_path(false);
  CheckCounters c{};
  PBM_BENCH_CUDA(cudaMemcpyAsync(&c, counters.get(), sizeof c, cudaMemcpyDeviceToHost, stream));
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
  ctx.expect(c.bad_words == 0, where + ": " + std::to_string(c.bad_words) + " popped words differ from the pushed ones");
  ctx.expect(c.records == expected_verified, where + ": verified " + std::to_string(c.records) + " records, expected " +
                                                 std::to_string(expected_verified));
  Stats const s = box.stats();
  ctx.expect(s.dropped == 0, where + ": " + std::to_string(s.dropped) + " records dropped");
  LatencyRun run{summarise(us[kPbm]), summarise(us[kMemcpySync]), summarise(us[kFloor]), {}, c.records};
  for (std::size_t i = 0; i < tails.size(); ++i) run.tails.push_back(summarise(us[3 + i]));
  return run;
}

/// Count-to-host latency of the floor's kernel with one piece of a pop's tail added before its
/// store (launch_tail_probe modes 0-5), modes interleaved in rotating order: what the fences and the
/// snapshot's stores to mapped memory cost on the way to the host.
std::vector<Summary> tail_probe(Context& ctx, int iters) {
  constexpr int kModes = 6;
  Stream stream(StreamClass::focus, ctx.device);
  HostBuffer<unsigned long long> flag(1, /*mapped=*/true), mapped(8, /*mapped=*/true);
  DeviceBuffer words(32 * sizeof(unsigned long long));
  PBM_BENCH_CUDA(cudaMemsetAsync(words.get(), 0, 32 * sizeof(unsigned long long), stream));
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<std::vector<double>> us(kModes);
  unsigned long long generation = 0;
  int const warmup = 100;
  for (int it = 0; it < warmup + iters; ++it) {
    for (int k = 0; k < kModes; ++k) {
      int const mode = (it + k) % kModes;
      ++generation;
      std::int64_t const t0 = now_ns();
      launch_tail_probe(flag.device_ptr(), generation, mapped.device_ptr(), words.get<unsigned long long>(), mode,
                        stream);
      spin_until([&] { return flag.load() == generation; }, "the tail probe's mapped write");
      std::int64_t const t1 = now_ns();
      PBM_BENCH_LAUNCHED("tail_probe_kernel");
      if (it >= warmup) us[static_cast<std::size_t>(mode)].push_back(static_cast<double>(t1 - t0) / 1e3);
    }
  }
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<Summary> out;
  for (auto const& v : us) out.push_back(summarise(v));
  ctx.expect(mapped.host()[6] != 0, "tail probe: the stores to mapped memory did not land");
  return out;
}

Json latency_point(std::uint32_t stride, std::uint64_t batch, LatencyRun const& r) {
  Json j = Json::object();
  j["record_bytes"] = stride;
  j["batch_records"] = batch;
  j["pbm"] = to_json(r.pbm, "us");
  j["memcpy_sync"] = to_json(r.memcpy_sync, "us");
  j["floor"] = to_json(r.floor, "us");
  j["speedup_vs_memcpy_sync"] = r.memcpy_sync.median / r.pbm.median;
  j["ratio_vs_floor"] = r.pbm.median / r.floor.median;
  return j;
}

}  // namespace

Json figure_count_latency(Context& ctx, Json* scaling) {
  std::uint32_t const stride = 64;
  std::uint64_t const batch = 8;
  int const warmup = ctx.pick(300, 1000);
  int const iters = ctx.pick(3000, 20000);
  std::vector<bool> tails;
  for (TailVariant const& t : kTailVariants) tails.push_back(t.kernel_launch);
  LatencyRun const r = count_latency(ctx, stride, batch, warmup, iters, tails);
  std::vector<Summary> const probe = tail_probe(ctx, ctx.pick(1000, 5000));

  Json f = Json::object();
  f["id"] = "1";
  f["title"] = "Count-to-host latency of a small pop (8 records of 64 B already pushed)";
  f["method"] =
      "host steady_clock from before the pop call to the host holding the count; GPU idle and records committed "
      "at t0; variants interleaved per iteration in rotating order; cudaDeviceScheduleSpin";
  Json& p = f["params"];
  p["record_bytes"] = stride;
  p["batch_records"] = batch;
  p["warmup_per_variant"] = warmup;
  p["iterations_per_variant"] = iters;
  p["verified_records"] = r.verified_records;
  Json& s = f["series"];
  s["pbm"] = to_json(r.pbm, "us");
  s["pbm"]["what"] = "Mailbox::pop_bulk_async + OpHandle::wait(WaitMode::spin)";
  s["memcpy_sync"] = to_json(r.memcpy_sync, "us");
  s["memcpy_sync"]["what"] =
      "(a) the same pop kernel writing the count to device memory + cudaMemcpyAsync D2H (pinned) + "
      "cudaStreamSynchronize";
  s["floor"] = to_json(r.floor, "us");
  s["floor"]["what"] = "(b) one <<<1,1>>> launch whose single store to pinned mapped memory a spinning host sees";
  for (std::size_t i = 0; i < r.tails.size(); ++i) {
    s[kTailVariants[i].key] = to_json(r.tails[i], "us");
    s[kTailVariants[i].key]["what"] = kTailVariants[i].what;
  }
  static char const* const kProbe[] = {
      "floor kernel (the store alone), same loop", "+ __threadfence_system()",
      "+ 7 stores to mapped memory (the stats snapshot)", "+ 7 stores to mapped memory + __threadfence_system()",
      "+ 2 device atomics + __threadfence_system()", "+ 2 device atomics + __threadfence()"};
  Json& tp = f["tail_probe"];
  tp = Json::array();
  for (std::size_t i = 0; i < probe.size(); ++i) {
    Json j = to_json(probe[i], "us");
    j["mode"] = static_cast<int>(i);
    j["what"] = kProbe[i];
    tp.push_back(j);
  }
  double const speedup = r.memcpy_sync.median / r.pbm.median;
  double const vs_floor = r.pbm.median / r.floor.median;
  Json& q = f["ratios"];
  q["pbm_over_memcpy_sync_median"] = r.pbm.median / r.memcpy_sync.median;
  q["pbm_over_memcpy_sync_p99"] = r.pbm.p99 / r.memcpy_sync.p99;
  q["pbm_over_floor_median"] = vs_floor;
  q["pbm_over_floor_p99"] = r.pbm.p99 / r.floor.p99;
  Json const g1 = goal("pbm >= 1.5x faster than (a) (median)", speedup, ">=", 1.5);
  Json const g2 = goal("pbm within 1.25x of the floor (b) (median)", vs_floor, "<=", 1.25);
  f["goals"].push_back(g1);
  f["goals"].push_back(g2);
  Json& t = f["table"];
  t.push_back(row("pbm pop+wait(spin), median", r.pbm.median, "us", "(a) pop+memcpy+sync", r.memcpy_sync.median,
                  speedup, "(a)/pbm", g1));
  t.push_back(row("pbm pop+wait(spin), median", r.pbm.median, "us", "(b) floor: launch+mapped write", r.floor.median,
                  vs_floor, "pbm/(b)", g2));
  t.push_back(row("pbm pop+wait(spin), p99", r.pbm.p99, "us", "(a) p99", r.memcpy_sync.p99,
                  r.memcpy_sync.p99 / r.pbm.p99, "(a)/pbm"));
  t.push_back(row("pbm pop+wait(spin), p99", r.pbm.p99, "us", "(b) p99", r.floor.p99, r.pbm.p99 / r.floor.p99,
                  "pbm/(b)"));
  for (std::size_t i = 1; i < probe.size(); ++i)
    t.push_back(row(std::string("  tail probe: ") + kProbe[i], probe[i].median, "us", "probe mode 0 (the store alone)",
                    probe[0].median, probe[i].median - probe[0].median, "us added"));
  for (std::size_t i = 0; i < r.tails.size(); ++i) {
    f["ratios"][std::string("pbm_over_") + kTailVariants[i].key + "_median"] = r.pbm.median / r.tails[i].median;
    t.push_back(row("pbm pop+wait(spin), median", r.pbm.median, "us", kTailVariants[i].key, r.tails[i].median,
                    r.tails[i].median / r.pbm.median, "variant/pbm"));
  }

  if (scaling != nullptr) {
    int const s_warmup = ctx.pick(100, 300);
    int const s_iters = ctx.pick(500, 3000);
    std::vector<std::uint32_t> const strides =
        ctx.quick() ? std::vector<std::uint32_t>{16, 256, 4096}
                    : std::vector<std::uint32_t>{16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    std::vector<std::uint64_t> const batches =
        ctx.quick() ? std::vector<std::uint64_t>{1, 64, 512} : std::vector<std::uint64_t>{1, 8, 64, 512, 4096};
    Json& by_size = (*scaling)["count_latency_by_record_size"];
    by_size = Json::array();
    for (std::uint32_t st : strides)
      by_size.push_back(latency_point(st, batch, count_latency(ctx, st, batch, s_warmup, s_iters)));
    Json& by_batch = (*scaling)["count_latency_by_batch"];
    by_batch = Json::array();
    for (std::uint64_t b : batches)
      by_batch.push_back(latency_point(stride, b, count_latency(ctx, stride, b, s_warmup, s_iters)));
  }
  return f;
}

namespace {
using PointerAttributesFn = CUresult (*)(unsigned, CUpointer_attribute*, void**, CUdeviceptr);

/// Host time of each runtime or driver call a pop call makes or could make instead, one by one, in
/// batches of 32 calls (the GPU drained between batches, untimed), the kinds interleaved in rotating
/// order: where the time of a pop call goes, and what a graph-launched pop would pay.
struct Breakdown {
  std::vector<std::string> keys, whats;
  std::vector<Summary> calls;
  double median(std::string const& key) const {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return calls[i].median;
    return 0;
  }
};

Breakdown call_breakdown(Context& ctx, cudaStream_t stream, void* dst, int rounds) {
  constexpr int kBatch = 32;
  void* entry = nullptr;
  cudaDriverEntryPointQueryResult found{};
  PBM_BENCH_CUDA(cudaGetDriverEntryPointByVersion("cuPointerGetAttributes", &entry, 12000, cudaEnableDefault, &found));
  auto const pointer_attributes = reinterpret_cast<PointerAttributesFn>(entry);
  cudaEvent_t event = nullptr;
  PBM_BENCH_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  EmptyGraph graph;
  struct Kind {
    char const* key;
    char const* what;
  };
  static constexpr Kind kinds[] = {
      {"cudaGetDevice", "cudaGetDevice (every pbm call's DeviceGuard)"},
      {"cudaStreamGetId", "cudaStreamGetId (the key of pbm's per-thread stream cache)"},
      {"cudaStreamGetDevice", "cudaStreamGetDevice (the stream check before the cache)"},
      {"cudaStreamGetPriority", "cudaStreamGetPriority (the stream's class before the cache)"},
      {"cuPointerGetAttributes_5", "cuPointerGetAttributes of 5 attributes (pbm's destination check)"},
      {"cudaEventRecord", "cudaEventRecord alone (the completion's event)"},
      {"launch_empty", "empty_kernel<<<1, 32>>>"},
      {"launch_with_args", "cudaLaunchKernel of an empty kernel with 128 B of arguments in 4 parameters, <<<1, 256>>>"},
      {"launch_with_args_and_event", "the same + cudaEventRecord: what a pop call must do at least"},
      {"graph_launch", "cudaGraphLaunch of an instantiated graph of one such kernel node"},
      {"graph_set_params", "cudaGraphExecKernelNodeSetParams of that node, one argument changed (as per pop)"},
      {"graph_set_params_and_launch", "the same, then cudaGraphLaunch: what pbm's launch path does per call"},
  };
  constexpr int n = static_cast<int>(sizeof kinds / sizeof kinds[0]);
  std::vector<std::vector<double>> ns(n);
  int device = 0;
  int priority = 0;
  unsigned long long id = 0;
  unsigned int memory_type = 0, managed = 0;
  int ordinal = -1;
  CUdeviceptr start = 0;
  std::size_t size = 0;
  CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
                                 CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  void* data[] = {&memory_type, &managed, &ordinal, &start, &size};
  int const warmup = 5;
  for (int round = 0; round < warmup + rounds; ++round) {
    for (int k = 0; k < n; ++k) {
      int const v = (round + k) % n;
      std::int64_t t0[kBatch], t1[kBatch];
      for (int j = 0; j < kBatch; ++j) {
        t0[j] = now_ns();
        switch (v) {
          case 0: PBM_BENCH_CUDA(cudaGetDevice(&device)); break;
          case 1: PBM_BENCH_CUDA(cudaStreamGetId(stream, &id)); break;
          case 2: PBM_BENCH_CUDA(cudaStreamGetDevice(stream, &device)); break;
          case 3: PBM_BENCH_CUDA(cudaStreamGetPriority(stream, &priority)); break;
          case 4: pointer_attributes(5, attrs, data, reinterpret_cast<CUdeviceptr>(dst)); break;
          case 5: PBM_BENCH_CUDA(cudaEventRecord(event, stream)); break;
          case 6: launch_empty(stream); break;
          case 7: launch_empty_with_args(stream); break;
          case 8:
            launch_empty_with_args(stream);
            PBM_BENCH_CUDA(cudaEventRecord(event, stream));
            break;
          case 9: graph.launch(stream); break;
          case 10: graph.set_params(); break;
          default:
            graph.set_params();
            graph.launch(stream);
            break;
        }
        t1[j] = now_ns();
      }
      PBM_BENCH_LAUNCHED("breakdown");
      PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
      if (round >= warmup)
        for (int j = 0; j < kBatch; ++j) ns[static_cast<std::size_t>(v)].push_back(static_cast<double>(t1[j] - t0[j]));
    }
  }
  PBM_BENCH_CUDA(cudaEventDestroy(event));
  ctx.expect(memory_type == CU_MEMORYTYPE_DEVICE && size != 0, "call breakdown: the destination was not device memory");
  Breakdown b;
  for (int k = 0; k < n; ++k) {
    b.keys.emplace_back(kinds[k].key);
    b.whats.emplace_back(kinds[k].what);
    b.calls.push_back(summarise(ns[static_cast<std::size_t>(k)]));
  }
  return b;
}
}  // namespace

Json figure_call_cost(Context& ctx) {
  constexpr int kBatch = 32;  // calls timed back to back; the GPU drains between batches (untimed)
  constexpr std::uint32_t kStride = 64;
  constexpr std::uint64_t kPerPop = 8;
  int const warmup = ctx.pick(20, 50);
  int const rounds = ctx.pick(200, 2000);
  Stream stream(StreamClass::focus, ctx.device);
  Mailbox box(4096, kStride, ctx.device, "bench_call_cost");
  std::size_t const bytes = kBatch * kPerPop * kStride;
  DeviceBuffer src(bytes), dst(bytes);
  fill_records(src.get(), kBatch * kPerPop, kStride, 0, 1, stream);
  std::vector<cudaEvent_t> events(kBatch);  // like pbm's completions: no timing
  for (auto& e : events) PBM_BENCH_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));

  WaitPolicy const spin = spin_policy();
  std::array<std::vector<double>, 4> ns;  // pop call, empty launch, launch + event record, pop by kernel launch
  std::vector<PopHandle> handles;
  handles.reserve(kBatch);
  for (int round = 0; round < warmup + rounds; ++round) {
    for (int k = 0; k < 4; ++k) {
      int const v = (round + k + 1) % 4;  // rotating order, the empty launch first in round 0
      std::int64_t t0[kBatch], t1[kBatch];  // each call's start and end
      if (v == 0 || v == 3) {
        detail::set_kernel_launch_path(v == 3);
        std::uint64_t const pushed = box.push(src.get(), kBatch * kPerPop, stream).wait(spin);
        if (!ctx.expect(pushed == kBatch * kPerPop, "call cost: push came short: " + std::to_string(pushed))) return {};
        handles.clear();
        for (int j = 0; j < kBatch; ++j) {
          t0[j] = now_ns();
          PopHandle h = box.pop_bulk_async(dst.get<unsigned char>() + j * kPerPop * kStride, kPerPop, stream);
          t1[j] = now_ns();
          handles.push_back(std::move(h));
        }
        detail::set_kernel_launch_path(false);
        std::uint64_t popped = 0;
        for (PopHandle const& h : handles) popped += h.wait(spin);
        if (!ctx.expect(popped == kBatch * kPerPop, "call cost: popped " + std::to_string(popped) + " records, expected " +
                                                        std::to_string(kBatch * kPerPop)))
          return {};
      } else {
        for (int j = 0; j < kBatch; ++j) {
          t0[j] = now_ns();
          launch_empty(stream);
          if (v == 2) PBM_BENCH_CUDA(cudaEventRecord(events[j], stream));
          t1[j] = now_ns();
        }
        PBM_BENCH_LAUNCHED("empty_kernel");
        PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
      }
      // Each call alone: t1 - t0 includes nothing but the call (and a clock read).
      if (round >= warmup)
        for (int j = 0; j < kBatch; ++j) ns[static_cast<std::size_t>(v)].push_back(static_cast<double>(t1[j] - t0[j]));
    }
  }
  for (auto& e : events) PBM_BENCH_CUDA(cudaEventDestroy(e));
  // Clock overhead, to read the numbers against.
  std::vector<double> clock;
  for (int i = 0; i < 10000; ++i) {
    std::int64_t const a = now_ns();
    std::int64_t const b = now_ns();
    clock.push_back(static_cast<double>(b - a));
  }
  Summary const pop = summarise(ns[0]), empty = summarise(ns[1]), launch_event = summarise(ns[2]),
                pop_direct = summarise(ns[3]);
  Summary const clk = summarise(clock);
  Breakdown const breakdown = call_breakdown(ctx, stream, dst.get(), ctx.pick(100, 400));

  Json f = Json::object();
  f["id"] = "2";
  f["title"] = "Host cost of an async pop call (no wait) vs an empty kernel launch";
  f["method"] =
      "host steady_clock around each call alone, batches of 32 calls back to back (GPU drained between batches, "
      "untimed), variants' batches interleaved; every pop batch checked: 32 x 8 records popped";
  Json& p = f["params"];
  p["calls_per_batch"] = kBatch;
  p["records_per_pop"] = kPerPop;
  p["record_bytes"] = kStride;
  p["rounds"] = rounds;
  p["warmup_rounds"] = warmup;
  p["clock_read_pair_ns_median"] = clk.median;
  Json& s = f["series"];
  s["pop_bulk_async"] = to_json(pop, "ns");
  s["pop_bulk_async"]["what"] = "Mailbox::pop_bulk_async(dst, 8, stream): checks, one launch, one event record";
  s["empty_launch"] = to_json(empty, "ns");
  s["empty_launch"]["what"] = "empty_kernel<<<1, 32, 0, stream>>>()";
  s["launch_and_event"] = to_json(launch_event, "ns");
  s["launch_and_event"]["what"] = "empty_kernel<<<1, 32, 0, stream>>>() + cudaEventRecord (no timing)";
  s["pop_bulk_async_kernel_launch"] = to_json(pop_direct, "ns");
  s["pop_bulk_async_kernel_launch"]["what"] =
      "pop_bulk_async launching its kernel with cudaLaunchKernel + cudaEventRecord instead of its graph";
  double const ratio = pop.median / empty.median;
  Json& q = f["ratios"];
  q["pop_over_empty_launch_median"] = ratio;
  q["pop_over_launch_and_event_median"] = pop.median / launch_event.median;
  Json& b = f["breakdown"];
  b = Json::object();
  for (std::size_t i = 0; i < breakdown.keys.size(); ++i) {
    b[breakdown.keys[i]] = to_json(breakdown.calls[i], "ns");
    b[breakdown.keys[i]]["what"] = breakdown.whats[i];
  }
  double const with_args_event = breakdown.median("launch_with_args_and_event");
  double const graph_launch = breakdown.median("graph_launch");
  // (f["breakdown"] may have moved f's members: no reference taken before it is used after it.)
  f["ratios"]["pop_over_launch_with_args_and_event_median"] = pop.median / with_args_event;
  f["ratios"]["launch_with_args_and_event_over_empty_launch_median"] = with_args_event / empty.median;
  f["ratios"]["pop_over_graph_launch_median"] = pop.median / graph_launch;
  Json const g = goal("pop_bulk_async within 1.10x of an empty launch (median)", ratio, "<=", 1.10);
  f["goals"].push_back(g);
  Json& t = f["table"];
  t.push_back(row("pop_bulk_async call, median", pop.median, "ns", "empty kernel launch", empty.median, ratio,
                  "pbm/launch", g));
  t.push_back(row("pop_bulk_async call, median", pop.median, "ns", "launch + cudaEventRecord", launch_event.median,
                  pop.median / launch_event.median, "pbm/(launch+event)"));
  t.push_back(row("pop_bulk_async call, p99", pop.p99, "ns", "empty kernel launch p99", empty.p99,
                  pop.p99 / empty.p99, "pbm/launch"));
  t.push_back(row("pop_bulk_async call, median", pop.median, "ns", "launch with 128 B args + event record",
                  with_args_event, pop.median / with_args_event, "pbm/(launch+args+event)"));
  t.push_back(row("pop_bulk_async call, median", pop.median, "ns", "cudaGraphLaunch of one kernel node", graph_launch,
                  pop.median / graph_launch, "pbm/graph launch"));
  t.push_back(row("pop_bulk_async call, median", pop.median, "ns", "the same by cudaLaunchKernel + event record",
                  pop_direct.median, pop.median / pop_direct.median, "pbm/kernel-launch pbm"));
  for (std::size_t i = 0; i < breakdown.keys.size(); ++i)
    t.push_back(row("  call: " + breakdown.keys[i], breakdown.calls[i].median, "ns", "empty kernel launch", empty.median,
                    breakdown.calls[i].median / empty.median, "call/launch"));
  return f;
}

}  // namespace pbm::bench
