// Tile pipeline: producer kernels on a focus and a peripheral stream push tile records (one
// warp-aggregated reservation per warp); a consumer on its own stream, handed the work by CUDA
// events, pops them in bulk. Prints throughput and counts. No memcpy, no sync in the loop: the
// popped count arrives through pinned mapped memory.
//
// Without a GPU it runs the same ring algorithm, compiled for the host, under std::threads.
#include <pbm/device.cuh>
#include <pbm/error.hpp>
#include <pbm/mailbox.hpp>
#include <pbm/stream.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#if PBM_EXAMPLE_EXPORTERS
#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/exporters/samples.hpp>
#endif

struct Tile {              // 64-byte record
  std::uint32_t id;        // tile index
  std::uint32_t cls;       // 0 focus, 1 peripheral
  float values[14];
};

__global__ void produce(pbm::MailboxRef box, std::uint32_t first, std::uint32_t n, std::uint32_t cls) {
  for (std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i - threadIdx.x < n; i += gridDim.x * blockDim.x) {
    Tile t{first + i, cls, {}};
    for (int k = 0; k < 14; ++k) t.values[k] = static_cast<float>(first + i) * 0.5f + k;
    pbm::warp_push(box, &t, i < n);  // whole warps call together; out-of-range lanes only take part
  }
}

int run_on_host(std::uint32_t tiles, int linger);

// PBM_PROMETHEUS_ADDR: serve /metrics; PBM_REPORT_JSON: write the JSON report at exit. Both paths.
void serve_metrics() {
#if PBM_EXAMPLE_EXPORTERS
  auto const metrics = pbm::exporters::serve_from_env();  // PBM_PROMETHEUS_ADDR, e.g. 127.0.0.1:9464
  if (metrics.serving) std::printf("metrics       %s\n", metrics.url.c_str());
#endif
}

void linger_for(int seconds) {
  if (seconds <= 0) return;
  std::printf("lingering     %d s for scrapers\n", seconds);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
}

// tile_pipeline [rounds] [--linger SECONDS]: with PBM_PROMETHEUS_ADDR set, serves /metrics while it
// runs and for SECONDS after (so a scraper sees the final counts), with or without a GPU.
int main(int argc, char** argv) {
  std::uint32_t rounds = 50;
  int linger = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--linger") == 0 && i + 1 < argc) linger = std::atoi(argv[++i]);
    else if (std::atoi(argv[i]) > 0) rounds = static_cast<std::uint32_t>(std::atoi(argv[i]));
    else return std::fprintf(stderr, "usage: %s [rounds] [--linger SECONDS]\n", argv[0]), 2;
  }
  std::uint32_t const per_round = 1u << 16;  // tiles per producer per round
  int devices = 0;
  cudaError_t const counted = cudaGetDeviceCount(&devices);
  if (counted != cudaSuccess || devices == 0) {
    // Why, in pbm's words: "no CUDA driver (libcuda.so.1 not loadable)" is not an old driver.
    std::printf("no CUDA device (%s): running the host-compiled ring under std::thread instead\n",
                counted != cudaSuccess ? pbm::describe_cuda_error(counted).c_str() : "0 devices");
    serve_metrics();
    return run_on_host(rounds * per_round / 16, linger);
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  pbm::Mailbox box(4 * per_round, sizeof(Tile), 0, "tiles");
  serve_metrics();
  pbm::Stream focus(pbm::StreamClass::focus), peripheral(pbm::StreamClass::peripheral),
      consumer(pbm::StreamClass::focus);
  pbm::Event focus_done, peripheral_done;
  Tile* dst[2] = {nullptr, nullptr};  // double-buffered: round r pops while round r + 1 produces
  cudaMalloc(&dst[0], sizeof(Tile) * 2 * per_round);
  cudaMalloc(&dst[1], sizeof(Tile) * 2 * per_round);

  std::uint64_t popped = 0;
  pbm::PopHandle previous;
  auto const start = std::chrono::steady_clock::now();
  for (std::uint32_t r = 0; r < rounds; ++r) {
    produce<<<264, 256, 0, focus>>>(box.ref(), 2 * r * per_round, per_round, 0);
    produce<<<264, 256, 0, peripheral>>>(box.ref(), (2 * r + 1) * per_round, per_round, 1);
    pbm::handoff(focus_done, focus, consumer);  // events, never a host sync
    pbm::handoff(peripheral_done, peripheral, consumer);
    pbm::PopHandle current = box.pop_bulk_async(dst[r % 2], 2 * per_round, consumer);
    if (previous.valid()) popped += previous.wait();  // count via pinned memory, no memcpy
    previous = std::move(current);
  }
  popped += previous.wait();
  auto const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cudaFree(dst[0]);
  cudaFree(dst[1]);
  pbm::Stats const s = box.stats();
  std::printf("device        %s\n", prop.name);
  std::printf("rounds        %u x 2 producers x %u tiles of %zu B\n", rounds, per_round, sizeof(Tile));
  std::printf("pushed        %llu\n", static_cast<unsigned long long>(s.pushed));
  std::printf("popped        %llu (%llu non-empty pops)\n", static_cast<unsigned long long>(popped),
              static_cast<unsigned long long>(s.pop_calls));
  std::printf("dropped       %llu\n", static_cast<unsigned long long>(s.dropped));
  std::printf("left          %llu\n", static_cast<unsigned long long>(s.occupancy));
  std::printf("throughput    %.1f M tiles/s, %.2f GB/s through the mailbox\n", popped / seconds / 1e6,
              popped * sizeof(Tile) / seconds / 1e9);
  bool const ok = popped + s.occupancy == s.pushed && s.pushed + s.dropped == 2ull * rounds * per_round;
  linger_for(linger);
  std::printf("%s\n", ok ? "accounted: pushed = popped + left, pushed + dropped = produced" : "ACCOUNTING MISMATCH");
  return ok ? 0 : 1;
}

// The same ring algorithm on host memory: focus and peripheral producer threads, one consumer.
// It is exported like a device mailbox (same series, mailbox="tiles") with device="-1": host memory.
struct HostMailbox {
  explicit HostMailbox(std::uint64_t capacity)
      : header(pbm::header_bytes(capacity) / 8 + 16), payload(capacity + 1) {
    auto* h = reinterpret_cast<pbm::RingHeader*>((reinterpret_cast<std::uintptr_t>(header.data()) + 127) / 128 * 128);
    ring = {h, reinterpret_cast<std::uint64_t*>(h + 1), reinterpret_cast<unsigned char*>(payload.data()), capacity,
            sizeof(Tile), 0};
    pbm::detail::initialize(ring);
  }
  /// What pbm::mailboxes() reports for a device mailbox, read from the ring's counters.
  pbm::MailboxInfo info() const {
    auto const c = pbm::detail::read_counters(*ring.header);
    pbm::MailboxInfo m;
    m.name = "tiles";
    m.device = -1;
    m.stats.pushed = c.reserve;
    m.stats.popped = c.release;
    m.stats.dropped = c.dropped;
    m.stats.pop_calls = c.pop_calls;
    m.stats.claimed = c.consume;
    m.stats.occupancy = c.reserve >= c.release ? c.reserve - c.release : 0;
    m.stats.capacity = ring.capacity;
    m.stats.stride = ring.stride;
    m.pop_calls[static_cast<int>(pbm::StreamClass::focus)] = pop_calls.load(std::memory_order_relaxed);
    m.pop_requested_records = pop_requested.load(std::memory_order_relaxed);
    return m;  // push_calls stay 0: records are pushed by the producers, as kernels do on a GPU
  }
  std::vector<std::uint64_t> header;
  std::vector<Tile> payload;
  pbm::detail::RingView ring{};
  std::atomic<std::uint64_t> pop_calls{0}, pop_requested{0};
};

int run_on_host(std::uint32_t tiles, int linger) {
  std::uint64_t const capacity = 4096;
  // Shared with the metrics source, which lives until exit (the JSON report is written then).
  auto box = std::make_shared<HostMailbox>(capacity);
#if PBM_EXAMPLE_EXPORTERS
  pbm::exporters::add_source([box] { return pbm::exporters::mailbox_samples({box->info()}); });
#endif
  pbm::detail::RingView const ring = box->ring;
  auto producer = [&](std::uint32_t cls) {
    for (std::uint32_t i = 0; i < tiles;) {
      // Push only with room for both producers' next record: a full ring would count a drop.
      auto const c = pbm::detail::read_counters(*ring.header);
      Tile t{2 * i + cls, cls, {}};
      if (c.reserve - c.release + 2 <= capacity && pbm::detail::try_push(ring, &t)) ++i;
      else std::this_thread::yield();
    }
  };
  auto const start = std::chrono::steady_clock::now();
  std::thread a(producer, 0), b(producer, 1);
  std::vector<Tile> batch(1024);
  std::uint64_t popped = 0;
  while (popped < 2ull * tiles) {
    std::uint64_t const n = pbm::detail::pop_bulk(ring, batch.data(), batch.size());
    if (n == 0) { std::this_thread::yield(); continue; }  // an empty poll is not counted as a pop call
    box->pop_calls.fetch_add(1, std::memory_order_relaxed);
    box->pop_requested.fetch_add(batch.size(), std::memory_order_relaxed);
    popped += n;
  }
  a.join();
  b.join();
  auto const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  pbm::Stats const s = box->info().stats;
  std::printf("host ring     2 producer threads x %u tiles, 1 consumer, capacity %llu\n", tiles,
              static_cast<unsigned long long>(capacity));
  std::printf("pushed        %llu\npopped        %llu\ndropped       %llu\n", static_cast<unsigned long long>(s.pushed),
              static_cast<unsigned long long>(s.popped), static_cast<unsigned long long>(s.dropped));
  std::printf("throughput    %.1f M tiles/s\n", popped / seconds / 1e6);
  bool const ok = s.pushed == s.popped && s.popped == 2ull * tiles;
  linger_for(linger);
  std::printf("%s\n", ok ? "accounted: pushed = popped = produced" : "ACCOUNTING MISMATCH");
  return ok ? 0 : 1;
}
