// Proves an installed pbm works for a downstream project: the host API links and validates input
// anywhere; with a CUDA device, a user kernel pushes through the device API and the host pops.
// Without a device it shows the error a user gets and exits 0.
#include <pbm/error.hpp>
#include <pbm/mailbox.hpp>
#ifdef PBM_CONSUMER_TELEMETRY
#include <pbm/telemetry/telemetry.hpp>
#endif

#include "kernels.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace {

int fail(char const* what) {
  std::fprintf(stderr, "consumer: FAIL: %s\n", what);
  return 1;
}

// Pushes n records from a user kernel, pops them by the host API (into device memory) and by a
// user block_pop kernel, and checks every record arrived once.
int round_trip() {
  constexpr unsigned n = 300;
  pbm::Mailbox box(1024, consumer::kStride, -1, "consumer");
  pbm::Stream stream(pbm::StreamClass::focus);

  PBM_CUDA_TRY(consumer::launch_produce(box.ref(), n, stream));
  void* dst = nullptr;
  void* count_buffer = nullptr;
  PBM_CUDA_TRY(cudaMalloc(&dst, std::size_t{n} * consumer::kStride));
  PBM_CUDA_TRY(cudaMalloc(&count_buffer, sizeof(unsigned long long)));
  auto* const device_count = static_cast<unsigned long long*>(count_buffer);
  std::uint64_t const host_popped = box.pop_bulk(dst, 200, stream);  // host API: at most 200
  std::vector<unsigned> words(std::size_t{n} * 4);
  PBM_CUDA_TRY(cudaMemcpyAsync(words.data(), dst, host_popped * consumer::kStride, cudaMemcpyDeviceToHost, stream));
  PBM_CUDA_TRY(consumer::launch_consume(box.ref(), dst, n, device_count, stream));  // the rest
  unsigned long long device_popped = 0;
  PBM_CUDA_TRY(cudaMemcpyAsync(&device_popped, device_count, sizeof device_popped, cudaMemcpyDeviceToHost, stream));
  PBM_CUDA_TRY(cudaStreamSynchronize(stream));
  PBM_CUDA_TRY(cudaMemcpy(words.data() + host_popped * 4, dst, device_popped * consumer::kStride,
                          cudaMemcpyDeviceToHost));
  PBM_CUDA_TRY(cudaFree(dst));
  PBM_CUDA_TRY(cudaFree(count_buffer));

  std::printf("consumer: pushed %u, popped %llu by host API + %llu by user kernel\n", n,
              static_cast<unsigned long long>(host_popped), device_popped);
  if (host_popped != 200 || host_popped + device_popped != n) return fail("wrong pop counts");
  std::vector<unsigned> ids;
  for (std::size_t r = 0; r < n; ++r) {
    unsigned const* rec = &words[r * 4];
    if (rec[1] != 2 * rec[0] || rec[2] != 0xC0FFEEu) return fail("corrupted record");
    ids.push_back(rec[0]);
  }
  std::sort(ids.begin(), ids.end());
  for (unsigned i = 0; i < n; ++i)
    if (ids[i] != i) return fail("record lost or duplicated");
  pbm::Stats const s = box.stats();
  std::printf("consumer: stats pushed=%llu popped=%llu dropped=%llu\n", static_cast<unsigned long long>(s.pushed),
              static_cast<unsigned long long>(s.popped), static_cast<unsigned long long>(s.dropped));
  return 0;
}

}  // namespace

int main() {
  // Host-only input validation: works without a GPU.
  pbm::validate_geometry(1024, consumer::kStride);
  try {
    pbm::validate_geometry(1024, 6);  // not a multiple of 4
    return fail("validate_geometry accepted stride 6");
  } catch (std::invalid_argument const& e) {
    std::printf("consumer: validate_geometry refuses stride 6: %s\n", e.what());
  }

#ifdef PBM_CONSUMER_TELEMETRY
  pbm::telemetry::Status const st = pbm::telemetry::status();
  std::printf("consumer: telemetry linked (CUPTI built in: %s)\n", st.cupti_built ? "yes" : "no");
#endif

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    static_cast<void>(cudaGetLastError());
    try {
      pbm::Mailbox box(1024, consumer::kStride);
      return fail("a Mailbox was created without a CUDA device");
    } catch (pbm::cuda_error const& e) {
      std::printf("consumer: no CUDA device, Mailbox throws pbm::cuda_error: %s\n", e.what());
    } catch (std::invalid_argument const& e) {
      std::printf("consumer: no CUDA device, Mailbox throws std::invalid_argument: %s\n", e.what());
    }
    std::printf("consumer: OK (no device: round trip skipped)\n");
    return 0;
  }
  try {
    if (int const rc = round_trip(); rc != 0) return rc;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "consumer: FAIL: %s\n", e.what());
    return 1;
  }
  std::printf("consumer: OK (round trip on a CUDA device)\n");
  return 0;
}
