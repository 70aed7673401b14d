"""pbm telemetry from Python: control, counters, exporters and the forbid/expect guards.

Telemetry (CUPTI) sees every memcpy and synchronisation in the process and judges them by policy:
modes off / count / warn / assert (env PBM_MODE or ``set_mode``). ``pbm.forbid`` and ``pbm.expect``
scope rules to a block and raise :class:`ViolationError` at its end, listing each violation with
its rule, API, NVTX ranges, host backtrace and - for synchronisations - the Python stack of the
call. What is honest about Python stacks:

* a synchronisation (``cudaStreamSynchronize`` under ``.item()``/``.cpu()``, a synchronous
  ``cudaMemcpy``, ``torch.cuda.synchronize()``) is judged inside the CUDA call, on the calling
  thread, so its Python stack is exact;
* a copy is judged later, when CUPTI delivers its activity record (at the latest when the guard
  ends: it flushes CUPTI); its report has the NVTX ranges and the C++ backtrace of the call but no
  Python stack. A D2H copy made by ``.item()`` or ``.cpu()`` comes with a synchronisation whose
  Python stack shows the line. Wrap code in ``torch.cuda.nvtx.range(...)`` to name it in reports.

Only one CUPTI client may subscribe per process: ``detach()`` before ``torch.profiler`` (or run
under Nsight), ``attach()`` after. Without CUPTI, guards detect nothing; ``status()['reason']`` says why.
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Iterable, List, Optional

from ._ext import ext

_warned = set()
_warn_lock = threading.Lock()


def start(mode: Optional[str] = None, allowed_ranges: Iterable[str] = (), attach: bool = True) -> dict:
    """Starts telemetry: reads PBM_MODE / PBM_NVTX_ALLOW (``mode`` wins over env) and attaches CUPTI.
    Calling it again re-applies mode and allow-list. Returns status()."""
    ext.telemetry_start(mode, list(allowed_ranges), attach, True)
    return status()


def set_legacy_stream_rule(on: bool) -> None:
    """The legacy default stream rule on or off (also env PBM_LEGACY_STREAM=1 at start()): kernels,
    copies, memsets and graph launches issued to the legacy default stream while a blocking stream
    exists are counted as syncs of api "legacy_stream" (never a host sync, never a violation). It
    costs a callback per kernel launch (BENCHMARKS.md)."""
    ext.telemetry_set_legacy_stream_rule(bool(on))


def stop() -> None:
    """Flushes and detaches; counting stops. Idempotent."""
    ext.telemetry_stop()


def attach() -> bool:
    """Takes the CUPTI subscriber back (after torch.profiler). Returns whether attached."""
    return ext.telemetry_attach()


def detach() -> None:
    """Flushes and gives the CUPTI subscriber away (for torch.profiler, Nsight ...)."""
    ext.telemetry_detach()


def flush() -> None:
    """Delivers pending CUPTI records (copies) to the policy and counters now."""
    ext.telemetry_flush()


def status() -> dict:
    """started, attached, subscriber_taken, cupti_built, mode, reason, python_stacks, thread_states
    (per-thread states pbm holds: never freed, reused after their thread exits), legacy_stream_rule."""
    return ext.telemetry_status()


def set_mode(mode: str) -> None:
    """Process-wide mode: 'off', 'count', 'warn' or 'assert' (assert aborts on a violation outside a guard)."""
    ext.telemetry_set_mode(mode)


def mode() -> str:
    """The process-wide mode."""
    return ext.telemetry_get_mode()


def counters() -> List[dict]:
    """Every exported counter: dicts of name, labels, value, type (Prometheus naming)."""
    return ext.telemetry_counters()


def totals() -> dict:
    """memcpy_expected, memcpy_unexpected, sync_expected, sync_unexpected, violations."""
    return ext.telemetry_totals()


def set_allow_list(names: Iterable[str]) -> None:
    """NVTX range names (or 'domain:name') inside which copies and syncs are expected."""
    ext.telemetry_set_allow_list(list(names))


def ensure_nvtx_injection() -> str:
    """Points NVTX at CUPTI (NVTX_INJECTION64_PATH) unless set; effective before the first NVTX range."""
    return ext.ensure_nvtx_injection()


class scoped_mode:
    """``with pbm.telemetry.scoped_mode('assert'):`` - the mode on this thread for the block."""

    def __init__(self, mode: str):
        self._scope = ext.ModeScope(mode)

    def __enter__(self):
        self._scope.enter()
        return self

    def __exit__(self, *exc):
        self._scope.exit()
        return False


# ---------------------------------------------------------------- exporters
HAVE_EXPORTERS = bool(getattr(ext, "HAVE_EXPORTERS", False))


def _need_exporters():
    if not HAVE_EXPORTERS:
        raise RuntimeError("pbm: mailbox_ext was built without pbm::exporters")


def start_prometheus(address: str = "", path: str = "/metrics", threads: int = 2):
    """Serves the metrics over HTTP (pull). address: 'host:port' or 'port' (default
    PBM_PROMETHEUS_ADDR, else 127.0.0.1:9464; port 0 picks one). Returns the exporter: .serving,
    .port, .status(), .close(). Run-time failures do not raise: .serving is False, status()['error']."""
    _need_exporters()
    return ext.PrometheusExporter(address, path, threads)


def prometheus_text() -> str:
    """The text exposition a scrape would return now."""
    _need_exporters()
    return ext.render_text()


def json_report() -> dict:
    """The JSON report (schema pbm.report/1) of every counter now."""
    _need_exporters()
    return json.loads(ext.json_report())


def write_json_report(path: str) -> None:
    """Writes the JSON report atomically ('{pid}' and '{rank}' in the path are replaced)."""
    _need_exporters()
    error = ext.write_json_report(path)
    if error:
        raise OSError(error)


# ---------------------------------------------------------------- guards
class ViolationError(RuntimeError):
    """Raised at the end of a pbm.forbid / pbm.expect block that saw violations.
    ``violations``: dicts with rule, description, kind, api, thread, nvtx, backtrace, python_stack,
    report, and direction/bytes/src_kind/dst_kind (copies) or sync_api (syncs)."""

    def __init__(self, violations: List[dict]):
        self.violations = violations
        super().__init__(_format(violations))


def _format(violations: List[dict]) -> str:
    lines = [f"pbm: {len(violations)} violation(s) in a guarded block:"]
    for i, v in enumerate(violations, 1):
        if v["kind"] == "memcpy":
            what = f"{v['direction']} copy of {v['bytes']} bytes ({v['src_kind']} -> {v['dst_kind']})"
        else:
            what = f"synchronisation {v['sync_api']}"
        lines.append(f"[{i}] {v['rule']}: {what} by {v['api'] or '(unknown API)'} - {v['description']}")
        lines.append(f"    nvtx: {v['nvtx_text']}")
        if v["python_stack"]:
            lines.append("    Python stack (most recent call last):")
            for frame in v["python_stack"]:
                lines.extend("    " + line for line in frame.rstrip("\n").split("\n"))
        elif v["kind"] == "memcpy":
            lines.append("    Python stack: not available (copies are judged when CUPTI delivers their record);")
            lines.append("    see the synchronisation reported with it, the NVTX range and the host backtrace:")
            lines.extend("      " + frame for frame in v["backtrace"][:12])
        else:
            lines.append("    Python stack: not available (not a Python thread, or built without the observer)")
    return "\n".join(lines)


def _warn_once(key: str, message: str) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _ensure_started() -> None:
    s = status()
    if not s["started"]:
        s = start()
    if not s["attached"]:
        _warn_once(s["reason"], f"pbm: telemetry is not attached ({s['reason']}); this guard cannot see copies or syncs")


class _Guard:
    def __init__(self, forbid_memcpy: bool, forbid_sync: bool, expect_memcpy: bool, expect_sync: bool):
        self._args = (forbid_memcpy, forbid_sync, expect_memcpy, expect_sync)
        self._guard = None
        self.violations: List[dict] = []

    def __enter__(self):
        _ensure_started()
        self._guard = ext.Guard(*self._args)
        self._guard.enter()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.violations = self._guard.exit()
        if self.violations and exc_type is None:
            raise ViolationError(self.violations)
        return False


def forbid(memcpy: bool = True, sync: bool = True) -> _Guard:
    """``with pbm.forbid():`` - any memcpy (memcpy=True) or host synchronisation (sync=True) issued on
    this thread in the block is a violation; at the end of the block (after flushing CUPTI) they are
    raised together as ViolationError. pbm's own waits (pop's count wait) stay expected. Starts
    telemetry if needed; warns once when CUPTI is not attached (nothing can be seen then)."""
    return _Guard(bool(memcpy), bool(sync), False, False)


def expect(sync: bool = True, memcpy: bool = False) -> _Guard:
    """``with pbm.expect(sync=True):`` - synchronisations (and copies with memcpy=True) in the block are
    expected; anything else the policy flags (e.g. a D2H copy) is raised at the end as ViolationError."""
    return _Guard(False, False, bool(memcpy), bool(sync))
