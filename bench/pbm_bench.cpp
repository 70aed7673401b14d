// pbm_bench: pbm against what users would do instead, figure by figure (BENCHMARKS.md).
//
//   pbm_bench [--quick | --full] [--only 1,2,3,4,5,8] [--json PATH] [--probe]
//
// Figures (each beside its floor or rival, measured in this process, interleaved with it):
//   1  count-to-host latency of a small pop    pbm vs pop + memcpy + sync vs a launch + mapped write
//   2  host cost of an async pop call          vs an empty kernel launch
//   3  device-side push throughput             warp_push / block_push / try_push vs a plain write
//   4  bulk pop bandwidth                      vs cudaMemcpyAsync device to device
//   5  focus/peripheral pipeline               vs a staging array; focus latency under load
//   8  scaling of 1, 3 and 4 with record size and batch size (part of figures 1, 3, 4's runs)
// Figures 6 (PyTorch, bench/torch_bench.py) and 7 (telemetry overhead, telemetry_overhead) are
// separate programs; scripts/bench runs all and merges the JSON.
//
// Progress goes to stdout, one line per figure, then a table. Exit status: 0, or 1 when a check
// failed (a count, a drop, a byte: the numbers are then not to be trusted) or a CUDA call failed,
// 2 for usage errors. Without a CUDA device it prints "SKIP: no CUDA device ..." and exits 0.
#include "figures.hpp"
#include "harness.hpp"

#include <pbm/error.hpp>

#include <cuda_runtime_api.h>
#include <unistd.h>

#include <cstdint>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <string>

namespace {

using pbm::bench::Context;
using pbm::bench::Json;

struct Options {
  pbm::bench::Mode mode = pbm::bench::Mode::quick;
  std::set<std::string> only;  // empty: all
  std::string json;
  bool probe = false;
};

[[noreturn]] void usage(char const* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--quick | --full] [--only 1,2,3,4,5,8] [--json PATH] [--probe]\n"
               "  --quick   short runs (default; well under a minute with every figure)\n"
               "  --full    longer runs, more sizes for the scaling figure (a few minutes)\n"
               "  --only    figures to run (8 = scaling, measured with figures 1, 3 and 4)\n"
               "  --json    write every result to PATH (also env PBM_BENCH_JSON)\n"
               "  --probe   print the device and exit (exit 0; SKIP line without a device)\n",
               argv0);
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  if (char const* env = std::getenv("PBM_BENCH_JSON"); env != nullptr) o.json = env;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "pbm_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") o.mode = pbm::bench::Mode::quick;
    else if (a == "--full") o.mode = pbm::bench::Mode::full;
    else if (a == "--json") o.json = value();
    else if (a == "--probe") o.probe = true;
    else if (a == "--only") {
      std::string const list = value();
      std::size_t start = 0;
      while (start <= list.size()) {
        std::size_t const comma = list.find(',', start);
        std::string const item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item != "1" && item != "2" && item != "3" && item != "4" && item != "5" && item != "8") {
          std::fprintf(stderr, "pbm_bench: --only: unknown figure '%s' (1, 2, 3, 4, 5, 8)\n", item.c_str());
          std::exit(2);
        }
        o.only.insert(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (a == "-h" || a == "--help") {
      usage(argv[0], 0);
    } else {
      std::fprintf(stderr, "pbm_bench: unknown argument '%s'\n", a.c_str());
      usage(argv[0], 2);
    }
  }
  return o;
}

std::string utc_now() {
  std::time_t const t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

/// The results table: one line per row of every figure.
void print_table(Json const& figures) {
  std::printf("\n%-4s %-44s %10s %-8s %-34s %10s %8s %-18s %s\n", "fig", "measured", "value", "unit", "against",
              "its value", "ratio", "ratio is", "goal");
  for (std::string const& id : figures.keys()) {
    Json const& f = figures.at(id);
    for (Json const& r : f.at("table").elements()) {
      std::string goal = "-";
      Json const& g = r.at("goal");
      if (g.kind() == Json::Kind::object) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s %g: %s", g.at("op").string().c_str(), g.at("target").number(),
                      g.at("met").boolean() ? "MET" : "NOT MET");
        goal = buf;
      }
      std::printf("%-4s %-44s %10.4g %-8s %-34s %10.4g %8.3f %-18s %s\n", id.c_str(), r.at("item").string().c_str(),
                  r.at("value").number(), r.at("unit").string().c_str(), r.at("reference").string().c_str(),
                  r.at("reference_value").number(), r.at("ratio").number(), r.at("ratio_is").string().c_str(),
                  goal.c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options const o = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show at once under ctest and tee

  int count = 0;
  cudaError_t const counted = cudaGetDeviceCount(&count);
  if (counted != cudaSuccess || count == 0) {
    std::printf("SKIP: no CUDA device (%s): pbm_bench has nothing to measure\n",
                counted != cudaSuccess ? pbm::describe_cuda_error(counted).c_str() : "0 devices");
    return 0;
  }
  // Before the context exists: host waits spin (pbm's wait(spin) does; so the rivals' syncs do too).
  cudaError_t const flags = cudaSetDeviceFlags(cudaDeviceScheduleSpin);
  bool const spin_schedule = flags == cudaSuccess;
  if (!spin_schedule) {
    std::fprintf(stderr, "pbm_bench: cudaSetDeviceFlags(cudaDeviceScheduleSpin) failed (%s); syncs use the default\n",
                 cudaGetErrorName(flags));
    static_cast<void>(cudaGetLastError());
  }
  Context ctx;
  ctx.mode = o.mode;
  PBM_BENCH_CUDA(cudaSetDevice(0));
  PBM_BENCH_CUDA(cudaGetDevice(&ctx.device));
  PBM_BENCH_CUDA(cudaGetDeviceProperties(&ctx.prop, ctx.device));
  ctx.sms = ctx.prop.multiProcessorCount;
  int driver = 0, runtime = 0;
  PBM_BENCH_CUDA(cudaDriverGetVersion(&driver));
  PBM_BENCH_CUDA(cudaRuntimeGetVersion(&runtime));
  PBM_BENCH_CUDA(cudaFree(nullptr));  // create the context now, not inside a timed region
  int least = 0, greatest = 0;
  PBM_BENCH_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  std::printf("pbm_bench: %s (sm_%d%d, %d SMs, %.0f GiB), CUDA driver %s, runtime %s, mode %s\n", ctx.prop.name,
              ctx.prop.major, ctx.prop.minor, ctx.sms,
              static_cast<double>(ctx.prop.totalGlobalMem) / (1024.0 * 1024 * 1024), version_string(driver).c_str(),
              version_string(runtime).c_str(), ctx.quick() ? "quick" : "full");
  if (o.probe) return 0;

  Json out = Json::object();
  out["schema"] = "pbm-bench/1";
  out["benchmark"] = "pbm_bench";
  out["mode"] = ctx.quick() ? "quick" : "full";
  out["date"] = utc_now();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  out["host"] = host;
  Json& dev = out["device"];
  dev["name"] = ctx.prop.name;
  dev["compute_capability"] = std::to_string(ctx.prop.major) + "." + std::to_string(ctx.prop.minor);
  dev["sms"] = ctx.sms;
  dev["memory_bytes"] = static_cast<unsigned long long>(ctx.prop.totalGlobalMem);
  dev["memory_bus_bits"] = ctx.prop.memoryBusWidth;
  dev["l2_bytes"] = ctx.prop.l2CacheSize;
  dev["cuda_driver_version"] = version_string(driver);
  dev["cuda_runtime_version"] = version_string(runtime);
  dev["stream_priority_least"] = least;
  dev["stream_priority_greatest"] = greatest;
  dev["host_sync_schedule"] = spin_schedule ? "cudaDeviceScheduleSpin" : "default";

  pbm::bench::Watchdog watchdog;
  ctx.watchdog = &watchdog;
  auto wanted = [&](char const* id) { return o.only.empty() || o.only.count(id) != 0; };
  bool const scaling_wanted = wanted("8");
  Json figures = Json::object();
  Json scaling = Json::object();
  double const limit_s = ctx.quick() ? 90 : 400;
  std::int64_t const t_start = pbm::bench::now_ns();

  struct Step {
    char const* id;
    char const* title;
    bool scales;
    Json (*run)(Context&, Json*);
  };
  Step const steps[] = {
      {"1", "count-to-host latency of a small pop", true, pbm::bench::figure_count_latency},
      {"2", "host cost of an async pop call", false, [](Context& c, Json*) { return pbm::bench::figure_call_cost(c); }},
      {"3", "device-side push throughput", true, pbm::bench::figure_push_throughput},
      {"4", "bulk pop bandwidth", true, pbm::bench::figure_pop_bandwidth},
      {"5", "focus/peripheral pipeline", false, [](Context& c, Json*) { return pbm::bench::figure_pipeline(c); }},
  };
  int total = 0, done = 0;
  for (Step const& s : steps)
    if (wanted(s.id) || (scaling_wanted && s.scales)) ++total;
  for (Step const& s : steps) {
    bool const main_wanted = wanted(s.id);
    bool const scale_here = scaling_wanted && s.scales;
    if (!main_wanted && !scale_here) continue;
    ++done;
    std::printf("[pbm_bench] (%d/%d) figure %s: %s%s ...\n", done, total, s.id, s.title,
                scale_here ? " (+ scaling)" : "");
    watchdog.arm(std::string("figure ") + s.id, limit_s);
    std::size_t const errors_before = ctx.errors.size();
    std::int64_t const t0 = pbm::bench::now_ns();
    Json f = s.run(ctx, scale_here ? &scaling : nullptr);
    double const secs = static_cast<double>(pbm::bench::now_ns() - t0) / 1e9;
    watchdog.disarm();
    bool const clean = ctx.errors.size() == errors_before;
    f["seconds"] = secs;
    f["checks_passed"] = clean;
    std::printf("[pbm_bench]        figure %s done in %.1f s%s\n", s.id, secs, clean ? "" : " (CHECKS FAILED)");
    for (Json const& r : f.at("table").elements())
      std::printf("[pbm_bench]          %-44s %10.4g %-8s vs %-34s %10.4g  %s %.3f\n", r.at("item").string().c_str(),
                  r.at("value").number(), r.at("unit").string().c_str(), r.at("reference").string().c_str(),
                  r.at("reference_value").number(), r.at("ratio_is").string().c_str(), r.at("ratio").number());
    if (main_wanted) figures[s.id] = std::move(f);
  }
  if (scaling_wanted) {
    scaling["id"] = "8";
    scaling["title"] = "Scaling of figures 1, 3 and 4 with record size and batch size";
    scaling["table"] = Json::array();
    figures["8"] = std::move(scaling);
  }
  double const seconds = static_cast<double>(pbm::bench::now_ns() - t_start) / 1e9;
  out["figures"] = figures;
  out["seconds"] = seconds;
  Json& errors = out["errors"];
  errors = Json::array();
  for (std::string const& e : ctx.errors) errors.push_back(e);
  out["valid"] = ctx.errors.empty();

  print_table(figures);
  std::printf("\npbm_bench: %s, %.1f s, %s\n", ctx.prop.name, seconds,
              ctx.errors.empty() ? "all checks passed" : "CHECKS FAILED (numbers above are not to be trusted)");
  if (!o.json.empty()) {
    std::ofstream file(o.json);
    file << out.dump();
    if (!file) {
      std::fprintf(stderr, "pbm_bench: cannot write %s\n", o.json.c_str());
      return 1;
    }
    std::printf("JSON: %s\n", o.json.c_str());
  }
  return ctx.errors.empty() ? 0 : 1;
}
