// Concurrent scrapers against one /metrics endpoint for a fixed time: every response must be a
// 200 with the exposition in it. Prints count, errors and latency percentiles; exit 1 on any error.
//
//   pbm_scrape_load PORT [CLIENTS=20] [SECONDS=10]
#include "http_get.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pbm_scrape_load PORT [CLIENTS] [SECONDS]\n");
    return 2;
  }
  int const port = std::atoi(argv[1]);
  int const clients = argc > 2 ? std::atoi(argv[2]) : 20;
  double const seconds = argc > 3 ? std::atof(argv[3]) : 10;
  if (port <= 0 || clients <= 0 || clients > 256 || !(seconds > 0 && seconds <= 120)) return 2;

  using Clock = std::chrono::steady_clock;
  auto const deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      std::vector<std::string> bad;
      while (Clock::now() < deadline) {  // each scrape is bounded by http_get's 5 s timeouts
        auto const t0 = Clock::now();
        auto const r = pbm::exporters::testing::http_get(port);
        double const ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        mine.push_back(ms);
        if (r.status != 200 || r.body.find("pbm_build_info") == std::string::npos ||
            r.body.find("pbm_push_records_total") == std::string::npos)
          bad.push_back("status " + std::to_string(r.status) + ", " + std::to_string(r.body.size()) + " bytes");
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      errors.insert(errors.end(), bad.begin(), bad.end());
    });
  }
  for (auto& t : threads) t.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    std::size_t i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(latencies_ms.size() - 1) + 0.5);
    return latencies_ms[std::min(i, latencies_ms.size() - 1)];
  };
  std::printf("scrapes=%zu clients=%d seconds=%.1f rate=%.0f/s errors=%zu p50=%.2fms p90=%.2fms p99=%.2fms max=%.2fms\n",
              latencies_ms.size(), clients, seconds, static_cast<double>(latencies_ms.size()) / seconds, errors.size(),
              pct(50), pct(90), pct(99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
  for (std::size_t i = 0; i < errors.size() && i < 10; ++i) std::printf("error: %s\n", errors[i].c_str());
  return errors.empty() && !latencies_ms.empty() ? 0 : 1;
}
