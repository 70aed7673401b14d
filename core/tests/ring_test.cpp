// The ring algorithm compiled for the host and driven by std::threads: the same code the kernels
// run. Every record must be accounted for exactly once, FIFO per producer.
#include <pbm/detail/ring.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

using pbm::detail::RingView;

/// A ring in host memory, 16-byte aligned like device allocations.
struct HostRing {
  HostRing(std::uint64_t capacity, std::uint32_t stride, std::uint64_t initial = 0)
      : header_storage(pbm::header_bytes(capacity) / 8 + 16), payload_storage(capacity * stride / 8 + 16) {
    auto* h = reinterpret_cast<pbm::RingHeader*>(align(header_storage.data(), 128));
    view = RingView{h, reinterpret_cast<std::uint64_t*>(reinterpret_cast<unsigned char*>(h) + sizeof(pbm::RingHeader)),
                    static_cast<unsigned char*>(align(payload_storage.data(), 16)), capacity, stride, initial};
    pbm::detail::initialize(view);
  }
  static void* align(void* p, std::uintptr_t a) {
    auto v = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<void*>((v + a - 1) / a * a);
  }
  pbm::RingHeader& header() { return *view.header; }
  std::vector<std::uint64_t> header_storage;
  std::vector<std::uint64_t> payload_storage;
  RingView view{};
};

/// A 16-byte record: who produced it and its sequence number, plus a checksum word pair.
struct Rec {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t check;
  std::uint32_t pad;
};
Rec make(std::uint32_t producer, std::uint32_t seq) { return Rec{producer, seq, producer * 2654435761u ^ seq, 0}; }
bool intact(Rec const& r) { return r.check == (r.producer * 2654435761u ^ r.seq); }

std::vector<Rec> pop(RingView v, std::uint64_t max) {
  std::vector<Rec> out(max);
  auto const k = pbm::detail::pop_bulk(v, out.data(), max);
  out.resize(k);
  return out;
}

TEST(Ring, RoundTripKeepsFifoOrderAndValues) {
  HostRing ring(8, sizeof(Rec));
  for (std::uint32_t i = 0; i < 5; ++i) {
    Rec r = make(7, i);
    ASSERT_TRUE(pbm::detail::try_push(ring.view, &r));
  }
  auto const got = pop(ring.view, 100);
  ASSERT_EQ(got.size(), 5u);
  for (std::uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i].seq, i);
    EXPECT_TRUE(intact(got[i]));
  }
  auto const c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.reserve, 5u);
  EXPECT_EQ(c.release, 5u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(c.pop_calls, 1u);
}

TEST(Ring, EmptyPopReturnsZeroAndChangesNothing) {
  HostRing ring(4, 16);
  EXPECT_TRUE(pop(ring.view, 10).empty());
  auto const c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.consume, 0u);
  EXPECT_EQ(c.release, 0u);
  EXPECT_EQ(c.pop_calls, 0u);
}

TEST(Ring, PopTakesAtMostMaxRecords) {
  HostRing ring(16, sizeof(Rec));
  for (std::uint32_t i = 0; i < 10; ++i) {
    Rec r = make(1, i);
    ASSERT_TRUE(pbm::detail::try_push(ring.view, &r));
  }
  auto const a = pop(ring.view, 3);
  auto const b = pop(ring.view, 100);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 7u);
  EXPECT_EQ(a[2].seq, 2u);
  EXPECT_EQ(b[0].seq, 3u);
  EXPECT_EQ(b[6].seq, 9u);
}

TEST(Ring, FullMailboxRefusesAndCountsDropsWithoutOverwriting) {
  HostRing ring(4, sizeof(Rec));
  for (std::uint32_t i = 0; i < 4; ++i) {
    Rec r = make(2, i);
    ASSERT_TRUE(pbm::detail::try_push(ring.view, &r));
  }
  Rec extra = make(2, 99);
  EXPECT_FALSE(pbm::detail::try_push(ring.view, &extra));
  EXPECT_FALSE(pbm::detail::try_push(ring.view, &extra));
  EXPECT_EQ(pbm::detail::read_counters(ring.header()).dropped, 2u);
  std::vector<Rec> batch{make(3, 0), make(3, 1)};
  EXPECT_EQ(pbm::detail::push_n(ring.view, batch.data(), 2), 0u);
  EXPECT_EQ(pbm::detail::read_counters(ring.header()).dropped, 4u);

  auto const got = pop(ring.view, 10);
  ASSERT_EQ(got.size(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(got[i].seq, i) << "a refused push overwrote a record";
  EXPECT_TRUE(pbm::detail::try_push(ring.view, &extra)) << "room again after a pop";
}

TEST(Ring, PartialBatchTakesThePrefixThatFits) {
  HostRing ring(5, sizeof(Rec));
  std::vector<Rec> batch;
  for (std::uint32_t i = 0; i < 8; ++i) batch.push_back(make(4, i));
  EXPECT_EQ(pbm::detail::push_n(ring.view, batch.data(), 8), 5u);
  EXPECT_EQ(pbm::detail::read_counters(ring.header()).dropped, 3u);
  auto const got = pop(ring.view, 8);
  ASSERT_EQ(got.size(), 5u);
  for (std::uint32_t i = 0; i < 5; ++i) EXPECT_EQ(got[i].seq, i);
}

TEST(Ring, UncommittedRecordStopsThePrefix) {
  HostRing ring(8, 16);
  std::uint64_t base = 0;
  ASSERT_EQ(pbm::detail::reserve(ring.view, 3, &base), 3u);
  pbm::detail::commit(ring.view, base);
  pbm::detail::commit(ring.view, base + 2);  // base + 1 reserved but not yet written
  std::vector<unsigned char> out(16 * 8);
  EXPECT_EQ(pbm::detail::pop_bulk(ring.view, out.data(), 8), 1u) << "must stop at the half-written record";
  EXPECT_EQ(pbm::detail::pop_bulk(ring.view, out.data(), 8), 0u);
  pbm::detail::commit(ring.view, base + 1);
  EXPECT_EQ(pbm::detail::pop_bulk(ring.view, out.data(), 8), 2u);
}

/// A request of 2^63 or more records (the detail API takes any uint64_t) is a request for more than
/// fits: it takes what fits and counts the rest as dropped, with no signed overflow.
class RingHugeRequest : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(RingHugeRequest, TakesAtMostWhatFitsAndCountsTheRestAsDropped) {
  std::uint64_t const n = GetParam();
  HostRing ring(8, sizeof(Rec));
  std::vector<Rec> three{make(6, 0), make(6, 1), make(6, 2)};
  ASSERT_EQ(pbm::detail::push_n(ring.view, three.data(), 3), 3u);
  std::uint64_t base = 0;
  EXPECT_EQ(pbm::detail::reserve(ring.view, n, &base), 5u) << "granted beyond the free slots";
  EXPECT_EQ(base, 3u);
  auto c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.reserve, 8u) << "reserve moved past capacity";
  EXPECT_EQ(c.dropped, n - 5) << "the records that found no slot are dropped";
  EXPECT_EQ(ring.header().free_slots, 0);
  for (std::uint64_t i = 0; i < 5; ++i) pbm::detail::commit(ring.view, base + i);

  // Full now: the same request is refused whole, and counted whole.
  EXPECT_EQ(pbm::detail::reserve(ring.view, n, &base), 0u);
  c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.reserve, 8u);
  EXPECT_EQ(c.dropped, (n - 5) + n);  // wraps mod 2^64 like the counter
  EXPECT_EQ(ring.header().free_slots, 0);

  // Still a working ring: all 8 come out in order and their slots come back.
  auto const got = pop(ring.view, 100);
  ASSERT_EQ(got.size(), 8u);
  for (std::uint32_t i = 0; i < 3; ++i) EXPECT_EQ(got[i].seq, i);
  EXPECT_EQ(ring.header().free_slots, 8);
  EXPECT_EQ(pbm::detail::read_counters(ring.header()).release, 8u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, RingHugeRequest,
                         ::testing::Values(1ull << 63, ~0ull, (1ull << 63) - 1, (1ull << 63) - 4000));

/// A consumer that claimed and never released (killed mid-pop) must not hang the pops after it:
/// they give up after the bound with release_stalled, still delivering their own records, and
/// leave the ring consistent (nothing lost, nothing popped twice, the stalled slots never reused).
TEST(Ring, PopAfterAClaimNeverReleasedReturnsWithinBoundedTime) {
  constexpr std::uint64_t kOrigin = ~0ull - 2;  // the reported position is absolute
  HostRing ring(8, sizeof(Rec), kOrigin);
  std::vector<Rec> four{make(8, 0), make(8, 1), make(8, 2), make(8, 3)};
  ASSERT_EQ(pbm::detail::push_n(ring.view, four.data(), 4), 4u);
  std::uint64_t dead_base = 0;
  ASSERT_EQ(pbm::detail::claim(ring.view, 2, &dead_base), 2u);  // never released
  constexpr std::uint64_t kBound = 50'000'000;  // 50 ms

  std::atomic<bool> done{false};
  std::uint64_t got = 0;
  pbm::PopStatus status{pbm::DeviceError::none, 0};
  std::vector<Rec> out(8);
  auto const start = std::chrono::steady_clock::now();
  std::thread second([&] {
    got = pbm::detail::pop_bulk(ring.view, out.data(), 8, &status, kBound);
    done = true;
  });
  while (!done && std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bool const returned = done;
  if (!returned) pbm::detail::release_in_order(ring.view, dead_base, 2);  // unblock it to end the test
  second.join();
  ASSERT_TRUE(returned) << "the pop waited for the dead claim for 10 s";
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50)) << "gave up before the bound";
  EXPECT_EQ(status.error, pbm::DeviceError::release_stalled);
  EXPECT_EQ(status.stalled_at, dead_base);
  EXPECT_EQ(dead_base, kOrigin);
  ASSERT_EQ(got, 2u) << "the stalled pop still delivers what it claimed";
  EXPECT_EQ(out[0].seq, 2u);
  EXPECT_EQ(out[1].seq, 3u);

  // The ring: everything claimed, nothing released, no slot given back.
  auto c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.consume - kOrigin, 4u);
  EXPECT_EQ(c.release - kOrigin, 0u);
  EXPECT_EQ(c.pop_calls, 0u);
  EXPECT_EQ(ring.header().free_slots, 4);
  // Producers fill the 4 free slots and no more; the claimed slots are never overwritten.
  std::vector<Rec> more{make(9, 0), make(9, 1), make(9, 2), make(9, 3), make(9, 4)};
  EXPECT_EQ(pbm::detail::push_n(ring.view, more.data(), 5), 4u);
  EXPECT_EQ(pbm::detail::read_counters(ring.header()).dropped, 1u);
  // A later pop drains them, and also stalls; an empty pop does not wait.
  got = pbm::detail::pop_bulk(ring.view, out.data(), 8, &status, 0);
  ASSERT_EQ(got, 4u);
  EXPECT_EQ(status.error, pbm::DeviceError::release_stalled);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(out[i].producer * 100 + out[i].seq, 900u + i);
  EXPECT_EQ(pbm::detail::pop_bulk(ring.view, out.data(), 8, &status, 0), 0u);
  EXPECT_EQ(status.error, pbm::DeviceError::none);

  // A dead claimant that comes back late releases its own claim; the abandoned ones stay claimed.
  EXPECT_TRUE(pbm::detail::release_in_order(ring.view, dead_base, 2, ~0ull, 0));
  c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.release - kOrigin, 2u);
  EXPECT_EQ(c.consume - kOrigin, 8u);
  EXPECT_EQ(ring.header().free_slots, 2);
}

/// Wrap-around past capacity many times, with a capacity that is not a power of two, starting at
/// positions just below 2^32 and 2^64 so both boundaries are crossed.
class RingWrap : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(RingWrap, ManyLapsKeepOrderAcrossPositionBoundaries) {
  std::uint64_t const initial = GetParam();
  HostRing ring(7, sizeof(Rec), initial);
  std::mt19937 rng(1234);
  std::uint32_t next_push = 0, next_pop = 0;
  for (int round = 0; round < 2000; ++round) {
    std::uint32_t const n = rng() % 9;  // sometimes more than fits
    std::vector<Rec> batch;
    for (std::uint32_t i = 0; i < n; ++i) batch.push_back(make(5, next_push + i));
    next_push += static_cast<std::uint32_t>(pbm::detail::push_n(ring.view, batch.data(), n));
    for (auto const& r : pop(ring.view, rng() % 9)) {
      ASSERT_TRUE(intact(r));
      ASSERT_EQ(r.seq, next_pop) << "round " << round;
      ++next_pop;
    }
  }
  for (auto const& r : pop(ring.view, 7)) ASSERT_EQ(r.seq, next_pop++);
  EXPECT_EQ(next_pop, next_push);
  auto const c = pbm::detail::read_counters(ring.header());
  EXPECT_EQ(c.reserve - initial, next_push);
  EXPECT_EQ(c.release - initial, next_pop);
  EXPECT_GT(next_push, 7u * 100) << "the test must lap the ring many times";
}

INSTANTIATE_TEST_SUITE_P(Boundaries, RingWrap,
                         ::testing::Values(0ull, (1ull << 32) - 20, ~0ull - 20, ~0ull - 3));

TEST(Ring, ValidateRejectsCorruptedOrMismatchedHeaders) {
  HostRing ring(8, 16);
  EXPECT_EQ(pbm::detail::validate(ring.header(), 16, 8), pbm::DeviceError::none);
  EXPECT_EQ(pbm::detail::validate(ring.header(), 32, 8), pbm::DeviceError::stride_mismatch);
  EXPECT_EQ(pbm::detail::validate(ring.header(), 16, 9), pbm::DeviceError::bad_geometry);
  EXPECT_EQ(pbm::detail::validate(ring.header(), 16, 8, 5), pbm::DeviceError::bad_geometry) << "origin mismatch";
  ring.header().version = 99;
  EXPECT_EQ(pbm::detail::validate(ring.header(), 16, 8), pbm::DeviceError::bad_version);
  ring.header().magic = 0;
  EXPECT_EQ(pbm::detail::validate(ring.header(), 16, 8), pbm::DeviceError::bad_magic);
}

/// Many producers (single pushes and batches) and many consumers at once. Consumers use the
/// claim/release primitives directly so the test learns each record's position: sorting by
/// position then proves FIFO per producer across all consumers.
struct Popped {
  std::uint64_t position;
  Rec rec;
};

/// push_n with the reservation warp_push makes: straight to the atomics, no load of the free count first.
std::uint64_t push_n_optimistic(RingView v, Rec const* recs, std::uint64_t n) {
  std::uint64_t base = 0;
  std::uint64_t const k = pbm::detail::reserve(v, n, &base, /*optimistic=*/true);
  for (std::uint64_t i = 0; i < k; ++i) std::memcpy(v.record(v.slot_of(base + i)), &recs[i], sizeof(Rec));
  for (std::uint64_t i = 0; i < k; ++i) pbm::detail::commit(v, base + i);
  return k;
}

void run_mpmc(std::uint64_t capacity, int producers, int consumers, std::uint32_t per_producer, bool batches,
              bool optimistic = false) {
  HostRing ring(capacity, sizeof(Rec), ~0ull - 1000);
  std::atomic<int> producers_left{producers};
  std::vector<std::uint32_t> attempts(producers, 0), pushed(producers, 0);
  std::mutex mutex;
  std::vector<Popped> all;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(p);
      std::uint32_t seq = 0;
      while (seq < per_producer) {
        std::uint32_t const n = batches ? std::min<std::uint32_t>(1 + rng() % 6, per_producer - seq) : 1;
        std::vector<Rec> batch;
        for (std::uint32_t i = 0; i < n; ++i) batch.push_back(make(p, seq + i));
        auto const k = static_cast<std::uint32_t>(optimistic ? push_n_optimistic(ring.view, batch.data(), n)
                                                             : pbm::detail::push_n(ring.view, batch.data(), n));
        attempts[p] += n;
        pushed[p] += k;
        seq += k;  // retry what was refused, keeping per-producer order
        if (k < n) std::this_thread::yield();
      }
      producers_left.fetch_sub(1);
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(100 + c);
      std::vector<Popped> mine;
      std::vector<Rec> buf(capacity);
      for (;;) {
        bool const last_chance = producers_left.load() == 0;
        std::uint64_t base = 0;
        auto const k = pbm::detail::claim(ring.view, 1 + rng() % capacity, &base);
        for (std::uint64_t i = 0; i < k; ++i)
          std::memcpy(&buf[i], ring.view.record(ring.view.slot_of(base + i)), sizeof(Rec));
        if (k != 0) pbm::detail::release_in_order(ring.view, base, k);
        for (std::uint64_t i = 0; i < k; ++i) mine.push_back(Popped{base + i, buf[i]});
        if (k == 0 && last_chance) break;
        if (k == 0) std::this_thread::yield();
      }
      std::lock_guard<std::mutex> lock(mutex);
      all.insert(all.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();

  std::uint64_t const total = std::uint64_t{per_producer} * producers;
  ASSERT_EQ(all.size(), total) << "records lost or duplicated";
  std::sort(all.begin(), all.end(), [](Popped const& a, Popped const& b) {
    return a.position - (~0ull - 1000) < b.position - (~0ull - 1000);
  });
  std::vector<std::uint32_t> next(producers, 0);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].position, ~0ull - 1000 + i) << "positions must be dense";
    Rec const& r = all[i].rec;
    ASSERT_TRUE(intact(r)) << "torn record at position " << i;
    ASSERT_LT(r.producer, static_cast<std::uint32_t>(producers));
    ASSERT_EQ(r.seq, next[r.producer]) << "FIFO broken for producer " << r.producer;
    ++next[r.producer];
  }
  auto const counters = pbm::detail::read_counters(ring.header());
  std::uint64_t attempted = 0;
  for (auto a : attempts) attempted += a;
  EXPECT_EQ(counters.reserve - (~0ull - 1000), total);
  EXPECT_EQ(counters.release - (~0ull - 1000), total);
  EXPECT_EQ(counters.dropped, attempted - total) << "pushed = popped + dropped must hold exactly";
  EXPECT_EQ(ring.header().free_slots, static_cast<std::int64_t>(capacity));
}

TEST(RingThreads, ManyProducersManyConsumersSingleRecords) { run_mpmc(64, 4, 3, 20000, false); }
TEST(RingThreads, ManyProducersManyConsumersBatches) { run_mpmc(64, 4, 3, 20000, true); }
TEST(RingThreads, NearlyFullMailboxCountsDropsExactly) { run_mpmc(5, 6, 2, 5000, true); }
TEST(RingThreads, CapacityOne) { run_mpmc(1, 3, 3, 3000, false); }
TEST(RingThreads, LargeCapacityTakesTheFastPath) { run_mpmc(3 * pbm::detail::kFastPathMargin, 4, 2, 30000, true); }
TEST(RingThreads, ManyProducersHammeringAFullMailboxStillMakeProgress) { run_mpmc(16, 12, 1, 2000, false); }
// The same with warp_push's reservation (take_slots without its first load): an overshoot below
// zero is given back, so drops stay exact and the free count ends where it began.
TEST(RingThreads, OptimisticReservationsKeepOrderAndCountDropsExactly) { run_mpmc(64, 4, 3, 20000, true, true); }
TEST(RingThreads, OptimisticReservationsNearlyFull) { run_mpmc(5, 6, 2, 5000, true, true); }
TEST(RingThreads, OptimisticReservationsHammeringAFullMailboxStillMakeProgress) {
  run_mpmc(16, 12, 1, 2000, false, true);
}
TEST(RingThreads, OptimisticReservationsOnTheFastPath) {
  run_mpmc(3 * pbm::detail::kFastPathMargin, 4, 2, 30000, true, true);
}

TEST(Ring, AnOptimisticReservationIntoALittleRoomTakesWhatFitsAndLeavesNoDebt) {
  HostRing ring(100, sizeof(Rec));
  std::vector<Rec> recs(100);
  for (std::uint32_t i = 0; i < 100; ++i) recs[i] = make(0, i);
  ASSERT_EQ(push_n_optimistic(ring.view, recs.data(), 90), 90u);
  EXPECT_EQ(push_n_optimistic(ring.view, recs.data(), 32), 10u) << "the 10 free slots, not fewer";
  EXPECT_EQ(ring.header().free_slots, 0) << "the overshoot was given back";
  EXPECT_EQ(ring.header().dropped, 22u);
  EXPECT_EQ(push_n_optimistic(ring.view, recs.data(), 1), 0u);
  EXPECT_EQ(ring.header().free_slots, 0);
  EXPECT_EQ(ring.header().dropped, 23u);
  EXPECT_EQ(pop(ring.view, 100).size(), 100u);
  EXPECT_EQ(ring.header().free_slots, 100);
}

}  // namespace
