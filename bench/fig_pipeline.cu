// Figure 5: a producer/consumer pipeline on streams of two priority classes.
//
// Throughput: per round, a producer kernel on a focus stream and one on a peripheral stream each
// push P records of 64 B (pbm::warp_push); CUDA events hand the work to a consumer stream (never a
// host sync), which pops in bulk (pop_bulk_async, double-buffered destination) and consumes the
// records on the GPU: a kernel checks every record's pattern and that each id arrives once, reading
// the popped count on the device. The host waits for the previous round's count only. Host
// steady_clock over all rounds; records/s end to end. The rival is what a user would write without
// a mailbox: the producers write to fixed halves of a double-buffered staging array, the consumer
// checks it the same way, and events carry the handoff both ways (consumer done before producers
// reuse a buffer); the host paces on the previous round's consumer event.
//
// Focus latency: a busy kernel on a peripheral stream fills every SM with blocks for several waves;
// once it runs, a small producer (Q records) is launched on a focus stream, or on another peripheral
// stream; CUDA events on the producer's stream time launch to completion. The idle GPU gives the
// floor. Variants interleaved in rotating order.
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
constexpr std::uint32_t kStride = 64;

/// Pushes records first .. first + n - 1 (one warp_push reservation per warp).
__global__ void produce_kernel(MailboxRef box, std::uint64_t first, std::uint64_t n, unsigned long long* fails) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  unsigned const lane = threadIdx.x % 32;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i - lane < n; i += step) {
    bool const active = i < n;
    Record64 const r = make_record(first + i);
    if (!pbm::warp_push(box, &r, active) && active) atomicAdd(fails, 1ull);
  }
}

/// The rival's producer: the same records, written to a fixed place.
__global__ void produce_plain_kernel(Record64* out, std::uint64_t first, std::uint64_t n) {
  std::uint64_t const step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += step)
    out[i] = make_record(first + i);
}

unsigned grid_for(Context const& ctx, std::uint64_t records) {
  return static_cast<unsigned>(
      std::clamp<std::uint64_t>((records + kThreads - 1) / kThreads, 1, static_cast<std::uint64_t>(ctx.sms) * 4));
}

struct PipelineRun {
  double seconds = 0;
  std::uint64_t records = 0;
  bool ok = false;
};

/// One timed pipeline run of `rounds` rounds of 2 x `per` records; pbm or the staging-array rival.
PipelineRun pipeline_run(Context& ctx, bool use_pbm, std::uint64_t per, int rounds) {
  std::string const where = std::string("pipeline (") + (use_pbm ? "pbm" : "staging array") + ")";
  std::uint64_t const total = 2 * per * static_cast<std::uint64_t>(rounds);
  std::uint64_t const max_pop = 4 * per;  // a pop may catch up on records an earlier pop left
  Stream focus(StreamClass::focus, ctx.device), peripheral(StreamClass::peripheral, ctx.device),
      consumer(StreamClass::focus, ctx.device);
  Mailbox box(16 * per, kStride, ctx.device, "bench_pipeline");
  DeviceBuffer buf[2] = {DeviceBuffer(max_pop * kStride), DeviceBuffer(max_pop * kStride)};
  DeviceBuffer device_count[2] = {DeviceBuffer(sizeof(unsigned long long)), DeviceBuffer(sizeof(unsigned long long))};
  DeviceBuffer seen(total * sizeof(unsigned)), counters(sizeof(CheckCounters)), fails(sizeof(unsigned long long));
  PBM_BENCH_CUDA(cudaMemsetAsync(seen.get(), 0, total * sizeof(unsigned), consumer));
  PBM_BENCH_CUDA(cudaMemsetAsync(counters.get(), 0, sizeof(CheckCounters), consumer));
  PBM_BENCH_CUDA(cudaMemsetAsync(fails.get(), 0, sizeof(unsigned long long), consumer));
  PBM_BENCH_CUDA(cudaStreamSynchronize(consumer));
  Event focus_done, peripheral_done;
  std::array<cudaEvent_t, 2> consumed{};  // rival: the consumer is done with buffer i
  for (auto& e : consumed) PBM_BENCH_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  unsigned const grid = grid_for(ctx, per);
  WaitPolicy const spin = spin_policy();
  auto consume = [&](int b, bool device_side_count, std::uint64_t n) {
    verify_unique(buf[b].get(), device_side_count ? device_count[b].get<unsigned long long>() : nullptr, n, kStride,
                  total, seen.get<unsigned>(), counters.get<CheckCounters>(), consumer);
  };

  std::uint64_t popped = 0;
  PopHandle previous;
  std::int64_t const t0 = now_ns();
  for (int r = 0; r < rounds; ++r) {
    int const b = r % 2;
    std::uint64_t const first = 2 * per * static_cast<std::uint64_t>(r);
    if (use_pbm) {
      produce_kernel<<<grid, kThreads, 0, focus>>>(box.ref(), first, per, fails.get<unsigned long long>());
      produce_kernel<<<grid, kThreads, 0, peripheral>>>(box.ref(), first + per, per, fails.get<unsigned long long>());
      PBM_BENCH_LAUNCHED("produce_kernel");
      handoff(focus_done, focus, consumer);  // events, never a host sync
      handoff(peripheral_done, peripheral, consumer);
      PopHandle current = box.pop_bulk_async(buf[b].get(), max_pop, consumer, device_count[b].get<unsigned long long>());
      consume(b, true, max_pop);
      if (previous.valid()) popped += previous.wait(spin);
      previous = std::move(current);
    } else {
      auto* out = buf[b].get<Record64>();
      PBM_BENCH_CUDA(cudaStreamWaitEvent(focus, consumed[b], 0));  // the consumer is done with this buffer
      PBM_BENCH_CUDA(cudaStreamWaitEvent(peripheral, consumed[b], 0));
      produce_plain_kernel<<<grid, kThreads, 0, focus>>>(out, first, per);
      produce_plain_kernel<<<grid, kThreads, 0, peripheral>>>(out + per, first + per, per);
      PBM_BENCH_LAUNCHED("produce_plain_kernel");
      handoff(focus_done, focus, consumer);
      handoff(peripheral_done, peripheral, consumer);
      consume(b, false, 2 * per);
      PBM_BENCH_CUDA(cudaEventRecord(consumed[b], consumer));
      if (r > 0) PBM_BENCH_CUDA(cudaEventSynchronize(consumed[1 - b]));  // pace like pbm: one round ahead
      popped += 2 * per;
    }
  }
  if (use_pbm) {
    if (previous.valid()) popped += previous.wait(spin);
    // Whatever earlier pops left behind (every producer has been handed off to the consumer).
    for (int empty = 0; popped < total && empty < 1000;) {
      PopHandle h = box.pop_bulk_async(buf[0].get(), max_pop, consumer, device_count[0].get<unsigned long long>());
      consume(0, true, max_pop);
      std::uint64_t const got = h.wait(spin);
      popped += got;
      if (got == 0) ++empty;
    }
  } else {
    PBM_BENCH_CUDA(cudaStreamSynchronize(consumer));
  }
  std::int64_t const t1 = now_ns();
  for (auto& e : consumed) PBM_BENCH_CUDA(cudaEventDestroy(e));

  PBM_BENCH_CUDA(cudaDeviceSynchronize());
  CheckCounters c{};
  unsigned long long failed = 0;
  PBM_BENCH_CUDA(cudaMemcpy(&c, counters.get(), sizeof c, cudaMemcpyDeviceToHost));
  PBM_BENCH_CUDA(cudaMemcpy(&failed, fails.get(), sizeof failed, cudaMemcpyDeviceToHost));
  Stats const s = box.stats();
  PipelineRun run;
  run.seconds = static_cast<double>(t1 - t0) / 1e9;
  run.records = popped;
  run.ok = ctx.expect(popped == total, where + ": " + std::to_string(popped) + " records came out of " +
                                           std::to_string(total)) &&
           ctx.expect(failed == 0 && s.dropped == 0, where + ": " + std::to_string(failed) + " pushes failed, " +
                                                        std::to_string(s.dropped) + " dropped") &&
           ctx.expect(c.records == total && c.bad_words == 0 && c.duplicates == 0 && c.out_of_range == 0,
                      where + ": consumer checks: " + std::to_string(c.records) + " records seen of " +
                          std::to_string(total) + ", bad words " + std::to_string(c.bad_words) + ", duplicates " +
                          std::to_string(c.duplicates) + ", ids out of range " + std::to_string(c.out_of_range));
  return run;
}

enum LatencyVariant { kFocusLoaded = 0, kPeripheralLoaded = 1, kIdle = 2 };

struct LatencyRuns {
  std::array<Summary, 3> us;
  double busy_us = 0;  // how long the busy kernel keeps the GPU (waves x spin)
  unsigned busy_blocks = 0;
  bool ok = true;
};

LatencyRuns focus_latency(Context& ctx, std::uint64_t q, int waves, std::uint64_t spin_ns, int warmup, int reps) {
  Stream background(StreamClass::peripheral, ctx.device), focus(StreamClass::focus, ctx.device),
      peripheral(StreamClass::peripheral, ctx.device);
  Mailbox box(4 * q, kStride, ctx.device, "bench_priority");
  DeviceBuffer dst(q * kStride), seen(q * sizeof(unsigned)), counters(sizeof(CheckCounters)),
      fails(sizeof(unsigned long long));
  PBM_BENCH_CUDA(cudaMemset(counters.get(), 0, sizeof(CheckCounters)));
  PBM_BENCH_CUDA(cudaMemset(fails.get(), 0, sizeof(unsigned long long)));
  HostBuffer<unsigned long long> started(1, /*mapped=*/true);
  TimingEvent start, stop;
  unsigned const busy_blocks = static_cast<unsigned>(busy_blocks_per_sm() * ctx.sms * waves);
  unsigned const grid = grid_for(ctx, q);
  WaitPolicy const spin = spin_policy();
  std::array<std::vector<double>, 3> us;
  unsigned long long generation = 0;
  std::uint64_t checked = 0;
  LatencyRuns out;
  out.busy_blocks = busy_blocks;
  out.busy_us = static_cast<double>(waves) * static_cast<double>(spin_ns) / 1e3;

  for (int rep = 0; rep < warmup + reps && out.ok; ++rep) {
    for (int k = 0; k < 3; ++k) {
      int const v = (rep + k + 2) % 3;  // rotating order, the idle floor first in rep 0
      cudaStream_t const s = v == kPeripheralLoaded ? peripheral.get() : focus.get();
      if (v != kIdle) {
        ++generation;
        launch_busy(busy_blocks, spin_ns, started.device_ptr(), generation, background);
        spin_until([&] { return started.load() == generation; }, "the busy kernel to start");
      }
      start.record(s);
      produce_kernel<<<grid, kThreads, 0, s>>>(box.ref(), 0, q, fails.get<unsigned long long>());
      PBM_BENCH_LAUNCHED("produce_kernel");
      stop.record(s);
      double const ms = elapsed_ms(start, stop);
      PBM_BENCH_CUDA(cudaStreamSynchronize(background));
      // Untimed: take the records out and check them.
      PBM_BENCH_CUDA(cudaMemsetAsync(seen.get(), 0, q * sizeof(unsigned), focus));
      std::uint64_t const got = box.pop_bulk_async(dst.get(), q, focus).wait(spin);
      verify_unique(dst.get(), nullptr, q, kStride, q, seen.get<unsigned>(), counters.get<CheckCounters>(), focus);
      checked += q;
      if (!ctx.expect(got == q, "focus latency: popped " + std::to_string(got) + " of " + std::to_string(q))) {
        out.ok = false;
        break;
      }
      if (rep >= warmup) us[v].push_back(ms * 1e3);
    }
  }
  PBM_BENCH_CUDA(cudaDeviceSynchronize());
  CheckCounters c{};
  unsigned long long failed = 0;
  PBM_BENCH_CUDA(cudaMemcpy(&c, counters.get(), sizeof c, cudaMemcpyDeviceToHost));
  PBM_BENCH_CUDA(cudaMemcpy(&failed, fails.get(), sizeof failed, cudaMemcpyDeviceToHost));
  out.ok = ctx.expect(out.ok && failed == 0 && box.stats().dropped == 0 && c.records == checked && c.bad_words == 0 &&
                          c.duplicates == 0 && c.out_of_range == 0,
                      "focus latency: records do not check out (failed pushes " + std::to_string(failed) +
                          ", bad words " + std::to_string(c.bad_words) + ", duplicates " +
                          std::to_string(c.duplicates) + ")");
  for (int v = 0; v < 3; ++v) out.us[v] = summarise(us[v]);
  return out;
}

}  // namespace

Json figure_pipeline(Context& ctx) {
  std::uint64_t const per = 1ull << 16;
  int const rounds = ctx.pick(40, 400);
  int const runs = ctx.pick(3, 7);
  pipeline_run(ctx, true, per, 4);  // warm-up, both ways
  pipeline_run(ctx, false, per, 4);
  std::vector<double> pbm_rate, plain_rate;
  bool ok = true;
  for (int i = 0; i < runs; ++i) {
    for (int k = 0; k < 2; ++k) {
      bool const use_pbm = (i + k) % 2 == 1;  // the rival first in run 0
      PipelineRun const r = pipeline_run(ctx, use_pbm, per, rounds);
      ok = ok && r.ok;
      if (r.ok) (use_pbm ? pbm_rate : plain_rate).push_back(static_cast<double>(r.records) / r.seconds);
    }
  }
  Summary const pbm_s = summarise(pbm_rate), plain_s = summarise(plain_rate);

  std::uint64_t const q = 1ull << 14;
  int const waves = ctx.pick(8, 10);
  std::uint64_t const spin_ns = ctx.pick<std::uint64_t>(20'000, 50'000);
  LatencyRuns const lat = focus_latency(ctx, q, waves, spin_ns, ctx.pick(3, 10), ctx.pick(30, 200));

  Json f = Json::object();
  f["id"] = "5";
  f["title"] = "Producer/consumer pipeline: focus + peripheral producers, bulk-popping consumer";
  f["method"] =
      "throughput: host steady_clock over all rounds of a run, median over runs, pbm and the staging-array rival "
      "interleaved run by run; every record checked on the GPU by the consumer (pattern, each id once). latency: "
      "CUDA events on the producer's stream around one producer launch, launched once a busy kernel on a "
      "peripheral stream has started; variants interleaved";
  Json& p = f["params"];
  p["record_bytes"] = kStride;
  p["records_per_producer_per_round"] = per;
  p["rounds_per_run"] = rounds;
  p["runs"] = runs;
  p["latency_producer_records"] = q;
  p["busy_blocks"] = lat.busy_blocks;
  p["busy_waves"] = waves;
  p["busy_block_spin_us"] = static_cast<double>(spin_ns) / 1e3;
  Json& s = f["series"];
  s["pbm_pipeline"] = to_json(pbm_s, "records/s");
  s["pbm_pipeline"]["what"] =
      "warp_push producers on a focus and a peripheral stream, event handoff, pop_bulk_async + device-side count, "
      "consumer kernel, host waits for the previous round's count";
  s["staging_array_pipeline"] = to_json(plain_s, "records/s");
  s["staging_array_pipeline"]["what"] =
      "the same producers writing fixed halves of a double-buffered array, events both ways, same consumer kernel";
  s["focus_under_load"] = to_json(lat.us[kFocusLoaded], "us");
  s["focus_under_load"]["what"] = "producer on a focus stream, launched while the busy kernel runs";
  s["peripheral_under_load"] = to_json(lat.us[kPeripheralLoaded], "us");
  s["peripheral_under_load"]["what"] = "the same producer on a peripheral stream, same load";
  s["idle"] = to_json(lat.us[kIdle], "us");
  s["idle"]["what"] = "the same producer on a focus stream, idle GPU (floor)";
  double const advantage = lat.us[kPeripheralLoaded].median / lat.us[kFocusLoaded].median;
  Json& q_ = f["ratios"];
  q_["pbm_over_staging_array_rate"] = pbm_s.median / plain_s.median;
  q_["peripheral_over_focus_latency_median"] = advantage;
  q_["peripheral_over_focus_latency_p99"] = lat.us[kPeripheralLoaded].p99 / lat.us[kFocusLoaded].p99;
  q_["focus_under_load_over_idle_median"] = lat.us[kFocusLoaded].median / lat.us[kIdle].median;
  f["valid"] = ok && lat.ok;
  Json& t = f["table"];
  t.push_back(row("pipeline rate (pbm)", pbm_s.median / 1e9, "G rec/s", "staging array, no mailbox",
                  plain_s.median / 1e9, pbm_s.median / plain_s.median, "pbm/array"));
  t.push_back(row("focus producer latency under load, median", lat.us[kFocusLoaded].median, "us",
                  "peripheral producer, same load", lat.us[kPeripheralLoaded].median, advantage,
                  "peripheral/focus"));
  t.push_back(row("focus producer latency under load, p99", lat.us[kFocusLoaded].p99, "us",
                  "peripheral producer p99", lat.us[kPeripheralLoaded].p99,
                  lat.us[kPeripheralLoaded].p99 / lat.us[kFocusLoaded].p99, "peripheral/focus"));
  t.push_back(row("focus producer latency under load, median", lat.us[kFocusLoaded].median, "us",
                  "idle GPU (floor)", lat.us[kIdle].median, lat.us[kFocusLoaded].median / lat.us[kIdle].median,
                  "loaded/idle"));
  return f;
}

}  // namespace pbm::bench
