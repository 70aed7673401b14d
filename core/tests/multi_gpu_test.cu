// Multi-GPU tests (issue #9): a mailbox on every visible device used independently, a producer
// kernel on GPU 0 pushing into a mailbox on GPU 1 through peer access, and peer-access errors.
// Each test skips with "needs N CUDA devices, M visible" where too few are visible; gpu-check runs
// them on every GPU machine, so they run for real only where two or more GPUs are visible.
#include "gpu_test_util.cuh"

#include <pbm/device.cuh>
#include <pbm/mailbox.hpp>
#include <pbm/peer.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>

#include <memory>
#include <string>
#include <vector>

namespace {

using pbm_test::checksum;
using pbm_test::DeviceBuffer;
using pbm_test::make_records;
using pbm_test::Rec;

using pbm_test::visible_devices;

#define PBM_REQUIRE_GPUS(n)                                                                    \
  do {                                                                                         \
    int const pbm_visible_ = visible_devices();                                                \
    if (pbm_visible_ < (n))                                                                    \
      GTEST_SKIP() << "needs " << (n) << ((n) == 1 ? " CUDA device, " : " CUDA devices, ") \
                   << pbm_visible_ << " visible";                                             \
  } while (0)


/// The message of the std::invalid_argument `f` throws; "no exception" or "other exception" else.
template <class F>
std::string invalid_argument_message(F f) {
  try {
    f();
  } catch (std::invalid_argument const& e) {
    return e.what();
  } catch (...) {
    return "other exception";
  }
  return "no exception";
}

bool contains(std::string const& s, std::string const& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------- one mailbox per device

TEST(MultiGpu, EveryDeviceHasItsOwnIndependentMailbox) {
  PBM_REQUIRE_GPUS(2);
  int const n = visible_devices();
  std::string const name = "multi_gpu_per_device";
  auto count_of = [](int d) { return 100u + 50u * static_cast<std::uint32_t>(d); };  // distinct per device

  std::vector<pbm::Mailbox> boxes;
  std::vector<pbm::Stream> streams;
  std::vector<std::unique_ptr<DeviceBuffer<Rec>>> in, out;
  for (int d = 0; d < n; ++d) {
    pbm::DeviceGuard guard(d);  // DeviceBuffer allocates and synchronises on the current device
    boxes.emplace_back(1000, sizeof(Rec), d, name);
    streams.emplace_back(pbm::StreamClass::focus, d);
    in.push_back(std::make_unique<DeviceBuffer<Rec>>(count_of(d)));
    out.push_back(std::make_unique<DeviceBuffer<Rec>>(1000));
    in.back()->from_host(make_records(static_cast<std::uint32_t>(d), 0, count_of(d)));
    out.back()->fill(0xEE);
    ASSERT_EQ(boxes.back().device(), d);
  }
  // Push on every device before popping any: one device's records never show up in another's.
  std::vector<pbm::PushHandle> pushes;
  for (int d = 0; d < n; ++d) pushes.push_back(boxes[d].push(in[d]->ptr, count_of(d), streams[d]));
  for (int d = 0; d < n; ++d) EXPECT_EQ(pushes[d].wait(), count_of(d)) << "device " << d;

  for (int d = 0; d < n; ++d) {
    pbm::Stats const before = boxes[d].stats();
    EXPECT_EQ(before.pushed, count_of(d)) << "device " << d;
    EXPECT_EQ(before.occupancy, count_of(d)) << "device " << d;
  }
  auto const listed = pbm::mailboxes();  // the registry exporters read: one entry per device
  std::vector<int> seen(n, 0);
  for (auto const& m : listed) {
    if (m.name != name) continue;
    ASSERT_GE(m.device, 0);
    ASSERT_LT(m.device, n);
    ++seen[m.device];
    EXPECT_EQ(m.stats.pushed, count_of(m.device)) << "device " << m.device;
  }
  for (int d = 0; d < n; ++d) EXPECT_EQ(seen[d], 1) << "device " << d << " in pbm::mailboxes()";

  for (int d = 0; d < n; ++d) {
    EXPECT_EQ(boxes[d].pop_bulk(out[d]->ptr, 1000, streams[d]), count_of(d)) << "device " << d;
    auto const host = out[d]->to_host();
    for (std::uint32_t i = 0; i < count_of(d); ++i) {  // FIFO, this device's records only
      ASSERT_EQ(host[i].producer, static_cast<std::uint32_t>(d)) << "device " << d << " record " << i;
      ASSERT_EQ(host[i].seq, i) << "device " << d;
      ASSERT_EQ(host[i].check, checksum(d, i)) << "device " << d;
    }
    EXPECT_EQ(reinterpret_cast<unsigned char const*>(&host[count_of(d)])[0], 0xEE) << "pop wrote past its count";
    pbm::Stats const after = boxes[d].stats();
    EXPECT_EQ(after.pushed, count_of(d));
    EXPECT_EQ(after.popped, count_of(d));
    EXPECT_EQ(after.occupancy, 0u);
    EXPECT_EQ(after.dropped, 0u);
    EXPECT_EQ(boxes[d].pop_bulk(out[d]->ptr, 1000, streams[d]), 0u) << "device " << d << " pop on empty";
  }
}

// ---------------------------------------------------------------- a producer on a peer device

__global__ void peer_producer(pbm::MailboxRef ref, std::uint32_t per_thread, bool use_warp, unsigned* in_count,
                              unsigned* refused) {
  std::uint32_t const id = blockIdx.x * blockDim.x + threadIdx.x;
  for (std::uint32_t s = 0; s < per_thread; ++s) {
    Rec const r{id, s, checksum(id, s), 0};
    bool const in = use_warp ? pbm::warp_push(ref, &r) : pbm::try_push(ref, &r);
    atomicAdd(in ? in_count : refused, 1u);
  }
}

// Producer kernel on device 0, mailbox on device 1; handoff by an event recorded on device 0's
// stream and waited on by device 1's; host-launched pop on device 1. Every record exactly once,
// intact, and each producer's records in the order it pushed them.
void peer_push_then_pop(bool use_warp) {
  if (!pbm::can_access_peer(0, 1)) GTEST_SKIP() << "CUDA device 0 cannot access device 1 (no P2P path)";
  pbm::enable_peer_access(0, 1);
  constexpr std::uint32_t blocks = 64, threads = 128, per_thread = 16;
  constexpr std::uint32_t producers = blocks * threads, total = producers * per_thread;  // 131072

  pbm::Mailbox box(total + 1024, sizeof(Rec), 1, "multi_gpu_peer");
  pbm::Stream producer_stream(pbm::StreamClass::focus, 0);
  pbm::Stream consumer_stream(pbm::StreamClass::focus, 1);
  std::unique_ptr<DeviceBuffer<unsigned>> counts;
  std::unique_ptr<pbm::Event> pushed;
  {
    pbm::DeviceGuard guard(0);
    counts = std::make_unique<DeviceBuffer<unsigned>>(2);
    counts->fill(0);
    pushed = std::make_unique<pbm::Event>();  // an event of device 0, recorded on its stream
    peer_producer<<<blocks, threads, 0, producer_stream>>>(box.ref(), per_thread, use_warp, counts->ptr,
                                                           counts->ptr + 1);
    PBM_TEST_CUDA(cudaGetLastError());
  }
  pbm::handoff(*pushed, producer_stream, consumer_stream);  // device 1 pops after the kernel

  std::unique_ptr<DeviceBuffer<Rec>> out;
  {
    pbm::DeviceGuard guard(1);
    out = std::make_unique<DeviceBuffer<Rec>>(total + 64);
    out->fill(0xEE);
  }
  std::uint64_t got = 0;
  for (int pops = 0; pops < 8 && got < total; ++pops) {
    std::uint64_t const k = box.pop_bulk(out->ptr + got, total + 64 - got, consumer_stream);
    if (k == 0) break;
    got += k;
  }
  EXPECT_EQ(got, total);
  auto const c = counts->to_host();
  EXPECT_EQ(c[0], total) << "pushes that went in";
  EXPECT_EQ(c[1], 0u) << "pushes refused";

  auto const host = out->to_host();
  std::vector<std::uint32_t> next(producers, 0);  // next expected seq of each producer
  std::uint64_t bad = 0, out_of_order = 0;
  for (std::uint64_t i = 0; i < got; ++i) {
    Rec const& r = host[i];
    if (r.producer >= producers || r.seq >= per_thread || r.check != checksum(r.producer, r.seq)) {
      ++bad;
      continue;
    }
    if (r.seq != next[r.producer]) ++out_of_order;  // a duplicate or a gap shows here too
    next[r.producer] = r.seq + 1;
  }
  EXPECT_EQ(bad, 0u) << "corrupt records";
  EXPECT_EQ(out_of_order, 0u) << "records lost, duplicated or out of order";
  for (std::uint32_t p = 0; p < producers; ++p) ASSERT_EQ(next[p], per_thread) << "producer " << p << " lost records";

  std::uint64_t const again = box.pop_bulk(out->ptr, 64, consumer_stream);
  EXPECT_EQ(again, 0u) << "records popped twice";
  box.refresh_stats(consumer_stream);
  PBM_TEST_CUDA(cudaStreamSynchronize(consumer_stream));  // a test may wait; the library does not
  pbm::Stats const s = box.stats();
  EXPECT_EQ(s.pushed, total);
  EXPECT_EQ(s.popped, total);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.occupancy, 0u);
}

TEST(MultiGpu, TryPushFromGpu0IntoMailboxOnGpu1LosesAndDuplicatesNothing) {
  PBM_REQUIRE_GPUS(2);
  peer_push_then_pop(false);
}

TEST(MultiGpu, WarpPushFromGpu0IntoMailboxOnGpu1LosesAndDuplicatesNothing) {
  PBM_REQUIRE_GPUS(2);
  peer_push_then_pop(true);
}

// ---------------------------------------------------------------- enable_peer_access itself

TEST(MultiGpu, EnablePeerAccessIsIdempotentOrNamesBothDevicesAndRestoresTheCurrentDevice) {
  PBM_REQUIRE_GPUS(2);
  PBM_TEST_CUDA(cudaSetDevice(1));
  for (auto const pair : {std::pair{0, 1}, std::pair{1, 0}}) {
    int const from = pair.first, to = pair.second;  // named: lambdas below capture them (C++17)
    if (pbm::can_access_peer(from, to)) {
      EXPECT_NO_THROW(pbm::enable_peer_access(from, to));
      EXPECT_NO_THROW(pbm::enable_peer_access(from, to)) << "already enabled is success";
    } else {
      std::string const m = invalid_argument_message([&] { pbm::enable_peer_access(from, to); });
      EXPECT_TRUE(contains(m, "device " + std::to_string(from))) << m;
      EXPECT_TRUE(contains(m, "device " + std::to_string(to))) << m;
      EXPECT_THROW(pbm::enable_peer_access(from, to), pbm::peer_access_error);
    }
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "an error was left behind";
    EXPECT_EQ(pbm::current_device(), 1) << "current device changed";
  }
  PBM_TEST_CUDA(cudaSetDevice(0));
}

TEST(MultiGpu, MissingOrNegativeDeviceIsInvalidArgumentNamingIt) {
  PBM_REQUIRE_GPUS(1);
  int const n = visible_devices();
  int const before = pbm::current_device();
  std::string m = invalid_argument_message([&] { pbm::enable_peer_access(0, n); });
  EXPECT_TRUE(contains(m, "no CUDA device " + std::to_string(n))) << m;
  EXPECT_TRUE(contains(m, std::to_string(n) + " visible")) << m;
  m = invalid_argument_message([&] { pbm::enable_peer_access(n, 0); });
  EXPECT_TRUE(contains(m, "no CUDA device " + std::to_string(n))) << m;
  m = invalid_argument_message([&] { pbm::enable_peer_access(-1, 0); });
  EXPECT_TRUE(contains(m, "no CUDA device -1")) << m;
  m = invalid_argument_message([&] { static_cast<void>(pbm::can_access_peer(0, n)); });
  EXPECT_TRUE(contains(m, "no CUDA device " + std::to_string(n))) << m;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "bad input left a CUDA error behind";
  EXPECT_EQ(pbm::current_device(), before);
}

// A device always reaches its own memory: (d, d) is true and enabling it is a no-op, so code that
// loops over every pair of devices needs no special case (CUDA itself reports 0 and refuses).
TEST(MultiGpu, SelfPeerAccessIsANoOp) {
  PBM_REQUIRE_GPUS(1);
  int const n = visible_devices();
  for (int d = 0; d < n; ++d) {
    EXPECT_TRUE(pbm::can_access_peer(d, d)) << "device " << d;
    EXPECT_NO_THROW(pbm::enable_peer_access(d, d)) << "device " << d;
    EXPECT_NO_THROW(pbm::enable_peer_access(d, d)) << "device " << d;
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
