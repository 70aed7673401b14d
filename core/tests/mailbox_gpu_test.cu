// GPU tests of the mailbox: round trips, concurrent producer and consumer kernels, warp and block
// pushes, the count through pinned memory, event handoff, priorities and bad input.
// Each skips with "no CUDA device" where none is visible; scripts/gpu-check runs them on a GPU.
#include "gpu_test_util.cuh"

#include <pbm/device.cuh>
#include <pbm/mailbox.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>

namespace {

using pbm_test::checksum;
using pbm_test::DeviceBuffer;
using pbm_test::make_records;
using pbm_test::Rec;


void fill_poison(DeviceBuffer<Rec>& buf) { buf.fill(0xEE); }

TEST(MailboxGpu, PushThenPopReturnsRecordsInFifoOrderWithTheRightCount) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(1000, sizeof(Rec));
  DeviceBuffer<Rec> in(300), out(500);
  in.from_host(make_records(1, 0, 300));
  fill_poison(out);
  pbm::Stream stream(pbm::StreamClass::focus);
  auto pushed = mailbox.push(in.ptr, 300, stream);
  EXPECT_EQ(pushed.wait(), 300u);
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 500, stream), 300u);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 300; ++i) {
    ASSERT_EQ(host[i].seq, i);
    ASSERT_EQ(host[i].check, checksum(1, i));
  }
  EXPECT_EQ(reinterpret_cast<unsigned char const*>(&host[300])[0], 0xEE) << "pop wrote past count records";
  auto const s = mailbox.stats();
  EXPECT_EQ(s.pushed, 300u);
  EXPECT_EQ(s.popped, 300u);
  EXPECT_EQ(s.occupancy, 0u);
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 500, stream), 0u) << "pop on empty";
}

TEST(MailboxGpu, FullMailboxDropsAndCounts) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(100, sizeof(Rec));
  DeviceBuffer<Rec> in(150), out(150);
  in.from_host(make_records(2, 0, 150));
  fill_poison(out);  // all of it is read back below (initcheck: no uninitialised bytes)
  auto a = mailbox.push(in.ptr, 150, nullptr);
  EXPECT_EQ(a.wait(), 100u);
  auto b = mailbox.push(in.ptr, 10, nullptr);
  EXPECT_EQ(b.wait(), 0u);
  auto const s = mailbox.stats();
  EXPECT_EQ(s.dropped, 60u);
  EXPECT_EQ(s.occupancy, 100u);
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 150, nullptr), 100u);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 100; ++i) ASSERT_EQ(host[i].seq, i) << "refused pushes must not overwrite";
}

TEST(MailboxGpu, WrapsManyTimesWithMultiBlockCopiesAndPositionsPast2To64) {
  PBM_REQUIRE_GPU();
  constexpr std::uint64_t kCap = 100'003;  // not a power of two
  pbm::Mailbox mailbox(kCap, sizeof(Rec), -1, "wrap", ~0ull - 150'000);
  DeviceBuffer<Rec> in(70'000), out(70'000);
  pbm::Stream stream(pbm::StreamClass::peripheral);
  std::uint32_t next_push = 0, next_pop = 0;
  for (int round = 0; round < 12; ++round) {
    std::uint32_t const n = 30'000 + 3'001 * round;
    in.from_host(make_records(3, next_push, n));
    next_push += static_cast<std::uint32_t>(mailbox.push(in.ptr, n, stream).wait());
    fill_poison(out);
    std::uint64_t const got = mailbox.pop_bulk(out.ptr, 70'000, stream);
    auto const host = out.to_host();
    for (std::uint64_t i = 0; i < got; ++i) {
      ASSERT_EQ(host[i].seq, next_pop) << "round " << round << " record " << i;
      ASSERT_EQ(host[i].check, checksum(3, next_pop));
      ++next_pop;
    }
  }
  EXPECT_EQ(next_push, next_pop);
  EXPECT_GT(next_push, 4 * kCap);
  EXPECT_EQ(mailbox.stats().pushed, next_push);
}

// -------------------------------------------------------- device API under concurrency

__global__ void producer_kernel(pbm::MailboxRef ref, std::uint32_t per_thread, bool use_warp,
                                unsigned long long timeout_cycles, unsigned* failures) {
  std::uint32_t const id = blockIdx.x * blockDim.x + threadIdx.x;
  for (std::uint32_t s = 0; s < per_thread; ++s) {
    Rec const r{id, s, checksum(id, s), 0};
    long long const start = clock64();
    bool in = false;
    while (!in) {
      in = use_warp ? pbm::warp_push(ref, &r) : pbm::try_push(ref, &r);
      if (!in && clock64() - start > static_cast<long long>(timeout_cycles)) {
        atomicAdd(failures, 1u);
        return;
      }
    }
  }
}

// Consumers pop until `expected` records were seen; each record bumps seen[producer * per + seq].
// With one block, pops are sequential in claim order, so per-producer seq must increase.
__global__ void consumer_kernel(pbm::MailboxRef ref, Rec* scratch, std::uint32_t per_producer,
                                unsigned long long expected, unsigned long long* total, unsigned* seen,
                                std::uint32_t* last_seq, unsigned* errors, unsigned long long timeout_cycles) {
  __shared__ bool stop;
  Rec* mine = scratch + blockIdx.x * 512;
  long long const start = clock64();
  for (;;) {
    std::uint64_t const k = pbm::block_pop(ref, mine, 512);
    for (std::uint64_t i = threadIdx.x; i < k; i += blockDim.x) {
      Rec const r = mine[i];
      if (r.check != checksum(r.producer, r.seq) || r.seq >= per_producer) {
        atomicAdd(errors, 1u);
        continue;
      }
      atomicAdd(&seen[static_cast<std::uint64_t>(r.producer) * per_producer + r.seq], 1u);
    }
    if (last_seq != nullptr && threadIdx.x == 0) {  // single-block FIFO check, claim order
      for (std::uint64_t i = 0; i < k; ++i) {
        Rec const r = mine[i];
        if (r.seq != last_seq[r.producer] + 1) atomicAdd(errors, 1u);
        last_seq[r.producer] = r.seq;
      }
    }
    if (threadIdx.x == 0) {
      unsigned long long const done = atomicAdd(total, static_cast<unsigned long long>(k)) + k;
      stop = done >= expected || clock64() - start > static_cast<long long>(timeout_cycles);
    }
    __syncthreads();
    if (stop) return;
    __syncthreads();
  }
}

struct ConcurrentResult {
  unsigned producer_failures, errors, missing, duplicated;
  unsigned long long total;
};

ConcurrentResult run_concurrent(unsigned producer_blocks, unsigned consumer_blocks, std::uint32_t per_thread,
                                bool use_warp, std::uint64_t capacity) {
  constexpr unsigned kThreads = 256;
  std::uint32_t const producers = producer_blocks * kThreads;
  unsigned long long const expected = static_cast<unsigned long long>(producers) * per_thread;
  pbm::Mailbox mailbox(capacity, sizeof(Rec));
  DeviceBuffer<Rec> scratch(consumer_blocks * 512);
  DeviceBuffer<unsigned> seen(expected), counters(2);
  DeviceBuffer<unsigned long long> total(1);
  DeviceBuffer<std::uint32_t> last(producers);
  cudaMemset(seen.ptr, 0, expected * sizeof(unsigned));
  cudaMemset(counters.ptr, 0, 2 * sizeof(unsigned));
  cudaMemset(total.ptr, 0, sizeof(unsigned long long));
  cudaMemset(last.ptr, 0xFF, producers * sizeof(std::uint32_t));  // "last seq" = -1
  cudaDeviceSynchronize();
  unsigned long long const timeout = 20ull * 1000 * 1000 * 1000;  // ~10 s of cycles
  // Load both kernels before either runs: with lazy module loading, loading a kernel while a
  // spinning kernel runs waits for it, and the two would never overlap.
  cudaFuncAttributes attributes{};
  EXPECT_EQ(cudaFuncGetAttributes(&attributes, consumer_kernel), cudaSuccess);
  EXPECT_EQ(cudaFuncGetAttributes(&attributes, producer_kernel), cudaSuccess);
  pbm::Stream produce(pbm::StreamClass::peripheral), consume(pbm::StreamClass::focus);
  consumer_kernel<<<consumer_blocks, kThreads, 0, consume>>>(mailbox.ref(), scratch.ptr, per_thread, expected,
                                                             total.ptr, seen.ptr,
                                                             consumer_blocks == 1 ? last.ptr : nullptr,
                                                             counters.ptr + 1, timeout);
  producer_kernel<<<producer_blocks, kThreads, 0, produce>>>(mailbox.ref(), per_thread, use_warp, timeout,
                                                             counters.ptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ConcurrentResult r{};
  auto const c = counters.to_host();
  r.producer_failures = c[0];
  r.errors = c[1];
  r.total = total.to_host()[0];
  for (unsigned v : seen.to_host()) {
    r.missing += v == 0;
    r.duplicated += v > 1;
  }
  return r;
}

TEST(MailboxGpu, ConcurrentWarpProducersAndOneConsumerBlockKeepFifoAndLoseNothing) {
  PBM_REQUIRE_GPU();
  auto const r = run_concurrent(64, 1, 64, true, 4096);
  EXPECT_EQ(r.producer_failures, 0u);
  EXPECT_EQ(r.errors, 0u) << "corrupt record or per-producer FIFO broken";
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.total, 64ull * 256 * 64);
}

TEST(MailboxGpu, ConcurrentThreadProducersAndManyConsumerBlocksLoseNothing) {
  PBM_REQUIRE_GPU();
  auto const r = run_concurrent(48, 8, 100, false, 1000);
  EXPECT_EQ(r.producer_failures, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.total, 48ull * 256 * 100);
}

__global__ void one_warp_push(pbm::MailboxRef ref, unsigned* in_count) {
  Rec const r{threadIdx.x, 0, checksum(threadIdx.x, 0), 0};
  if (pbm::warp_push(ref, &r)) atomicAdd(in_count, 1u);
}

// Host pops big enough to take several blocks each (the speculative grid-wide claim), on four
// streams at once, while a producer kernel pushes: blocks meet records reserved but not yet
// committed (gaps inside a pop's range), and pops on different streams race for the same claim (the
// loser's last block starts over alone). Nothing lost, nothing twice, and within one pop each
// producer's records in the order it pushed them.
__global__ void paced_producer_kernel(pbm::MailboxRef ref, std::uint32_t per_thread, unsigned* failures) {
  std::uint32_t const id = blockIdx.x * blockDim.x + threadIdx.x;
  for (std::uint32_t s = 0; s < per_thread; ++s) {
    __nanosleep(1000u * ((id + s) % 8));  // spread the commits out over the pops
    Rec const r{id, s, checksum(id, s), 0};
    if (!pbm::try_push(ref, &r)) atomicAdd(failures, 1u);
  }
}

TEST(MailboxGpu, ConcurrentMultiBlockHostPopsOnFourStreamsWithAProducerLoseNothing) {
  PBM_REQUIRE_GPU();
  constexpr unsigned kProducerBlocks = 264, kThreads = 256, kStreams = 4;
  constexpr std::uint32_t kPerThread = 48;
  constexpr std::uint64_t kMax = 32768;  // 512 KiB of 16-byte records: 8 blocks per pop
  std::uint64_t const producers = kProducerBlocks * kThreads;
  std::uint64_t const expected = producers * kPerThread;
  pbm::Mailbox mailbox(1ull << 22, sizeof(Rec), -1, "multi-pop");  // holds everything: no drops
  DeviceBuffer<unsigned> failures(1);
  failures.fill(0);
  std::vector<std::unique_ptr<DeviceBuffer<Rec>>> bufs;
  std::vector<pbm::Stream> streams;
  for (unsigned s = 0; s < kStreams; ++s) {
    bufs.push_back(std::make_unique<DeviceBuffer<Rec>>(kMax));
    streams.emplace_back(pbm::StreamClass::peripheral);
  }
  pbm::Stream produce(pbm::StreamClass::peripheral);
  paced_producer_kernel<<<kProducerBlocks, kThreads, 0, produce>>>(mailbox.ref(), kPerThread, failures.ptr);
  PBM_TEST_CUDA(cudaGetLastError());

  std::vector<std::uint8_t> seen(expected, 0);
  std::vector<std::int64_t> last(producers, -1);  // per producer, within the current pop
  std::vector<Rec> host(kMax);
  std::uint64_t total = 0, pops = 0, nonempty = 0, out_of_order = 0, bad = 0, twice = 0;
  auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (total < expected && std::chrono::steady_clock::now() < deadline) {
    std::vector<pbm::PopHandle> handles;
    for (unsigned s = 0; s < kStreams; ++s) handles.push_back(mailbox.pop_bulk_async(bufs[s]->ptr, kMax, streams[s]));
    for (unsigned s = 0; s < kStreams; ++s) {
      std::uint64_t const k = handles[s].wait();
      ++pops;
      if (k == 0) continue;
      ++nonempty;
      ASSERT_LE(k, kMax);
      PBM_TEST_CUDA(cudaMemcpyAsync(host.data(), bufs[s]->ptr, k * sizeof(Rec), cudaMemcpyDeviceToHost, streams[s]));
      PBM_TEST_CUDA(cudaStreamSynchronize(streams[s]));
      for (std::uint64_t i = 0; i < k; ++i) {
        Rec const& r = host[i];
        if (r.producer >= producers || r.seq >= kPerThread || r.check != checksum(r.producer, r.seq)) {
          ++bad;
          continue;
        }
        std::uint8_t& mark = seen[r.producer * std::uint64_t{kPerThread} + r.seq];
        twice += mark != 0;
        mark = 1;
        out_of_order += static_cast<std::int64_t>(r.seq) <= last[r.producer];
        last[r.producer] = r.seq;
      }
      for (std::uint64_t i = 0; i < k; ++i)
        if (host[i].producer < producers) last[host[i].producer] = -1;
      total += k;
    }
  }
  PBM_TEST_CUDA(cudaStreamSynchronize(produce));
  EXPECT_EQ(failures.to_host()[0], 0u) << "the mailbox holds everything: no push may fail";
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(twice, 0u) << "records popped twice";
  EXPECT_EQ(out_of_order, 0u) << "a producer's records out of order within one pop";
  EXPECT_EQ(total, expected) << "records lost (or the 60 s deadline passed)";
  EXPECT_EQ(std::count(seen.begin(), seen.end(), std::uint8_t{1}), static_cast<std::ptrdiff_t>(expected));
  mailbox.refresh_stats(produce);
  PBM_TEST_CUDA(cudaStreamSynchronize(produce));
  pbm::Stats const st = mailbox.stats();
  EXPECT_EQ(st.pushed, expected);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.popped, expected);
  std::printf("multi-block host pops: %llu pops on %u streams (%llu non-empty) took %llu records\n",
              static_cast<unsigned long long>(pops), kStreams, static_cast<unsigned long long>(nonempty),
              static_cast<unsigned long long>(total));
}

TEST(MailboxGpu, WarpPushIntoNearlyFullMailboxTakesLowestRanksAndCountsDrops) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(40, sizeof(Rec));
  DeviceBuffer<unsigned> in(1);
  cudaMemset(in.ptr, 0, sizeof(unsigned));
  one_warp_push<<<1, 32>>>(mailbox.ref(), in.ptr);
  one_warp_push<<<1, 32>>>(mailbox.ref(), in.ptr);
  mailbox.refresh_stats(nullptr);
  PBM_TEST_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(in.to_host()[0], 40u);
  auto const s = mailbox.stats();
  EXPECT_EQ(s.pushed, 40u);
  EXPECT_EQ(s.dropped, 24u);
  DeviceBuffer<Rec> out(40);
  ASSERT_EQ(mailbox.pop_bulk(out.ptr, 40, nullptr), 40u);
  auto const host = out.to_host();
  for (unsigned i = 32; i < 40; ++i) EXPECT_EQ(host[i].producer, i - 32) << "lowest ranks go in first";
}

// -------------------------------------------------------- block_push

// Which threads push in round s: whole blocks, whole warps and scattered lanes sit out, so the
// block's prefix over warps sees zero counts, partial counts and full warps.
__host__ __device__ inline bool block_push_active(std::uint32_t block, std::uint32_t t, std::uint32_t s) {
  if (block % 13 == 5) return false;                   // a block with nothing to push
  if ((t / 32) % 4 == 1 && s % 2 == 0) return false;   // whole warps idle every other round
  return (t * 7u + s * 3u + block) % 5u != 0u;         // scattered lanes
}

// Every thread of every block calls block_push `rounds` times (inactive threads take part);
// record: producer = global linear thread id, seq = round.
__global__ void block_push_kernel(pbm::MailboxRef ref, std::uint32_t rounds, bool all_active, unsigned* in_count) {
  unsigned const t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned const nthreads = blockDim.x * blockDim.y * blockDim.z;
  std::uint32_t const id = blockIdx.x * nthreads + t;
  for (std::uint32_t s = 0; s < rounds; ++s) {
    bool const active = all_active || block_push_active(blockIdx.x, t, s);
    Rec const r{id, s, checksum(id, s), 0};
    if (pbm::block_push(ref, &r, active)) atomicAdd(in_count, 1u);
  }
}

struct BlockPushRun {
  std::uint64_t attempted = 0;      // active (thread, round) pairs
  unsigned in_count = 0;            // block_push returned true
  std::uint64_t popped = 0;
  std::vector<Rec> records;         // popped, FIFO order
  pbm::Stats stats{};               // after the pop
  unsigned duplicates = 0, corrupt = 0, not_pushed = 0;  // among popped records
};

/// Launches block_push_kernel, drains the mailbox with one pop and checks each popped record
/// (checksum, key in range, pushed by an active thread, seen once).
BlockPushRun run_block_push(unsigned blocks, dim3 block, std::uint32_t rounds, std::uint64_t capacity,
                            bool all_active) {
  BlockPushRun r;
  unsigned const nthreads = block.x * block.y * block.z;
  std::uint64_t const threads = std::uint64_t{blocks} * nthreads;
  std::vector<unsigned char> active(threads * rounds, 0);  // key: round * threads + id
  for (std::uint32_t s = 0; s < rounds; ++s)
    for (std::uint32_t b = 0; b < blocks; ++b)
      for (std::uint32_t t = 0; t < nthreads; ++t)
        if (all_active || block_push_active(b, t, s)) {
          active[s * threads + std::uint64_t{b} * nthreads + t] = 1;
          ++r.attempted;
        }
  pbm::Mailbox mailbox(capacity, sizeof(Rec));
  DeviceBuffer<unsigned> in(1);
  DeviceBuffer<Rec> out(capacity);
  cudaMemset(in.ptr, 0, sizeof(unsigned));
  fill_poison(out);
  block_push_kernel<<<blocks, block>>>(mailbox.ref(), rounds, all_active, in.ptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  r.in_count = in.to_host()[0];
  r.popped = mailbox.pop_bulk(out.ptr, capacity, nullptr);
  r.stats = mailbox.stats();  // snapshot written by the pop kernel
  auto const host = out.to_host();
  r.records.assign(host.begin(), host.begin() + static_cast<std::ptrdiff_t>(r.popped));
  std::vector<unsigned char> seen(threads * rounds, 0);
  for (Rec const& rec : r.records) {
    if (rec.check != checksum(rec.producer, rec.seq) || rec.producer >= threads || rec.seq >= rounds) {
      ++r.corrupt;
      continue;
    }
    std::uint64_t const key = rec.seq * threads + rec.producer;
    if (!active[key]) ++r.not_pushed;
    if (seen[key]++) ++r.duplicates;
  }
  return r;
}

void expect_every_active_record_once(BlockPushRun const& r) {
  EXPECT_EQ(r.in_count, r.attempted);
  EXPECT_EQ(r.popped, r.attempted);
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.not_pushed, 0u) << "an inactive thread's record went in";
  EXPECT_EQ(r.stats.pushed, r.attempted);
  EXPECT_EQ(r.stats.dropped, 0u);
}

TEST(MailboxGpu, BlockPushFromManyBlocksDeliversEveryActiveRecordOnce) {
  PBM_REQUIRE_GPU();
  auto const r = run_block_push(264, dim3(256), 3, 264ull * 256 * 3, false);
  EXPECT_LT(r.attempted, 264ull * 256 * 3) << "the pattern must leave threads inactive";
  expect_every_active_record_once(r);
}

TEST(MailboxGpu, BlockPushIntoNearlyFullMailboxTakesLowestRanksAndCountsDrops) {
  PBM_REQUIRE_GPU();
  // One block, all active, two rounds: the first 100 linear thread ids of round 0 go in, in order.
  auto const one = run_block_push(1, dim3(256), 2, 100, true);
  EXPECT_EQ(one.in_count, 100u);
  ASSERT_EQ(one.popped, 100u);
  for (std::uint32_t i = 0; i < 100; ++i) {
    EXPECT_EQ(one.records[i].producer, i) << "lowest ranks go in first";
    EXPECT_EQ(one.records[i].seq, 0u);
  }
  EXPECT_EQ(one.stats.pushed, 100u);
  EXPECT_EQ(one.stats.dropped, 2u * 256 - 100);

  // Many blocks racing for too few slots: what went in plus what was dropped is what was tried.
  auto const many = run_block_push(64, dim3(256), 4, 5000, false);
  ASSERT_GT(many.attempted, 5000u);
  EXPECT_GT(many.popped, 0u);
  EXPECT_LE(many.popped, 5000u);
  EXPECT_EQ(many.stats.pushed + many.stats.dropped, many.attempted);
  EXPECT_EQ(many.popped, many.stats.pushed);
  EXPECT_EQ(many.in_count, many.stats.pushed);
  EXPECT_EQ(many.corrupt, 0u);
  EXPECT_EQ(many.duplicates, 0u);
  EXPECT_EQ(many.not_pushed, 0u);
}

TEST(MailboxGpu, BlockPushWorksForBlocksNotAMultipleOf32AndFor2DAnd3DBlocks) {
  PBM_REQUIRE_GPU();
  for (dim3 const block : {dim3(96), dim3(16, 12), dim3(4, 8, 3), dim3(50), dim3(7, 5)}) {
    SCOPED_TRACE(testing::Message() << "block " << block.x << "x" << block.y << "x" << block.z);
    unsigned const nthreads = block.x * block.y * block.z;
    expect_every_active_record_once(run_block_push(40, block, 3, 40ull * nthreads * 3, false));
    // One block: FIFO order is rank order, i.e. active threads in linear thread order, round by round.
    auto const one = run_block_push(1, block, 3, 3ull * nthreads, false);
    expect_every_active_record_once(one);
    std::size_t i = 0;
    for (std::uint32_t s = 0; s < 3; ++s)
      for (std::uint32_t t = 0; t < nthreads; ++t)
        if (block_push_active(0, t, s) && i < one.records.size()) {
          EXPECT_EQ(one.records[i].producer, t) << "round " << s;
          EXPECT_EQ(one.records[i].seq, s);
          ++i;
        }
    EXPECT_EQ(i, one.records.size());
  }
}

// -------------------------------------------------------- graphs: pbm's own, and a user's capture

// Pops and pushes launch each completion's own graph (kernel + event record): every wait mode, a
// stream waiting on the handle, and more operations in flight than one chunk of completions holds.
TEST(MailboxGpu, GraphLaunchedOperationsCompleteInEveryWaitModeAndHandOff) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(4096, sizeof(Rec));
  DeviceBuffer<Rec> in(200 * 4), out(200 * 4);
  in.from_host(make_records(9, 0, 200 * 4));
  pbm::Stream stream(pbm::StreamClass::focus), other(pbm::StreamClass::peripheral);
  std::vector<pbm::PushHandle> pushes;
  for (int i = 0; i < 200; ++i) pushes.push_back(mailbox.push(in.ptr + 4 * i, 4, stream));  // > 64 in flight
  for (auto& h : pushes) ASSERT_EQ(h.wait(pbm::WaitPolicy{pbm::WaitMode::block, 0}), 4u);
  std::vector<pbm::PopHandle> pops;
  for (int i = 0; i < 200; ++i) pops.push_back(mailbox.pop_bulk_async(out.ptr + 4 * i, 4, stream));
  pops.back().wait_on(other);  // the event the graph recorded orders the other stream
  PBM_TEST_CUDA(cudaStreamSynchronize(other));
  EXPECT_TRUE(pops.back().ready()) << "the other stream ran past the event before the pop published";
  std::uint64_t popped = 0;
  for (std::size_t i = 0; i < pops.size(); ++i) {
    pbm::WaitMode const mode = i % 3 == 0 ? pbm::WaitMode::spin : i % 3 == 1 ? pbm::WaitMode::block
                                                                              : pbm::WaitMode::spin_then_block;
    popped += pops[i].wait(pbm::WaitPolicy{mode, 1000});
  }
  EXPECT_EQ(popped, 800u);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 800; ++i) ASSERT_EQ(host[i].seq, i) << "record " << i;
  EXPECT_EQ(mailbox.stats().popped, 800u);
}

// A push and a pop enqueued while the user's stream is being captured become nodes of the user's
// graph (pbm launches its kernels directly then): nothing runs until the graph is launched.
TEST(MailboxGpu, PushAndPopCapturedIntoAUsersGraphRunWhenItIsLaunched) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec));
  DeviceBuffer<Rec> in(8), out(8);
  in.from_host(make_records(5, 0, 8));
  fill_poison(out);
  pbm::Stream stream(pbm::StreamClass::peripheral);
  cudaGraph_t graph = nullptr;
  PBM_TEST_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  pbm::PushHandle push = mailbox.push(in.ptr, 8, stream);
  pbm::PopHandle pop = mailbox.pop_bulk_async(out.ptr, 8, stream);
  PBM_TEST_CUDA(cudaStreamEndCapture(stream, &graph));
  EXPECT_FALSE(push.ready());
  EXPECT_FALSE(pop.ready());
  cudaGraphExec_t exec = nullptr;
  PBM_TEST_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  PBM_TEST_CUDA(cudaGraphLaunch(exec, stream));
  PBM_TEST_CUDA(cudaStreamSynchronize(stream));
  EXPECT_EQ(push.wait(), 8u);
  EXPECT_EQ(pop.wait(), 8u);
  auto const host = out.to_host();
  for (std::uint32_t i = 0; i < 8; ++i) EXPECT_EQ(host[i].check, checksum(5, i));
  PBM_TEST_CUDA(cudaGraphExecDestroy(exec));
  PBM_TEST_CUDA(cudaGraphDestroy(graph));
}

// -------------------------------------------------------- count without sync, handoff

__global__ void spin_kernel(long long cycles) {
  long long const start = clock64();
  while (clock64() - start < cycles) {
  }
}

TEST(MailboxGpu, CountArrivesThroughPinnedMemoryWhileTheHostOnlyPolls) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec));
  DeviceBuffer<Rec> in(8), out(64);
  in.from_host(make_records(4, 0, 8));
  pbm::Stream stream(pbm::StreamClass::focus);
  mailbox.push(in.ptr, 8, stream);
  spin_kernel<<<1, 1, 0, stream>>>(20'000'000);  // ~10 ms: the pop cannot be done on return
  auto handle = mailbox.pop_bulk_async(out.ptr, 64, stream);
  EXPECT_FALSE(handle.ready()) << "the pop should still be queued behind the spin kernel";
  auto const start = std::chrono::steady_clock::now();
  while (!handle.ready()) {  // no CUDA call in this loop
    ASSERT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  }
  EXPECT_EQ(handle.wait(pbm::WaitPolicy{pbm::WaitMode::spin, 0}), 8u);
  EXPECT_EQ(mailbox.stats().popped, 8u) << "snapshot written by the pop kernel itself";
}

TEST(MailboxGpu, EventHandoffOrdersAProducerStreamBeforeAConsumerStream) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(4096, sizeof(Rec));
  DeviceBuffer<Rec> in(4096), out(4096);
  in.from_host(make_records(5, 0, 4096));
  PBM_TEST_CUDA(cudaDeviceSynchronize());
  pbm::Stream producer(pbm::StreamClass::peripheral), consumer(pbm::StreamClass::focus);
  for (int round = 0; round < 3; ++round) {
    spin_kernel<<<1, 1, 0, producer>>>(10'000'000);  // producer is late
    auto pushed = mailbox.push(in.ptr, 4096, producer);
    pushed.wait_on(consumer);  // handoff by the push's event
    EXPECT_EQ(mailbox.pop_bulk(out.ptr, 4096, consumer), 4096u) << "round " << round;
  }
  pbm::Event event;
  spin_kernel<<<1, 1, 0, producer>>>(10'000'000);
  mailbox.push(in.ptr, 100, producer);
  pbm::handoff(event, producer, consumer);
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 4096, consumer), 100u);
}

TEST(MailboxGpu, FocusAndPeripheralStreamsGetTheDeviceExtremes) {
  PBM_REQUIRE_GPU();
  auto const range = pbm::priority_range();
  pbm::Stream focus(pbm::StreamClass::focus), peripheral(pbm::StreamClass::peripheral);
  int p = 0;
  PBM_TEST_CUDA(cudaStreamGetPriority(focus, &p));
  EXPECT_EQ(p, range.greatest);
  PBM_TEST_CUDA(cudaStreamGetPriority(peripheral, &p));
  EXPECT_EQ(p, range.least);
  EXPECT_LT(range.greatest, range.least) << "the device should offer more than one priority";
  pbm::Stream moved = std::move(focus);
  EXPECT_EQ(moved.stream_class(), pbm::StreamClass::focus);
  EXPECT_EQ(focus.get(), nullptr);
}

// -------------------------------------------------------- bad input changes nothing

TEST(MailboxGpu, BadInputIsRefusedAndChangesNothing) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec));
  DeviceBuffer<Rec> in(10), small(4), out(64);
  in.from_host(make_records(6, 0, 10));
  ASSERT_EQ(mailbox.push(in.ptr, 10, nullptr).wait(), 10u);

  EXPECT_THROW(mailbox.pop_bulk_async(small.ptr, 10, nullptr), std::invalid_argument) << "dst too small";
  std::vector<Rec> host_dst(64);
  EXPECT_THROW(mailbox.pop_bulk_async(host_dst.data(), 10, nullptr), std::invalid_argument) << "host memory";
  EXPECT_THROW(mailbox.pop_bulk_async(reinterpret_cast<char*>(out.ptr) + 2, 10, nullptr), std::invalid_argument)
      << "misaligned";
  EXPECT_THROW(mailbox.pop_bulk_async(nullptr, 10, nullptr), std::invalid_argument);
  EXPECT_THROW(mailbox.push(small.ptr, 10, nullptr), std::invalid_argument) << "source too small";
  try {
    mailbox.pop_bulk_async(small.ptr, 10, nullptr);
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }

  Rec* pinned = nullptr;
  PBM_TEST_CUDA(cudaMallocHost(&pinned, 64 * sizeof(Rec)));
  try {
    mailbox.pop_bulk_async(pinned, 10, nullptr);
    ADD_FAILURE() << "pinned host memory was accepted as a pop destination";
  } catch (std::invalid_argument const& e) {
    EXPECT_NE(std::string(e.what()).find("host memory (pinned or registered)"), std::string::npos) << e.what();
  }
  PBM_TEST_CUDA(cudaFreeHost(pinned));

  EXPECT_EQ(mailbox.stats().occupancy, 10u) << "refused calls changed the mailbox";
  // Managed memory is device-accessible: accepted.
  Rec* managed = nullptr;
  PBM_TEST_CUDA(cudaMallocManaged(&managed, 64 * sizeof(Rec)));
  EXPECT_EQ(mailbox.pop_bulk(managed, 4, nullptr), 4u);
  EXPECT_EQ(managed[0].producer, 6u) << "first record popped into managed memory";
  EXPECT_EQ(managed[3].seq, 3u);
  PBM_TEST_CUDA(cudaFree(managed));
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 64, nullptr), 6u);
}

TEST(MailboxGpu, CorruptedHeaderIsDetectedOnDeviceAndReported) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(64, sizeof(Rec));
  DeviceBuffer<Rec> in(10), out(64);
  in.from_host(make_records(7, 0, 10));
  ASSERT_EQ(mailbox.push(in.ptr, 10, nullptr).wait(), 10u);
  std::uint32_t saved = 0;
  PBM_TEST_CUDA(cudaMemcpy(&saved, mailbox.ref().header(), 4, cudaMemcpyDeviceToHost));
  PBM_TEST_CUDA(cudaMemset(mailbox.ref().header(), 0x5A, 4));  // smash the magic
  PBM_TEST_CUDA(cudaDeviceSynchronize());
  auto handle = mailbox.pop_bulk_async(out.ptr, 64, nullptr);
  try {
    handle.wait();
    FAIL() << "a corrupted header went unnoticed";
  } catch (pbm::header_error const& e) {
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mailbox.push(in.ptr, 10, nullptr).wait(), pbm::header_error);
  PBM_TEST_CUDA(cudaMemcpy(mailbox.ref().header(), &saved, 4, cudaMemcpyHostToDevice));
  EXPECT_EQ(mailbox.pop_bulk(out.ptr, 64, nullptr), 10u) << "the failed calls changed the ring";
}

TEST(MailboxGpu, MovedFromMailboxRefusesUse) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox a(16, 16);
  pbm::Mailbox b = std::move(a);
  DeviceBuffer<Rec> out(16);
  EXPECT_THROW(a.pop_bulk_async(out.ptr, 1, nullptr), std::invalid_argument);
  EXPECT_EQ(b.pop_bulk(out.ptr, 16, nullptr), 0u);
  EXPECT_EQ(b.capacity(), 16u);
}

TEST(MailboxGpu, HandlesOutlivingManyLaunchesGrowThePoolSafely) {
  PBM_REQUIRE_GPU();
  pbm::Mailbox mailbox(100'000, sizeof(Rec));
  DeviceBuffer<Rec> in(1000);
  in.from_host(make_records(8, 0, 1000));
  pbm::Stream s1(pbm::StreamClass::focus), s2(pbm::StreamClass::peripheral);
  std::vector<pbm::PushHandle> handles;
  for (int i = 0; i < 200; ++i) handles.push_back(mailbox.push(in.ptr, 50, i % 2 ? s1.get() : s2.get()));
  std::uint64_t total = 0;
  for (auto& h : handles) total += h.wait();
  EXPECT_EQ(total, 200u * 50);
  EXPECT_EQ(mailbox.stats().pushed, 200u * 50);
}

}  // namespace

namespace {

TEST(MailboxGpu, RegistryReportsLiveMailboxesWithCountsSplitByStreamClass) {
  PBM_REQUIRE_GPU();
  DeviceBuffer<Rec> in(64), out(64);
  in.from_host(make_records(9, 0, 64));
  {
    pbm::Mailbox mailbox(128, sizeof(Rec), -1, "registry-test");
    pbm::Stream focus(pbm::StreamClass::focus), peripheral(pbm::StreamClass::peripheral);
    mailbox.push(in.ptr, 64, peripheral).wait();
    mailbox.push(in.ptr, 64, focus).wait();
    mailbox.push(in.ptr, 64, focus).wait();  // 128 fit, 64 dropped
    EXPECT_EQ(mailbox.pop_bulk(out.ptr, 64, focus), 64u);
    bool found = false;
    for (auto const& info : pbm::mailboxes()) {
      if (info.name != "registry-test") continue;
      found = true;
      EXPECT_EQ(info.push_calls[0], 2u) << "focus";
      EXPECT_EQ(info.push_calls[1], 1u) << "peripheral";
      EXPECT_EQ(info.pop_calls[0], 1u);
      EXPECT_EQ(info.push_requested_records, 192u);
      EXPECT_EQ(info.stats.pushed, 128u);
      EXPECT_EQ(info.stats.dropped, 64u);
      EXPECT_EQ(info.stats.popped, 64u);
      EXPECT_EQ(info.stats.occupancy, 64u);
    }
    EXPECT_TRUE(found);
    EXPECT_EQ(pbm::classify_stream(focus), pbm::StreamClass::focus);
    EXPECT_EQ(pbm::classify_stream(peripheral), pbm::StreamClass::peripheral);
  }
  for (auto const& info : pbm::mailboxes()) EXPECT_NE(info.name, "registry-test") << "destroyed mailbox still listed";
}

}  // namespace

namespace {

TEST(MailboxGpu, AdoptedMemoryWorksAndDeviceCountIsWritten) {
  PBM_REQUIRE_GPU();
  constexpr std::uint64_t kCap = 256;
  DeviceBuffer<unsigned char> header(pbm::header_bytes(kCap)), payload(kCap * sizeof(Rec));
  DeviceBuffer<unsigned long long> count(2);
  DeviceBuffer<Rec> in(100), out(kCap);
  in.from_host(make_records(10, 0, 100));
  fill_poison(out);  // read back whole below (initcheck: no uninitialised bytes)
  {
    // Not initialised yet: every operation reports the bad header and changes nothing.
    header.fill(0);
    auto raw = pbm::Mailbox::adopt(header.ptr, payload.ptr, kCap, sizeof(Rec), -1, "raw", false);
    EXPECT_FALSE(raw.owns_memory());
    EXPECT_THROW(raw.push(in.ptr, 100, nullptr).wait(), pbm::header_error);
  }
  {
    auto box = pbm::Mailbox::adopt(header.ptr, payload.ptr, kCap, sizeof(Rec), -1, "adopted", true);
    EXPECT_EQ(box.push(in.ptr, 100, nullptr, count.ptr).wait(), 100u);
    EXPECT_EQ(box.pop_bulk_async(out.ptr, kCap, nullptr, count.ptr + 1).wait(), 100u);
    auto const counts = count.to_host();
    EXPECT_EQ(counts[0], 100u);
    EXPECT_EQ(counts[1], 100u);
    EXPECT_THROW(box.pop_bulk_async(out.ptr, 1, nullptr, reinterpret_cast<unsigned long long*>(
                                                            reinterpret_cast<char*>(count.ptr) + 4)),
                 std::invalid_argument);
    EXPECT_EQ(box.push(in.ptr, 5, nullptr).wait(), 5u);
  }
  // The memory outlives the adopting mailbox: a new one over the same (initialised) header sees
  // the 5 records left behind.
  auto again = pbm::Mailbox::adopt(header.ptr, payload.ptr, kCap, sizeof(Rec), -1, "again", false);
  EXPECT_EQ(again.pop_bulk(out.ptr, kCap, nullptr), 5u);
  auto const host = out.to_host();
  EXPECT_EQ(host[0].seq, 0u);
  EXPECT_THROW(pbm::Mailbox::adopt(header.ptr, payload.ptr, kCap * 2, sizeof(Rec), -1, "too big", true),
               std::invalid_argument) << "header/payload too small for the capacity";
}

}  // namespace
