// A real pbm process for the Prometheus tests: pushes and pops through host-side rings (the ring
// algorithm the kernels run), feeds synthetic CUPTI records through telemetry's real decoder, and
// serves /metrics. Stops by itself after --duration seconds (or on SIGTERM/SIGINT).
//
//   pbm_metrics_fixture [--address 127.0.0.1:0] [--port-file F] [--duration S] [--report F]
#include "host_ring.hpp"

#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/prometheus.hpp>
#include <pbm/exporters/samples.hpp>
#include <pbm/telemetry/telemetry.hpp>

#if PBM_HAVE_CUPTI
#include "decoder.hpp"  // telemetry/src: the entry point CUPTI's buffer callback uses
#endif

#include <cstdint>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace pe = pbm::exporters;
namespace pt = pbm::telemetry;
using pe::testing::HostRing;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

#if PBM_HAVE_CUPTI
// One round of the records a GPU program with problems would produce: a pageable download, a pinned
// async upload, a stream synchronise and a memset, each a real CUPTI 13 struct.
void feed_cupti_records(std::uint32_t& correlation) {
  CUpti_ActivityMemcpy6 copy;
  std::memset(&copy, 0, sizeof copy);
  copy.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  copy.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
  copy.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  copy.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
  copy.bytes = 4096;
  copy.streamId = 7;
  copy.correlationId = ++correlation;
  pbm::telemetry::detail::ingest_record(reinterpret_cast<CUpti_Activity const*>(&copy));

  copy.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  copy.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_PINNED;
  copy.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  copy.flags = CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC;
  copy.bytes = 1 << 16;
  copy.correlationId = ++correlation;
  pbm::telemetry::detail::ingest_record(reinterpret_cast<CUpti_Activity const*>(&copy));

  CUpti_ActivitySynchronization2 sync;
  std::memset(&sync, 0, sizeof sync);
  sync.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  sync.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
  sync.streamId = 7;
  sync.cudaEventId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
  sync.correlationId = ++correlation;
  pbm::telemetry::detail::ingest_record(reinterpret_cast<CUpti_Activity const*>(&sync));

  CUpti_ActivityMemset4 memset_record;
  std::memset(&memset_record, 0, sizeof memset_record);
  memset_record.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  memset_record.bytes = 256;
  memset_record.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  memset_record.correlationId = ++correlation;
  pbm::telemetry::detail::ingest_record(reinterpret_cast<CUpti_Activity const*>(&memset_record));
}
#endif

// Copies and syncs inside NVTX ranges, through the counters' public API (the decoder path above
// has no API callback to attribute ranges from).
void count_ranged_events() {
  pt::Counters& c = pt::counters();
  c.add_memcpy(pt::Direction::HtoD, pt::MemoryKind::pinned, true, "tile_upload", 1 << 16);
  c.add_memcpy(pt::Direction::DtoH, pt::MemoryKind::pageable, false, "tile_readback", 4096);
  c.add_sync(pt::SyncApi::event_synchronize, false, "tile_wait");
  c.add_violation(pt::Rule::sync_unexpected);
}

void usage() {
  std::fprintf(stderr, "usage: pbm_metrics_fixture [--address A] [--port-file F] [--duration S] [--report F]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:0";
  std::string port_file;
  std::string report;
  double duration_s = 30;
  for (int i = 1; i < argc; ++i) {
    std::string const a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--address") address = argv[++i];
    else if (a == "--port-file") port_file = argv[++i];
    else if (a == "--report") report = argv[++i];
    else if (a == "--duration") duration_s = std::atof(argv[++i]);
    else usage();
  }
  if (!(duration_s > 0 && duration_s <= 600)) usage();
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  pt::Config config;
  config.attach = false;  // no GPU needed: counters and policy only
  config.set_nvtx_injection = false;
  pt::start(config);

  HostRing tiles("tiles", 4096, 64);
  HostRing overflow("overflow", 64, 16);  // pushed faster than popped: fills up and drops
  std::size_t const source = pe::add_source([&] {
    return pe::mailbox_samples({tiles.info(), overflow.info()});
  });

  pe::PrometheusConfig pc;
  pc.address = address;
  pe::PrometheusExporter exporter(pc);
  if (!exporter.serving()) {
    std::fprintf(stderr, "pbm_metrics_fixture: %s\n", exporter.status().error.c_str());
    return 3;
  }
  std::printf("serving %s\n", exporter.status().url.c_str());
  std::fflush(stdout);
  if (!port_file.empty()) {  // written whole, then renamed: a reader never sees a partial port
    std::string const tmp = port_file + ".tmp";
    std::ofstream(tmp) << exporter.port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  auto const deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  auto running = [&] { return !g_stop.load() && Clock::now() < deadline; };

  std::thread producer([&] {
    std::vector<unsigned char> batch(64 * 32, 0xab);
    for (std::uint32_t i = 0; running(); ++i) {
      tiles.push(batch.data(), 32, pbm::StreamClass::focus);
      overflow.push(batch.data(), 4, i % 4 == 0 ? pbm::StreamClass::peripheral : pbm::StreamClass::focus);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::thread consumer([&] {
    std::vector<unsigned char> out(64 * 256);
    for (std::uint32_t i = 0; running(); ++i) {
      tiles.pop(out.data(), 256, i % 8 == 0 ? pbm::StreamClass::focus : pbm::StreamClass::peripheral);
      if (i % 2 == 0) overflow.pop(out.data(), 2);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::uint32_t correlation = 1000;
  (void)correlation;
  while (running()) {
#if PBM_HAVE_CUPTI
    feed_cupti_records(correlation);
#endif
    count_ranged_events();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  producer.join();
  consumer.join();
  if (!report.empty()) {  // before the rings' source goes away, so the report shows them
    std::string const error = pe::write_json_report(report);
    if (!error.empty()) {
      std::fprintf(stderr, "pbm_metrics_fixture: %s\n", error.c_str());
      return 4;
    }
  }
  pe::remove_source(source);  // the rings go away with main's scope
  std::printf("done\n");
  return 0;
}
