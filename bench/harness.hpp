// A small benchmark harness for pbm_bench: CUDA error checks, RAII buffers and events, summaries
// (median, p99), a JSON value, a watchdog against hangs, and the run context every figure gets.
//
// Timing rules the figures follow (BENCHMARKS.md explains them): the floor or rival is measured
// in the same process and interleaved with the candidate; GPU-side durations come from CUDA events
// after a warm-up, host-side costs and host-observed latencies from std::chrono::steady_clock;
// every timed result is checked (counts, drops, bytes) and a failed check fails the run.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pbm::bench {

// ------------------------------------------------------------------------------ errors

/// A failed CUDA call in a benchmark is fatal: print what failed, where, and exit 1.
inline void check_cuda(cudaError_t e, char const* expr, char const* file, int line) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "pbm_bench: CUDA error %s (%s)\n  in %s\n  at %s:%d\n", cudaGetErrorName(e),
               cudaGetErrorString(e), expr, file, line);
  std::fflush(nullptr);
  std::exit(1);
}

/// For destructors: report, never exit or throw.
inline void check_cuda_noexcept(cudaError_t e, char const* expr) noexcept {
  if (e != cudaSuccess) std::fprintf(stderr, "pbm_bench: CUDA error %s in %s (ignored)\n", cudaGetErrorName(e), expr);
}

}  // namespace pbm::bench

#define PBM_BENCH_CUDA(call) ::pbm::bench::check_cuda((call), #call, __FILE__, __LINE__)
#define PBM_BENCH_CUDA_NOEXCEPT(call) ::pbm::bench::check_cuda_noexcept((call), #call)
/// After a <<<...>>> launch: launch errors (bad configuration, no kernel image) surface here.
#define PBM_BENCH_LAUNCHED(what) ::pbm::bench::check_cuda(cudaGetLastError(), "launch of " what, __FILE__, __LINE__)

namespace pbm::bench {

// ------------------------------------------------------------------------------ RAII

/// Device memory, move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) PBM_BENCH_CUDA(cudaMalloc(&ptr_, bytes));
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) PBM_BENCH_CUDA_NOEXCEPT(cudaFree(ptr_));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBuffer(DeviceBuffer const&) = delete;
  DeviceBuffer& operator=(DeviceBuffer const&) = delete;

  template <class T = void>
  T* get() const noexcept { return static_cast<T*>(ptr_); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Pinned host memory; `mapped` also maps it into the device's address space (device_ptr()).
template <class T>
class HostBuffer {
 public:
  explicit HostBuffer(std::size_t count, bool mapped) : count_(count) {
    PBM_BENCH_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&host_), count * sizeof(T),
                                 mapped ? cudaHostAllocMapped : cudaHostAllocDefault));
    for (std::size_t i = 0; i < count; ++i) host_[i] = T{};
    if (mapped) PBM_BENCH_CUDA(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_), host_, 0));
  }
  ~HostBuffer() {
    if (host_ != nullptr) PBM_BENCH_CUDA_NOEXCEPT(cudaFreeHost(host_));
  }
  HostBuffer(HostBuffer const&) = delete;
  HostBuffer& operator=(HostBuffer const&) = delete;

  T* host() const noexcept { return host_; }
  T* device_ptr() const noexcept { return device_; }
  /// A volatile read: the device writes this memory behind the compiler's back.
  T load(std::size_t i = 0) const noexcept { return static_cast<T const volatile*>(host_)[i]; }
  std::size_t size() const noexcept { return count_; }

 private:
  T* host_ = nullptr;
  T* device_ = nullptr;
  std::size_t count_ = 0;
};

/// A timing event (cudaEventCreate default flags: timing on, no blocking sync).
class TimingEvent {
 public:
  TimingEvent() { PBM_BENCH_CUDA(cudaEventCreate(&e_)); }
  ~TimingEvent() {
    if (e_ != nullptr) PBM_BENCH_CUDA_NOEXCEPT(cudaEventDestroy(e_));
  }
  TimingEvent(TimingEvent const&) = delete;
  TimingEvent& operator=(TimingEvent const&) = delete;
  void record(cudaStream_t s) { PBM_BENCH_CUDA(cudaEventRecord(e_, s)); }
  cudaEvent_t get() const noexcept { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

/// Milliseconds between two recorded events; waits for `stop` first.
inline double elapsed_ms(TimingEvent const& start, TimingEvent const& stop) {
  PBM_BENCH_CUDA(cudaEventSynchronize(stop.get()));
  float ms = 0;
  PBM_BENCH_CUDA(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms;
}

// ------------------------------------------------------------------------------ time

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Spins until pred() or the deadline; a timeout is a hang and fatal (with `what` in the message).
template <class Pred>
void spin_until(Pred pred, char const* what, double timeout_s = 10.0) {
  if (pred()) return;
  std::int64_t const deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  for (unsigned i = 1; !pred(); ++i) {
    if (i % 1024 == 0 && now_ns() > deadline) {
      cudaError_t const e = cudaGetLastError();
      std::fprintf(stderr, "pbm_bench: timed out after %.0f s waiting for %s (last CUDA error: %s)\n", timeout_s, what,
                   cudaGetErrorName(e));
      std::fflush(nullptr);
      std::exit(1);
    }
  }
}

// ------------------------------------------------------------------------------ statistics

struct Summary {
  double median = 0, p99 = 0, p1 = 0, mean = 0, min = 0, max = 0;
  std::size_t n = 0;
};

/// Nearest-rank quantiles of the samples (any unit; the caller keeps track of it).
inline Summary summarise(std::vector<double> v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * (v.size() - 1) + 0.5))]; };
  s.median = at(0.5);
  s.p99 = at(0.99);
  s.p1 = at(0.01);
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// ------------------------------------------------------------------------------ JSON

/// A JSON value with ordered object keys. Just enough for the results file.
class Json {
 public:
  enum class Kind { null, boolean, integer, number, string, array, object };

  Json() = default;
  Json(bool b) : kind_(Kind::boolean), b_(b) {}                                        // NOLINT
  Json(int v) : kind_(Kind::integer), i_(v) {}                                          // NOLINT
  Json(long v) : kind_(Kind::integer), i_(v) {}                                         // NOLINT
  Json(long long v) : kind_(Kind::integer), i_(v) {}                                    // NOLINT
  Json(unsigned v) : kind_(Kind::integer), i_(static_cast<long long>(v)) {}             // NOLINT
  Json(unsigned long v) : kind_(Kind::integer), i_(static_cast<long long>(v)) {}        // NOLINT
  Json(unsigned long long v) : kind_(Kind::integer), i_(static_cast<long long>(v)) {}   // NOLINT
  Json(double v) : kind_(std::isfinite(v) ? Kind::number : Kind::null), d_(v) {}        // NOLINT
  Json(char const* s) : kind_(Kind::string), s_(s) {}                                  // NOLINT
  Json(std::string s) : kind_(Kind::string), s_(std::move(s)) {}                       // NOLINT

  static Json object() {
    Json j;
    j.kind_ = Kind::object;
    return j;
  }
  static Json array() {
    Json j;
    j.kind_ = Kind::array;
    return j;
  }

  /// Object member, inserted (null) when missing. Turns a null value into an object.
  Json& operator[](std::string const& key) {
    if (kind_ == Kind::null) kind_ = Kind::object;
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] == key) return items_[i];
    keys_.push_back(key);
    items_.emplace_back();
    return items_.back();
  }
  /// Appends to an array. Turns a null value into an array.
  Json& push_back(Json v) {
    if (kind_ == Kind::null) kind_ = Kind::array;
    items_.push_back(std::move(v));
    return items_.back();
  }
  Kind kind() const noexcept { return kind_; }
  std::size_t size() const noexcept { return items_.size(); }

  // Reading back (for the table printed at the end).
  /// Object member, or a null value when missing or not an object.
  Json const& at(std::string const& key) const {
    static Json const missing;
    if (kind_ == Kind::object)
      for (std::size_t i = 0; i < keys_.size(); ++i)
        if (keys_[i] == key) return items_[i];
    return missing;
  }
  /// Elements of an array, values of an object.
  std::vector<Json> const& elements() const noexcept { return items_; }
  std::vector<std::string> const& keys() const noexcept { return keys_; }
  /// The number (NaN when not a number).
  double number() const noexcept {
    if (kind_ == Kind::integer) return static_cast<double>(i_);
    if (kind_ == Kind::number) return d_;
    return std::nan("");
  }
  std::string const& string() const noexcept { return s_; }
  bool boolean() const noexcept { return kind_ == Kind::boolean && b_; }

  std::string dump(int indent = 2) const {
    std::string out;
    write(out, indent, 0);
    out += '\n';
    return out;
  }

 private:
  static void quote(std::string& out, std::string const& s) {
    out += '"';
    for (char c : s) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += c;
          }
      }
    }
    out += '"';
  }
  void write(std::string& out, int indent, int depth) const {
    auto newline = [&](int d) {
      if (indent <= 0) return;
      out += '\n';
      out.append(static_cast<std::size_t>(indent * d), ' ');
    };
    char buf[64];
    switch (kind_) {
      case Kind::null: out += "null"; break;
      case Kind::boolean: out += b_ ? "true" : "false"; break;
      case Kind::integer: out += std::to_string(i_); break;
      case Kind::number:
        std::snprintf(buf, sizeof buf, "%.6g", d_);
        out += buf;
        break;
      case Kind::string: quote(out, s_); break;
      case Kind::array:
      case Kind::object: {
        bool const obj = kind_ == Kind::object;
        out += obj ? '{' : '[';
        if (items_.empty()) {
          out += obj ? '}' : ']';
          break;
        }
        // Arrays of scalars stay on one line.
        bool flat = !obj;
        for (Json const& v : items_)
          if (v.kind_ == Kind::array || v.kind_ == Kind::object) flat = false;
        for (std::size_t i = 0; i < items_.size(); ++i) {
          if (i > 0) out += flat ? ", " : ",";
          if (!flat) newline(depth + 1);
          if (obj) {
            quote(out, keys_[i]);
            out += ": ";
          }
          items_[i].write(out, indent, depth + 1);
        }
        if (!flat) newline(depth);
        out += obj ? '}' : ']';
        break;
      }
    }
  }

  Kind kind_ = Kind::null;
  bool b_ = false;
  long long i_ = 0;
  double d_ = 0;
  std::string s_;
  std::vector<std::string> keys_;
  std::vector<Json> items_;
};

/// A summary as JSON, in `unit`.
inline Json to_json(Summary const& s, char const* unit) {
  Json j = Json::object();
  j["unit"] = unit;
  j["median"] = s.median;
  j["p99"] = s.p99;
  j["p1"] = s.p1;
  j["mean"] = s.mean;
  j["min"] = s.min;
  j["max"] = s.max;
  j["n"] = s.n;
  return j;
}

// ------------------------------------------------------------------------------ watchdog

/// Aborts the process with a clear message when a stage runs past its limit (a hang in a spin
/// wait or a kernel that never finishes would otherwise only show as a CTest timeout).
class Watchdog {
 public:
  Watchdog() : thread_([this] { loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(Watchdog const&) = delete;
  Watchdog& operator=(Watchdog const&) = delete;

  /// Starts (or restarts) the clock for `stage`, which must finish within `seconds`.
  void arm(std::string stage, double seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    stage_ = std::move(stage);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long long>(seconds * 1e3));
    limit_s_ = seconds;
    armed_ = true;
    cv_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!quit_) {
      if (!armed_) {
        cv_.wait(lock);
        continue;
      }
      if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ && !quit_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        std::fprintf(stderr, "pbm_bench: '%s' did not finish within %.0f s (a hang?): aborting\n", stage_.c_str(),
                     limit_s_);
        std::fflush(nullptr);
        std::_Exit(3);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::string stage_;
  std::chrono::steady_clock::time_point deadline_{};
  double limit_s_ = 0;
  bool armed_ = false;
  bool quit_ = false;
  std::thread thread_;
};

// ------------------------------------------------------------------------------ context

enum class Mode { quick, full };

/// What every figure gets: the mode, the device, and where failed checks go.
struct Context {
  Mode mode = Mode::quick;
  int device = 0;
  cudaDeviceProp prop{};
  int sms = 1;
  std::vector<std::string> errors;  // failed checks: the run exits 1 when any
  Watchdog* watchdog = nullptr;

  bool quick() const noexcept { return mode == Mode::quick; }
  template <class T>
  T pick(T quick_value, T full_value) const {
    return quick() ? quick_value : full_value;
  }
  /// Records a failed check (the figure's numbers are then not to be trusted) and says so.
  void fail(std::string const& message) {
    std::fprintf(stderr, "pbm_bench: CHECK FAILED: %s\n", message.c_str());
    errors.push_back(message);
  }
  /// Checks `cond`; on failure records `message`. Returns cond.
  bool expect(bool cond, std::string const& message) {
    if (!cond) fail(message);
    return cond;
  }
};

/// A goal as JSON: value `op` target, and whether it was met.
inline Json goal(std::string const& what, double value, char const* op, double target) {
  Json g = Json::object();
  g["what"] = what;
  g["value"] = value;
  g["op"] = op;
  g["target"] = target;
  bool const ge = std::string(op) == ">=";
  g["met"] = std::isfinite(value) && (ge ? value >= target : value <= target);
  return g;
}

/// One line of the results table: `item` measured `value` `unit`, against `reference`
/// (`reference_value`, same unit), `ratio` as the figure defines it, and the goal it serves.
inline Json row(std::string const& item, double value, std::string const& unit, std::string const& reference,
                double reference_value, double ratio, std::string const& ratio_is, Json const& the_goal = Json()) {
  Json r = Json::object();
  r["item"] = item;
  r["value"] = value;
  r["unit"] = unit;
  r["reference"] = reference;
  r["reference_value"] = reference_value;
  r["ratio"] = ratio;
  r["ratio_is"] = ratio_is;
  if (the_goal.kind() != Json::Kind::null) r["goal"] = the_goal;
  return r;
}

/// "16 B", "4 KiB", "64 MiB".
inline std::string bytes_label(std::uint64_t b) {
  char buf[32];
  if (b >= (1ull << 20) && b % (1ull << 20) == 0)
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(b >> 20));
  else if (b >= 1024 && b % 1024 == 0)
    std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(b >> 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

}  // namespace pbm::bench
