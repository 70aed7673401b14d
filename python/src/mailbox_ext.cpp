// mailbox_ext: the PyTorch binding of pbm's GPU mailbox.
//
// Every kernel runs on PyTorch's current stream of the tensors' device (device guard + current
// stream). push never waits; pop_bulk waits for its count through pinned mapped memory (the
// PopHandle), never with .cpu()/.item() or a device-to-host copy. Bad input raises ValueError (or
// pbm.HeaderError, a ValueError, for a header the device rejects) and changes nothing.
// The tensor functions release the GIL around everything that may wait or launch; pbm.Mailbox's
// bound object (bound_mailbox.hpp) holds it while it launches.
#include "adopted.hpp"
#include "bindings.hpp"
#include "bound_mailbox.hpp"
#include "common.hpp"

#include <pbm/error.hpp>
#include <pbm/expected.hpp>
#include <pbm/layout.hpp>
#include <pbm/registry.hpp>
#include <pbm/stream.hpp>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/extension.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace py = pybind11;

namespace pbm::python {

WaitPolicy parse_wait(std::string const& mode, std::uint64_t spin_ns) {
  WaitPolicy policy;
  policy.spin_ns = spin_ns;
  if (mode == "spin")
    policy.mode = WaitMode::spin;
  else if (mode == "block")
    policy.mode = WaitMode::block;
  else if (mode == "spin_then_block")
    policy.mode = WaitMode::spin_then_block;
  else
    throw std::invalid_argument("pbm: wait mode must be 'spin', 'block' or 'spin_then_block', not '" + mode + "'");
  return policy;
}

std::uint64_t checked_records(std::int64_t n, char const* what) {
  if (n < 0) throw std::invalid_argument(std::string("pbm: ") + what + " must be >= 0, got " + std::to_string(n));
  return static_cast<std::uint64_t>(n);
}

py::dict stats_dict(Stats const& s) {
  py::dict d;
  d["pushed"] = s.pushed;
  d["popped"] = s.popped;
  d["dropped"] = s.dropped;
  d["pop_calls"] = s.pop_calls;
  d["occupancy"] = s.occupancy;
  d["capacity"] = s.capacity;
  d["stride"] = s.stride;
  return d;
}

namespace {

cudaStream_t current_stream(at::Tensor const& t) {
  return at::cuda::getCurrentCUDAStream(t.get_device()).stream();
}

struct Launch {
  std::shared_ptr<Mailbox> mailbox;
  cudaStream_t stream;
};

// Validates, guards the device and looks the mailbox up (adopting it on first use).
Launch prepare(at::Tensor const& hdr, at::Tensor const& payload, Geometry const& g) {
  cudaStream_t const stream = current_stream(hdr);
  return Launch{adopted(hdr, payload, g, stream), stream};
}

std::tuple<at::Tensor, at::Tensor> pbm_alloc(std::int64_t capacity, std::int64_t stride, std::string const& name,
                                             std::int64_t device) {
  if (capacity <= 0) throw std::invalid_argument("pbm: capacity_records must be > 0, got " + std::to_string(capacity));
  if (stride <= 0 || stride > static_cast<std::int64_t>(kMaxStride))
    throw std::invalid_argument("pbm: record_stride must be in 1.." + std::to_string(kMaxStride) + ", got " +
                                std::to_string(stride));
  Geometry g{static_cast<std::uint64_t>(capacity), static_cast<std::uint32_t>(stride)};
  validate_geometry(g.capacity, g.stride);
  py::gil_scoped_release nogil;
  auto const index = static_cast<c10::DeviceIndex>(device < 0 ? c10::cuda::current_device() : device);
  c10::cuda::CUDAGuard guard(index);
  auto const options = at::TensorOptions().dtype(at::kByte).device(at::Device(at::kCUDA, index));
  at::Tensor hdr = at::empty({static_cast<std::int64_t>(header_bytes(g.capacity))}, options);
  at::Tensor payload = at::empty({static_cast<std::int64_t>(g.capacity * g.stride)}, options);
  {
    // The caching allocator may hand back memory that kernels queued on the current stream still
    // use; pbm initialises the header on its own stream. Allocation is documented to synchronise.
    ExpectedSyncScope expected;
    cudaError_t const err = cudaStreamSynchronize(at::cuda::getCurrentCUDAStream(index).stream());
    if (err != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      throw std::runtime_error(std::string("pbm: cudaStreamSynchronize failed: ") + cudaGetErrorString(err));
    }
  }
  adopt_new(hdr, payload, g, name);
  return {hdr, payload};
}

std::pair<at::Tensor, Handle> push_impl(at::Tensor const& hdr, at::Tensor const& payload, at::Tensor const& rec) {
  Geometry const g = geometry_of(hdr, payload);
  check_byte_tensor(rec, "rec");
  check_same_device(hdr, "hdr", rec, "rec");
  auto const bytes = static_cast<std::uint64_t>(rec.numel());
  if (bytes % g.stride != 0)
    throw std::invalid_argument("pbm: rec has " + std::to_string(bytes) + " bytes, not a multiple of the record stride (" +
                                std::to_string(g.stride) + " bytes)");
  std::uint64_t const n = bytes / g.stride;
  c10::cuda::CUDAGuard guard(hdr.device());
  Launch const launch = prepare(hdr, payload, g);
  at::Tensor count = at::empty({}, hdr.options().dtype(at::kLong));
  OpHandle h = launch.mailbox->push(n == 0 ? nullptr : rec.data_ptr(), n, launch.stream,
                                    reinterpret_cast<unsigned long long*>(count.data_ptr<std::int64_t>()));
  return {count, Handle(std::move(h))};
}

at::Tensor pbm_push_bytes_cuda(at::Tensor hdr, at::Tensor payload, at::Tensor rec) {
  py::gil_scoped_release nogil;
  return push_impl(hdr, payload, rec).first;
}

std::tuple<at::Tensor, Handle> pbm_push_async(at::Tensor hdr, at::Tensor payload, at::Tensor rec) {
  py::gil_scoped_release nogil;
  auto result = push_impl(hdr, payload, rec);
  return {result.first, std::move(result.second)};
}

Geometry checked_pop_geometry(at::Tensor const& hdr, at::Tensor const& payload, std::int64_t record_stride) {
  Geometry const g = geometry_of(hdr, payload);
  if (record_stride != static_cast<std::int64_t>(g.stride))
    throw std::invalid_argument("pbm: record_stride " + std::to_string(record_stride) +
                                " does not match the mailbox: its payload of " + std::to_string(payload.numel()) +
                                " bytes for " + std::to_string(g.capacity) + " records means a stride of " +
                                std::to_string(g.stride));
  return g;
}

at::Tensor pbm_pop_bulk_cuda(at::Tensor hdr, at::Tensor payload, std::int64_t max_records, std::int64_t record_stride,
                             std::string const& wait, std::uint64_t spin_ns) {
  WaitPolicy const policy = parse_wait(wait, spin_ns);
  std::uint64_t max = checked_records(max_records, "max_records");
  py::gil_scoped_release nogil;
  Geometry const g = checked_pop_geometry(hdr, payload, record_stride);
  if (max > g.capacity) max = g.capacity;  // a pop never returns more than the capacity
  c10::cuda::CUDAGuard guard(hdr.device());
  Launch const launch = prepare(hdr, payload, g);
  at::Tensor out = at::empty({static_cast<std::int64_t>(max * g.stride)}, payload.options());
  if (max == 0) return out;
  PopHandle h = launch.mailbox->pop_bulk_async(out.data_ptr(), max, launch.stream);
  std::uint64_t const count = h.wait(policy);  // pinned mapped memory; an expected event wait at worst
  return out.narrow(0, 0, static_cast<std::int64_t>(count * g.stride));
}

std::tuple<at::Tensor, at::Tensor, Handle> pbm_pop_bulk_async(at::Tensor hdr, at::Tensor payload,
                                                              std::int64_t max_records, std::int64_t record_stride,
                                                              bool zero_fill) {
  std::uint64_t const max = checked_records(max_records, "max_records");
  py::gil_scoped_release nogil;
  Geometry const g = checked_pop_geometry(hdr, payload, record_stride);
  c10::cuda::CUDAGuard guard(hdr.device());
  Launch const launch = prepare(hdr, payload, g);
  auto const bytes = static_cast<std::int64_t>(max * g.stride);
  // zero_fill makes the bytes past count deterministic (torch.library ops compare outputs).
  at::Tensor out = zero_fill ? at::zeros({bytes}, payload.options()) : at::empty({bytes}, payload.options());
  at::Tensor count = at::empty({}, hdr.options().dtype(at::kLong));
  PopHandle h = launch.mailbox->pop_bulk_async(max == 0 ? nullptr : out.data_ptr(), max, launch.stream,
                                               reinterpret_cast<unsigned long long*>(count.data_ptr<std::int64_t>()));
  return {out, count, Handle(std::move(h))};
}

py::dict pbm_stats(at::Tensor hdr) {
  check_byte_tensor(hdr, "hdr");
  std::shared_ptr<Mailbox> mailbox = find_adopted(hdr);
  if (!mailbox)
    throw std::invalid_argument("pbm: this hdr tensor has not been used with pbm yet (no stats to read)");
  return stats_dict(mailbox->stats());  // mapped host memory: no CUDA call
}

void pbm_refresh_stats(at::Tensor hdr) {
  check_byte_tensor(hdr, "hdr");
  std::shared_ptr<Mailbox> mailbox = find_adopted(hdr);
  if (!mailbox) throw std::invalid_argument("pbm: this hdr tensor has not been used with pbm yet");
  py::gil_scoped_release nogil;
  c10::cuda::CUDAGuard guard(hdr.device());
  mailbox->refresh_stats(current_stream(hdr));
}

py::list pbm_mailboxes() {
  py::list out;
  for (MailboxInfo const& info : mailboxes()) {
    py::dict d = stats_dict(info.stats);
    d["name"] = info.name;
    d["device"] = info.device;
    d["push_calls"] = py::make_tuple(info.push_calls[0], info.push_calls[1]);
    d["pop_calls_by_class"] = py::make_tuple(info.pop_calls[0], info.pop_calls[1]);
    out.append(d);
  }
  return out;
}

// Streams of the two classes, created by pbm with the device's greatest/least priority (torch's
// own pool streams stop short of the greatest priority on recent GPUs). They live as long as the
// process: torch may keep using a stream handle (current stream, record_stream) after the Python
// object is gone, so they are never destroyed.
std::uintptr_t pbm_stream(std::int64_t device, bool focus, std::int64_t index) {
  if (index < 0) throw std::invalid_argument("pbm: stream index must be >= 0, got " + std::to_string(index));
  static std::mutex mu;
  static auto* streams = new std::map<std::tuple<int, bool, std::int64_t>, Stream*>();
  int const dev = device < 0 ? static_cast<int>(c10::cuda::current_device()) : static_cast<int>(device);
  std::lock_guard<std::mutex> lock(mu);
  auto key = std::make_tuple(dev, focus, index);
  auto it = streams->find(key);
  if (it == streams->end())
    it = streams->emplace(key, new Stream(focus ? StreamClass::focus : StreamClass::peripheral, dev)).first;
  return reinterpret_cast<std::uintptr_t>(it->second->get());
}

std::string pbm_stream_class(std::uintptr_t stream) {
  return to_string(classify_stream(reinterpret_cast<cudaStream_t>(stream)));
}

std::tuple<int, int> pbm_priority_range(std::int64_t device) {
  PriorityRange const r = priority_range(static_cast<int>(device));
  return {r.least, r.greatest};
}

}  // namespace
}  // namespace pbm::python

PYBIND11_MODULE(mailbox_ext, m) {
  using namespace pbm::python;
  m.doc() = "pbm GPU mailbox: PyTorch binding (see python/README.md)";
  // A header the device rejects (never initialised, corrupted, other stride). Bad input: a ValueError.
  py::register_exception<pbm::header_error>(m, "HeaderError", PyExc_ValueError);

  py::class_<Handle>(m, "Handle", "A push or pop in flight (move-only in C++; shared here).")
      .def("ready", &Handle::ready, "True once the kernel published its count. No CUDA call, never waits.")
      .def("wait", &Handle::wait, py::arg("mode") = "spin_then_block", py::arg("spin_ns") = 200000,
           "Waits for this operation only (pinned mapped memory, then the event under 'block' or after the "
           "spin) and returns the count. Raises pbm.HeaderError when the device rejected the header.")
      .def("wait_on", &Handle::wait_on, py::arg("stream"),
           "Makes a stream (cudaStream_t as int) wait for this operation. Does not block the host.")
      .def_property_readonly("event", &Handle::event, "The cudaEvent_t recorded after the kernel, as int.")
      .def_property_readonly("requested", &Handle::requested);
  bind_mailbox_class(m);

  m.def("pbm_alloc", &pbm_alloc, py::arg("capacity_records"), py::arg("record_stride"), py::arg("name") = "mailbox",
        py::arg("device") = -1,
        "(hdr, payload): uint8 CUDA tensors of a new, initialised mailbox on `device` (-1: current). "
        "Synchronises (allocation time only).");
  m.def("pbm_push_bytes_cuda", &pbm_push_bytes_cuda, py::arg("hdr"), py::arg("payload"), py::arg("rec"),
        "Pushes rec (one record or n x stride bytes, contiguous uint8 CUDA) on the current stream. Returns the "
        "count pushed as a 0-dim int64 CUDA tensor (records that did not fit are dropped). Never waits.");
  m.def("pbm_push_async", &pbm_push_async, py::arg("hdr"), py::arg("payload"), py::arg("rec"),
        "Like pbm_push_bytes_cuda, plus a Handle (host-side count, event for handoff).");
  m.def("pbm_pop_bulk_cuda", &pbm_pop_bulk_cuda, py::arg("hdr"), py::arg("payload"), py::arg("max_records"),
        py::arg("record_stride"), py::arg("wait") = "spin_then_block", py::arg("spin_ns") = 200000,
        "Pops up to max_records records in FIFO order; returns a uint8 CUDA tensor of exactly count x stride "
        "bytes (a view of the pop buffer). Waits for the count through pinned mapped memory only.");
  m.def("pbm_pop_bulk_async", &pbm_pop_bulk_async, py::arg("hdr"), py::arg("payload"), py::arg("max_records"),
        py::arg("record_stride"), py::arg("zero_fill") = false,
        "(buffer of max_records x stride bytes, 0-dim int64 CUDA count, Handle). Never waits.");
  m.def("pbm_stats", &pbm_stats, py::arg("hdr"),
        "Counters of the mailbox of hdr from mapped host memory (no CUDA call; as of its last pbm launch).");
  m.def("pbm_refresh_stats", &pbm_refresh_stats, py::arg("hdr"),
        "Launches the stats snapshot kernel on the current stream. Never waits.");
  m.def("pbm_release",
        [](at::Tensor hdr) {
          py::gil_scoped_release nogil;  // destroying the mailbox frees device memory: waits for the device
          return release_adopted(hdr);
        },
        py::arg("hdr"),
        "Forgets the mailbox adopted over hdr (its completion pool is freed: cudaFree waits for the device).");
  m.def("adopted_count", &adopted_count);
  m.def("mailboxes", &pbm_mailboxes, "Every live pbm mailbox in this process (registry), as dicts.");
  m.def("header_bytes", [](std::uint64_t capacity) { return pbm::header_bytes(capacity); }, py::arg("capacity"));
  m.def("stream", &pbm_stream, py::arg("device"), py::arg("focus"), py::arg("index") = 0,
        "cudaStream_t (int) of pbm's focus/peripheral stream `index` on `device` (-1: current); process lifetime.");
  m.def("stream_class", &pbm_stream_class, py::arg("stream"), "'focus' or 'peripheral' for a cudaStream_t (int).");
  m.def("priority_range", &pbm_priority_range, py::arg("device") = -1, "(least, greatest) stream priority.");

  bind_telemetry(m);
}
