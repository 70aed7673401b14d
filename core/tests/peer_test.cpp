// Peer access checks that need no GPU: ordinal validation names the bad device, the peer error
// names both devices, and a call on a machine without devices is a typed error, never a crash.
#include <pbm/error.hpp>
#include <pbm/peer.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

std::string message_of(int from, int to, int count) {
  try {
    pbm::validate_peer_devices(from, to, count);
  } catch (std::invalid_argument const& e) {
    return e.what();
  }
  return {};
}

bool contains(std::string const& s, std::string const& part) { return s.find(part) != std::string::npos; }

TEST(Peer, ValidOrdinalsPass) {
  EXPECT_EQ(message_of(0, 1, 2), "");
  EXPECT_EQ(message_of(1, 0, 2), "");
  EXPECT_EQ(message_of(0, 0, 1), "");
  EXPECT_EQ(message_of(7, 3, 8), "");
}

TEST(Peer, MissingOrNegativeOrdinalIsNamedWithTheVisibleCount) {
  std::string m = message_of(0, 1, 1);
  EXPECT_TRUE(contains(m, "no CUDA device 1")) << m;
  EXPECT_TRUE(contains(m, "to_device")) << m;
  EXPECT_TRUE(contains(m, "1 visible")) << m;
  m = message_of(-1, 0, 2);
  EXPECT_TRUE(contains(m, "no CUDA device -1")) << m;
  EXPECT_TRUE(contains(m, "from_device")) << m;
  m = message_of(0, 1, 0);
  EXPECT_TRUE(contains(m, "no CUDA device 0")) << m;
  EXPECT_TRUE(contains(m, "0 visible")) << m;
}

TEST(Peer, PeerErrorNamesBothDevicesAndIsAnInvalidArgument) {
  pbm::peer_access_error const e(0, 1);
  std::string const m = e.what();
  EXPECT_TRUE(contains(m, "device 0")) << m;
  EXPECT_TRUE(contains(m, "device 1")) << m;
  EXPECT_EQ(e.from_device(), 0);
  EXPECT_EQ(e.to_device(), 1);
  std::invalid_argument const* base = &e;
  EXPECT_NE(base, nullptr);
}

// Holds on every machine: with devices the ordinal check throws invalid_argument; without a
// driver or device, cudaGetDeviceCount fails first and the error is a pbm::cuda_error.
TEST(Peer, NegativeOrdinalIsATypedErrorWithOrWithoutDevices) {
  for (auto call : {+[] { pbm::enable_peer_access(-1, 0); }, +[] { static_cast<void>(pbm::can_access_peer(0, -1)); }}) {
    try {
      call();
      ADD_FAILURE() << "a negative ordinal was accepted";
    } catch (pbm::cuda_error const& e) {
      SUCCEED() << "no usable device: " << e.what();
    } catch (std::invalid_argument const& e) {
      EXPECT_TRUE(contains(e.what(), "no CUDA device -1")) << e.what();
    }
  }
}

}  // namespace
