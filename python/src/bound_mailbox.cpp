#include "bound_mailbox.hpp"

#include "adopted.hpp"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/EmptyTensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace py = pybind11;

namespace pbm::python {

BoundMailbox::BoundMailbox(at::Tensor hdr, at::Tensor payload) : hdr_(std::move(hdr)), payload_(std::move(payload)) {
  Geometry const g = geometry_of(hdr_, payload_);
  capacity_ = g.capacity;
  stride_ = static_cast<std::int64_t>(g.stride);
  device_ = hdr_.device().index();
  c10::cuda::CUDAGuard guard(hdr_.device());
  mailbox_ = adopted(hdr_, payload_, g, current_stream());
}

cudaStream_t BoundMailbox::current_stream() const { return at::cuda::getCurrentCUDAStream(device_).stream(); }

at::Tensor BoundMailbox::empty(at::IntArrayRef sizes, at::ScalarType dtype) const {
  // The function at::empty reaches for a CUDA tensor, called without the dispatcher's trip there:
  // a plain tensor from the caching allocator, on the current stream of this device.
  // (MemoryFormat::Contiguous is the default; a value compiles against any c10::optional.)
  return at::Tensor(
      at::detail::empty_cuda(sizes, dtype, at::Device(at::kCUDA, device_), at::MemoryFormat::Contiguous));
}

std::uint64_t BoundMailbox::records_in(at::Tensor const& t, char const* what) const {
  check_byte_tensor(t, what);
  if (t.device() != hdr_.device()) check_same_device(hdr_, "hdr", t, what);
  auto const bytes = static_cast<std::uint64_t>(t.numel());
  auto const stride = static_cast<std::uint64_t>(stride_);
  if (bytes % stride != 0)
    throw std::invalid_argument(std::string("pbm: ") + what + " has " + std::to_string(bytes) +
                                " bytes, not a multiple of the record stride (" + std::to_string(stride) + " bytes)");
  return bytes / stride;
}

namespace {
unsigned long long* device_word(at::Tensor const& count) {
  return reinterpret_cast<unsigned long long*>(count.data_ptr());
}
}  // namespace

at::Tensor BoundMailbox::push(at::Tensor const& records) const {
  std::uint64_t const n = records_in(records, "rec");
  at::Tensor count = empty({}, at::kLong);
  mailbox_->push(n == 0 ? nullptr : records.data_ptr(), n, current_stream(), device_word(count));
  return count;  // the launch's handle is dropped: the count lives in `count`
}

std::pair<at::Tensor, Handle> BoundMailbox::push_async(at::Tensor const& records) const {
  std::uint64_t const n = records_in(records, "rec");
  at::Tensor count = empty({}, at::kLong);
  OpHandle h = mailbox_->push(n == 0 ? nullptr : records.data_ptr(), n, current_stream(), device_word(count));
  return {std::move(count), Handle(std::move(h))};
}

at::Tensor BoundMailbox::pop(std::int64_t max_records, std::string const& wait, std::uint64_t spin_ns) const {
  WaitPolicy const policy = parse_wait(wait, spin_ns);
  std::uint64_t const max = std::min(checked_records(max_records, "max_records"), capacity_);
  at::Tensor out = empty({static_cast<std::int64_t>(max), stride_}, at::kByte);
  if (max == 0) return out;
  PopHandle const handle = mailbox_->pop_bulk_async(out.data_ptr(), max, current_stream());
  std::uint64_t count = 0;
  {
    py::gil_scoped_release nogil;
    count = handle.wait(policy);  // pinned mapped memory; an expected event wait at worst
  }
  // `out` is ours alone until returned: shrinking its sizes is what narrow() would give, without
  // a dispatched view op.
  if (count != max) out.unsafeGetTensorImpl()->set_sizes_contiguous({static_cast<std::int64_t>(count), stride_});
  return out;
}

std::tuple<at::Tensor, at::Tensor, Handle> BoundMailbox::pop_async(std::int64_t max_records) const {
  std::uint64_t const max = checked_records(max_records, "max_records");
  at::Tensor buffer = empty({static_cast<std::int64_t>(max) * stride_}, at::kByte);
  at::Tensor count = empty({}, at::kLong);
  PopHandle h = mailbox_->pop_bulk_async(max == 0 ? nullptr : buffer.data_ptr(), max, current_stream(),
                                         device_word(count));
  return {std::move(buffer), std::move(count), Handle(std::move(h))};
}

void BoundMailbox::refresh_stats() const { mailbox_->refresh_stats(current_stream()); }

std::vector<std::int64_t> BoundMailbox::cycle_ns(at::Tensor const& records, at::Tensor const& dst, std::int64_t iters,
                                                 at::Tensor const* push_count) const {
  std::uint64_t const n = records_in(records, "records");
  check_byte_tensor(dst, "dst");
  check_same_device(hdr_, "hdr", dst, "dst");
  auto const stride = static_cast<std::uint64_t>(stride_);
  if (static_cast<std::uint64_t>(dst.numel()) < n * stride)
    throw std::invalid_argument("pbm: dst has " + std::to_string(dst.numel()) + " bytes; the cycle pops " +
                                std::to_string(n) + " records of " + std::to_string(stride) + " bytes");
  unsigned long long* count = nullptr;
  if (push_count != nullptr) {
    at::Tensor const& c = *push_count;
    if (!c.defined() || !c.is_cuda() || c.scalar_type() != at::kLong || c.numel() != 1 || c.device() != hdr_.device())
      throw std::invalid_argument("pbm: push_count must be a one-element int64 CUDA tensor on " + hdr_.device().str());
    count = device_word(c);
  }
  std::uint64_t const runs = checked_records(iters, "iters");
  std::vector<std::int64_t> ns(runs);
  cudaStream_t const stream = current_stream();
  void const* src = n == 0 ? nullptr : records.data_ptr();
  void* out = n == 0 ? nullptr : dst.data_ptr();
  WaitPolicy policy;
  policy.mode = WaitMode::spin;
  py::gil_scoped_release nogil;
  for (std::uint64_t i = 0; i < runs; ++i) {
    auto const start = std::chrono::steady_clock::now();
    mailbox_->push(src, n, stream, count);  // its handle is dropped here, as pbm.Mailbox.push drops it
    std::uint64_t const got = mailbox_->pop_bulk_async(out, n, stream).wait(policy);
    auto const stop = std::chrono::steady_clock::now();
    if (got != n)
      throw std::runtime_error("pbm: C++ reference cycle " + std::to_string(i) + " popped " + std::to_string(got) +
                               " records, expected " + std::to_string(n));
    ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count();
  }
  return ns;
}

void bind_mailbox_class(py::module_& m) {
  py::class_<BoundMailbox>(m, "BoundMailbox",
                           "The mailbox adopted over (hdr, payload), bound once: what pbm.Mailbox holds. A call "
                           "checks its tensor, allocates its outputs and launches on the current stream.")
      .def(py::init([](at::Tensor hdr, at::Tensor payload) {
             py::gil_scoped_release nogil;  // adopting a header pbm has not seen synchronises once
             return std::make_unique<BoundMailbox>(std::move(hdr), std::move(payload));
           }),
           py::arg("hdr"), py::arg("payload"),
           "Binds the mailbox of hdr and payload (checked as the tensor functions check them); adopts it when "
           "pbm has not (validates the header on the device: synchronises once, pbm.HeaderError if bad).")
      .def("push", &BoundMailbox::push, py::arg("records"),
           "Pushes records (contiguous uint8 CUDA, n x stride bytes) on the current stream; returns the count "
           "pushed as a 0-dim int64 CUDA tensor. Never waits.")
      .def("push_async", &BoundMailbox::push_async, py::arg("records"), "(count tensor, Handle). Never waits.")
      .def("pop", &BoundMailbox::pop, py::arg("max_records"), py::arg("wait") = "spin_then_block",
           py::arg("spin_ns") = 200000,
           "Pops up to max_records records (FIFO) into a new [count, stride] uint8 CUDA tensor. Waits for this "
           "pop's count only (pinned mapped memory), without the GIL.")
      .def("pop_async", &BoundMailbox::pop_async, py::arg("max_records"),
           "(buffer of max_records x stride bytes, 0-dim int64 CUDA count, Handle). Never waits.")
      .def("stats", [](BoundMailbox const& self) { return stats_dict(self.stats()); },
           "Counters from mapped host memory (no CUDA call), as of this mailbox's last launch.")
      .def("refresh_stats", &BoundMailbox::refresh_stats, "Launches the stats snapshot kernel. Never waits.")
      .def_property_readonly("hdr", &BoundMailbox::hdr)
      .def_property_readonly("payload", &BoundMailbox::payload)
      .def_property_readonly("capacity", &BoundMailbox::capacity)
      .def_property_readonly("stride", &BoundMailbox::stride)
      .def_property_readonly("device", &BoundMailbox::device);

  m.def(
      "_cxx_cycle_ns",
      [](BoundMailbox const& mailbox, at::Tensor const& records, at::Tensor const& dst, std::int64_t iters,
         py::object const& push_count) {
        std::optional<at::Tensor> count;
        if (!push_count.is_none()) count = py::cast<at::Tensor>(push_count);
        return mailbox.cycle_ns(records, dst, iters, count ? &*count : nullptr);
      },
      py::arg("mailbox"), py::arg("records"), py::arg("dst"), py::arg("iters"), py::arg("push_count") = py::none(),
      "For bench/torch_bench.py: `iters` cycles of push(records) + pop_bulk_async(n) into dst + wait(spin), in "
      "C++ on this mailbox and the current stream, without the GIL. A list of each cycle's nanoseconds; "
      "RuntimeError when a pop's count is not n.");
}

}  // namespace pbm::python
