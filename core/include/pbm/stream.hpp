// RAII CUDA streams of two priority classes, events, and cross-stream handoff.
//
// Focus streams get the device's greatest priority, peripheral streams its least; the range
// comes from cudaDeviceGetStreamPriorityRange. Handoff between a producer stream and a consumer
// stream is an event recorded on one and waited on by the other: never a host synchronisation.
// Thread-safety: distinct objects may be used from distinct threads; one object is not
// synchronised internally.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pbm {

/// Priority class of a stream: every metric can be split by it.
enum class StreamClass : std::uint8_t { focus, peripheral };

/// Name of a class: "focus" or "peripheral".
char const* to_string(StreamClass c) noexcept;

/// The device's stream priority range. `greatest` is numerically lowest (CUDA's convention).
struct PriorityRange {
  int least;
  int greatest;
};
/// Reads the range of `device` (-1: the current device). Does not synchronise.
PriorityRange priority_range(int device = -1);

/// The class of a stream of `priority` on a device of priority range `range`: focus at the
/// greatest priority of a device that has more than one, peripheral otherwise.
constexpr StreamClass stream_class_for(int priority, PriorityRange range) noexcept {
  return range.greatest != range.least && priority == range.greatest ? StreamClass::focus : StreamClass::peripheral;
}

/// The class of a stream by its priority: the current device's greatest priority is focus,
/// anything else peripheral. Runtime queries only (the stream's priority, the device's range);
/// does not synchronise.
StreamClass classify_stream(cudaStream_t stream);

/// An owning, move-only non-blocking CUDA stream of a priority class, on one device.
class Stream {
 public:
  /// Creates a stream on `device` (-1: current) with the priority of `cls`. Does not synchronise.
  explicit Stream(StreamClass cls, int device = -1);
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(Stream const&) = delete;
  Stream& operator=(Stream const&) = delete;

  cudaStream_t get() const noexcept { return stream_; }
  operator cudaStream_t() const noexcept { return stream_; }  // NOLINT: a stream is a stream
  StreamClass stream_class() const noexcept { return class_; }
  int priority() const noexcept { return priority_; }
  int device() const noexcept { return device_; }

 private:
  cudaStream_t stream_ = nullptr;
  StreamClass class_ = StreamClass::peripheral;
  int priority_ = 0;
  int device_ = 0;
};

/// An owning, move-only CUDA event without timing (cheapest to record and wait on).
class Event {
 public:
  /// Creates the event on the current device. Does not synchronise.
  Event();
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(Event const&) = delete;
  Event& operator=(Event const&) = delete;

  /// Records the event after the work enqueued so far on `stream`. Does not synchronise.
  void record(cudaStream_t stream);
  /// Makes `stream` wait for the last record on the device. Does not synchronise the host.
  void wait_on(cudaStream_t stream) const;
  cudaEvent_t get() const noexcept { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

/// Producer/consumer handoff: work enqueued on `consumer` after this call runs after the work
/// enqueued on `producer` before it. Records `event` on producer, waits on consumer.
/// Does not synchronise the host.
void handoff(Event& event, cudaStream_t producer, cudaStream_t consumer);

/// Sets the current device for its lifetime and restores the previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(DeviceGuard const&) = delete;
  DeviceGuard& operator=(DeviceGuard const&) = delete;

 private:
  int previous_ = -1;
  bool changed_ = false;
};

/// The current device (cudaGetDevice), throwing pbm::cuda_error when there is none.
int current_device();

}  // namespace pbm
