// Stress test of one mailbox: more than 100k producer threads on every SM and consumer blocks
// popping at the same time (issue #8). Skips with "no CUDA device" where none is visible.
//
// Producers: a persistent grid, one producer per thread. Producer p pushes (p, 0), (p, 1), ...
// with try_push, warp_push, or both (alternate warps); in the lossless cases a refused push is
// retried (with a short backoff) until it goes in, so nothing may be missing at the end.
// Consumers: persistent blocks popping concurrently with block_pop, either in their own kernel on
// another stream (started and confirmed resident before the producers are launched, so a full
// mailbox can never starve them of SM slots) or as blocks of one cooperative kernel (co-residency
// guaranteed by the launch). Every loop has a device deadline; the host waits with a watchdog.
//
// What is verified, on the device (only counters come back to the host):
//  * every record that went in was popped exactly once and intact (producer id and sequence
//    number in range, checksum, tag); no record that was refused ever came out;
//  * FIFO per producer in claim order: the ring positions at which consumers claimed a producer's
//    records increase with its sequence numbers. That is the order the mailbox defines (claims
//    are contiguous, disjoint and made in position order). The order in which different
//    consumer blocks *process* their claims is not FIFO (they copy and inspect concurrently) and is
//    not checked. Positions come from block_pop_with_position below, pbm::block_pop's own steps
//    plus the claim's first position (the public API does not hand it out); the case that calls
//    pbm::block_pop itself checks loss, duplicates and integrity only.
//  * the mailbox's Stats agree exactly with what producers and consumers counted: pushed,
//    popped, occupancy, and dropped == refused attempts (retries included).
// A table of 4 bytes per record (claim position + 1, by sequence number and producer) makes the
// check exact whatever order the consumer blocks process in: 4 GB at 10^9 records.
//
// Knobs (the command line wins over the environment):
//   --records N          PBM_STRESS_RECORDS          records per case (default 2^25; at most 4e9)
//   --timeout-s S        PBM_STRESS_TIMEOUT_S        device deadline per phase (default 60 + N / 2e6)
//   --capacity N         PBM_STRESS_CAPACITY         capacity of the lossless cases (default 65536)
//   --consumer-blocks N  PBM_STRESS_CONSUMER_BLOCKS  consumer blocks (default: half the SMs)
//   --producer-blocks N  PBM_STRESS_PRODUCER_BLOCKS  producer blocks of 256 (default: fill the SMs)
//   --fused              PBM_STRESS_FUSED=1          every case as one cooperative kernel
#include "gpu_test_util.cuh"

#include <pbm/device.cuh>
#include <pbm/mailbox.hpp>
#include <pbm/stream.hpp>

#include <cuda/atomic>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

using pbm_test::DeviceBuffer;

constexpr unsigned kThreads = 256;  // every kernel here runs 1-D blocks of this size

// ---------------------------------------------------------------------------------------- knobs

struct Knobs {
  std::uint64_t records = 1ull << 25;
  double timeout_s = 0;  // 0: 60 s + 1 s per 2M records
  std::uint64_t capacity = 1ull << 16;
  unsigned consumer_blocks = 0;  // 0: half the SMs
  unsigned producer_blocks = 0;  // 0: as many as fit beside the consumers
  bool fused = false;
};
Knobs g_knobs;

// Largest record count: claim positions are stored as 32-bit "position + 1" in the check table.
constexpr std::uint64_t kMaxRecords = 4'000'000'000ull;

char const kUsage[] =
    "stress_gpu_test [gtest flags] [--records N] [--timeout-s S] [--capacity N]\n"
    "                [--consumer-blocks N] [--producer-blocks N] [--fused]\n"
    "environment: PBM_STRESS_RECORDS, PBM_STRESS_TIMEOUT_S, PBM_STRESS_CAPACITY,\n"
    "             PBM_STRESS_CONSUMER_BLOCKS, PBM_STRESS_PRODUCER_BLOCKS, PBM_STRESS_FUSED=1\n";

/// Parses a positive count: "1000000000", "1e9" or "2^30".
bool parse_count(char const* text, std::uint64_t& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  if (char const* caret = std::strchr(text, '^')) {
    unsigned long long const base = std::strtoull(text, &end, 10);
    if (end != caret) return false;
    unsigned long long const exponent = std::strtoull(caret + 1, &end, 10);
    if (*end != '\0' || base < 2 || exponent > 63) return false;
    double const v = std::pow(static_cast<double>(base), static_cast<double>(exponent));
    if (v > 1.8e19) return false;
    out = static_cast<std::uint64_t>(v);
    return out > 0;
  }
  double const v = std::strtod(text, &end);
  if (*end != '\0' || !(v >= 1) || v > 1.8e19 || v != std::floor(v)) return false;
  out = static_cast<std::uint64_t>(v);
  return true;
}

bool parse_seconds(char const* text, double& out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  double const v = std::strtod(text, &end);
  if (*end != '\0' || !(v > 0) || v > 86400) return false;
  out = v;
  return true;
}

bool set_knob(std::string const& name, char const* value, std::string& error) {
  std::uint64_t n = 0;
  bool ok = true;
  if (name == "records") {
    ok = parse_count(value, n) && n <= kMaxRecords;
    if (ok) g_knobs.records = n;
  } else if (name == "timeout-s") {
    ok = parse_seconds(value, g_knobs.timeout_s);
  } else if (name == "capacity") {
    ok = parse_count(value, n) && n >= 64 && n <= pbm::kMaxCapacity;
    if (ok) g_knobs.capacity = n;
  } else if (name == "consumer-blocks") {
    ok = parse_count(value, n) && n <= 65536;
    if (ok) g_knobs.consumer_blocks = static_cast<unsigned>(n);
  } else if (name == "producer-blocks") {
    ok = parse_count(value, n) && n <= (1u << 20);
    if (ok) g_knobs.producer_blocks = static_cast<unsigned>(n);
  } else {
    error = "unknown option --" + name;
    return false;
  }
  if (!ok) error = "bad value '" + std::string(value ? value : "") + "' for --" + name;
  return ok;
}

bool read_knobs(int argc, char** argv, std::string& error) {
  struct Env {
    char const* var;
    char const* knob;
  };
  for (Env const e : {Env{"PBM_STRESS_RECORDS", "records"}, Env{"PBM_STRESS_TIMEOUT_S", "timeout-s"},
                      Env{"PBM_STRESS_CAPACITY", "capacity"}, Env{"PBM_STRESS_CONSUMER_BLOCKS", "consumer-blocks"},
                      Env{"PBM_STRESS_PRODUCER_BLOCKS", "producer-blocks"}}) {
    char const* v = std::getenv(e.var);
    if (v != nullptr && *v != '\0' && !set_knob(e.knob, v, error)) {
      error += std::string(" (from ") + e.var + ")";
      return false;
    }
  }
  if (char const* v = std::getenv("PBM_STRESS_FUSED")) g_knobs.fused = *v != '\0' && std::strcmp(v, "0") != 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--fused") {
      g_knobs.fused = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      error = "unexpected argument '" + arg + "'";
      return false;
    }
    arg = arg.substr(2);
    std::string value;
    if (auto const eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      error = "--" + arg + " needs a value";
      return false;
    }
    if (!set_knob(arg, value.c_str(), error)) return false;
  }
  return true;
}

double timeout_seconds(std::uint64_t records) {
  return g_knobs.timeout_s > 0 ? g_knobs.timeout_s : 60.0 + static_cast<double>(records) / 2e6;
}

// -------------------------------------------------------------------------------------- records

struct alignas(16) Rec {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t check;
  std::uint32_t tag;  // ~seq
};
static_assert(sizeof(Rec) == 16);

__host__ __device__ inline std::uint32_t checksum(std::uint32_t producer, std::uint32_t seq) {
  return producer * 2654435761u ^ (seq * 40503u + 7u);
}

__host__ __device__ inline Rec make_record(std::uint32_t producer, std::uint32_t seq) {
  return Rec{producer, seq, checksum(producer, seq), ~seq};
}

/// Who pushes what. Rows 0..producers-1 are producer threads: row p pushes sequence numbers
/// 0..count(p)-1. Rows producers..producers+fillers-1 are records the host pushed beforehand,
/// one each. The check table holds one 32-bit word per (sequence number, row), row fastest:
/// records popped at about the same time sit close together.
struct Geometry {
  std::uint32_t producers;
  std::uint32_t per_producer;  // every producer pushes this many...
  std::uint32_t extra;         // ...and producers [0, extra) one more
  std::uint32_t fillers;

  __host__ __device__ std::uint32_t rows() const { return producers + fillers; }
  __host__ __device__ std::uint32_t count(std::uint32_t row) const {
    if (row < producers) return per_producer + (row < extra ? 1u : 0u);
    return row < rows() ? 1u : 0u;
  }
  __host__ __device__ std::uint32_t depth() const {
    std::uint32_t const d = per_producer + (extra != 0 ? 1u : 0u);
    return d == 0 ? 1u : d;
  }
  __host__ __device__ std::uint64_t entries() const { return std::uint64_t{depth()} * rows(); }
  __host__ __device__ std::uint64_t index(std::uint32_t row, std::uint32_t seq) const {
    return std::uint64_t{seq} * rows() + row;
  }
  __host__ __device__ bool intact(Rec const& r) const {
    return r.producer < rows() && r.seq < count(r.producer) && r.check == checksum(r.producer, r.seq) &&
           r.tag == ~r.seq;
  }
};

/// Counters in device memory, shared by every kernel of a case.
struct Tally {
  unsigned long long popped;        // records popped by consumers
  unsigned long long pushed;        // producer pushes that went in
  unsigned long long refused;       // producer pushes refused (each one drop in the mailbox's count)
  unsigned long long corrupt;       // popped records with a bad id, sequence number, checksum or tag
  unsigned long long duplicated;    // popped records that had been popped before
  unsigned long long lost;          // (verify) went in, never popped
  unsigned long long phantom;       // (verify) refused, yet popped
  unsigned long long out_of_order;  // (verify) claimed at a position before an earlier record of its producer
  unsigned long long received;      // (verify) distinct records popped
  unsigned producers_done;          // producer threads that finished
  unsigned abort;                   // set by whoever gives up; every loop watches it
  unsigned producer_timeouts;       // producer threads that hit the deadline while retrying
  unsigned consumer_timeouts;       // consumer blocks that hit the deadline before their goal
};

// ------------------------------------------------------------------------------- device helpers

__device__ inline unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

template <class T>
__device__ inline T load_relaxed(T& x) {
  return cuda::atomic_ref<T, cuda::thread_scope_device>(x).load(cuda::std::memory_order_relaxed);
}

/// pbm::block_pop (pbm/device.cuh) step for step, plus the claim's first ring position in *first:
/// record i of the claim was at position *first + i. Same preconditions (every thread of the block
/// calls it with the same arguments; 1-D block here).
__device__ std::uint64_t block_pop_with_position(pbm::MailboxRef ref, void* dst, std::uint64_t max,
                                                 std::uint64_t* first) {
  pbm::detail::RingView const v = ref.view();
  std::uint64_t base = 0;
  std::uint64_t const k = pbm::detail::block_claim(v, max, &base);
  pbm::detail::copy_out(v, static_cast<unsigned char*>(dst), base, 0, k, threadIdx.x, blockDim.x);
  __threadfence();
  __syncthreads();  // every read of the claimed slots is done before they are released
  if (threadIdx.x == 0 && k != 0) pbm::detail::release_in_order(v, base, k);
  __syncthreads();
  *first = base;
  return k;
}

enum class Push : int { thread, warp, mixed };

struct ProducerArgs {
  pbm::MailboxRef ref;
  Geometry geo;
  Tally* tally;
  unsigned* accepted;  // one bit per table entry: the push went in (null: not recorded)
  Push push;
  bool retry;          // retry refused pushes until they go in (lossless) or move on (drop)
  unsigned long long timeout_ns;
};

struct ConsumerArgs {
  pbm::MailboxRef ref;
  Geometry geo;
  Tally* tally;
  std::uint32_t* table;        // claim position + 1 per record (1 where the position is unknown)
  Rec* scratch;                // pop_max records per consumer block
  unsigned volatile* started;  // mapped host memory: one flag per consumer block
  unsigned pop_max;
  bool positions;                      // pop with block_pop_with_position (else pbm::block_pop)
  unsigned long long stop_at_popped;   // stop once the tally counts this many pops (0: no such goal)
  unsigned stop_at_producers_done;     // stop once this many producer threads finished (0: no such goal)
  unsigned pause_ns;                   // sleep between pops: a slow consumer
  unsigned long long timeout_ns;
};

/// One producer thread: pushes its count(id) records in sequence order.
__device__ void produce(ProducerArgs const& a, unsigned block) {
  std::uint32_t const id = block * blockDim.x + threadIdx.x;
  std::uint32_t const n = a.geo.count(id);
  bool const warp = a.push == Push::warp || (a.push == Push::mixed && (id / 32) % 2 == 1);
  unsigned long long const deadline = now_ns() + a.timeout_ns;
  unsigned long long pushed = 0, refused = 0;
  unsigned streak = 0;
  bool late = false, aborted = false;
  for (std::uint32_t s = 0; s < n;) {
    Rec const r = make_record(id, s);
    bool const in = warp ? pbm::warp_push(a.ref, &r) : pbm::try_push(a.ref, &r);
    if (in) {
      ++pushed;
      streak = 0;
      if (a.accepted != nullptr) {
        std::uint64_t const idx = a.geo.index(id, s);
        atomicOr(&a.accepted[idx / 32], 1u << (idx % 32));
      }
      ++s;
      continue;
    }
    ++refused;
    if (!a.retry) {
      ++s;
      continue;
    }
    if (refused % 64 == 0) {
      late = now_ns() > deadline;
      aborted = load_relaxed(a.tally->abort) != 0;
      if (late || aborted) break;
    }
    __nanosleep(32u << (streak < 5 ? streak : 5));  // 32 ns .. 1 us
    ++streak;
  }
  if (pushed != 0) atomicAdd(&a.tally->pushed, pushed);
  if (refused != 0) atomicAdd(&a.tally->refused, refused);
  if (late) {
    atomicAdd(&a.tally->producer_timeouts, 1u);
    atomicExch(&a.tally->abort, 1u);
  }
  __threadfence();
  atomicAdd(&a.tally->producers_done, 1u);
}

/// One consumer block: pops until its goal (or the deadline, or an abort), checking every record.
__device__ void consume(ConsumerArgs const& a, unsigned consumer) {
  __shared__ int s_stop;
  if (threadIdx.x == 0) {
    a.started[consumer] = 1u;
    __threadfence_system();
  }
  Rec* const mine = a.scratch + std::size_t{consumer} * a.pop_max;
  std::uint64_t const origin = a.ref.view().origin;
  unsigned long long const deadline = now_ns() + a.timeout_ns;
  for (;;) {
    std::uint64_t first = 0;
    std::uint64_t const k = a.positions ? block_pop_with_position(a.ref, mine, a.pop_max, &first)
                                        : pbm::block_pop(a.ref, mine, a.pop_max);
    unsigned long long corrupt = 0, duplicated = 0;
    for (std::uint64_t i = threadIdx.x; i < k; i += blockDim.x) {
      Rec const r = mine[i];
      if (!a.geo.intact(r)) {
        ++corrupt;
        continue;
      }
      std::uint32_t const mark = a.positions ? static_cast<std::uint32_t>(first + i - origin) + 1u : 1u;
      if (atomicExch(&a.table[a.geo.index(r.producer, r.seq)], mark) != 0u) ++duplicated;
    }
    if (corrupt != 0) atomicAdd(&a.tally->corrupt, corrupt);
    if (duplicated != 0) atomicAdd(&a.tally->duplicated, duplicated);
    if (threadIdx.x == 0) {
      unsigned long long const popped =
          k != 0 ? atomicAdd(&a.tally->popped, static_cast<unsigned long long>(k)) + k : load_relaxed(a.tally->popped);
      bool const done = (a.stop_at_popped != 0 && popped >= a.stop_at_popped) ||
                        (a.stop_at_producers_done != 0 &&
                         load_relaxed(a.tally->producers_done) >= a.stop_at_producers_done);
      bool const aborted = load_relaxed(a.tally->abort) != 0;
      bool const late = !done && !aborted && now_ns() > deadline;
      if (late) {
        atomicAdd(&a.tally->consumer_timeouts, 1u);
        atomicExch(&a.tally->abort, 1u);
      }
      s_stop = done || aborted || late;
    }
    __syncthreads();
    if (s_stop) break;
    __syncthreads();  // everyone read s_stop before thread 0 writes it again
    if (a.pause_ns != 0) __nanosleep(a.pause_ns);
  }
}

__global__ void __launch_bounds__(kThreads, 5) producer_kernel(ProducerArgs a) { produce(a, blockIdx.x); }

__global__ void __launch_bounds__(kThreads) consumer_kernel(ConsumerArgs a) { consume(a, blockIdx.x); }

/// Both roles in one grid, launched cooperatively so that every block is resident at once.
__global__ void __launch_bounds__(kThreads) persistent_kernel(ProducerArgs p, ConsumerArgs c, unsigned consumers) {
  if (blockIdx.x < consumers)
    consume(c, blockIdx.x);
  else
    produce(p, blockIdx.x - consumers);
}

/// One thread per row: every record that went in was popped, none that was refused was, and (with
/// positions) the claim positions of a row's records increase with their sequence numbers.
__global__ void __launch_bounds__(kThreads) verify_kernel(std::uint32_t const* table, unsigned const* accepted,
                                                          Geometry geo, bool check_order, Tally* tally) {
  std::uint32_t const row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= geo.rows()) return;
  unsigned long long lost = 0, phantom = 0, out_of_order = 0, received = 0;
  std::uint32_t last = 0;  // marks are >= 1
  for (std::uint32_t s = 0, n = geo.count(row); s < n; ++s) {
    std::uint64_t const idx = geo.index(row, s);
    std::uint32_t const mark = table[idx];
    bool const went_in = accepted == nullptr || row >= geo.producers || ((accepted[idx / 32] >> (idx % 32)) & 1u) != 0;
    if (mark == 0) {
      lost += went_in ? 1 : 0;
      continue;
    }
    ++received;
    phantom += went_in ? 0 : 1;
    if (check_order) {
      out_of_order += mark <= last ? 1 : 0;
      last = mark;
    }
  }
  if (lost != 0) atomicAdd(&tally->lost, lost);
  if (phantom != 0) atomicAdd(&tally->phantom, phantom);
  if (out_of_order != 0) atomicAdd(&tally->out_of_order, out_of_order);
  if (received != 0) atomicAdd(&tally->received, received);
}

// ---------------------------------------------------------------------------------- host harness

/// Pinned host memory mapped into the device: flags the kernels set, read with no CUDA call.
struct MappedFlags {
  explicit MappedFlags(std::size_t n) : size(n) {
    if (cudaHostAlloc(reinterpret_cast<void**>(&host), n * sizeof(unsigned), cudaHostAllocMapped) != cudaSuccess) {
      host = nullptr;
      return;
    }
    std::memset(host, 0, n * sizeof(unsigned));
    if (cudaHostGetDevicePointer(reinterpret_cast<void**>(&device), host, 0) != cudaSuccess) device = nullptr;
  }
  ~MappedFlags() {
    if (host != nullptr) cudaFreeHost(host);
  }
  MappedFlags(MappedFlags const&) = delete;
  MappedFlags& operator=(MappedFlags const&) = delete;
  std::size_t set() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < size; ++i) n += reinterpret_cast<unsigned volatile*>(host)[i] != 0u ? 1 : 0;
    return n;
  }
  unsigned* host = nullptr;
  unsigned* device = nullptr;
  std::size_t size;
};

struct TimingEvent {
  TimingEvent() {
    if (cudaEventCreate(&event) != cudaSuccess) event = nullptr;
  }
  ~TimingEvent() {
    if (event != nullptr) cudaEventDestroy(event);
  }
  TimingEvent(TimingEvent const&) = delete;
  TimingEvent& operator=(TimingEvent const&) = delete;
  cudaEvent_t event = nullptr;
};

/// Sets the device-side abort flag without waiting for the kernels (a copy on its own stream).
void request_abort(Tally* tally, cudaStream_t control) {
  static unsigned const one = 1;
  cudaMemcpyAsync(&tally->abort, &one, sizeof one, cudaMemcpyHostToDevice, control);
  cudaStreamSynchronize(control);
}

/// Waits for `event` on a helper thread (no polling CUDA call that could report "not ready"),
/// at most `seconds`. The kernels bound their own loops by a device deadline shorter than this, so
/// the watchdog only fires when the device stops making progress (e.g. a hang inside the library):
/// it asks the kernels to stop and, if they do not, ends the process, since freeing memory that
/// running kernels use would be worse.
void wait_with_watchdog(cudaEvent_t event, double seconds, Tally* tally, cudaStream_t control, char const* what) {
  int device = 0;
  cudaGetDevice(&device);
  auto done = std::async(std::launch::async, [event, device] {
    cudaSetDevice(device);
    return cudaEventSynchronize(event);
  });
  if (done.wait_for(std::chrono::duration<double>(seconds)) == std::future_status::ready) {
    cudaError_t const e = done.get();
    ASSERT_EQ(e, cudaSuccess) << what << ": " << cudaGetErrorString(e);
    return;
  }
  std::fprintf(stderr, "[ stress   ] %s still running after %.0f s (device deadline passed): asking it to stop\n",
               what, seconds);
  request_abort(tally, control);
  if (done.wait_for(std::chrono::seconds(20)) == std::future_status::ready) {
    cudaError_t const e = done.get();
    ADD_FAILURE() << what << " ignored its device deadline and stopped only when the host aborted it ("
                  << cudaGetErrorString(e) << ")";
    return;
  }
  std::fprintf(stderr, "[ stress   ] FATAL: %s hangs even after an abort request; exiting without cleanup\n", what);
  std::fflush(nullptr);
  std::_Exit(1);
}

/// Producer blocks of `mine` that fit on one SM beside `other_blocks` blocks of `other`.
unsigned blocks_beside(cudaDeviceProp const& prop, cudaFuncAttributes const& mine, int mine_max,
                       cudaFuncAttributes const& other, unsigned other_blocks) {
  auto const regs = [](cudaFuncAttributes const& f) {  // allocated per warp in units of 256
    return static_cast<long>((f.numRegs * 32 + 255) / 256 * 256) * (kThreads / 32);
  };
  auto const smem = [&](cudaFuncAttributes const& f) {
    return static_cast<long>(f.sharedSizeBytes + prop.reservedSharedMemPerBlock);
  };
  for (long b = mine_max; b > 1; --b) {
    long const o = other_blocks;
    if ((b + o) * static_cast<long>(kThreads) > prop.maxThreadsPerMultiProcessor) continue;
    if (b + o > prop.maxBlocksPerMultiProcessor) continue;
    if (b * regs(mine) + o * regs(other) > prop.regsPerMultiprocessor) continue;
    if (b * smem(mine) + o * smem(other) > static_cast<long>(prop.sharedMemPerMultiprocessor)) continue;
    return static_cast<unsigned>(b);
  }
  return 1;  // blocks that find no slot wait for one: still correct, since the consumers run
}

enum class Topology { two_kernels, one_cooperative_kernel };

struct CaseConfig {
  char const* name;
  Push push;
  bool positions;  // consumers pop with block_pop_with_position (claim order checked) or pbm::block_pop
  bool retry;      // lossless (retry refused pushes) or dropping
  Topology topology;
  std::uint64_t capacity;
  unsigned pop_max;
  unsigned consumer_blocks;  // 0: the knob, else half the SMs
  unsigned pause_ns;         // consumer pause between pops
  std::uint64_t prefill;     // records the host pushes before the producers start
};

struct CaseResult {
  Tally tally{};
  pbm::Stats during{};  // right after the concurrent phase
  pbm::Stats after{};   // after the drain (no-retry) and verification
  unsigned long long popped_concurrently = 0;
  unsigned long long drained = 0;
  std::uint64_t records = 0;
  std::uint32_t producers = 0;
  double seconds = 0;
};

char const* to_string(Push p) {
  switch (p) {
    case Push::thread: return "try_push";
    case Push::warp: return "warp_push";
    case Push::mixed: return "try_push+warp_push";
  }
  return "?";
}

void run_case(CaseConfig cfg, CaseResult& out) {
  if (g_knobs.fused) cfg.topology = Topology::one_cooperative_kernel;
  std::uint64_t const records = g_knobs.records;
  double const timeout_s = timeout_seconds(records);
  auto const timeout_ns = static_cast<unsigned long long>(timeout_s * 1e9);
  out.records = records;

  int device = 0;
  PBM_TEST_CUDA(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  PBM_TEST_CUDA(cudaGetDeviceProperties(&prop, device));
  unsigned const sms = static_cast<unsigned>(prop.multiProcessorCount);

  // Load every kernel before any of them spins (lazy loading would wait for the spinning kernel).
  cudaFuncAttributes producer_attr{}, consumer_attr{}, persistent_attr{}, verify_attr{};
  PBM_TEST_CUDA(cudaFuncGetAttributes(&producer_attr, producer_kernel));
  PBM_TEST_CUDA(cudaFuncGetAttributes(&consumer_attr, consumer_kernel));
  PBM_TEST_CUDA(cudaFuncGetAttributes(&persistent_attr, persistent_kernel));
  PBM_TEST_CUDA(cudaFuncGetAttributes(&verify_attr, verify_kernel));

  unsigned consumers = cfg.consumer_blocks != 0         ? cfg.consumer_blocks
                       : g_knobs.consumer_blocks != 0 ? g_knobs.consumer_blocks
                                                      : std::max(1u, sms / 2);
  unsigned producer_blocks = 0;
  if (cfg.topology == Topology::two_kernels) {
    if (g_knobs.producer_blocks != 0) {
      producer_blocks = g_knobs.producer_blocks;
    } else {
      int solo = 0;
      PBM_TEST_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&solo, producer_kernel, kThreads, 0));
      producer_blocks = sms * blocks_beside(prop, producer_attr, solo, consumer_attr, (consumers + sms - 1) / sms);
    }
  } else {
    int per_sm = 0;
    PBM_TEST_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, persistent_kernel, kThreads, 0));
    unsigned const resident = static_cast<unsigned>(per_sm) * sms;
    ASSERT_GE(resident, 2u) << "the persistent kernel does not fit twice on this device";
    if (consumers > resident / 2) consumers = std::max(1u, resident / 2);
    producer_blocks = resident - consumers;
    if (g_knobs.producer_blocks != 0) producer_blocks = std::min(producer_blocks, g_knobs.producer_blocks);
  }
  std::uint32_t const producers = producer_blocks * kThreads;
  out.producers = producers;

  Geometry geo{};
  geo.producers = producers;
  geo.per_producer = static_cast<std::uint32_t>(records / producers);
  geo.extra = static_cast<std::uint32_t>(records % producers);
  geo.fillers = static_cast<std::uint32_t>(cfg.prefill);

  // Device memory: the check table dominates (4 bytes per record).
  std::uint64_t const entries = geo.entries();
  std::uint64_t const accepted_words = cfg.retry ? 0 : (entries + 31) / 32;
  std::size_t const scratch_records = std::size_t{consumers} * cfg.pop_max;
  double const need = 4.0 * static_cast<double>(entries) + 4.0 * static_cast<double>(accepted_words) +
                      16.0 * static_cast<double>(scratch_records) + 20.0 * static_cast<double>(cfg.capacity);
  std::size_t free_bytes = 0, total_bytes = 0;
  PBM_TEST_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  ASSERT_LT(need, 0.9 * static_cast<double>(free_bytes))
      << "the check table for " << records << " records needs " << need / 1e9 << " GB of device memory; "
      << free_bytes / 1e9 << " GB free: lower --records";

  pbm::Mailbox mailbox(cfg.capacity, sizeof(Rec), -1, std::string("stress-") + cfg.name);
  DeviceBuffer<std::uint32_t> table(entries);
  DeviceBuffer<unsigned> accepted(std::max<std::uint64_t>(accepted_words, 1));
  DeviceBuffer<Rec> scratch(scratch_records);
  DeviceBuffer<Tally> tally(1);
  MappedFlags started(consumers);
  ASSERT_NE(table.ptr, nullptr) << "cudaMalloc of " << entries * 4 << " bytes for the check table failed";
  ASSERT_NE(accepted.ptr, nullptr);
  ASSERT_NE(scratch.ptr, nullptr);
  ASSERT_NE(tally.ptr, nullptr);
  ASSERT_NE(started.device, nullptr) << "no mapped pinned memory";
  PBM_TEST_CUDA(cudaMemset(table.ptr, 0, entries * sizeof(std::uint32_t)));
  PBM_TEST_CUDA(cudaMemset(accepted.ptr, 0, accepted.size * sizeof(unsigned)));
  PBM_TEST_CUDA(cudaMemset(tally.ptr, 0, sizeof(Tally)));
  PBM_TEST_CUDA(cudaDeviceSynchronize());

  pbm::Stream consume_stream(pbm::StreamClass::focus), produce_stream(pbm::StreamClass::peripheral);
  pbm::Stream control(pbm::StreamClass::focus);

  // Prefill: one record each for rows producers.., pushed with the host API right before the
  // producers start (same stream), so that they find the mailbox nearly full.
  DeviceBuffer<Rec> fill(std::max<std::uint64_t>(cfg.prefill, 1));
  ASSERT_NE(fill.ptr, nullptr);
  if (cfg.prefill != 0) {
    std::vector<Rec> host_fill(cfg.prefill);
    for (std::uint32_t i = 0; i < geo.fillers; ++i) host_fill[i] = make_record(producers + i, 0);
    fill.from_host(host_fill);
  }
  pbm::PushHandle filled;

  ProducerArgs const pargs{mailbox.ref(), geo, tally.ptr, cfg.retry ? nullptr : accepted.ptr,
                           cfg.push,      cfg.retry, timeout_ns};
  ConsumerArgs cargs{mailbox.ref(), geo,         tally.ptr,     table.ptr,
                     scratch.ptr,   started.device, cfg.pop_max, cfg.positions,
                     cfg.retry ? records + cfg.prefill : 0,  // lossless: everything
                     cfg.retry ? 0u : producers,             // dropping: until the producers are done
                     cfg.pause_ns,  timeout_ns};

  std::printf("[ stress   ] %s: %s x %u producer threads (%u blocks of %u) + %u consumer blocks (%s), %s;"
              " capacity %" PRIu64 ", %" PRIu64 " records, deadline %.0f s\n",
              cfg.name, to_string(cfg.push), producers, producer_blocks, kThreads, consumers,
              cfg.positions ? "block_pop, claim positions" : "pbm::block_pop",
              cfg.topology == Topology::two_kernels ? "two kernels on two streams" : "one cooperative kernel",
              cfg.capacity, records, timeout_s);
  if (producers < 100'000)
    std::printf("[ stress   ] note: %u concurrent producer threads (the goal is >= 100000 on an H100)\n", producers);
  std::fflush(stdout);

  TimingEvent start, end, produced;
  ASSERT_NE(start.event, nullptr);
  ASSERT_NE(end.event, nullptr);
  ASSERT_NE(produced.event, nullptr);
  double const watchdog_s = timeout_s + 30;
  if (cfg.topology == Topology::two_kernels) {
    consumer_kernel<<<consumers, kThreads, 0, consume_stream>>>(cargs);
    PBM_TEST_CUDA(cudaGetLastError());
    // The consumers must hold their SM slots before the producers can fill the mailbox.
    auto const begin = std::chrono::steady_clock::now();
    while (started.set() < consumers) {
      if (std::chrono::steady_clock::now() - begin > std::chrono::seconds(30)) {
        std::size_t const n = started.set();
        request_abort(tally.ptr, control);  // the consumers that did start stop at once
        PBM_TEST_CUDA(cudaEventRecord(end.event, consume_stream));
        wait_with_watchdog(end.event, 30, tally.ptr, control, "the consumers");
        FAIL() << "only " << n << " of " << consumers << " consumer blocks became resident within 30 s";
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    PBM_TEST_CUDA(cudaEventRecord(start.event, produce_stream));
    if (cfg.prefill != 0) filled = mailbox.push(fill.ptr, cfg.prefill, produce_stream);
    producer_kernel<<<producer_blocks, kThreads, 0, produce_stream>>>(pargs);
    if (cudaError_t const e = cudaGetLastError(); e != cudaSuccess) {
      request_abort(tally.ptr, control);  // the consumers would otherwise spin until their deadline
      PBM_TEST_CUDA(cudaStreamSynchronize(consume_stream));
      FAIL() << "producer launch: " << cudaGetErrorString(e);
    }
    PBM_TEST_CUDA(cudaEventRecord(produced.event, produce_stream));
    PBM_TEST_CUDA(cudaStreamWaitEvent(consume_stream, produced.event, 0));
    PBM_TEST_CUDA(cudaEventRecord(end.event, consume_stream));
  } else {
    if (cfg.prefill != 0) filled = mailbox.push(fill.ptr, cfg.prefill, consume_stream);
    PBM_TEST_CUDA(cudaEventRecord(start.event, consume_stream));
    unsigned consumer_count = consumers;
    void* args[] = {const_cast<ProducerArgs*>(&pargs), &cargs, &consumer_count};
    PBM_TEST_CUDA(cudaLaunchCooperativeKernel(reinterpret_cast<void const*>(&persistent_kernel),
                                              dim3(consumers + producer_blocks), dim3(kThreads), args, 0,
                                              consume_stream));
    PBM_TEST_CUDA(cudaEventRecord(end.event, consume_stream));
  }
  wait_with_watchdog(end.event, watchdog_s, tally.ptr, control, "the producers and consumers");
  if (::testing::Test::HasFatalFailure()) return;
  float ms = 0;
  PBM_TEST_CUDA(cudaEventElapsedTime(&ms, start.event, end.event));
  out.seconds = ms / 1e3;
  PBM_TEST_CUDA(cudaMemcpy(&out.tally, tally.ptr, sizeof(Tally), cudaMemcpyDeviceToHost));
  out.popped_concurrently = out.tally.popped;
  if (cfg.prefill != 0) EXPECT_EQ(filled.wait(), cfg.prefill) << "the host prefill did not all go in";
  mailbox.refresh_stats(consume_stream);
  PBM_TEST_CUDA(cudaStreamSynchronize(consume_stream));
  out.during = mailbox.stats();

  // What the producers left in the mailbox comes out now, through the same checks.
  if (out.during.occupancy != 0 && out.tally.abort == 0) {
    cargs.stop_at_popped = out.popped_concurrently + out.during.occupancy;
    cargs.stop_at_producers_done = 0;
    cargs.pause_ns = 0;
    consumer_kernel<<<consumers, kThreads, 0, consume_stream>>>(cargs);
    PBM_TEST_CUDA(cudaGetLastError());
    PBM_TEST_CUDA(cudaEventRecord(end.event, consume_stream));
    wait_with_watchdog(end.event, watchdog_s, tally.ptr, control, "the drain");
    if (::testing::Test::HasFatalFailure()) return;
  }

  verify_kernel<<<(geo.rows() + kThreads - 1) / kThreads, kThreads, 0, consume_stream>>>(
      table.ptr, cfg.retry ? nullptr : accepted.ptr, geo, cfg.positions, tally.ptr);
  PBM_TEST_CUDA(cudaGetLastError());
  mailbox.refresh_stats(consume_stream);
  PBM_TEST_CUDA(cudaStreamSynchronize(consume_stream));
  PBM_TEST_CUDA(cudaMemcpy(&out.tally, tally.ptr, sizeof(Tally), cudaMemcpyDeviceToHost));
  out.after = mailbox.stats();
  out.drained = out.tally.popped - out.popped_concurrently;

  Tally const& t = out.tally;
  double const popped_per_call =
      out.after.pop_calls != 0 ? static_cast<double>(out.after.popped) / static_cast<double>(out.after.pop_calls) : 0;
  std::printf("[ stress   ] %s: %llu records popped in %.3f s: %.1f M records/s; %llu pushes went in, "
              "%llu refused (mailbox drops %" PRIu64 "); %" PRIu64 " pops of %.1f records on average\n",
              cfg.name, t.popped, out.seconds,
              out.seconds > 0 ? static_cast<double>(out.popped_concurrently) / out.seconds / 1e6 : 0.0, t.pushed,
              t.refused, out.after.dropped, out.after.pop_calls, popped_per_call);
  if (cfg.retry)  // collected by scripts/gpu-check into its table of measured figures
    std::printf("FIGURE: mailbox stress %s: %.1f M records/s (%" PRIu64 " records, %u producer threads, %u consumer "
                "blocks, capacity %" PRIu64 ", %s)\n",
                cfg.name, out.seconds > 0 ? static_cast<double>(out.popped_concurrently) / out.seconds / 1e6 : 0.0,
                records, producers, consumers, cfg.capacity,
                cfg.topology == Topology::two_kernels ? "two kernels" : "one cooperative kernel");
  std::printf("[ stress   ] %s: lost %llu, duplicated %llu, corrupt %llu, out of claim order %llu, phantom %llu; "
              "left after the producers %" PRIu64 " (drained %llu); timeouts: producers %u, consumers %u\n",
              cfg.name, t.lost, t.duplicated, t.corrupt, t.out_of_order, t.phantom, out.during.occupancy,
              out.drained, t.producer_timeouts, t.consumer_timeouts);
  std::fflush(stdout);
}

void expect_no_timeouts(CaseResult const& r) {
  EXPECT_EQ(r.tally.producer_timeouts, 0u) << "producers gave up retrying before their deadline: consumers stalled";
  EXPECT_EQ(r.tally.consumer_timeouts, 0u) << "consumers gave up waiting: producers stalled or records vanished";
  EXPECT_EQ(r.tally.abort, 0u) << "a kernel aborted the run";
}

/// Lossless cases: everything that was pushed came out once, intact, in claim order per producer,
/// and the mailbox's counters agree.
void expect_lossless(CaseResult const& r, bool positions) {
  expect_no_timeouts(r);
  Tally const& t = r.tally;
  EXPECT_EQ(t.pushed, r.records) << "producers did not get every record in";
  EXPECT_EQ(t.popped, r.records) << "consumers popped a different number of records";
  EXPECT_EQ(t.corrupt, 0u) << "popped records with a bad producer id, sequence number or checksum";
  EXPECT_EQ(t.duplicated, 0u) << "records popped twice";
  EXPECT_EQ(t.lost, 0u) << "records pushed and never popped";
  EXPECT_EQ(t.received, r.records);
  if (positions) EXPECT_EQ(t.out_of_order, 0u) << "a producer's records were claimed out of its push order";
  EXPECT_EQ(r.after.pushed, r.records);
  EXPECT_EQ(r.after.popped, r.records);
  EXPECT_EQ(r.after.occupancy, 0u);
  EXPECT_EQ(r.after.dropped, t.refused) << "each refused attempt (later retried) counts as one drop";
  EXPECT_EQ(r.drained, 0u) << "the consumers stopped before popping everything";
}

// --------------------------------------------------------------------------------------- cases

TEST(MailboxStress, ThreadPushersRetryingOnFullLoseNothingAndKeepClaimOrder) {
  PBM_REQUIRE_GPU();
  CaseResult r;
  run_case(CaseConfig{"try_push", Push::thread, true, true, Topology::two_kernels, g_knobs.capacity, 2048, 0, 0, 0},
           r);
  if (HasFatalFailure()) return;
  expect_lossless(r, true);
}

TEST(MailboxStress, WarpPushersRetryingOnFullLoseNothingAndKeepClaimOrder) {
  PBM_REQUIRE_GPU();
  CaseResult r;
  run_case(CaseConfig{"warp_push", Push::warp, true, true, Topology::two_kernels, g_knobs.capacity, 2048, 0, 0, 0}, r);
  if (HasFatalFailure()) return;
  expect_lossless(r, true);
}

// Both push flavours at once, consumers in the same persistent (cooperative) kernel, and the
// public pbm::block_pop itself: loss, duplicates and integrity are checked, order is not.
TEST(MailboxStress, MixedPushersAndPublicBlockPopInOnePersistentKernelLoseNothing) {
  PBM_REQUIRE_GPU();
  CaseResult r;
  run_case(CaseConfig{"mixed", Push::mixed, false, true, Topology::one_cooperative_kernel, g_knobs.capacity, 2048, 0,
                      0, 0},
           r);
  if (HasFatalFailure()) return;
  expect_lossless(r, false);
}

// A nearly full mailbox (prefilled to capacity - 64 by the host), two slow consumer blocks (32
// records per pop, 10 us apart), and producers that do not retry: every refused push is one drop,
// counted exactly, and attempted = popped + dropped + left. What is left is drained and checked.
TEST(MailboxStress, NearlyFullMailboxWithoutRetryCountsEveryDropExactly) {
  PBM_REQUIRE_GPU();
  constexpr std::uint64_t kCapacity = 4096, kPrefill = kCapacity - 64;
  CaseResult r;
  run_case(CaseConfig{"no-retry", Push::mixed, true, false, Topology::two_kernels, kCapacity, 32, 2, 10'000, kPrefill},
           r);
  if (HasFatalFailure()) return;
  expect_no_timeouts(r);
  Tally const& t = r.tally;
  std::uint64_t const attempted = r.records + kPrefill;
  EXPECT_EQ(t.pushed + t.refused, r.records) << "every attempt either went in or was refused";
  EXPECT_GT(t.refused, 0u) << "the mailbox never refused a push: the case did not exercise drops";
  EXPECT_EQ(r.during.dropped, t.refused) << "drops counted by the mailbox != refused pushes";
  EXPECT_EQ(r.during.pushed, kPrefill + t.pushed);
  EXPECT_EQ(r.during.popped, r.popped_concurrently);
  EXPECT_EQ(attempted, r.popped_concurrently + r.during.dropped + r.during.occupancy)
      << "attempted != popped + dropped + left";
  EXPECT_EQ(r.drained, r.during.occupancy) << "what was left did not all come out";
  EXPECT_EQ(r.after.occupancy, 0u);
  EXPECT_EQ(r.after.pushed, kPrefill + t.pushed);
  EXPECT_EQ(r.after.popped, kPrefill + t.pushed);
  EXPECT_EQ(r.after.dropped, t.refused);
  EXPECT_EQ(t.received, kPrefill + t.pushed);
  EXPECT_EQ(t.lost, 0u) << "records that went in never came out";
  EXPECT_EQ(t.phantom, 0u) << "refused records came out";
  EXPECT_EQ(t.duplicated, 0u);
  EXPECT_EQ(t.corrupt, 0u);
  EXPECT_EQ(t.out_of_order, 0u) << "a producer's records were claimed out of its push order";
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string error;
  if (!read_knobs(argc, argv, error)) {
    std::fprintf(stderr, "stress_gpu_test: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  return RUN_ALL_TESTS();
}
