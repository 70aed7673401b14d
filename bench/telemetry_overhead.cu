// Overhead of pbm telemetry on a launch-bound mailbox loop. Two loops (--loop):
//
//   small     (default) per iteration, push 8 records of 64 B from device memory, pop_bulk_async
//             them, and wait with WaitMode::spin.
//   pipeline  per iteration, the producer/consumer pipeline of pbm_bench's figure 5 in small: a
//             producer kernel on a focus stream pushes 64 records of 64 B with pbm::warp_push, a
//             host push of 64 records runs on a peripheral stream, both are handed to a consumer
//             stream with events (pbm::handoff), which pops 128 in bulk; the host waits (spin).
//
// Columns, in one run:
//
//   off     telemetry not started and no NVTX tool: pbm's NVTX ranges are compiled in, but with no
//           tool loaded each NVTX call is a no-op stub. Measured in child processes forked before
//           CUDA or NVTX is touched (NVTX picks its tool once per process, at the first call): the
//           samples of all the `none` children below, pooled.
//   nvtx    telemetry not started, NVTX_INJECTION64_PATH = libcupti (what start() sets): pbm's
//           ranges go into libcupti's NVTX handler, with no CUPTI subscriber. The price of NVTX
//           ranges with a tool loaded but not listening; not "NVTX with Nsight recording".
//   count   start() in count mode: CUPTI attached with its defaults (copy/sync API callbacks and
//           NVTX callbacks, no activity records; PBM_CUPTI_ACTIVITY=1 or PBM_CUPTI_KINDS to compare),
//           counters on.
//   assert  the same in assert mode (the loop has no violations, so nothing aborts).
//   nvtx_after  (--after only) after stop(), CUPTI detached: a drift check for nvtx.
//
// count and assert are interleaved round by round; every column gets a warm-up first.
// Per-iteration host wall time (steady_clock); median, p99 and mean in microseconds; ratio of
// medians against off (and against nvtx). Columns in different processes move with the process
// (30% between runs on one machine was seen), so two measurements are made so that noise cannot
// hide a few percent:
//
//   attached vs detached (in one process, after the columns): count mode, CUPTI attached against
//           detached (telemetry::detach(): NVTX still goes to libcupti, nobody listens), --blocks
//           pairs of blocks of --iters iterations in alternating order (A B, B A, ...), each block
//           after --block-warmup iterations in its state. A block's time is the median of its
//           iterations. Reported: the ratio attached/detached of each pair (median, p25..p75,
//           min..max), the callbacks pbm handled per iteration (Status::api_callbacks and
//           nvtx_callbacks, read around each block) and the cost per intercepted callback: the
//           median over pairs of (attached - detached) / callbacks per iteration. Every attached
//           block must have been attached and watched (its callback counts moved, within 5% of
//           the first attached block's) and no detached block (the counts stayed); else exit 1: a
//           timing on zeros compares nothing. Goal: median ratio <= 1.03. To split the cost, run
//           with PBM_CUPTI_NVTX_CALLBACKS=0 and/or PBM_CUPTI_DRIVER_CALLBACKS=0 (measurement
//           switches; with NVTX callbacks off only status() can say a block was attached), or with
//           PBM_CUPTI_TIME_CALLBACKS=1: then the time spent inside pbm's handlers per attached
//           iteration is reported beside the difference.
//   NVTX tool vs none (forked children, before the parent touches CUDA): --children children per
//           state, run one after another in the order none, nvtx, nvtx, none, none, nvtx, ...; each
//           does the warm-up and --rounds x --iters timed iterations. Reported: each child's
//           median, the min..max of the children's medians per state, and the ratio of the
//           medians of the medians (nvtx / none).
//
// --neighbour memory:MIB | spin:THREADS runs a noisy neighbour in this process for the in-process
// measurements (the columns nvtx, count, assert and the attached/detached blocks; not the forked
// children): `memory` one thread writing one word per 64-byte line over MIB MiB, again and again
// (evicts the host's caches the way another tenant's job would); `spin` THREADS threads of
// arithmetic (takes cores and their hyper-thread siblings). Both states of every comparison share it.
//
// JSON to --json PATH or env PBM_BENCH_JSON (keys: BENCHMARKS.md, figure 7).
// Exit status: 0 measured (goals are reported, not enforced), 1 a check failed or a child failed.
// Without a GPU it prints a line and exits 0.
#include <pbm/device.cuh>
#include <pbm/error.hpp>
#include <pbm/mailbox.hpp>
#include <pbm/stream.hpp>
#include <pbm/telemetry/telemetry.hpp>

#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace pt = pbm::telemetry;

namespace {

constexpr std::uint64_t kRecords = 8;
constexpr std::uint32_t kStride = 64;
constexpr std::uint64_t kPipelineRecords = 64;  // per producer and iteration (--loop pipeline)
constexpr int kNoDevice = 77;  // child exit code: no CUDA device

enum class LoopKind { small, pipeline };

/// --neighbour's value, checked: "memory:MIB" or "spin:THREADS" (kind "" when none). Bad values exit 2.
struct NeighbourSpec {
  std::string text;  // as given, for the report
  std::string kind;
  long n = 0;
  static NeighbourSpec parse(std::string const& spec) {
    auto const colon = spec.find(':');
    NeighbourSpec s{spec, spec.substr(0, colon), colon == std::string::npos ? 0 : std::atol(spec.c_str() + colon + 1)};
    if ((s.kind != "memory" && s.kind != "spin") || s.n <= 0 || s.n > (s.kind == "spin" ? 1024 : 1 << 20)) {
      std::fprintf(stderr,
                   "telemetry_overhead: --neighbour must be memory:MIB (1..1048576) or spin:THREADS (1..1024), not '%s'\n",
                   spec.c_str());
      std::exit(2);
    }
    return s;
  }
};

/// A noisy neighbour on the host (--neighbour), running from construction to destruction.
class Neighbour {
 public:
  explicit Neighbour(NeighbourSpec const& spec) {
    std::string const& kind = spec.kind;
    long const n = spec.n;
    if (kind.empty()) return;
    if (kind == "memory") {
      lines_.assign(static_cast<std::size_t>(n) << 20 >> 6, Line{});
      threads_.emplace_back([this] {
        std::uint64_t v = 0;
        while (!stop_.load(std::memory_order_relaxed))
          for (Line& line : lines_) line.word = ++v;  // one store per line: every line is fetched and dirtied
      });
    } else {
      for (long t = 0; t < n; ++t) {
        threads_.emplace_back([this] {
          std::uint64_t x = 88172645463325252ull;
          while (!stop_.load(std::memory_order_relaxed))
            for (int i = 0; i < 4096; ++i) x ^= x << 13, x ^= x >> 7, x ^= x << 17;
          sink_.fetch_add(x & 1, std::memory_order_relaxed);  // keeps the loop's work observable
        });
      }
    }
  }
  ~Neighbour() {
    stop_.store(true, std::memory_order_relaxed);
    for (std::thread& t : threads_) t.join();
  }
  Neighbour(Neighbour const&) = delete;
  Neighbour& operator=(Neighbour const&) = delete;

 private:
  struct alignas(64) Line {
    std::uint64_t word{0};
  };
  std::vector<Line> lines_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sink_{0};  // spin: the threads' results, so their work is not optimised away
};

struct Options {
  int iters = 5000;   // per round and column, per block, per child round
  int rounds = 10;
  int warmup = 2000;  // per column and per child
  int blocks = 10;    // attached/detached block pairs
  int block_warmup = 500;
  int children = 5;   // forked children per state (none, nvtx)
  bool fork_off = true;
  bool after = false;
  LoopKind loop = LoopKind::small;
  std::string json;
  NeighbourSpec neighbour;  // --neighbour; kind "" for none
};

/// What one iteration does, for the table and the JSON.
char const* describe(LoopKind loop) {
  return loop == LoopKind::small
             ? "push 8 x 64 B from device memory + pop_bulk_async + wait(WaitMode::spin)"
             : "warp_push kernel (64 x 64 B) on a focus stream + host push (64 x 64 B) on a peripheral stream, "
               "handoff to a consumer stream, pop_bulk_async(128) + wait(WaitMode::spin)";
}

/// The pipeline loop's producer: 64 records of 64 B, one warp_push reservation per warp.
__global__ void produce_kernel(pbm::MailboxRef box, unsigned n) {
  struct alignas(16) Record {
    unsigned w[16];
  } r;
  unsigned const i = blockIdx.x * blockDim.x + threadIdx.x;
  for (unsigned k = 0; k < 16; ++k) r.w[k] = i * 16 + k + 1;
  pbm::warp_push(box, &r, i < n);
}

struct Summary {
  double median_us = 0, p99_us = 0, mean_us = 0, min_us = 0;
  std::size_t n = 0;
};

Summary summarise(std::vector<double> ns) {
  Summary s;
  s.n = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * (ns.size() - 1) + 0.5))]; };
  s.median_us = at(0.5) / 1e3;
  s.p99_us = at(0.99) / 1e3;
  s.min_us = ns.front() / 1e3;
  double sum = 0;
  for (double v : ns) sum += v;
  s.mean_us = sum / ns.size() / 1e3;
  return s;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * (v.size() - 1) + 0.5))];
}

/// Median, p25, p75, min and max of a few values (blocks, children).
struct Spread {
  double median = 0, p25 = 0, p75 = 0, min = 0, max = 0;
};

Spread spread(std::vector<double> const& v) {
  Spread s;
  if (v.empty()) return s;
  s.median = quantile(v, 0.5);
  s.p25 = quantile(v, 0.25);
  s.p75 = quantile(v, 0.75);
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

/// A JSON number, or null where there is none (a ratio over zero).
std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

std::string json_spread(Spread const& s) {
  return "{\"median\": " + json_number(s.median) + ", \"p25\": " + json_number(s.p25) + ", \"p75\": " +
         json_number(s.p75) + ", \"min\": " + json_number(s.min) + ", \"max\": " + json_number(s.max) + "}";
}

std::string json_list(std::vector<double> const& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i == 0 ? "" : ", ") + json_number(v[i]);
  return out + "]";
}

bool cuda_ok(cudaError_t e, char const* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "telemetry_overhead: %s: %s\n", what, pbm::describe_cuda_error(e).c_str());
  return false;
}

/// The loop under test, with its buffers.
class Loop {
 public:
  explicit Loop(LoopKind kind)
      : kind_(kind),
        stream_(pbm::StreamClass::focus),
        peripheral_(pbm::StreamClass::peripheral),
        consumer_(pbm::StreamClass::focus),
        mailbox_(4096, kStride, -1, "bench") {
    std::uint64_t const src_records = kind == LoopKind::small ? kRecords : kPipelineRecords;
    std::uint64_t const dst_records = kind == LoopKind::small ? kRecords : 2 * kPipelineRecords;
    if (!cuda_ok(cudaMalloc(&src_, src_records * kStride), "cudaMalloc") ||
        !cuda_ok(cudaMalloc(&dst_, dst_records * kStride), "cudaMalloc"))
      std::exit(1);
    cudaMemset(src_, 1, src_records * kStride);
    pt::Expect setup;
    cudaDeviceSynchronize();
  }
  ~Loop() {
    cudaFree(src_);
    cudaFree(dst_);
  }
  /// Runs n iterations; appends each one's wall time in ns to `out` when given.
  void run(int n, std::vector<double>* out) {
    pbm::WaitPolicy spin;
    spin.mode = pbm::WaitMode::spin;
    std::uint64_t const expected = kind_ == LoopKind::small ? kRecords : 2 * kPipelineRecords;
    for (int i = 0; i < n; ++i) {
      auto const t0 = std::chrono::steady_clock::now();
      std::uint64_t popped = 0;
      if (kind_ == LoopKind::small) {
        mailbox_.push(src_, kRecords, stream_);
        popped = mailbox_.pop_bulk_async(dst_, kRecords, stream_).wait(spin);
      } else {
        produce_kernel<<<1, static_cast<unsigned>(kPipelineRecords), 0, stream_>>>(
            mailbox_.ref(), static_cast<unsigned>(kPipelineRecords));
        mailbox_.push(src_, kPipelineRecords, peripheral_);
        pbm::handoff(focus_done_, stream_, consumer_);  // events, never a host sync
        pbm::handoff(peripheral_done_, peripheral_, consumer_);
        popped = mailbox_.pop_bulk_async(dst_, 2 * kPipelineRecords, consumer_).wait(spin);
      }
      auto const t1 = std::chrono::steady_clock::now();
      if (popped != expected) {
        cudaError_t const err = cudaGetLastError();
        std::fprintf(stderr, "telemetry_overhead: popped %llu records, expected %llu (last CUDA error: %s)\n",
                     static_cast<unsigned long long>(popped), static_cast<unsigned long long>(expected),
                     cudaGetErrorName(err));
        std::exit(1);
      }
      if (out != nullptr) out->push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  }

 private:
  LoopKind kind_;
  pbm::Stream stream_;      // small: everything; pipeline: the focus producer
  pbm::Stream peripheral_;  // pipeline: the host push
  pbm::Stream consumer_;    // pipeline: the pop
  pbm::Event focus_done_, peripheral_done_;
  pbm::Mailbox mailbox_;
  void* src_ = nullptr;
  void* dst_ = nullptr;
};

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

/// What a forked child measures: no NVTX tool (`none`), or NVTX into libcupti with telemetry never
/// started (`nvtx`).
enum class ChildState { none, nvtx };

char const* name(ChildState c) { return c == ChildState::none ? "none" : "nvtx"; }

/// Child: sets up its NVTX tool before any NVTX or CUDA call, times the loop and writes the samples
/// to `fd`. Exit 0, or kNoDevice.
[[noreturn]] void child_run(Options const& o, ChildState state, int fd) {
  if (state == ChildState::none) {
    unsetenv("NVTX_INJECTION64_PATH");
  } else {
    pt::ensure_nvtx_injection();  // as the parent does before its nvtx column; start() never called
  }
  if (!have_device()) _exit(kNoDevice);
  std::vector<double> samples;
  {
    Loop loop(o.loop);
    loop.run(o.warmup, nullptr);
    for (int r = 0; r < o.rounds; ++r) loop.run(o.iters, &samples);
  }
  std::size_t const n = samples.size();
  bool ok = write(fd, &n, sizeof n) == static_cast<ssize_t>(sizeof n);
  char const* p = reinterpret_cast<char const*>(samples.data());
  std::size_t left = n * sizeof(double);
  while (ok && left > 0) {
    ssize_t const w = write(fd, p, left);
    if (w <= 0) ok = false;
    else { p += w; left -= static_cast<std::size_t>(w); }
  }
  close(fd);
  _exit(ok ? 0 : 1);
}

/// Parent side of the fork: reads the child's samples. Returns its exit status (or -1).
int run_child(Options const& o, ChildState state, std::vector<double>& samples) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  pid_t const pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    child_run(o, state, fds[1]);
  }
  close(fds[1]);
  std::size_t n = 0;
  if (read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n) && n < (1u << 28)) {
    samples.resize(n);
    char* p = reinterpret_cast<char*>(samples.data());
    std::size_t left = n * sizeof(double);
    while (left > 0) {
      ssize_t const r = read(fds[0], p, left);
      if (r <= 0) { samples.clear(); break; }
      p += r;
      left -= static_cast<std::size_t>(r);
    }
  }
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

/// NVTX tool against none, in forked children run one after another, order none, nvtx, nvtx, none, ...
struct ChildRuns {
  std::vector<ChildState> order;
  std::vector<double> medians_us;          // per child, in `order`
  std::vector<double> none_us, nvtx_us;    // children's medians per state
  std::vector<double> none_samples;        // pooled: the `off` column
  bool failed = false;
  bool no_device = false;
};

ChildRuns run_children(Options const& o) {
  ChildRuns runs;
  for (int i = 0; i < 2 * o.children; ++i) {
    bool const first_of_pair = (i / 2) % 2 == 0;  // pairs alternate: (none, nvtx), (nvtx, none), ...
    ChildState const state = (i % 2 == 0) == first_of_pair ? ChildState::none : ChildState::nvtx;
    std::vector<double> samples;
    int const rc = run_child(o, state, samples);
    if (rc == kNoDevice) {
      runs.no_device = true;
      return runs;
    }
    if (rc != 0 || samples.empty()) {
      std::fprintf(stderr, "telemetry_overhead: child %d (%s) failed (%d)\n", i, name(state), rc);
      runs.failed = true;
      continue;
    }
    double const median_us = summarise(samples).median_us;
    runs.order.push_back(state);
    runs.medians_us.push_back(median_us);
    if (state == ChildState::none) {
      runs.none_us.push_back(median_us);
      runs.none_samples.insert(runs.none_samples.end(), samples.begin(), samples.end());
    } else {
      runs.nvtx_us.push_back(median_us);
    }
  }
  return runs;
}

/// Count mode, CUPTI attached against detached, in blocks in one process.
struct BlockRuns {
  std::vector<double> attached_us, detached_us;  // per block: median iteration time
  std::vector<double> ratio, diff_us;            // per pair: attached / detached, attached - detached
  std::uint64_t api_callbacks = 0, nvtx_callbacks = 0;  // handled in all attached blocks
  std::uint64_t first_total = 0;                        // both, in the first attached block
  std::uint64_t syncs = 0;                              // pbm's sync count, all attached blocks
  // Per attached block, PBM_CUPTI_TIME_CALLBACKS=1 only: ns per iteration inside pbm's handlers.
  std::vector<double> handler_api_ns, handler_nvtx_ns;
  bool attached_watched = true;   // every attached block: callbacks counted, about the same number each
  bool detached_silent = true;    // no detached block: nothing counted
  bool attach_failed = false;

  /// Callbacks per timed attached iteration.
  double api_per_iteration(Options const& o) const { return static_cast<double>(api_callbacks) / (1.0 * o.iters * o.blocks); }
  double nvtx_per_iteration(Options const& o) const { return static_cast<double>(nvtx_callbacks) / (1.0 * o.iters * o.blocks); }
};

std::uint64_t all_syncs() {
  auto const& c = pt::counters();
  return c.sync_total(false) + c.sync_total(true);
}

BlockRuns run_blocks(Options const& o, Loop& loop) {
  BlockRuns b;
  char const* nvtx_env = std::getenv("PBM_CUPTI_NVTX_CALLBACKS");
  bool const nvtx_callbacks_off = nvtx_env != nullptr && std::string(nvtx_env) == "0";
  pt::set_mode(pt::Mode::count);
  auto block = [&](bool attached) {
    if (attached) {
      if (!pt::attach()) b.attach_failed = true;
    } else {
      pt::detach();
    }
    loop.run(o.block_warmup, nullptr);
    pt::Status const before = pt::status();
    std::uint64_t const syncs_before = all_syncs();
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(o.iters));
    loop.run(o.iters, &samples);
    pt::Status const after = pt::status();
    std::uint64_t const api = after.api_callbacks - before.api_callbacks;
    std::uint64_t const nvtx = after.nvtx_callbacks - before.nvtx_callbacks;
    if (attached) {
      b.syncs += all_syncs() - syncs_before;
      // The same work each block, give or take a wait range (opened only when the pop has not
      // completed at the first look): within 5% of the first attached block's count.
      // With PBM_CUPTI_NVTX_CALLBACKS=0 (a measurement of the rest) the small loop gets no callback
      // at all: then only status() says the block was attached.
      std::uint64_t const total = api + nvtx;
      bool const first = b.attached_us.empty();
      double const first_total = first ? static_cast<double>(total) : static_cast<double>(b.first_total);
      bool const counted = nvtx_callbacks_off || (total > 0 && std::fabs(static_cast<double>(total) - first_total) <= 0.05 * first_total);
      if (!before.attached || !after.attached || !counted) {
        std::fprintf(stderr, "telemetry_overhead: attached block %zu: %llu API + %llu NVTX callbacks (first block: %llu in all)\n",
                     b.attached_us.size(), static_cast<unsigned long long>(api), static_cast<unsigned long long>(nvtx),
                     static_cast<unsigned long long>(b.first_total));
        b.attached_watched = false;
      }
      if (first) b.first_total = total;
      b.api_callbacks += api;
      b.nvtx_callbacks += nvtx;
      if (after.api_callback_ns + after.nvtx_callback_ns > 0) {  // timed (PBM_CUPTI_TIME_CALLBACKS=1)
        b.handler_api_ns.push_back(static_cast<double>(after.api_callback_ns - before.api_callback_ns) / o.iters);
        b.handler_nvtx_ns.push_back(static_cast<double>(after.nvtx_callback_ns - before.nvtx_callback_ns) / o.iters);
      }
      b.attached_us.push_back(summarise(samples).median_us);
    } else {
      if (before.attached || after.attached || api + nvtx != 0) {
        std::fprintf(stderr, "telemetry_overhead: detached block %zu: %llu API + %llu NVTX callbacks handled\n",
                     b.detached_us.size(), static_cast<unsigned long long>(api), static_cast<unsigned long long>(nvtx));
        b.detached_silent = false;
      }
      b.detached_us.push_back(summarise(samples).median_us);
    }
  };
  // Warm-up in each state first (the first attach after a detach re-enables every callback).
  for (bool attached : {false, true}) {
    if (attached) pt::attach(); else pt::detach();
    loop.run(o.warmup, nullptr);
  }
  for (int i = 0; i < o.blocks; ++i) {
    bool const attached_first = i % 2 == 0;
    block(attached_first);
    block(!attached_first);
    double const a = b.attached_us.back(), d = b.detached_us.back();
    b.ratio.push_back(a / d);
    b.diff_us.push_back(a - d);
  }
  pt::attach();
  return b;
}

Options parse(int argc, char** argv) {
  Options o;
  if (char const* env = std::getenv("PBM_BENCH_JSON"); env != nullptr) o.json = env;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&](char const* name) -> char const* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "telemetry_overhead: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--iters") o.iters = std::atoi(value("--iters"));
    else if (a == "--rounds") o.rounds = std::atoi(value("--rounds"));
    else if (a == "--warmup") o.warmup = std::atoi(value("--warmup"));
    else if (a == "--blocks") o.blocks = std::atoi(value("--blocks"));
    else if (a == "--block-warmup") o.block_warmup = std::atoi(value("--block-warmup"));
    else if (a == "--children") o.children = std::atoi(value("--children"));
    else if (a == "--json") o.json = value("--json");
    else if (a == "--no-fork") o.fork_off = false;
    else if (a == "--after") o.after = true;
    else if (a == "--neighbour") o.neighbour = NeighbourSpec::parse(value("--neighbour"));
    else if (a == "--loop") {
      std::string const v = value("--loop");
      if (v == "small") o.loop = LoopKind::small;
      else if (v == "pipeline") o.loop = LoopKind::pipeline;
      else {
        std::fprintf(stderr, "telemetry_overhead: --loop must be small or pipeline, not '%s'\n", v.c_str());
        std::exit(2);
      }
    } else {
      std::fprintf(stderr,
                   "usage: %s [--loop small|pipeline] [--iters N] [--rounds R] [--warmup W] [--blocks B]\n"
                   "          [--block-warmup W] [--children C] [--json PATH] [--no-fork] [--after]\n"
                   "          [--neighbour memory:MIB|spin:THREADS]\n"
                   "  columns: off (forked children, no NVTX tool), nvtx, count, assert, nvtx_after (--after)\n"
                   "  then count mode attached vs detached in B block pairs of N iterations (one process),\n"
                   "  and NVTX tool vs none in C forked children each (--no-fork: neither off nor children)\n"
                   "  JSON path also from env PBM_BENCH_JSON\n",
                   argv[0]);
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  if (o.iters <= 0 || o.rounds <= 0 || o.warmup < 0 || o.blocks <= 0 || o.block_warmup < 0 || o.children <= 0) {
    std::fprintf(stderr, "telemetry_overhead: --iters, --rounds, --blocks and --children must be > 0\n");
    std::exit(2);
  }
  return o;
}

struct Column {
  char const* name;
  char const* what;
  std::vector<double> samples;
  Summary s;
};

}  // namespace

/// A goal as the other figures write it (bench/harness.hpp goal()): value <= target.
std::string json_goal(std::string const& what, double value, double target) {
  return "{\"what\": \"" + what + "\", \"value\": " + json_number(value) + ", \"op\": \"<=\", \"target\": " +
         json_number(target) + ", \"met\": " + (std::isfinite(value) && value <= target ? "true" : "false") + "}";
}

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  std::vector<Column> columns;
  columns.push_back({"off", "telemetry not started, no NVTX tool (forked children, pooled)", {}, {}});
  columns.push_back({"nvtx", "telemetry not started, NVTX ranges into libcupti (NVTX_INJECTION64_PATH), no subscriber", {}, {}});
  columns.push_back({"count", "telemetry started, count mode, CUPTI attached", {}, {}});
  columns.push_back({"assert", "telemetry started, assert mode, CUPTI attached", {}, {}});
  columns.push_back({"nvtx_after", "after stop(): CUPTI detached (drift check for nvtx)", {}, {}});
  Column& off = columns[0];
  Column& nvtx = columns[1];
  Column& count = columns[2];
  Column& assert_ = columns[3];
  Column& after = columns[4];
  bool failed = false;

  // 1. Children forked before this process touches CUDA or NVTX: NVTX tool against none; the `none`
  //    children's samples are the off column.
  ChildRuns children;
  if (o.fork_off) {
    children = run_children(o);
    if (children.no_device) {
      std::printf("telemetry_overhead: no CUDA device: skipping (exit 0)\n");
      return 0;
    }
    failed = failed || children.failed;
    off.samples = children.none_samples;
  }

  // 2. This process: NVTX tool = libcupti from the first NVTX call on, as start() arranges. A noisy
  //    neighbour, if asked for, runs from here to the end of the measurements.
  auto neighbour = std::make_unique<Neighbour>(o.neighbour);
  pt::ensure_nvtx_injection();
  if (!have_device()) {
    std::printf("telemetry_overhead: no CUDA device: skipping (exit 0)\n");
    return 0;
  }
  cudaDeviceProp prop{};
  int device = 0;
  cudaGetDevice(&device);
  cudaGetDeviceProperties(&prop, device);
  BlockRuns blocks;
  {
    Loop loop(o.loop);
    loop.run(o.warmup, nullptr);
    for (int r = 0; r < o.rounds; ++r) loop.run(o.iters, &nvtx.samples);

    pt::Config config;
    config.mode = pt::Mode::count;
    pt::start(config);
    pt::Status const st = pt::status();
    if (!st.attached) std::fprintf(stderr, "telemetry_overhead: CUPTI not attached (%s)\n", st.reason.c_str());
    loop.run(o.warmup, nullptr);
    for (int r = 0; r < o.rounds; ++r) {
      pt::set_mode(pt::Mode::count);
      loop.run(o.iters, &count.samples);
      pt::set_mode(pt::Mode::assert_);
      loop.run(o.iters, &assert_.samples);
    }
    pt::set_mode(pt::Mode::count);

    // 3. Count mode attached against detached, interleaved blocks.
    blocks = run_blocks(o, loop);
    if (blocks.attach_failed) std::fprintf(stderr, "telemetry_overhead: attach() failed in a block\n");
    failed = failed || !st.attached || blocks.attach_failed || !blocks.attached_watched || !blocks.detached_silent;

    pt::flush();
    auto const& c = pt::counters();
    std::printf("telemetry during the loop: memcpys unexpected %llu, syncs unexpected %llu, violations %llu\n",
                static_cast<unsigned long long>(c.memcpy_total(false)),
                static_cast<unsigned long long>(c.sync_total(false)),
                static_cast<unsigned long long>(c.violation_total()));
    if (o.after) {
      pt::stop();
      loop.run(o.warmup, nullptr);
      for (int r = 0; r < o.rounds; ++r) loop.run(o.iters, &after.samples);
    }
  }

  neighbour.reset();
  for (Column& col : columns) col.s = summarise(col.samples);
  double const base = off.s.n > 0 ? off.s.median_us : 0;
  double const nvtx_base = nvtx.s.median_us;
  std::printf("\npbm telemetry overhead on %s, per iteration of: %s\n", prop.name, describe(o.loop));
  std::printf("%-11s %9s %9s %9s %9s %10s %10s %8s\n", "column", "median_us", "p99_us", "mean_us", "min_us",
              "vs_off", "vs_nvtx", "n");
  for (Column const& col : columns) {
    if (col.s.n == 0) {
      if (&col == &off) std::printf("%-11s %9s\n", col.name, "(not measured)");
      continue;
    }
    char vs_off[16] = "-";
    if (base > 0) std::snprintf(vs_off, sizeof vs_off, "%.3f", col.s.median_us / base);
    std::printf("%-11s %9.2f %9.2f %9.2f %9.2f %10s %10.3f %8zu\n", col.name, col.s.median_us, col.s.p99_us,
                col.s.mean_us, col.s.min_us, vs_off, col.s.median_us / nvtx_base, col.s.n);
  }
  for (Column const& col : columns)
    if (col.s.n > 0) std::printf("  %-11s %s\n", col.name, col.what);

  // Attached against detached.
  Spread const ratio = spread(blocks.ratio);
  Spread const diff = spread(blocks.diff_us);
  Spread const att = spread(blocks.attached_us);
  Spread const det = spread(blocks.detached_us);
  double const api_per_iter = blocks.api_per_iteration(o);
  double const nvtx_per_iter = blocks.nvtx_per_iteration(o);
  double const per_iter = api_per_iter + nvtx_per_iter;
  double const ns_per_callback = per_iter > 0 ? diff.median * 1e3 / per_iter : 0;
  std::printf("\ncount mode, attached vs detached, one process: %d block pairs x %d iterations (A B, B A, ...)%s%s\n",
              o.blocks, o.iters, o.neighbour.text.empty() ? "" : ", neighbour ", o.neighbour.text.c_str());
  std::printf("  block medians us: attached %.3f (%.3f..%.3f), detached %.3f (%.3f..%.3f)\n", att.median, att.min,
              att.max, det.median, det.min, det.max);
  std::printf("  ratio attached/detached per pair: median %.4f, p25..p75 %.4f..%.4f, min..max %.4f..%.4f  (goal <= 1.03: %s)\n",
              ratio.median, ratio.p25, ratio.p75, ratio.min, ratio.max, ratio.median <= 1.03 ? "met" : "NOT MET");
  std::printf("  attached - detached per iteration: median %.3f us (p25..p75 %.3f..%.3f)\n", diff.median, diff.p25,
              diff.p75);
  std::printf("  callbacks pbm handled per iteration: %.3f API + %.3f NVTX; %.1f ns per intercepted callback\n",
              api_per_iter, nvtx_per_iter, ns_per_callback);
  Spread const handler_api = spread(blocks.handler_api_ns);
  Spread const handler_nvtx = spread(blocks.handler_nvtx_ns);
  bool const timed = !blocks.handler_api_ns.empty();
  if (timed) {
    std::printf("  inside pbm's handlers per attached iteration (PBM_CUPTI_TIME_CALLBACKS=1, clock reads included):\n"
                "    API %.0f ns (p25..p75 %.0f..%.0f) + NVTX %.0f ns (%.0f..%.0f) = %.0f ns of the %.0f ns difference\n",
                handler_api.median, handler_api.p25, handler_api.p75, handler_nvtx.median, handler_nvtx.p25,
                handler_nvtx.p75, handler_api.median + handler_nvtx.median, diff.median * 1e3);
  }
  std::printf("  syncs pbm counted per attached iteration: %.3f\n",
              static_cast<double>(blocks.syncs) / (static_cast<double>(o.iters) * o.blocks));
  std::printf("  checks: every attached block watched: %s; no detached block counted: %s\n",
              blocks.attached_watched ? "yes" : "NO", blocks.detached_silent ? "yes" : "NO");

  // NVTX tool against none.
  Spread const ch_none = spread(children.none_us);
  Spread const ch_nvtx = spread(children.nvtx_us);
  double const ch_ratio = ch_none.median > 0 ? ch_nvtx.median / ch_none.median : 0;
  if (o.fork_off && !children.medians_us.empty()) {
    std::printf("\nNVTX tool vs none, forked children (%d per state, %d x %d iterations each), medians in us, in order:\n ",
                o.children, o.rounds, o.iters);
    for (std::size_t i = 0; i < children.order.size(); ++i)
      std::printf(" %s %.3f", name(children.order[i]), children.medians_us[i]);
    std::printf("\n  none: median %.3f, min..max %.3f..%.3f;  nvtx: median %.3f, min..max %.3f..%.3f\n", ch_none.median,
                ch_none.min, ch_none.max, ch_nvtx.median, ch_nvtx.min, ch_nvtx.max);
    std::printf("  nvtx/none, medians of the children's medians: %.4f\n", ch_ratio);
  }

  if (!o.json.empty()) {
    char const* kind = o.loop == LoopKind::small ? "small" : "pipeline";
    std::ofstream out(o.json);
    out << "{\n  \"benchmark\": \"telemetry_overhead\",\n  \"device\": \"" << prop.name << "\",\n"
        << "  \"loop_kind\": \"" << kind << "\",\n"
        << "  \"loop\": \"" << describe(o.loop) << "\",\n"
        << "  \"neighbour\": \"" << o.neighbour.text << "\",\n"
        << "  \"iterations_per_column\": " << o.iters * o.rounds << ",\n  \"rounds\": " << o.rounds
        << ",\n  \"warmup\": " << o.warmup << ",\n  \"columns\": {";
    bool first = true;
    for (Column const& col : columns) {
      if (col.s.n == 0) continue;
      out << (first ? "\n" : ",\n") << "    \"" << col.name << "\": {\"median_us\": " << col.s.median_us
          << ", \"p99_us\": " << col.s.p99_us << ", \"mean_us\": " << col.s.mean_us << ", \"min_us\": " << col.s.min_us
          << ", \"n\": " << col.s.n;
      if (base > 0) out << ", \"ratio_median_vs_off\": " << col.s.median_us / base;
      out << ", \"ratio_median_vs_nvtx\": " << col.s.median_us / nvtx_base << ", \"what\": \"" << col.what << "\"}";
      first = false;
    }
    out << "\n  },\n";
    std::string const goal_what = std::string(kind) + " loop: count attached/detached";
    out << "  \"attached_detached\": {\n"
        << "    \"block_pairs\": " << o.blocks << ", \"iterations_per_block\": " << o.iters
        << ", \"warmup_per_block\": " << o.block_warmup << ",\n"
        << "    \"attached_us\": " << json_spread(att) << ",\n"
        << "    \"detached_us\": " << json_spread(det) << ",\n"
        << "    \"ratio\": " << json_spread(ratio) << ",\n"
        << "    \"diff_us\": " << json_spread(diff) << ",\n"
        << "    \"ratios\": " << json_list(blocks.ratio) << ",\n"
        << "    \"api_callbacks_per_iteration\": " << api_per_iter
        << ", \"nvtx_callbacks_per_iteration\": " << nvtx_per_iter
        << ", \"callbacks_per_iteration\": " << per_iter << ",\n"
        << "    \"ns_per_callback\": " << json_number(ns_per_callback) << ",\n"
        << "    \"syncs_per_iteration\": " << static_cast<double>(blocks.syncs) / (static_cast<double>(o.iters) * o.blocks)
        << ",\n"
        << "    \"handler_api_ns_per_iteration\": " << (timed ? json_spread(handler_api) : std::string("null"))
        << ",\n    \"handler_nvtx_ns_per_iteration\": " << (timed ? json_spread(handler_nvtx) : std::string("null"))
        << ",\n"
        << "    \"attached_blocks_watched\": " << (blocks.attached_watched ? "true" : "false")
        << ", \"detached_blocks_silent\": " << (blocks.detached_silent ? "true" : "false") << "\n  },\n";
    if (o.fork_off && !children.medians_us.empty()) {
      out << "  \"nvtx_children\": {\n    \"children_per_state\": " << o.children << ",\n    \"order\": [";
      for (std::size_t i = 0; i < children.order.size(); ++i) out << (i ? ", " : "") << "\"" << name(children.order[i]) << "\"";
      out << "],\n    \"medians_us\": " << json_list(children.medians_us) << ",\n"
          << "    \"none_us\": " << json_spread(ch_none) << ",\n"
          << "    \"nvtx_us\": " << json_spread(ch_nvtx) << ",\n"
          << "    \"ratio_of_medians\": " << json_number(ch_ratio) << "\n  },\n";
    }
    out << "  \"goals\": [" << json_goal(goal_what, ratio.median, 1.03) << "]\n}\n";
    if (!out) {
      std::fprintf(stderr, "telemetry_overhead: cannot write %s\n", o.json.c_str());
      return 1;
    }
    std::printf("JSON: %s\n", o.json.c_str());
  }
  if (failed) std::fprintf(stderr, "telemetry_overhead: a check failed (above): exit 1\n");
  return failed ? 1 : 0;
}
