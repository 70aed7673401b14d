#include <pbm/error.hpp>
#include <pbm/nvtx.hpp>
#include <pbm/stream.hpp>

#include <utility>

namespace pbm {

char const* to_string(StreamClass c) noexcept { return c == StreamClass::focus ? "focus" : "peripheral"; }

int current_device() {
  int device = -1;
  PBM_CUDA_TRY(cudaGetDevice(&device));
  return device;
}

PriorityRange priority_range(int device) {
  DeviceGuard guard(device < 0 ? current_device() : device);
  PriorityRange r{};
  PBM_CUDA_TRY(cudaDeviceGetStreamPriorityRange(&r.least, &r.greatest));
  return r;
}

StreamClass classify_stream(cudaStream_t stream) {
  int priority = 0;
  PBM_CUDA_TRY(cudaStreamGetPriority(stream, &priority));
  return stream_class_for(priority, priority_range());
}

Stream::Stream(StreamClass cls, int device) : class_(cls), device_(device < 0 ? current_device() : device) {
  int count = 0;
  PBM_CUDA_TRY(cudaGetDeviceCount(&count));
  PBM_EXPECTS(device_ < count, "no CUDA device " + std::to_string(device_) + " (" + std::to_string(count) + " visible)");
  PriorityRange const range = priority_range(device_);
  priority_ = cls == StreamClass::focus ? range.greatest : range.least;
  DeviceGuard guard(device_);
  PBM_CUDA_TRY(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, priority_));
}

Stream::~Stream() {
  if (stream_ != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(stream_));
}

Stream::Stream(Stream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)), class_(other.class_), priority_(other.priority_),
      device_(other.device_) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaStreamDestroy(stream_));
    stream_ = std::exchange(other.stream_, nullptr);
    class_ = other.class_;
    priority_ = other.priority_;
    device_ = other.device_;
  }
  return *this;
}

Event::Event() { PBM_CUDA_TRY(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }

Event::~Event() {
  if (event_ != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaEventDestroy(event_));
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) PBM_CUDA_TRY_NOEXCEPT(cudaEventDestroy(event_));
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

void Event::record(cudaStream_t stream) { PBM_CUDA_TRY(cudaEventRecord(event_, stream)); }

void Event::wait_on(cudaStream_t stream) const { PBM_CUDA_TRY(cudaStreamWaitEvent(stream, event_, 0)); }

void handoff(Event& event, cudaStream_t producer, cudaStream_t consumer) {
  PBM_NVTX_RANGE(handoff, handoff);
  event.record(producer);
  event.wait_on(consumer);
}

DeviceGuard::DeviceGuard(int device) {
  PBM_CUDA_TRY(cudaGetDevice(&previous_));
  if (device != previous_) {
    PBM_CUDA_TRY(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_) PBM_CUDA_TRY_NOEXCEPT(cudaSetDevice(previous_));
}

}  // namespace pbm
