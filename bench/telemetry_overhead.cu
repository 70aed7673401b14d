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
//           tool loaded each NVTX call is a no-op stub. Measured in a child process forked before
//           CUDA or NVTX is touched (NVTX picks its tool once per process, at the first call).
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
// medians against off (and against nvtx). JSON to --json PATH or env PBM_BENCH_JSON.
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
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pt = pbm::telemetry;

namespace {

constexpr std::uint64_t kRecords = 8;
constexpr std::uint32_t kStride = 64;
constexpr std::uint64_t kPipelineRecords = 64;  // per producer and iteration (--loop pipeline)
constexpr int kNoDevice = 77;  // child exit code: no CUDA device

enum class LoopKind { small, pipeline };

struct Options {
  int iters = 5000;   // per round and column
  int rounds = 10;
  int warmup = 2000;  // per column
  bool fork_off = true;
  bool after = false;
  LoopKind loop = LoopKind::small;
  std::string json;
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

/// Child: measures `off` (no NVTX tool) and writes the samples to `fd`. Exit 0, or kNoDevice.
[[noreturn]] void child_off(Options const& o, int fd) {
  unsetenv("NVTX_INJECTION64_PATH");
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
int run_off_child(Options const& o, std::vector<double>& samples) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  pid_t const pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    child_off(o, fds[1]);
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
    else if (a == "--json") o.json = value("--json");
    else if (a == "--no-fork") o.fork_off = false;
    else if (a == "--after") o.after = true;
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
                   "usage: %s [--loop small|pipeline] [--iters N] [--rounds R] [--warmup W] [--json PATH] [--no-fork] [--after]\n"
                   "  columns: off (forked child, no NVTX tool), nvtx, count, assert, nvtx_after (--after)\n"
                   "  JSON path also from env PBM_BENCH_JSON\n",
                   argv[0]);
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  if (o.iters <= 0 || o.rounds <= 0 || o.warmup < 0) {
    std::fprintf(stderr, "telemetry_overhead: --iters and --rounds must be > 0\n");
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

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  std::vector<Column> columns;
  columns.push_back({"off", "telemetry not started, no NVTX tool (forked child process)", {}, {}});
  columns.push_back({"nvtx", "telemetry not started, NVTX ranges into libcupti (NVTX_INJECTION64_PATH), no subscriber", {}, {}});
  columns.push_back({"count", "telemetry started, count mode, CUPTI attached", {}, {}});
  columns.push_back({"assert", "telemetry started, assert mode, CUPTI attached", {}, {}});
  columns.push_back({"nvtx_after", "after stop(): CUPTI detached (drift check for nvtx)", {}, {}});
  Column& off = columns[0];
  Column& nvtx = columns[1];
  Column& count = columns[2];
  Column& assert_ = columns[3];
  Column& after = columns[4];

  // 1. off, in a child forked before this process touches CUDA or NVTX.
  if (o.fork_off) {
    int const rc = run_off_child(o, off.samples);
    if (rc == kNoDevice) {
      std::printf("telemetry_overhead: no CUDA device: skipping (exit 0)\n");
      return 0;
    }
    if (rc != 0 || off.samples.empty()) std::fprintf(stderr, "telemetry_overhead: the off child failed (%d)\n", rc);
  }

  // 2. This process: NVTX tool = libcupti from the first NVTX call on, as start() arranges.
  pt::ensure_nvtx_injection();
  if (!have_device()) {
    std::printf("telemetry_overhead: no CUDA device: skipping (exit 0)\n");
    return 0;
  }
  cudaDeviceProp prop{};
  int device = 0;
  cudaGetDevice(&device);
  cudaGetDeviceProperties(&prop, device);
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

  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << "{\n  \"benchmark\": \"telemetry_overhead\",\n  \"device\": \"" << prop.name << "\",\n"
        << "  \"loop_kind\": \"" << (o.loop == LoopKind::small ? "small" : "pipeline") << "\",\n"
        << "  \"loop\": \"" << describe(o.loop) << "\",\n"
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
    out << "\n  }\n}\n";
    if (!out) {
      std::fprintf(stderr, "telemetry_overhead: cannot write %s\n", o.json.c_str());
      return 1;
    }
    std::printf("JSON: %s\n", o.json.c_str());
  }
  return 0;
}
