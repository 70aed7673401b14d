#include "adopted.hpp"

#include <pbm/error.hpp>
#include <pbm/layout.hpp>

#include <c10/core/Storage.h>
#include <c10/util/intrusive_ptr.h>

#include <cstdint>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace pbm::python {
namespace {

using WeakStorage = c10::weak_intrusive_ptr<c10::StorageImpl>;

struct Entry {
  Entry(at::Tensor const& hdr, at::Tensor const& payload_tensor, Geometry g, std::shared_ptr<Mailbox> mb)
      : hdr_storage(hdr.storage().getWeakStorageImpl()),
        payload_storage(payload_tensor.storage().getWeakStorageImpl()),
        payload(payload_tensor.data_ptr()),
        geometry(g),
        mailbox(std::move(mb)) {}

  WeakStorage hdr_storage;  // weak: the cache never keeps a tensor's memory alive
  WeakStorage payload_storage;
  void* payload;
  Geometry geometry;
  std::shared_ptr<Mailbox> mailbox;
};

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}

// Keyed by the header's data pointer; an entry is alive while both tensors' storages are.
std::unordered_map<void*, Entry>& cache() {
  // Never destroyed: at interpreter exit CUDA may be gone before static destructors run.
  static auto* entries = new std::unordered_map<void*, Entry>();
  return *entries;
}

bool same_storage(WeakStorage const& weak, at::Tensor const& t) {
  c10::intrusive_ptr<c10::StorageImpl> const strong = weak.lock();
  return strong && strong.get() == t.storage().unsafeGetStorageImpl();
}

bool expired(Entry const& e) { return e.hdr_storage.expired() || e.payload_storage.expired(); }

std::string hex(void const* p) {
  std::ostringstream os;
  os << p;
  return os.str();
}

void sweep_expired_locked() {
  auto& entries = cache();
  for (auto it = entries.begin(); it != entries.end();) {
    if (expired(it->second))
      it = entries.erase(it);
    else
      ++it;
  }
}

// A zero-record pop: the kernel validates the header (magic, version, stride, capacity) and
// publishes the verdict; it claims nothing. wait() throws pbm::header_error for a bad header.
void validate_on_device(Mailbox& mailbox, cudaStream_t stream) {
  PopHandle handle = mailbox.pop_bulk_async(nullptr, 0, stream);
  handle.wait();
}

}  // namespace

void check_byte_tensor(at::Tensor const& t, char const* what) {
  if (!t.defined()) throw std::invalid_argument(std::string("pbm: ") + what + " is an undefined tensor");
  if (!t.is_cuda())
    throw std::invalid_argument(std::string("pbm: ") + what + " must be a CUDA tensor, got a tensor on " +
                                t.device().str());
  if (t.scalar_type() != at::kByte)
    throw std::invalid_argument(std::string("pbm: ") + what + " must have dtype torch.uint8, got " +
                                std::string(c10::toString(t.scalar_type())));
  if (!t.is_contiguous())
    throw std::invalid_argument(std::string("pbm: ") + what + " must be contiguous (call .contiguous() first)");
}

void check_same_device(at::Tensor const& a, char const* a_name, at::Tensor const& b, char const* b_name) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string("pbm: ") + a_name + " is on " + a.device().str() + " but " + b_name +
                                " is on " + b.device().str() + "; all tensors must be on one device");
}

Geometry geometry_of(at::Tensor const& hdr, at::Tensor const& payload) {
  check_byte_tensor(hdr, "hdr");
  check_byte_tensor(payload, "payload");
  check_same_device(hdr, "hdr", payload, "payload");
  auto const base = static_cast<std::int64_t>(header_bytes(0));
  std::int64_t const hdr_bytes = hdr.numel();
  if (hdr_bytes <= base || (hdr_bytes - base) % 8 != 0)
    throw std::invalid_argument("pbm: hdr has " + std::to_string(hdr_bytes) +
                                " bytes; a header for C records has " + std::to_string(base) +
                                " + 8 x C bytes (make one with pbm_alloc)");
  Geometry g;
  g.capacity = static_cast<std::uint64_t>((hdr_bytes - base) / 8);
  auto const payload_bytes = static_cast<std::uint64_t>(payload.numel());
  if (payload_bytes == 0 || payload_bytes % g.capacity != 0)
    throw std::invalid_argument("pbm: payload has " + std::to_string(payload_bytes) +
                                " bytes, not a multiple of the capacity (" + std::to_string(g.capacity) +
                                " records) that the header size implies");
  std::uint64_t const stride = payload_bytes / g.capacity;
  if (stride > kMaxStride)
    throw std::invalid_argument("pbm: payload implies a record stride of " + std::to_string(stride) +
                                " bytes, more than the limit of " + std::to_string(kMaxStride));
  g.stride = static_cast<std::uint32_t>(stride);
  validate_geometry(g.capacity, g.stride);  // std::invalid_argument naming the bad value
  return g;
}

std::shared_ptr<Mailbox> adopted(at::Tensor const& hdr, at::Tensor const& payload, Geometry g, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& entries = cache();
  void* const key = hdr.data_ptr();
  auto it = entries.find(key);
  if (it != entries.end()) {
    Entry& e = it->second;
    if (!expired(e) && same_storage(e.hdr_storage, hdr)) {
      if (e.payload != payload.data_ptr() || e.geometry.capacity != g.capacity || e.geometry.stride != g.stride)
        throw std::invalid_argument(
            "pbm: this hdr tensor (" + hex(key) + ") is in use with another payload (" + hex(e.payload) + ", " +
            std::to_string(e.geometry.capacity) + " records of " + std::to_string(e.geometry.stride) +
            " bytes); got payload " + hex(payload.data_ptr()) + " with " + std::to_string(g.capacity) +
            " records of " + std::to_string(g.stride) + " bytes");
      return e.mailbox;
    }
    entries.erase(it);  // the tensors it was made for are gone; this memory is another tensor now
  }
  sweep_expired_locked();
  auto mailbox = std::make_shared<Mailbox>(
      Mailbox::adopt(hdr.data_ptr(), payload.data_ptr(), g.capacity, g.stride, hdr.get_device(), "torch", false));
  validate_on_device(*mailbox, stream);  // throws pbm::header_error: not cached, nothing changed
  entries.emplace(key, Entry(hdr, payload, g, mailbox));
  return mailbox;
}

std::shared_ptr<Mailbox> adopt_new(at::Tensor const& hdr, at::Tensor const& payload, Geometry g,
                                   std::string const& name) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& entries = cache();
  entries.erase(hdr.data_ptr());
  sweep_expired_locked();
  auto mailbox = std::make_shared<Mailbox>(
      Mailbox::adopt(hdr.data_ptr(), payload.data_ptr(), g.capacity, g.stride, hdr.get_device(), name, true));
  entries.emplace(hdr.data_ptr(), Entry(hdr, payload, g, mailbox));
  return mailbox;
}

std::shared_ptr<Mailbox> find_adopted(at::Tensor const& hdr) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& entries = cache();
  auto it = entries.find(hdr.data_ptr());
  if (it == entries.end() || expired(it->second) || !same_storage(it->second.hdr_storage, hdr)) return nullptr;
  return it->second.mailbox;
}

bool release_adopted(at::Tensor const& hdr) {
  std::shared_ptr<Mailbox> doomed;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto& entries = cache();
  auto it = entries.find(hdr.data_ptr());
  if (it == entries.end()) return false;
  doomed = std::move(it->second.mailbox);
  entries.erase(it);
  return true;
}

std::size_t adopted_count() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  std::size_t n = 0;
  for (auto const& [key, e] : cache()) n += expired(e) ? 0 : 1;
  return n;
}

}  // namespace pbm::python
