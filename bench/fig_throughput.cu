// Figures 3 and 4: how fast records go into the mailbox from device code, and out of it in bulk.
//
// 3. Device-side push throughput, full grid (every SM at full occupancy, grid-stride loop):
//      warp_push   pbm::warp_push: one reservation per warp
//      block_push  pbm::block_push: one reservation per block (256 threads)
//      try_push    pbm::try_push: one reservation per thread
//      plain       the same records written straight to an array by the same grid: the device's
//                  write bandwidth for this access pattern (records/s and bytes/s), measured in the
//                  same run; cudaMemsetAsync of the same bytes is shown too.
//    The mailbox holds every record of a launch (no drops); after each timed launch it is drained
//    (untimed) and every record is checked: count, pattern, each id exactly once, drops == 0.
// 4. Bulk pop bandwidth: pop_bulk_async of >= 64 MiB into device memory vs cudaMemcpyAsync device
//    to device of the same bytes, interleaved; every pop checked (count and bytes).
// GPU durations from CUDA events; a gate kernel holds the stream while the host enqueues, so the
// events time the GPU's work only.
#include "figures.hpp"
#include "kernels.cuh"

#include <pbm/device.cuh>
#include <pbm/mailbox.hpp>
#include <pbm/stream.hpp>

#include <array>
#include <string>
#include <vector>

namespace pbm::bench {
namespace {

constexpr unsigned kThreads = 256;

// ------------------------------------------------------------------------------ kernels

/// pbm::warp_push, and warp_push_before below: the kernels are templates over the two.
struct WarpPush {
  __device__ bool operator()(MailboxRef box, void const* rec, bool active) const {
    return pbm::warp_push(box, rec, active);
  }
};

// Whole warps loop together (i - lane is warp-uniform): warp_push needs the warp's lanes to call
// it together; lanes past n take part without pushing.
template <class Push>
__global__ void push_warp_kernel(MailboxRef box, std::uint64_t n, unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned const lane = threadIdx.x % 32;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i - lane < n; i += step) {
    bool const active = i < n;
    Record64 const r = make_record(i);
    if (!Push{}(box, &r, active) && active) atomicAdd(fails, 1ull);
  }
}

// pbm::warp_push as it was before 2026-12-06: the reservation loads the free count before its
// atomics (detail::take_slots, not optimistic). Measured beside warp_push.
__device__ inline bool warp_push_before(MailboxRef ref, void const* rec, bool active) {
  namespace cg = cooperative_groups;
  cg::coalesced_group const g = cg::coalesced_threads();
  unsigned const want = g.ballot(active);
  if (want == 0) return false;
  unsigned const rank = __popc(want & ((1u << g.thread_rank()) - 1u));
  unsigned const leader = __ffs(want) - 1;
  unsigned long long base = 0, granted = 0;
  if (g.thread_rank() == leader) {
    std::uint64_t b = 0;
    granted = pbm::detail::reserve(ref.view(), __popc(want), &b, /*optimistic=*/false);
    base = b;
  }
  granted = g.shfl(granted, leader);
  base = g.shfl(base, leader);
  g.sync();
  bool const in = active && rank < granted;
  if (in) {
    pbm::detail::RingView const v = ref.view();
    pbm::detail::copy_record(v.record(v.slot_of(base + rank)), static_cast<unsigned char const*>(rec), v.stride);
    pbm::detail::commit(v, base + rank);
  }
  return in;
}

struct WarpPushBefore {
  __device__ bool operator()(MailboxRef box, void const* rec, bool active) const {
    return warp_push_before(box, rec, active);
  }
};

// Whole blocks loop together (i - threadIdx.x is block-uniform): block_push needs every thread of
// the block to call it; threads past n take part without pushing.
__global__ void push_block_kernel(MailboxRef box, std::uint64_t n, unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i - threadIdx.x < n;
       i += step) {
    bool const active = i < n;
    Record64 const r = make_record(i);
    if (!pbm::block_push(box, &r, active) && active) atomicAdd(fails, 1ull);
  }
}

__global__ void push_thread_kernel(MailboxRef box, std::uint64_t n, unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += step) {
    Record64 const r = make_record(i);
    if (!pbm::try_push(box, &r)) atomicAdd(fails, 1ull);
  }
}

__global__ void plain_write_kernel(Record64* out, std::uint64_t n) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    out[i] = make_record(i);
}

// Scaling over record sizes: every thread pushes (or writes) a copy of one template record held in
// device memory, with the same per-thread copy pbm uses, so only the ring's work differs.
template <class Push>
__global__ void push_warp_template_kernel(MailboxRef box, unsigned char const* tpl, std::uint64_t n,
                                          unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned const lane = threadIdx.x % 32;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i - lane < n; i += step) {
    bool const active = i < n;
    if (!Push{}(box, tpl, active) && active) atomicAdd(fails, 1ull);
  }
}

__global__ void push_block_template_kernel(MailboxRef box, unsigned char const* tpl, std::uint64_t n,
                                           unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i - threadIdx.x < n;
       i += step) {
    bool const active = i < n;
    if (!pbm::block_push(box, tpl, active) && active) atomicAdd(fails, 1ull);
  }
}

__global__ void push_thread_template_kernel(MailboxRef box, unsigned char const* tpl, std::uint64_t n,
                                            unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    if (!pbm::try_push(box, tpl)) atomicAdd(fails, 1ull);
}

__global__ void plain_copy_template_kernel(unsigned char* out, unsigned char const* tpl, std::uint32_t stride,
                                           std::uint64_t n) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    pbm::detail::copy_record(out + i * stride, tpl, stride);
}

template <class Kernel>
unsigned full_grid(Context const& ctx, Kernel kernel) {
  int per_sm = 0;
  PBM_BENCH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0));
  return static_cast<unsigned>(std::max(per_sm, 1) * ctx.sms);
}

/// Halves `n` until `bytes_per(n)` fits in 80% of the free device memory.
template <class F>
std::uint64_t fit_in_memory(std::uint64_t n, F bytes_per, Json* note) {
  std::size_t free_bytes = 0, total = 0;
  PBM_BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total));
  std::uint64_t const wanted = n;
  while (n > 1024 && static_cast<double>(bytes_per(n)) > 0.8 * static_cast<double>(free_bytes)) n /= 2;
  if (n != wanted && note != nullptr)
    (*note)["memory_note"] = "records reduced from " + std::to_string(wanted) + " to " + std::to_string(n) +
                             " to fit the free device memory";
  return n;
}

CheckCounters read_counters(DeviceBuffer const& counters, cudaStream_t stream) {
  CheckCounters c{};
  PBM_BENCH_CUDA(cudaMemcpyAsync(&c, counters.get(), sizeof c, cudaMemcpyDeviceToHost, stream));
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
  return c;
}

// ------------------------------------------------------------------------------ figure 3

enum PushVariant { kPlain = 0, kWarp = 1, kThread = 2, kMemset = 3, kBlock = 4, kWarpBefore = 5, kPushVariants = 6 };
char const* const kPushNames[kPushVariants] = {"plain_write", "warp_push", "try_push",
                                               "memset",      "block_push", "warp_push_2026_11_25"};

bool is_push(int v) { return v == kWarp || v == kThread || v == kBlock || v == kWarpBefore; }

struct PushRun {
  std::array<Summary, kPushVariants> ms;  // per launch
  std::uint64_t records = 0;
  std::uint32_t stride = 0;
  std::uint64_t verified = 0;
  std::uint64_t drops = 0;
  bool ok = true;
};

/// One figure-3 measurement: `n` records of `stride` bytes per launch. stride 64 with
/// `from_registers` uses Record64 built in registers (ids checked one by one); otherwise a template
/// record in device memory (every record compared with it).
PushRun push_throughput(Context& ctx, std::uint32_t stride, std::uint64_t n, int warmup, int reps, bool from_registers,
                        Json* note) {
  std::string const where = "push throughput (" + bytes_label(stride) + ")";
  n = fit_in_memory(n, [&](std::uint64_t k) { return (k + 65536) * (stride + 8ull) + k * stride + k * 4; }, note);
  PushRun run;
  run.records = n;
  run.stride = stride;
  Stream stream(StreamClass::focus, ctx.device);
  // Room for every record of a launch, plus a margin that keeps producers on the ring's fast path.
  Mailbox box(n + 65536, stride, ctx.device, "bench_push");
  std::size_t const bytes = static_cast<std::size_t>(n) * stride;
  DeviceBuffer dst(bytes), tpl(stride), seen(from_registers ? n * sizeof(unsigned) : 0);
  DeviceBuffer fails(sizeof(unsigned long long)), counters(sizeof(CheckCounters));
  constexpr std::uint64_t kTemplateId = 7;
  fill_records(tpl.get(), 1, stride, kTemplateId, 0, stream);
  PBM_BENCH_CUDA(cudaMemsetAsync(counters.get(), 0, sizeof(CheckCounters), stream));
  unsigned grid[kPushVariants] = {};
  grid[kPlain] = from_registers ? full_grid(ctx, plain_write_kernel) : full_grid(ctx, plain_copy_template_kernel);
  grid[kWarp] = from_registers ? full_grid(ctx, push_warp_kernel<WarpPush>)
                               : full_grid(ctx, push_warp_template_kernel<WarpPush>);
  grid[kThread] = from_registers ? full_grid(ctx, push_thread_kernel) : full_grid(ctx, push_thread_template_kernel);
  grid[kBlock] = from_registers ? full_grid(ctx, push_block_kernel) : full_grid(ctx, push_block_template_kernel);
  grid[kWarpBefore] = from_registers ? full_grid(ctx, push_warp_kernel<WarpPushBefore>)
                                  : full_grid(ctx, push_warp_template_kernel<WarpPushBefore>);
  Gate gate;
  TimingEvent start, stop;
  WaitPolicy const spin = spin_policy();
  std::array<std::vector<double>, kPushVariants> ms;
  std::uint64_t dropped_before = 0;
  std::uint64_t expected_records = 0;

  // The check after each launch: dst holds n records (pushed then popped, or written); every one
  // must match. Untimed.
  auto verify = [&](char const* what) {
    if (from_registers) {
      PBM_BENCH_CUDA(cudaMemsetAsync(seen.get(), 0, n * sizeof(unsigned), stream));
      verify_unique(dst.get(), nullptr, n, stride, n, seen.get<unsigned>(), counters.get<CheckCounters>(), stream);
    } else {
      verify_records(dst.get(), n, stride, kTemplateId, 0, counters.get<CheckCounters>(), stream);
    }
    expected_records += n;
    CheckCounters const c = read_counters(counters, stream);
    bool const good = c.bad_words == 0 && c.duplicates == 0 && c.out_of_range == 0 && c.records == expected_records;
    ctx.expect(good, where + ", " + what + ": records do not check out (bad words " + std::to_string(c.bad_words) +
                         ", duplicate ids " + std::to_string(c.duplicates) + ", ids out of range " +
                         std::to_string(c.out_of_range) + ", records " + std::to_string(c.records) + " of " +
                         std::to_string(expected_records) + ")");
    return good;
  };

  for (int rep = 0; rep < warmup + reps && run.ok; ++rep) {
    for (int k = 0; k < kPushVariants; ++k) {
      int const v = (rep + k) % kPushVariants;  // rotating order, the plain write first in rep 0
      if (is_push(v)) PBM_BENCH_CUDA(cudaMemsetAsync(fails.get(), 0, sizeof(unsigned long long), stream));
      gate.close(stream);
      start.record(stream);
      switch (v) {
        case kPlain:
          if (from_registers)
            plain_write_kernel<<<grid[kPlain], kThreads, 0, stream>>>(dst.get<Record64>(), n);
          else
            plain_copy_template_kernel<<<grid[kPlain], kThreads, 0, stream>>>(dst.get<unsigned char>(),
                                                                              tpl.get<unsigned char>(), stride, n);
          break;
        case kWarp:
          if (from_registers)
            push_warp_kernel<WarpPush><<<grid[kWarp], kThreads, 0, stream>>>(box.ref(), n,
                                                                            fails.get<unsigned long long>());
          else
            push_warp_template_kernel<WarpPush><<<grid[kWarp], kThreads, 0, stream>>>(
                box.ref(), tpl.get<unsigned char>(), n, fails.get<unsigned long long>());
          break;
        case kThread:
          if (from_registers)
            push_thread_kernel<<<grid[kThread], kThreads, 0, stream>>>(box.ref(), n, fails.get<unsigned long long>());
          else
            push_thread_template_kernel<<<grid[kThread], kThreads, 0, stream>>>(box.ref(), tpl.get<unsigned char>(), n,
                                                                                fails.get<unsigned long long>());
          break;
        case kBlock:
          if (from_registers)
            push_block_kernel<<<grid[kBlock], kThreads, 0, stream>>>(box.ref(), n, fails.get<unsigned long long>());
          else
            push_block_template_kernel<<<grid[kBlock], kThreads, 0, stream>>>(box.ref(), tpl.get<unsigned char>(), n,
                                                                              fails.get<unsigned long long>());
          break;
        case kWarpBefore:
          if (from_registers)
            push_warp_kernel<WarpPushBefore><<<grid[kWarpBefore], kThreads, 0, stream>>>(box.ref(), n,
                                                                                fails.get<unsigned long long>());
          else
            push_warp_template_kernel<WarpPushBefore><<<grid[kWarpBefore], kThreads, 0, stream>>>(
                box.ref(), tpl.get<unsigned char>(), n, fails.get<unsigned long long>());
          break;
        default:
          PBM_BENCH_CUDA(cudaMemsetAsync(dst.get(), 0x5A, bytes, stream));
      }
      stop.record(stream);
      gate.open();
      PBM_BENCH_LAUNCHED("figure 3 kernel");
      double const t = elapsed_ms(start, stop);
      bool good = true;
      if (is_push(v)) {
        // Drain (untimed) into a cleared dst, then check: all n came out, none dropped, each once.
        unsigned long long failed = 0;
        PBM_BENCH_CUDA(cudaMemcpyAsync(&failed, fails.get(), sizeof failed, cudaMemcpyDeviceToHost, stream));
        PBM_BENCH_CUDA(cudaMemsetAsync(dst.get(), 0, bytes, stream));
        std::uint64_t const popped = box.pop_bulk_async(dst.get(), n, stream).wait(spin);
        Stats const s = box.stats();
        std::uint64_t const dropped = s.dropped - dropped_before;
        dropped_before = s.dropped;
        run.drops += dropped;
        good = ctx.expect(failed == 0 && dropped == 0,
                          where + ", " + kPushNames[v] + ": " + std::to_string(failed) + " pushes failed, " +
                              std::to_string(dropped) + " records dropped: not timed") &&
               ctx.expect(popped == n, where + ", " + kPushNames[v] + ": popped " + std::to_string(popped) +
                                           " records after pushing " + std::to_string(n));
        good = good && verify(kPushNames[v]);
        if (good) run.verified += n;
      } else if (v == kPlain && (rep == 0 || rep == warmup + reps - 1)) {
        good = verify("plain write");  // first and last: the reference wrote real records too
      }
      if (!good) {
        run.ok = false;
        break;
      }
      if (rep >= warmup) ms[v].push_back(t);
    }
  }
  for (int v = 0; v < kPushVariants; ++v) run.ms[v] = summarise(ms[v]);
  return run;
}

Json push_point(PushRun const& r) {
  Json j = Json::object();
  j["record_bytes"] = r.stride;
  j["records_per_launch"] = r.records;
  for (int v = 0; v < kPushVariants; ++v) {
    double const s = r.ms[v].median / 1e3;
    Json& x = j[kPushNames[v]];
    x["median_ms"] = r.ms[v].median;
    x["p99_ms"] = r.ms[v].p99;
    x["records_per_s"] = static_cast<double>(r.records) / s;
    x["gb_per_s"] = static_cast<double>(r.records) * r.stride / s / 1e9;
  }
  double const plain = r.ms[kPlain].median;
  j["warp_push_pct_of_plain"] = 100.0 * plain / r.ms[kWarp].median;
  j["try_push_pct_of_plain"] = 100.0 * plain / r.ms[kThread].median;
  j["block_push_pct_of_plain"] = 100.0 * plain / r.ms[kBlock].median;
  j["warp_push_2026_11_25_pct_of_plain"] = 100.0 * plain / r.ms[kWarpBefore].median;
  j["drops"] = r.drops;
  j["valid"] = r.ok;
  return j;
}

// ------------------------------------------------------------------------------ figure 4

struct PopRun {
  Summary pbm_ms, memcpy_ms;
  std::uint64_t bytes = 0, records = 0, batch = 0;
  std::uint32_t stride = 0;
  bool gated = true;
  bool ok = true;
};

/// One figure-4 measurement: `n` records of `stride` bytes popped in calls of `batch` records (all
/// on one stream, back to back), vs cudaMemcpyAsync of the same bytes in the same chunks.
PopRun pop_bandwidth(Context& ctx, std::uint32_t stride, std::uint64_t n, std::uint64_t batch, int warmup, int reps) {
  std::string const where = "pop bandwidth (" + bytes_label(stride) + ", batch " + std::to_string(batch) + ")";
  PopRun run;
  run.records = n;
  run.stride = stride;
  run.batch = batch;
  run.bytes = n * stride;
  std::uint64_t const calls = (n + batch - 1) / batch;
  run.gated = calls <= 64;  // more would risk filling the launch queue behind a closed gate
  Stream stream(StreamClass::focus, ctx.device);
  Mailbox box(n, stride, ctx.device, "bench_pop");
  std::size_t const bytes = static_cast<std::size_t>(run.bytes);
  DeviceBuffer src(bytes), dst(bytes), copy_dst(bytes), counters(sizeof(CheckCounters));
  fill_records(src.get(), n, stride, 0, 1, stream);
  PBM_BENCH_CUDA(cudaMemsetAsync(counters.get(), 0, sizeof(CheckCounters), stream));
  PBM_BENCH_CUDA(cudaStreamSynchronize(stream));
  Gate gate;
  TimingEvent start, stop;
  WaitPolicy const spin = spin_policy();
  std::vector<PopHandle> handles;
  handles.reserve(calls);
  std::vector<double> pbm_ms, memcpy_ms;
  std::uint64_t expected_records = 0;
  auto* const d = dst.get<unsigned char>();
  auto* const c = copy_dst.get<unsigned char>();
  auto const* const s = src.get<unsigned char>();

  for (int rep = 0; rep < warmup + reps && run.ok; ++rep) {
    for (int k = 0; k < 2; ++k) {
      bool const is_pbm = (rep + k) % 2 == 1;  // the rival first in rep 0
      unsigned char* out = is_pbm ? d : c;
      PBM_BENCH_CUDA(cudaMemsetAsync(out, 0, bytes, stream));
      if (is_pbm) {
        std::uint64_t const pushed = box.push(src.get(), n, stream).wait(spin);  // untimed fill
        if (!ctx.expect(pushed == n, where + ": pushed " + std::to_string(pushed) + " of " + std::to_string(n))) {
          run.ok = false;
          break;
        }
      }
      handles.clear();  // before the start event: releasing handles is host work
      if (run.gated) gate.close(stream);
      start.record(stream);
      for (std::uint64_t i = 0; i < calls; ++i) {
        std::uint64_t const first = i * batch;
        std::uint64_t const count = std::min(batch, n - first);
        if (is_pbm)
          handles.push_back(box.pop_bulk_async(out + first * stride, count, stream));
        else
          PBM_BENCH_CUDA(cudaMemcpyAsync(out + first * stride, s + first * stride, count * stride,
                                         cudaMemcpyDeviceToDevice, stream));
      }
      stop.record(stream);
      if (run.gated) gate.open();
      double const t = elapsed_ms(start, stop);
      if (is_pbm) {
        std::uint64_t popped = 0;
        for (PopHandle const& h : handles) popped += h.wait(spin);
        if (!ctx.expect(popped == n, where + ": popped " + std::to_string(popped) + " of " + std::to_string(n))) {
          run.ok = false;
          break;
        }
      }
      verify_records(out, n, stride, 0, 1, counters.get<CheckCounters>(), stream);
      expected_records += n;
      if (rep >= warmup) (is_pbm ? pbm_ms : memcpy_ms).push_back(t);
    }
  }
  CheckCounters const cc = read_counters(counters, stream);
  run.ok = ctx.expect(run.ok && cc.bad_words == 0 && cc.records == expected_records,
                      where + ": " + std::to_string(cc.bad_words) + " words differ from the records pushed (" +
                          std::to_string(cc.records) + " of " + std::to_string(expected_records) + " records checked)");
  ctx.expect(box.stats().dropped == 0, where + ": records dropped");
  run.pbm_ms = summarise(pbm_ms);
  run.memcpy_ms = summarise(memcpy_ms);
  return run;
}

Json pop_point(PopRun const& r) {
  Json j = Json::object();
  j["record_bytes"] = r.stride;
  j["records"] = r.records;
  j["bytes"] = r.bytes;
  j["batch_records"] = r.batch;
  j["gated"] = r.gated;
  double const pbm_gbs = static_cast<double>(r.bytes) / (r.pbm_ms.median / 1e3) / 1e9;
  double const copy_gbs = static_cast<double>(r.bytes) / (r.memcpy_ms.median / 1e3) / 1e9;
  j["pbm"] = to_json(r.pbm_ms, "ms");
  j["pbm"]["gb_per_s"] = pbm_gbs;
  j["memcpy"] = to_json(r.memcpy_ms, "ms");
  j["memcpy"]["gb_per_s"] = copy_gbs;
  j["pct_of_memcpy"] = 100.0 * pbm_gbs / copy_gbs;
  j["valid"] = r.ok;
  return j;
}

}  // namespace

Json figure_push_throughput(Context& ctx, Json* scaling) {
  Json f = Json::object();
  std::uint64_t const n = ctx.pick<std::uint64_t>(1ull << 23, 1ull << 25);
  int const warmup = 1;
  int const reps = ctx.pick(5, 15);
  PushRun const r = push_throughput(ctx, 64, n, warmup, reps, /*from_registers=*/true, &f);
  auto rate = [&](int v) { return static_cast<double>(r.records) / (r.ms[v].median / 1e3); };
  double const plain_rate = rate(kPlain), warp_rate = rate(kWarp), thread_rate = rate(kThread),
               block_rate = rate(kBlock);
  double const plain_gbs = plain_rate * 64 / 1e9;

  f["id"] = "3";
  f["title"] = "Device-side push throughput, 64 B records, full grid";
  f["method"] =
      "CUDA events around one launch (gate kernel holds the stream while enqueuing); grid = SMs x max resident "
      "blocks of 256 threads, grid-stride loop; variants (warp_push, block_push, try_push, plain write, memset) "
      "interleaved per rep; after each push launch the mailbox is "
      "drained (untimed) and every record checked (count, pattern, each id once, no drops)";
  Json& p = f["params"];
  p["record_bytes"] = 64;
  p["records_per_launch"] = r.records;
  p["warmup_reps"] = warmup;
  p["reps"] = reps;
  p["verified_records"] = r.verified;
  p["drops"] = r.drops;
  p["sms"] = ctx.sms;
  Json& s = f["series"];
  char const* const what[kPushVariants] = {
      "the same records written straight to an array by the same grid (device write bandwidth reference)",
      "pbm::warp_push: one reservation per warp", "pbm::try_push: one reservation per thread",
      "cudaMemsetAsync of the same bytes", "pbm::block_push: one reservation per block of 256 threads",
      "warp_push as before 2026-12-06: the reservation loads free_slots before its atomics"};
  for (int v = 0; v < kPushVariants; ++v) {
    s[kPushNames[v]] = to_json(r.ms[v], "ms");
    s[kPushNames[v]]["records_per_s"] = rate(v);
    s[kPushNames[v]]["gb_per_s"] = rate(v) * 64 / 1e9;
    s[kPushNames[v]]["what"] = what[v];
  }
  Json& q = f["ratios"];
  q["warp_push_pct_of_plain_write"] = 100.0 * warp_rate / plain_rate;
  q["try_push_pct_of_plain_write"] = 100.0 * thread_rate / plain_rate;
  q["block_push_pct_of_plain_write"] = 100.0 * block_rate / plain_rate;
  q["warp_push_over_try_push"] = warp_rate / thread_rate;
  q["block_push_over_warp_push"] = block_rate / warp_rate;
  q["plain_write_gb_per_s"] = plain_gbs;
  double const warp_before_rate = rate(kWarpBefore);
  q["warp_push_2026_11_25_pct_of_plain_write"] = 100.0 * warp_before_rate / plain_rate;
  Json const g = goal("warp_push >= 70% of the plain write's rate", 100.0 * warp_rate / plain_rate, ">=", 70.0);
  f["goals"].push_back(g);
  Json const gb = goal("block_push >= 10 G records/s", block_rate / 1e9, ">=", 10.0);
  f["goals"].push_back(gb);
  Json& t = f["table"];
  t.push_back(row("warp_push rate", warp_rate / 1e9, "G rec/s", "plain write (same bytes)", plain_rate / 1e9,
                  warp_rate / plain_rate, "pbm/plain", g));
  t.push_back(row("warp_push as of 2026-11-25", warp_before_rate / 1e9, "G rec/s", "plain write (same bytes)",
                  plain_rate / 1e9, warp_before_rate / plain_rate, "pbm/plain"));
  t.push_back(row("block_push rate", block_rate / 1e9, "G rec/s", "plain write (same bytes)", plain_rate / 1e9,
                  block_rate / plain_rate, "pbm/plain", gb));
  t.push_back(row("try_push rate", thread_rate / 1e9, "G rec/s", "plain write (same bytes)", plain_rate / 1e9,
                  thread_rate / plain_rate, "pbm/plain"));
  t.push_back(row("warp_push rate", warp_rate / 1e9, "G rec/s", "try_push", thread_rate / 1e9,
                  warp_rate / thread_rate, "warp/thread"));
  t.push_back(row("block_push rate", block_rate / 1e9, "G rec/s", "warp_push", warp_rate / 1e9,
                  block_rate / warp_rate, "block/warp"));
  t.push_back(row("plain write bandwidth", plain_gbs, "GB/s", "cudaMemsetAsync", rate(kMemset) * 64 / 1e9,
                  plain_rate / rate(kMemset), "plain/memset"));

  if (scaling != nullptr) {
    std::vector<std::uint32_t> const strides =
        ctx.quick() ? std::vector<std::uint32_t>{16, 64, 256, 1024, 4096}
                    : std::vector<std::uint32_t>{16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    std::uint64_t const total_bytes = ctx.pick<std::uint64_t>(256ull << 20, 1ull << 30);
    Json& by_size = (*scaling)["push_throughput_by_record_size"];
    by_size = Json::array();
    for (std::uint32_t st : strides) {
      Json note = Json::object();
      PushRun const pr = push_throughput(ctx, st, total_bytes / st, 1, ctx.pick(3, 7), false, &note);
      Json point = push_point(pr);
      if (note.size() > 0) point["memory_note"] = note["memory_note"];
      by_size.push_back(point);
    }
  }
  return f;
}

Json figure_pop_bandwidth(Context& ctx, Json* scaling) {
  std::uint32_t const stride = 64;
  // The goal holds at 64 MiB and at 256 MiB (quick mode: 64 MiB only).
  std::vector<std::uint64_t> const sizes =
      ctx.quick() ? std::vector<std::uint64_t>{64ull << 20} : std::vector<std::uint64_t>{64ull << 20, 256ull << 20};
  int const warmup = 2;
  int const reps = ctx.pick(10, 30);

  Json f = Json::object();
  f["id"] = "4";
  f["title"] = "Bulk pop bandwidth (" + bytes_label(sizes.back()) +
               (sizes.size() > 1 ? " and " + bytes_label(sizes.front()) : std::string()) +
               " of 64 B records in one pop) vs cudaMemcpyAsync D2D";
  f["method"] =
      "CUDA events around the pop (gate kernel holds the stream while enqueuing); untimed refill by a host push before "
      "each pop; pop and memcpy interleaved; every pop's count and bytes checked; GB/s = bytes copied / time";
  // Every member first: adding one to f may move the others, so references are taken afterwards.
  f["params"] = Json::object();
  f["series"] = Json::object();
  f["ratios"] = Json::object();
  f["goals"] = Json::array();
  f["table"] = Json::array();
  Json& p = f["params"];
  p["record_bytes"] = stride;
  p["warmup_reps"] = warmup;
  p["reps"] = reps;
  Json& s = f["series"];
  Json& t = f["table"];
  for (std::size_t i = sizes.size(); i-- > 0;) {  // the largest first: "pbm" and "memcpy" are its series
    std::uint64_t const bytes = sizes[i];
    std::uint64_t const n = bytes / stride;
    PopRun const r = pop_bandwidth(ctx, stride, n, n, warmup, reps);
    double const pbm_gbs = static_cast<double>(r.bytes) / (r.pbm_ms.median / 1e3) / 1e9;
    double const copy_gbs = static_cast<double>(r.bytes) / (r.memcpy_ms.median / 1e3) / 1e9;
    std::string const label = bytes_label(bytes);
    std::string const suffix = i + 1 == sizes.size() ? "" : "_" + label;
    if (suffix.empty()) {
      p["records"] = n;
      p["bytes"] = bytes;
    }
    p["sizes_bytes"].push_back(bytes);
    s["pbm" + suffix] = to_json(r.pbm_ms, "ms");
    s["pbm" + suffix]["gb_per_s"] = pbm_gbs;
    s["pbm" + suffix]["what"] = "Mailbox::pop_bulk_async(dst, n, stream) into device memory, " + label;
    s["memcpy" + suffix] = to_json(r.memcpy_ms, "ms");
    s["memcpy" + suffix]["gb_per_s"] = copy_gbs;
    s["memcpy" + suffix]["what"] = "cudaMemcpyAsync device to device of the same bytes, " + label;
    double const ratio = pbm_gbs / copy_gbs;
    f["ratios"]["pbm_pct_of_memcpy" + suffix] = 100.0 * ratio;
    Json const g = goal("pop bandwidth >= 90% of cudaMemcpyAsync D2D at " + label, 100.0 * ratio, ">=", 90.0);
    f["goals"].push_back(g);
    t.push_back(row("pop_bulk_async bandwidth, " + label, pbm_gbs, "GB/s", "cudaMemcpyAsync D2D", copy_gbs, ratio,
                    "pbm/memcpy", g));
    t.push_back(row("pop_bulk_async time, median, " + label, r.pbm_ms.median * 1e3, "us", "cudaMemcpyAsync D2D",
                    r.memcpy_ms.median * 1e3, r.pbm_ms.median / r.memcpy_ms.median, "pbm/memcpy time"));
  }

  if (scaling != nullptr) {
    std::uint64_t const s_bytes = 64ull << 20;
    int const s_reps = ctx.pick(4, 10);
    std::vector<std::uint32_t> const strides =
        ctx.quick() ? std::vector<std::uint32_t>{16, 256, 1024, 4096}
                    : std::vector<std::uint32_t>{16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    Json& by_size = (*scaling)["pop_bandwidth_by_record_size"];
    by_size = Json::array();
    for (std::uint32_t st : strides) {
      std::uint64_t const records = s_bytes / st;
      by_size.push_back(pop_point(pop_bandwidth(ctx, st, records, records, 1, s_reps)));
    }
    std::uint64_t const records = s_bytes / stride;
    std::vector<std::uint64_t> const batches =
        ctx.quick() ? std::vector<std::uint64_t>{4096, 65536, records}
                    : std::vector<std::uint64_t>{1024, 4096, 16384, 65536, 262144, records};
    Json& by_batch = (*scaling)["pop_bandwidth_by_batch"];
    by_batch = Json::array();
    for (std::uint64_t b : batches) by_batch.push_back(pop_point(pop_bandwidth(ctx, stride, records, b, 1, s_reps)));
  }
  return f;
}

}  // namespace pbm::bench
