// Telemetry for Python: control (start/attach/detach/flush/mode/counters), the forbid/expect guards
// that raise a Python exception listing each violation, and the exporters when built with them.
//
// Python stacks: syncs, and copies unless activity records are on, are judged by telemetry inside the
// CUPTI API callback, on the thread that called CUDA (Violation::at_call_site). A telemetry observer
// (pbm/telemetry/observer.hpp) takes the Python stack there
// (traceback.format_stack under the GIL) when the thread is inside a pbm Python guard, or just before
// assert mode aborts. With activity records (PBM_CUPTI_ACTIVITY=1) a copy is judged later, when CUPTI
// delivers its record: its violation carries the NVTX ranges and the host (C++) backtrace of the call,
// but no Python stack.
#include "bindings.hpp"

#include <pybind11/stl.h>

#include <mutex>
#include <set>

#include <pbm/telemetry/counters.hpp>
#include <pbm/telemetry/observer.hpp>
#include <pbm/telemetry/policy.hpp>
#include <pbm/telemetry/telemetry.hpp>

#ifndef PBM_PY_HAVE_EXPORTERS
#define PBM_PY_HAVE_EXPORTERS 0
#endif

#if PBM_PY_HAVE_EXPORTERS
#include <pbm/exporters/json_report.hpp>
#include <pbm/exporters/mailbox_metrics.hpp>
#include <pbm/exporters/prometheus.hpp>
#endif

#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;
namespace tel = pbm::telemetry;

namespace pbm::python {
namespace {

/// The correlation id a violation's call had (syncs: the callback's; copies: runtime, else driver).
std::uint32_t correlation_of(tel::Violation const& v) {
  if (!v.is_memcpy) return v.sync.correlation;
  return v.memcpy.runtime_correlation != 0 ? v.memcpy.runtime_correlation : v.memcpy.correlation;
}

struct CapturedStack {
  bool is_memcpy = false;
  std::uint32_t correlation = 0;
  std::string api;
  std::vector<std::string> stack;
};

/// One pbm Python guard on this thread; guards nest (outer).
struct GuardFrame {
  std::vector<CapturedStack> stacks;
  GuardFrame* outer = nullptr;
};

thread_local GuardFrame* tl_guard = nullptr;

/// traceback.format_stack() as lines; empty on any Python error. Needs the GIL.
std::vector<std::string> python_stack() {
  std::vector<std::string> out;
  try {
    py::object frames = py::module_::import("traceback").attr("format_stack")();
    for (py::handle frame : frames) out.push_back(py::cast<std::string>(frame));
  } catch (...) {
    out.clear();
  }
  return out;
}

class PythonStackObserver final : public tel::Observer {
  std::mutex mu_;
  std::set<std::uint64_t> said_;  // capture failures' sites already printed
  bool first_time(std::uint64_t site) {
    std::lock_guard<std::mutex> lock(mu_);
    return said_.insert(site).second;
  }

 public:
  void on_violation(tel::Violation const& v) override {
    // Only a violation judged inside its API callback runs on the calling thread at the call site
    // (a copy from an activity record is judged later, on CUPTI's thread or in a flush).
    if (!v.at_call_site) return;
    GuardFrame* const guard = tl_guard;
    bool const aborting = guard == nullptr && v.mode == tel::Mode::assert_;
    // A call that broke a stream capture is said with its Python line even outside a guard, once per site.
    bool const capture = guard == nullptr && v.rule == tel::Rule::sync_in_capture && first_time(v.site);
    if (guard == nullptr && !aborting && !capture) return;
    if (!Py_IsInitialized() || PyGILState_GetThisThreadState() == nullptr) return;  // not a Python thread
    PyGILState_STATE const gil = PyGILState_Ensure();
    {
      py::error_scope keep_pending_error;
      std::vector<std::string> stack = python_stack();
      if (guard != nullptr) {
        guard->stacks.push_back(CapturedStack{v.is_memcpy, correlation_of(v), v.api, std::move(stack)});
      } else {
        std::fputs("pbm: Python stack of the violating call (most recent call last):\n", stderr);
        for (std::string const& line : stack) std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
      }
    }
    PyGILState_Release(gil);
  }
};

void install_observer() {
  static PythonStackObserver* const observer = [] {
    auto* o = new PythonStackObserver();  // process lifetime: never removed
    tel::add_observer(*o);
    return o;
  }();
  (void)observer;
}

std::string sv(std::string_view s) { return std::string(s); }

py::dict violation_dict(tel::Violation const& v, std::vector<std::string> const* stack) {
  py::dict d;
  d["rule"] = sv(tel::to_string(v.rule));
  d["description"] = sv(tel::describe(v.rule));
  d["mode"] = sv(tel::to_string(v.mode));
  d["kind"] = v.is_memcpy ? "memcpy" : "sync";
  d["api"] = v.api;
  d["thread"] = v.thread;
  py::list ranges;
  for (tel::Range const& r : v.ranges) ranges.append(r.domain.empty() ? r.name : r.domain + ":" + r.name);
  d["nvtx"] = ranges;
  d["nvtx_text"] = tel::format_ranges(v.ranges);
  d["backtrace"] = v.backtrace;
  if (stack != nullptr && !stack->empty())
    d["python_stack"] = *stack;
  else
    d["python_stack"] = py::none();
  if (v.is_memcpy) {
    d["direction"] = sv(tel::to_string(v.memcpy.direction));
    d["bytes"] = v.memcpy.bytes;
    d["src_kind"] = sv(tel::to_string(v.memcpy.src_kind));
    d["dst_kind"] = sv(tel::to_string(v.memcpy.dst_kind));
  } else {
    d["sync_api"] = sv(tel::to_string(v.sync.api));
  }
  d["report"] = tel::format_report(v);
  return d;
}

/// The C++ side of pbm.forbid / pbm.expect: a throw_at_exit Forbid (naming what is forbidden, or
/// nothing: then it only collects the scope's violations) and an Expect inside it.
class Guard {
 public:
  Guard(bool forbid_memcpy, bool forbid_sync, bool expect_memcpy, bool expect_sync)
      : forbid_what_((forbid_memcpy ? 1u : 0u) | (forbid_sync ? 2u : 0u)),
        expect_what_((expect_memcpy ? 1u : 0u) | (expect_sync ? 2u : 0u)) {}
  Guard(Guard const&) = delete;
  Guard& operator=(Guard const&) = delete;
  ~Guard() {
    // Never exited (e.g. garbage collected inside a failing scope): leave the thread's scopes alone
    // unless they are ours and still innermost.
    if (entered_ && !exited_ && thread_ == std::this_thread::get_id() && tl_guard == &frame_) {
      tl_guard = frame_.outer;
      delete expect_;
      try {
        delete forbid_;
      } catch (...) {
      }
    }
  }

  void enter() {
    if (entered_) throw std::logic_error("pbm: a guard object can be entered only once");
    tel::Forbid::Options options;
    options.throw_at_exit = true;
    forbid_ = new tel::Forbid(static_cast<tel::What>(forbid_what_), options);
    if (expect_what_ != 0) expect_ = new tel::Expect(static_cast<tel::What>(expect_what_));
    frame_.outer = tl_guard;
    tl_guard = &frame_;
    thread_ = std::this_thread::get_id();
    entered_ = true;
  }

  /// Ends the scope (flushing pending CUPTI records) and returns its violations as dicts.
  py::list exit() {
    if (!entered_ || exited_) throw std::logic_error("pbm: guard exited without being entered");
    if (thread_ != std::this_thread::get_id())
      throw std::logic_error("pbm: a guard must be exited on the thread that entered it");
    if (tl_guard != &frame_) throw std::logic_error("pbm: guards must be exited innermost first");
    exited_ = true;
    tl_guard = frame_.outer;
    delete expect_;
    expect_ = nullptr;
    std::vector<tel::Violation> found;
    {
      py::gil_scoped_release nogil;  // the destructor flushes CUPTI
      tel::Forbid* forbid = std::exchange(forbid_, nullptr);
      try {
        delete forbid;
      } catch (tel::ViolationError const& e) {
        found = e.violations();
      }
    }
    py::list out;
    std::vector<bool> used(frame_.stacks.size(), false);
    for (tel::Violation const& v : found) {
      std::vector<std::string> const* stack = nullptr;
      if (v.at_call_site) {
        for (std::size_t i = 0; i < frame_.stacks.size(); ++i) {
          if (!used[i] && frame_.stacks[i].is_memcpy == v.is_memcpy &&
              frame_.stacks[i].correlation == correlation_of(v) && frame_.stacks[i].api == v.api) {
            used[i] = true;
            stack = &frame_.stacks[i].stack;
            break;
          }
        }
      }
      out.append(violation_dict(v, stack));
    }
    return out;
  }

 private:
  unsigned forbid_what_;
  unsigned expect_what_;
  tel::Forbid* forbid_ = nullptr;
  tel::Expect* expect_ = nullptr;
  GuardFrame frame_;
  std::thread::id thread_;
  bool entered_ = false;
  bool exited_ = false;
};

class ModeScope {
 public:
  explicit ModeScope(std::string const& mode) : mode_(tel::parse_mode(mode)) {}
  void enter() {
    if (scope_) throw std::logic_error("pbm: scoped_mode entered twice");
    scope_ = std::make_unique<tel::ScopedMode>(mode_);
  }
  void exit() { scope_.reset(); }

 private:
  tel::Mode mode_;
  std::unique_ptr<tel::ScopedMode> scope_;
};

py::dict status_dict() {
  tel::Status const s = tel::status();
  py::dict d;
  d["started"] = s.started;
  d["attached"] = s.attached;
  d["subscriber_taken"] = s.subscriber_taken;
  d["cupti_built"] = s.cupti_built;
  d["mode"] = sv(tel::to_string(s.mode));
  d["reason"] = s.reason;
  d["python_stacks"] = true;
  d["thread_states"] = s.thread_states;
  d["legacy_stream_rule"] = s.legacy_stream_rule;
  return d;
}

// What pbm.telemetry.counters() has always returned: telemetry's counters, the mailboxes' series
// (now from exporters, when built with them) and the rank label on each, as exporters::collect().
py::list counter_samples() {
  std::vector<tel::CounterSample> samples = tel::counters().snapshot();
#if PBM_PY_HAVE_EXPORTERS
  for (tel::CounterSample& s : pbm::exporters::mailbox_samples()) samples.push_back(std::move(s));
#endif
  std::string const rank = tel::rank_from_env();
  py::list out;
  for (tel::CounterSample& s : samples) {
    if (!rank.empty()) s.labels.emplace(tel::kRankLabel, rank);
    py::dict d;
    d["name"] = s.name;
    d["labels"] = s.labels;
    d["value"] = s.value;
    d["type"] = s.type == tel::CounterSample::Type::counter ? "counter" : "gauge";
    out.append(d);
  }
  return out;
}

py::dict counter_totals() {
  tel::Counters const& c = tel::counters();
  py::dict d;
  d["memcpy_expected"] = c.memcpy_total(true);
  d["memcpy_unexpected"] = c.memcpy_total(false);
  d["sync_expected"] = c.sync_total(true);
  d["sync_unexpected"] = c.sync_total(false);
  d["violations"] = c.violation_total();
  return d;
}

void start(py::object mode, std::vector<std::string> allowed_ranges, bool attach, bool set_nvtx_injection) {
  tel::Config config;
  if (!mode.is_none()) config.mode = tel::parse_mode(py::cast<std::string>(mode));
  config.allowed_ranges = std::move(allowed_ranges);
  config.attach = attach;
  config.set_nvtx_injection = set_nvtx_injection;
  py::gil_scoped_release nogil;
  tel::start(config);
}

#if PBM_PY_HAVE_EXPORTERS
namespace ex = pbm::exporters;

py::dict prometheus_status_dict(ex::PrometheusStatus const& s) {
  py::dict d;
  d["serving"] = s.serving;
  d["address"] = s.address;
  d["host"] = s.host;
  d["port"] = s.port;
  d["url"] = s.url;
  d["basic_auth"] = s.basic_auth;
  d["error"] = s.error;
  return d;
}

class PyPrometheusExporter {
 public:
  PyPrometheusExporter(std::string address, std::string path, std::size_t threads) {
    ex::PrometheusConfig config;
    config.address = std::move(address);
    config.path = std::move(path);
    config.threads = threads;
    exporter_ = std::make_unique<ex::PrometheusExporter>(std::move(config));
  }
  bool serving() const { return exporter_ && exporter_->serving(); }
  int port() const { return exporter_ ? exporter_->port() : 0; }
  py::dict status() const {
    if (!exporter_) {
      ex::PrometheusStatus closed;
      closed.error = "closed";
      return prometheus_status_dict(closed);
    }
    return prometheus_status_dict(exporter_->status());
  }
  void close() {
    py::gil_scoped_release nogil;  // waits for scrapes in flight
    exporter_.reset();
  }

 private:
  std::unique_ptr<ex::PrometheusExporter> exporter_;
};
#endif

}  // namespace

void bind_telemetry(py::module_& m) {
  install_observer();
  m.attr("HAVE_PYTHON_STACKS") = py::bool_(true);

  m.def("telemetry_start", &start, py::arg("mode") = py::none(), py::arg("allowed_ranges") = std::vector<std::string>{},
        py::arg("attach") = true, py::arg("set_nvtx_injection") = true,
        "Starts telemetry (env PBM_MODE, PBM_NVTX_ALLOW; mode wins over env). ValueError for a bad mode.");
  m.def("telemetry_stop", [] { py::gil_scoped_release nogil; tel::stop(); });
  m.def("telemetry_attach", [] { py::gil_scoped_release nogil; return tel::attach(); });
  m.def("telemetry_detach", [] { py::gil_scoped_release nogil; tel::detach(); });
  m.def("telemetry_flush", [] { py::gil_scoped_release nogil; tel::flush(); });
  m.def("telemetry_set_legacy_stream_rule", [](bool on) { tel::set_legacy_stream_rule(on); }, py::arg("on"),
        "The legacy default stream rule on or off (Config::legacy_stream_rule).");
  m.def("telemetry_status", &status_dict);
  m.def("telemetry_set_mode", [](std::string const& mode) { tel::set_mode(tel::parse_mode(mode)); }, py::arg("mode"));
  m.def("telemetry_get_mode", [] { return sv(tel::to_string(tel::get_mode())); });
  m.def("telemetry_effective_mode", [] { return sv(tel::to_string(tel::effective_mode())); });
  m.def("telemetry_counters", &counter_samples);
  m.def("telemetry_totals", &counter_totals);
  m.def("telemetry_set_allow_list", &tel::set_range_allow_list, py::arg("names"));
  m.def("telemetry_allow_list", &tel::range_allow_list);
  m.def("ensure_nvtx_injection", &tel::ensure_nvtx_injection);

  py::class_<Guard>(m, "Guard")
      .def(py::init<bool, bool, bool, bool>(), py::arg("forbid_memcpy"), py::arg("forbid_sync"),
           py::arg("expect_memcpy"), py::arg("expect_sync"))
      .def("enter", &Guard::enter)
      .def("exit", &Guard::exit, "Ends the scope; returns its violations (dicts).");
  py::class_<ModeScope>(m, "ModeScope")
      .def(py::init<std::string const&>(), py::arg("mode"))
      .def("enter", &ModeScope::enter)
      .def("exit", &ModeScope::exit);

#if PBM_PY_HAVE_EXPORTERS
  m.attr("HAVE_EXPORTERS") = true;
  py::class_<PyPrometheusExporter>(m, "PrometheusExporter")
      .def(py::init<std::string, std::string, std::size_t>(), py::arg("address") = "", py::arg("path") = "/metrics",
           py::arg("threads") = 2)
      .def_property_readonly("serving", &PyPrometheusExporter::serving)
      .def_property_readonly("port", &PyPrometheusExporter::port)
      .def("status", &PyPrometheusExporter::status)
      .def("close", &PyPrometheusExporter::close);
  m.def("prometheus_available", &ex::PrometheusExporter::available);
  m.def("render_text", &ex::render_text);
  m.def("json_report", [] { return ex::json_report(); });
  m.def("write_json_report", [](std::string const& path) { return ex::write_json_report(path); }, py::arg("path"));
  m.def("write_json_report_at_exit", &ex::write_json_report_at_exit, py::arg("path") = "");
  m.def("serve_from_env", [] { return prometheus_status_dict(ex::serve_from_env()); });
#else
  m.attr("HAVE_EXPORTERS") = false;
#endif
}

}  // namespace pbm::python
