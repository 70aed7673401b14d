#!/usr/bin/env python3
"""Soak test: pbm telemetry left on (count mode) in a realistic always-on PyTorch process.

    PYTHONPATH=<build>/python python3 tests/soak/soak.py --seconds 60 [--json PATH]

For --seconds, all of these run at once in one process, with pbm.telemetry.start(mode="count"):

  training        the main thread trains a small MLP (SGD, cross entropy) on batches from a
                  DataLoader (num_workers=2, fork, persistent_workers=False, pin_memory=True): every
                  epoch forks two workers, each of which must exit with status 0. Each step calls
                  loss.item() a known number of times inside pbm.expect(...) and outside it.
  thread churn    waves of short-lived threads, each running a small matmul on a stream of its own
                  and a known number of torch.cuda.synchronize(), stream.synchronize() and .item()
                  calls, then exiting.
  mailbox         a producer thread pushes numbered records into a pbm.Mailbox on pbm's focus
                  stream, a consumer thread pops them on the peripheral stream and checks every
                  record on the device (content and FIFO order); credits keep the mailbox from ever
                  being full, so the program knows every count: pushed, popped, dropped (0), calls.
  prometheus      pbm.telemetry.start_prometheus("127.0.0.1:0") scraped continuously by client
                  threads (urllib, 127.0.0.1 only): every scrape must parse as the text exposition
                  format and no counter may go down between two scrapes of one client.
  control         a thread cycles telemetry.detach()/attach() and, every few cycles,
                  telemetry.stop()/start(mode="count") instead, while everything else runs.

Exactness. While pbm is detached or stopped it sees nothing, so every *counted* call runs in a
window that the control thread cannot cut: workers hold a reader-writer lock (shared) around the
call, and the control thread takes it exclusively to detach/attach or stop/start. Each counted call
also runs inside an NVTX range of its own name (torch.cuda.nvtx), and pbm labels every copy and
sync with its innermost range, so the counts of one kind of call can be read apart from everything
else in the process (the training step's own copies, the DataLoader's pinned-memory thread, the
mailbox's expected waits, calls made while detach/attach happens). What one call costs in pbm's
counters (its *signature*: host-blocking syncs and device-to-host copies) is measured once at the
start, on the main thread alone, and must be the same three times in a row; at the end, for every
range, the counts pbm saw must equal calls x signature, with the right `expected` label, exactly
(==). Everything uncounted keeps running unsynchronised with detach/attach: that is the "calls in
flight" part of the test.

Pass criteria (all checked here; the last line printed is the verdict):
  * no crash, no exception in any component, no hang: a watchdog dumps every thread's stack and
    exits 1 when the run exceeds --seconds + --margin (and faulthandler backs it up from C);
  * every DataLoader epoch finished with all its batches, every forked worker exited with status 0;
  * every short-lived thread finished;
  * per NVTX range: blocking syncs and device-to-host copies seen by pbm == calls x signature, under
    the right expected label, and nothing under the other; the final scrape says the same;
  * mailbox: stats() pushed/popped == the program's counts, dropped == 0, occupancy == 0 after the
    drain, pbm_push_calls_total / pbm_pop_calls_total == the program's calls, 0 bad records;
  * Prometheus: every scrape answered and parsed, no counter went down;
  * every detach/attach and stop/start took effect (status() says attached or not as asked);
  * resident memory (VmRSS, sampled every second): after the first --warmup-fraction of the run,
    the median of the last tenth of the samples exceeds the median of the first tenth by less
    than --rss-bound-mib.

Exit status: 0 PASS, 1 FAIL, 77 SKIP (no torch, no CUDA GPU, no pbm extension, or telemetry cannot
attach; with PBM_REQUIRE_EXT=1 a missing extension or unattached telemetry is a FAIL instead),
2 usage error. A "figures" block (markdown, for docs/RELIABILITY.md) comes before the verdict.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import faulthandler
import json
import math
import os
import random
import re
import statistics
import sys
import threading
import time
import traceback
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, NoReturn, Optional, Tuple

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from torch_bench import import_pbm  # noqa: E402  the locator the bench scripts use (stdlib until called)
EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 77

# pbm_sync_total{api=...} values where the host waits for work the program asked for (events.hpp:
# blocks_host, less implicit_by_resource): compared exactly. Allocations and frees (malloc, free,
# host_alloc, ...) also block, but PyTorch's caching allocator makes them when it likes: not compared.
BLOCKING_SYNCS = frozenset(
    {"stream_synchronize", "event_synchronize", "device_synchronize", "context_synchronize", "memcpy_sync",
     "memcpy_blocking", "memset_sync"}
)

# Counted NVTX ranges: name -> (operation, expected). `expected` says whether the calls run inside
# pbm.expect(...) (their syncs/copies count as expected) or bare (count mode: unexpected, counted).
WORK_RANGES: Dict[str, Tuple[str, bool]] = {
    "soak.train.item.expected": ("item", True),
    "soak.train.item.unexpected": ("item", False),
    "soak.thread.device_sync.expected": ("device_sync", True),
    "soak.thread.stream_sync.unexpected": ("stream_sync", False),
    "soak.thread.item.expected": ("item", True),
}
# One preflight range per (operation, expected) used above: where each one's signature is measured.
PREFLIGHT_RANGES: Dict[str, Tuple[str, bool]] = {
    f"soak.preflight.{op}.{'expected' if expected else 'unexpected'}": (op, expected)
    for op, expected in dict.fromkeys(WORK_RANGES.values())
}
COUNTED_RANGES: Dict[str, Tuple[str, bool]] = {**PREFLIGHT_RANGES, **WORK_RANGES}
# What one call is documented to cost (telemetry README; torch's .item() = copy home + stream sync).
DOCUMENTED_SIGNATURE = {"item": {"blocking": 1, "dtoh": 1}, "device_sync": {"blocking": 1}, "stream_sync": {"blocking": 1}}
STEP_RANGE = "soak.train.step"  # uncounted outer range of a training step (detach may cut it)

RECORD_WORDS = 8  # int64 words per mailbox record
STRIDE = RECORD_WORDS * 8


# ------------------------------------------------------------------------------------ environment
def finish_skip(reason: str, required: bool) -> NoReturn:
    """SKIP (77) with the reason; FAIL (1) instead when the caller said the thing is required."""
    if required:
        print(f"SOAK FAIL: {reason} (required: PBM_REQUIRE_EXT=1)", flush=True)
        sys.exit(EXIT_FAIL)
    print(f"SKIP: {reason}", flush=True)
    sys.exit(EXIT_SKIP)


def import_torch_and_pbm(required: bool) -> Tuple[Any, Any]:
    """torch and pbm, or SKIP. pbm comes from PYTHONPATH, else from $PBM_BUILD_DIR/python or a
    build folder of this repository (as tests/python/_env.py finds it)."""
    try:
        import torch
    except Exception as e:  # ImportError, or a torch that does not load
        finish_skip(f"torch not importable ({e})", required=False)
    if not torch.cuda.is_available():
        finish_skip("no CUDA GPU visible to torch", required=False)
    pbm, error = import_pbm()  # bench/torch_bench.py's locator, as the bench scripts use it
    if pbm is not None:
        return torch, pbm
    finish_skip(f"the pbm extension is not built or not importable ({error})", required)


def rss_mib() -> float:
    """Resident set size of this process (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# ---------------------------------------------------------------------------- shared bookkeeping
class Failures:
    """Every failure seen by any component; the first one also asks everything to stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: List[str] = []
        self.stop = threading.Event()

    def add(self, what: str) -> None:
        with self._lock:
            self.items.append(what)
        print(f"[soak] FAILURE: {what}", file=sys.stderr, flush=True)
        self.stop.set()


class Reservoir:
    """A fixed-size uniform sample of a stream of numbers, with the exact count and maximum: memory
    stays flat however long the run (the RSS check must not measure our own bookkeeping)."""

    def __init__(self, size: int = 4096, seed: int = 0) -> None:
        self.size = size
        self.values: List[float] = []
        self.count = 0
        self.max = float("nan")
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        self.max = value if self.count == 1 else max(self.max, value)
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            j = self._rng.randrange(self.count)
            if j < self.size:
                self.values[j] = value

    def quantile(self, q: float) -> Optional[float]:
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else None


class RWLock:
    """Reader-writer lock, writer-preferring: counted calls hold it shared, the control thread
    takes it exclusively to change telemetry's state (readers then wait, never miss a window)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Windows:
    """Counted calls: each runs under the shared lock (telemetry attached for its whole length),
    inside its own NVTX range, inside pbm.expect(...) when its range says so; the program's own
    count of calls per range is kept here."""

    def __init__(self, torch: Any, pbm: Any) -> None:
        self.torch = torch
        self.pbm = pbm
        self.rw = RWLock()
        self._lock = threading.Lock()
        self.calls: Dict[str, int] = collections.Counter()
        # (operation, expected) -> what one call adds to the checked counts (blocking syncs, copies).
        self.signatures: Dict[Tuple[str, bool], collections.Counter] = {}

    def run(self, range_name: str, fn: Callable[[], Any]) -> Any:
        op, expected = COUNTED_RANGES[range_name]
        nvtx = self.torch.cuda.nvtx
        with self.rw.shared():
            nvtx.range_push(range_name)
            try:
                if expected:
                    # .item() copies device-to-host: declare the copy too, or pbm.expect raises it.
                    with self.pbm.expect(sync=True, memcpy=(op == "item")):
                        result = fn()
                else:
                    result = fn()
            finally:
                nvtx.range_pop()
            with self._lock:
                self.calls[range_name] += 1
        return result


# -------------------------------------------------------------------------- reading pbm's counts
def range_counts(samples: Iterable[Tuple[str, Dict[str, str], float]], ranges: Iterable[str]) -> Dict[str, collections.Counter]:
    """Copies and syncs per counted NVTX range, from (name, labels, value) samples (counters() or a
    parsed scrape), keyed (kind, expected) with kind 'blocking' (blocking syncs, summed over APIs),
    'dtoh', 'copy:<direction>' or 'poll:<api>' (queries and stream waits: never a host sync)."""
    out: Dict[str, collections.Counter] = {r: collections.Counter() for r in ranges}
    for name, labels, value in samples:
        counts = out.get(labels.get("range", ""))
        if counts is None:
            continue
        expected = labels.get("expected") == "true"
        if name == "pbm_sync_total":
            api = labels.get("api", "unknown")
            kind = "blocking" if api in BLOCKING_SYNCS else f"poll:{api}"
        elif name == "pbm_memcpy_total":
            direction = labels.get("direction", "unknown")
            kind = "dtoh" if direction == "DtoH" else f"copy:{direction}"
        else:
            continue
        counts[(kind, expected)] += int(value)
    return out


def counter_samples(pbm: Any) -> List[Tuple[str, Dict[str, str], float]]:
    return [(s["name"], dict(s["labels"]), s["value"]) for s in pbm.telemetry.counters()]


def subtract(after: Dict[str, collections.Counter], before: Dict[str, collections.Counter]) -> Dict[str, collections.Counter]:
    out = {}
    for r, counts in after.items():
        delta = collections.Counter(counts)
        delta.subtract(before.get(r, collections.Counter()))
        out[r] = collections.Counter({k: v for k, v in delta.items() if v != 0})
    return out


def checked(counts: collections.Counter) -> collections.Counter:
    """The counts that must match exactly: blocking syncs and copies (polls are torch's own business:
    e.g. the pinned host allocator queries events inside .item())."""
    return collections.Counter({k: v for k, v in counts.items() if v and not k[0].startswith("poll:")})


def fmt_counts(counts: collections.Counter) -> str:
    parts = [f"{kind}/{'expected' if exp else 'unexpected'}={n}" for (kind, exp), n in sorted(counts.items()) if n]
    return ", ".join(parts) if parts else "nothing"


# ------------------------------------------------------------------------- Prometheus exposition
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_COMMENT = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$")


@dataclass
class Exposition:
    samples: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = field(default_factory=dict)
    types: Dict[str, str] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)

    def as_samples(self) -> List[Tuple[str, Dict[str, str], float]]:
        return [(name, dict(labels), value) for (name, labels), value in self.samples.items()]


def _unescape(value: str) -> str:
    """A label value as written in the exposition: \\\\, \\" and \\n escaped."""
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _family(name: str, types: Dict[str, str]) -> Optional[str]:
    """The metric family a sample belongs to: its own name, or for a summary or histogram the name
    without _sum, _count or _bucket (the exposer's own exposer_request_latencies is a summary)."""
    if name in types:
        return name
    for suffix in ("_sum", "_count", "_bucket"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("summary", "histogram"):
            return base
    return None


def parse_exposition(text: str) -> Exposition:
    """The text exposition format (0.0.4): '# HELP'/'# TYPE' lines and `name{labels} value`
    samples. Anything else, a duplicate series or a bad value is an error."""
    exp = Exposition()
    if not text.endswith("\n"):
        exp.errors.append("body does not end with a newline")
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            m = _COMMENT.match(line)
            if m is None:
                exp.errors.append(f"bad comment line: {line!r}")
            elif m.group(1) == "TYPE":
                if m.group(3) not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    exp.errors.append(f"bad TYPE: {line!r}")
                exp.types[m.group(2)] = m.group(3) or ""
            continue
        m = _SAMPLE.match(line)
        if m is None:
            exp.errors.append(f"bad sample line: {line!r}")
            continue
        name, label_text, value_text = m.groups()
        labels: List[Tuple[str, str]] = []
        if label_text:
            pos = 0
            for lm in _LABEL.finditer(label_text):
                if lm.start() != pos:
                    break
                labels.append((lm.group(1), _unescape(lm.group(2))))
                pos = lm.end()
            if pos != len(label_text):
                exp.errors.append(f"bad labels: {line!r}")
                continue
        try:
            value = float(value_text)
        except ValueError:
            exp.errors.append(f"bad value: {line!r}")
            continue
        if _family(name, exp.types) is None:
            exp.errors.append(f"sample before its TYPE line: {line!r}")
        if exp.types.get(name) == "counter" and (math.isnan(value) or value < 0):
            exp.errors.append(f"counter not a non-negative number: {line!r}")
        key = (name, tuple(sorted(labels)))
        if key in exp.samples:
            exp.errors.append(f"duplicate series: {line!r}")
        exp.samples[key] = value
    if not exp.samples:
        exp.errors.append("no samples")
    return exp


# ------------------------------------------------------------------------------------ components
class Component(threading.Thread):
    """A daemon thread whose exception is a failure (and stops the run)."""

    def __init__(self, name: str, failures: Failures) -> None:
        super().__init__(name=name, daemon=True)
        self.failures = failures

    def run(self) -> None:
        try:
            self.body()
        except BaseException:
            self.failures.add(f"{self.name}: {traceback.format_exc().strip()}")

    def body(self) -> None:
        raise NotImplementedError


class Trainer:
    """The main thread's training loop: an MLP fed by a forking DataLoader, with counted .item()s."""

    def __init__(self, torch: Any, windows: Windows, failures: Failures, args: argparse.Namespace) -> None:
        self.torch = torch
        self.windows = windows
        self.failures = failures
        self.args = args
        nn = torch.nn
        gen = torch.Generator().manual_seed(args.seed)
        dim, classes = 128, 10
        self.dataset = _TensorDataset(
            torch.randn(args.dataset_size, dim, generator=gen), torch.randint(0, classes, (args.dataset_size,), generator=gen)
        )
        self.loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=args.num_workers,
            persistent_workers=False,  # workers are forked anew every epoch
            multiprocessing_context="fork",
            pin_memory=True,
            timeout=args.loader_timeout,
        )
        self.model = nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes)).cuda()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.steps = 0
        self.epochs_started = 0
        self.epochs_finished = 0
        self.workers_forked = 0
        self.workers_exited_ok = 0
        self.last_loss = float("nan")

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline and not self.failures.stop.is_set():
            self.epoch()

    def epoch(self) -> None:
        self.epochs_started += 1
        it = iter(self.loader)
        pids = set()
        batches = 0
        for x, y, pid in it:  # a whole epoch, even past the deadline: every epoch must finish
            pids.update(int(p) for p in pid.tolist())
            self.step(x, y)
            batches += 1
        if batches != len(self.loader):
            self.failures.add(f"epoch {self.epochs_started}: {batches} batches, expected {len(self.loader)}")
        if os.getpid() in pids or len(pids) != self.args.num_workers:
            self.failures.add(f"epoch {self.epochs_started}: batches came from pids {sorted(pids)}, "
                              f"expected {self.args.num_workers} forked workers")
        self.workers_forked += len(pids)
        self.workers_exited_ok += self._check_workers_exited(it, pids)
        self.epochs_finished += 1

    def _check_workers_exited(self, it: Any, pids: set) -> int:
        """The epoch's workers have exited with status 0 (the iterator shut them down when it ran
        out). Returns how many did."""
        workers = getattr(it, "_workers", None)
        deadline = time.monotonic() + 10.0
        if workers is not None:
            for w in workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))
            codes = [w.exitcode for w in workers]
            if any(code != 0 for code in codes):
                self.failures.add(f"epoch {self.epochs_started}: DataLoader worker exit codes {codes} (expected 0; "
                                  "None = still running, negative = killed by a signal)")
            return sum(1 for code in codes if code == 0)
        # No _workers attribute (another torch): the workers' pids must be gone from /proc.
        alive = set(pids)
        while alive and time.monotonic() < deadline:
            alive = {p for p in alive if os.path.exists(f"/proc/{p}")}
            if alive:
                time.sleep(0.05)
        if alive:
            self.failures.add(f"epoch {self.epochs_started}: DataLoader workers {sorted(alive)} still running 10 s after the epoch")
        return len(pids) - len(alive)

    def step(self, x: Any, y: Any) -> None:
        torch = self.torch
        nvtx = torch.cuda.nvtx
        nvtx.range_push(STEP_RANGE)  # uncounted, not under the lock: a detach may cut it
        try:
            x = x.cuda(non_blocking=True)
            y = y.cuda(non_blocking=True)
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            value = float("nan")
            for _ in range(self.args.items_expected):
                value = self.windows.run("soak.train.item.expected", loss.item)
            for _ in range(self.args.items_unexpected):
                value = self.windows.run("soak.train.item.unexpected", loss.item)
            if not math.isfinite(value):
                raise RuntimeError(f"loss is {value} at step {self.steps}")
            self.last_loss = value
        finally:
            nvtx.range_pop()
        self.steps += 1


class _TensorDataset:
    """An in-memory dataset whose items say which process made them (a worker's pid)."""

    def __init__(self, x: Any, y: Any) -> None:
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Tuple[Any, Any, int]:
        return self.x[i], self.y[i], os.getpid()


class ThreadChurn(Component):
    """Waves of short-lived threads doing CUDA work and counted syncs, then exiting."""

    def __init__(self, torch: Any, windows: Windows, failures: Failures, args: argparse.Namespace) -> None:
        super().__init__("thread-churn", failures)
        self.torch = torch
        self.windows = windows
        self.args = args
        self.streams = [torch.cuda.Stream() for _ in range(4)]  # a fixed set: bounded per-stream state
        self.started = 0
        self.finished = 0
        self._lock = threading.Lock()

    def body(self) -> None:
        wave = 0
        while not self.failures.stop.is_set():
            threads = [threading.Thread(target=self._worker, args=(wave * 100 + i,), name=f"churn-{wave}-{i}", daemon=True)
                       for i in range(self.args.threads_per_wave)]
            for t in threads:
                t.start()
            self.started += len(threads)
            for t in threads:
                t.join(timeout=60.0)
                if t.is_alive():
                    self.failures.add(f"thread {t.name} still running 60 s after it started (hang)")
                    return
            wave += 1

    def _worker(self, index: int) -> None:
        torch = self.torch
        try:
            stream = self.streams[index % len(self.streams)]
            with torch.cuda.stream(stream):
                a = torch.randn(256, 256, device="cuda")
                for _ in range(self.args.thread_iters):
                    s = torch.relu(a @ a).mean()
                    stream.query()  # an uncounted call, made whatever telemetry's state
                    self.windows.run("soak.thread.device_sync.expected", torch.cuda.synchronize)
                    self.windows.run("soak.thread.stream_sync.unexpected", torch.cuda.current_stream().synchronize)
                    self.windows.run("soak.thread.item.expected", s.item)
            with self._lock:
                self.finished += 1
        except BaseException:
            self.failures.add(f"thread {threading.current_thread().name}: {traceback.format_exc().strip()}")


class MailboxPipeline:
    """A producer thread (focus stream) and a consumer thread (peripheral stream) on one mailbox.
    Credits (free slots) keep it from ever filling, so nothing is dropped and every count is known.
    Records are numbered; the consumer compares each popped record with the one it must be, on the
    device (no copy home), and accumulates mismatches."""

    def __init__(self, torch: Any, pbm: Any, failures: Failures, args: argparse.Namespace) -> None:
        self.torch = torch
        self.pbm = pbm
        self.failures = failures
        self.args = args
        self.name = f"soak-{os.getpid()}"
        self.capacity = 4096
        self.mb = pbm.Mailbox(capacity=self.capacity, stride=STRIDE, name=self.name)
        self.focus = pbm.focus_stream()
        self.peripheral = pbm.peripheral_stream()
        self.push_class = pbm.stream_class(self.focus)
        self.pop_class = pbm.stream_class(self.peripheral)
        words = torch.arange(RECORD_WORDS, device="cuda", dtype=torch.int64)
        self._mult = 2 * words + 1
        self._offset = words * 1_000_003
        torch.cuda.current_stream().synchronize()  # the constants are read on pbm's streams (uncounted)
        self._cond = threading.Condition()
        self._credits = self.capacity
        self.pushed = 0
        self.push_calls = 0
        self.popped = 0
        self.pop_calls = 0
        self.nonempty_pops = 0
        self.producer_done = threading.Event()
        with torch.cuda.stream(self.peripheral):
            self._mismatches = torch.zeros((), dtype=torch.int64, device="cuda")
        self.bad_records: Optional[int] = None
        self.drained = False
        self.producer = _Loop("mailbox-producer", failures, self._produce)
        self.consumer = _Loop("mailbox-consumer", failures, self._consume)

    def records(self, first: int, n: int) -> Any:
        """Records first..first+n-1 as [n, STRIDE] uint8 on the current stream (no sync)."""
        ids = self.torch.arange(first, first + n, device="cuda", dtype=self.torch.int64)
        return (ids[:, None] * self._mult[None, :] + self._offset[None, :]).view(self.torch.uint8)

    def _produce(self) -> None:
        rng = random.Random(self.args.seed)
        try:
            with self.torch.cuda.stream(self.focus):
                while not self.failures.stop.is_set():
                    n = rng.randint(1, 64)
                    with self._cond:
                        while self._credits < n and not self.failures.stop.is_set():
                            self._cond.wait(0.1)
                        if self._credits < n:
                            break
                        self._credits -= n
                    self.mb.push(self.records(self.pushed, n))
                    self.pushed += n
                    self.push_calls += 1
                    if self.push_calls % 64 == 0:
                        time.sleep(0.001)  # a producer with other things to do
        finally:
            self.producer_done.set()

    def _consume(self) -> None:
        torch = self.torch
        drain_deadline: Optional[float] = None
        with torch.cuda.stream(self.peripheral):
            while True:
                if self.producer_done.is_set():
                    if self.popped == self.pushed:
                        break
                    if drain_deadline is None:
                        drain_deadline = time.monotonic() + 30.0
                    elif time.monotonic() > drain_deadline:
                        self.failures.add(f"mailbox drain: popped {self.popped} of {self.pushed} records in 30 s")
                        return
                out = self.mb.pop(128)
                self.pop_calls += 1
                n = int(out.shape[0])
                if n == 0:
                    time.sleep(0.0005)
                    continue
                self.nonempty_pops += 1
                want = self.records(self.popped, n)
                self._mismatches += (out != want).any(dim=1).sum()
                self.popped += n
                with self._cond:
                    self._credits += n
                    self._cond.notify()
        self.drained = True
        self.bad_records = int(self._mismatches.item())  # after the drain; uncounted

    def check(self) -> List[str]:
        """Problems with the mailbox's counts (empty: all exact): stats() and the pbm_*_total series
        against what the program did, after a stats refresh."""
        problems: List[str] = []
        if not self.drained:
            return ["mailbox was not drained"]
        torch = self.torch
        with torch.cuda.stream(self.peripheral):
            self.mb.refresh_stats()
        torch.cuda.synchronize()
        st = self.mb.stats()
        counters = counter_samples(self.pbm)
        want = {"pushed": self.pushed, "popped": self.popped, "dropped": 0, "occupancy": 0, "pop_calls": self.nonempty_pops}
        for key, value in want.items():
            if int(st[key]) != value:
                problems.append(f"mailbox stats {key}={st[key]}, the program counted {value}")
        if self.bad_records != 0:
            problems.append(f"mailbox: {self.bad_records} popped records differ from the pushed ones (content or order)")
        calls = collections.Counter()
        records = collections.Counter()
        for name, labels, value in counters:
            if labels.get("mailbox") != self.name:
                continue
            if name in ("pbm_push_calls_total", "pbm_pop_calls_total"):
                calls[(name, labels.get("stream_class"))] += int(value)
            elif name in ("pbm_push_records_total", "pbm_pop_records_total", "pbm_dropped_records_total"):
                records[name] += int(value)
        want_calls = {("pbm_push_calls_total", self.push_class): self.push_calls,
                      ("pbm_pop_calls_total", self.pop_class): self.pop_calls}
        for key, value in want_calls.items():
            if calls[key] != value:
                problems.append(f"{key[0]}{{stream_class={key[1]}}}={calls[key]}, the program made {value} calls")
        others = {k: v for k, v in calls.items() if k not in want_calls and v}
        if others:
            problems.append(f"mailbox calls under unexpected labels: {others}")
        for name, value in (("pbm_push_records_total", self.pushed), ("pbm_pop_records_total", self.popped),
                            ("pbm_dropped_records_total", 0)):
            if records[name] != value:
                problems.append(f"{name}={records[name]}, the program counted {value}")
        return problems


class _Loop(Component):
    def __init__(self, name: str, failures: Failures, fn: Callable[[], None]) -> None:
        super().__init__(name, failures)
        self._fn = fn

    def body(self) -> None:
        self._fn()


class Scrapers:
    """Client threads scraping the exporter continuously; every scrape must parse, and no counter
    may go down between two scrapes of the same client."""

    def __init__(self, url: str, failures: Failures, args: argparse.Namespace) -> None:
        self.url = url
        self.failures = failures
        self.args = args
        self._lock = threading.Lock()
        self.scrapes = 0
        self.http_errors: List[str] = []
        self.parse_errors: List[str] = []
        self.decreases: List[str] = []
        self.latency_ms = Reservoir()
        self.bytes = 0
        self.threads = [_Loop(f"scraper-{i}", failures, self._scrape_loop) for i in range(args.scrapers)]
        # 127.0.0.1 directly: never through an http_proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _get(self) -> str:
        with self._opener.open(self.url, timeout=self.args.scrape_timeout) as response:
            return response.read().decode("utf-8")

    def _scrape_loop(self) -> None:
        last: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
        while not self.failures.stop.is_set():
            t0 = time.perf_counter()
            try:
                body = self._get()
            except Exception as e:
                with self._lock:
                    self.http_errors.append(f"{type(e).__name__}: {e}")
                self.failures.add(f"scrape of {self.url} failed: {type(e).__name__}: {e}")
                return
            ms = (time.perf_counter() - t0) * 1e3
            exp = parse_exposition(body)
            decreases = []
            for key, value in exp.samples.items():
                if exp.types.get(key[0]) != "counter":
                    continue
                before = last.get(key)
                if before is not None and value < before:
                    decreases.append(f"{key[0]}{dict(key[1])}: {before:g} -> {value:g}")
                last[key] = value
            with self._lock:
                self.scrapes += 1
                self.bytes += len(body)
                self.latency_ms.add(ms)
                self.parse_errors.extend(exp.errors[:5])
                self.decreases.extend(decreases[:5])
            if exp.errors:
                self.failures.add(f"scrape did not parse: {exp.errors[:3]}")
                return
            if decreases:
                self.failures.add(f"counters went down between two scrapes: {decreases[:3]}")
                return
            time.sleep(self.args.scrape_interval)

    def scrape_once(self) -> Exposition:
        return parse_exposition(self._get())


class Controller(Component):
    """Cycles detach()/attach() and, every --stop-every cycles, stop()/start(mode="count"), each
    while holding the windows' lock exclusively; checks status() after every change."""

    def __init__(self, pbm: Any, windows: Windows, failures: Failures, args: argparse.Namespace) -> None:
        super().__init__("telemetry-control", failures)
        self.pbm = pbm
        self.windows = windows
        self.args = args
        self.detach_cycles = 0
        self.stop_cycles = 0
        self.longest_exclusive_ms = 0.0

    def body(self) -> None:
        tel = self.pbm.telemetry
        cycle = 0
        while not self.failures.stop.wait(self.args.cycle_period):
            cycle += 1
            restart = self.args.stop_every > 0 and cycle % self.args.stop_every == 0
            t0 = time.perf_counter()
            with self.windows.rw.exclusive():
                if restart:
                    tel.stop()
                else:
                    tel.detach()
                st = tel.status()
                if st["attached"] or (restart and st["started"]):
                    self.failures.add(f"after {'stop' if restart else 'detach'}(): status {st}")
                    return
                time.sleep(self.args.hold)  # uncounted work goes on, unseen
                if restart:
                    tel.start(mode="count")
                else:
                    tel.attach()
                st = tel.status()
                if not st["attached"] or not st["started"] or st["mode"] != "count":
                    self.failures.add(f"after {'start' if restart else 'attach'}(): status {st}")
                    return
            self.longest_exclusive_ms = max(self.longest_exclusive_ms, (time.perf_counter() - t0) * 1e3)
            if restart:
                self.stop_cycles += 1
            else:
                self.detach_cycles += 1


class Watchdog(threading.Thread):
    """Past the deadline: says so, dumps every thread's stack and exits 1. faulthandler does the
    same from C 30 s later, in case the interpreter itself is stuck (a C call holding the GIL)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(name="watchdog", daemon=True)
        self.seconds = seconds
        self._cancel = threading.Event()
        faulthandler.dump_traceback_later(seconds + 30.0, exit=True)

    def run(self) -> None:
        if self._cancel.wait(self.seconds):
            return
        print(f"SOAK FAIL: hang: still running {self.seconds:.0f} s after the start (--seconds + --margin); "
              "stacks of every thread follow", flush=True)
        faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
        sys.stdout.flush()
        os._exit(EXIT_FAIL)

    def cancel(self) -> None:
        self._cancel.set()
        faulthandler.cancel_dump_traceback_later()


# ------------------------------------------------------------------------------------ the checks
def preflight(torch: Any, pbm: Any, windows: Windows, repeats: int = 3) -> List[str]:
    """Measures the signature of each (operation, expected) the run counts: on the main thread alone,
    `repeats` times, in its own NVTX range. It must be the same every time, block at least once and,
    inside pbm.expect(...), be expected. Problems as strings (empty: fine)."""
    x = torch.ones(4, device="cuda")
    ops: Dict[str, Callable[[], Any]] = {
        "item": lambda: x.sum().item(),
        "device_sync": torch.cuda.synchronize,
        "stream_sync": lambda: torch.cuda.current_stream().synchronize(),
    }
    problems: List[str] = []
    for range_name, (op, expected) in PREFLIGHT_RANGES.items():
        deltas = []
        for _ in range(repeats):
            before = range_counts(counter_samples(pbm), [range_name])
            windows.run(range_name, ops[op])
            deltas.append(checked(subtract(range_counts(counter_samples(pbm), [range_name]), before)[range_name]))
        sig = deltas[0]
        label = f"{op} ({'inside pbm.expect' if expected else 'bare'})"
        print(f"[soak] signature of {label}: {fmt_counts(sig)}", flush=True)
        blocking = sig[("blocking", True)] + sig[("blocking", False)]
        if any(d != sig for d in deltas):
            problems.append(f"{label}: not the same counts every time: {[fmt_counts(d) for d in deltas]}")
        elif blocking < 1:
            blocking_anywhere = sum(int(v) for n, labels, v in counter_samples(pbm)
                                    if n == "pbm_sync_total" and labels.get("api") in BLOCKING_SYNCS)
            problems.append(
                f"{label}: pbm counted no blocking sync under NVTX range {range_name!r} (saw {fmt_counts(sig)}; "
                f"{blocking_anywhere} blocking syncs counted in the process under any range). NVTX ranges from "
                "torch.cuda.nvtx do not reach pbm (NVTX_INJECTION64_PATH="
                f"{os.environ.get('NVTX_INJECTION64_PATH', '(unset)')}), or telemetry does not see syncs")
        elif expected and any(not exp for _, exp in sig):
            problems.append(f"{label}: counted as unexpected inside pbm.expect(...): {fmt_counts(sig)}")
        else:
            windows.signatures[(op, expected)] = sig
            documented = collections.Counter({(kind, expected): n for kind, n in DOCUMENTED_SIGNATURE[op].items()})
            if sig != documented:
                print(f"[soak] note: {label} counts {fmt_counts(sig)} per call here, not the documented "
                      f"{fmt_counts(documented)}; the checks use what was measured", flush=True)
    return problems


@dataclass
class RangeRow:
    range_name: str
    calls: int
    want: collections.Counter
    seen: collections.Counter
    scraped: Optional[collections.Counter]

    @property
    def checked_seen(self) -> collections.Counter:
        return checked(self.seen)

    @property
    def polls(self) -> collections.Counter:
        return collections.Counter({k: v for k, v in self.seen.items() if k[0].startswith("poll:") and v})

    @property
    def ok(self) -> bool:
        want = collections.Counter({k: v for k, v in self.want.items() if v})
        if self.checked_seen != want:
            return False
        if self.scraped is not None:
            scraped = collections.Counter({k: v for k, v in self.scraped.items() if v})
            return scraped == collections.Counter({k: v for k, v in self.seen.items() if v})
        return True


def compare_counts(windows: Windows, seen: Dict[str, collections.Counter],
                   scraped: Optional[Dict[str, collections.Counter]]) -> List[RangeRow]:
    rows = []
    for range_name, (op, expected) in COUNTED_RANGES.items():
        n = windows.calls[range_name]
        want = collections.Counter({key: n * per_call for key, per_call in windows.signatures[(op, expected)].items()})
        rows.append(RangeRow(range_name, n, want, seen[range_name], None if scraped is None else scraped[range_name]))
    return rows


@dataclass
class RssVerdict:
    ok: bool
    text: str
    figures: Dict[str, float]


def judge_rss(samples: List[Tuple[float, float]], seconds: float, warmup_fraction: float, bound_mib: float) -> RssVerdict:
    all_mib = [m for _, m in samples]
    figures: Dict[str, float] = {}
    if all_mib:
        figures.update(start_mib=all_mib[0], end_mib=all_mib[-1], max_mib=max(all_mib))
    post = [m for t, m in samples if t >= warmup_fraction * seconds]
    if len(post) < 6:
        return RssVerdict(True, f"too few samples after the warm-up ({len(post)}) to judge growth; not judged", figures)
    k = max(3, len(post) // 10)
    first, last = statistics.median(post[:k]), statistics.median(post[-k:])
    growth = last - first
    figures.update(post_min_mib=min(post), post_median_mib=statistics.median(post), post_max_mib=max(post),
                   growth_mib=growth, bound_mib=bound_mib, samples_after_warmup=len(post))
    ok = growth < bound_mib
    text = (f"after warm-up ({len(post)} samples) min/median/max {min(post):.1f}/{statistics.median(post):.1f}/"
            f"{max(post):.1f} MiB; growth {growth:+.1f} MiB (median of the last {k} - median of the first {k}), "
            f"bound {bound_mib:g} MiB")
    return RssVerdict(ok, text, figures)


# ----------------------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Pass criteria and exit codes: see the module docstring (head -60 tests/soak/soak.py).")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the workload runs (default 60)")
    p.add_argument("--margin", type=float, default=None,
                   help="the watchdog fires at --seconds + margin (default max(120, seconds / 2))")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    p.add_argument("--seed", type=int, default=1234)
    g = p.add_argument_group("training")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--dataset-size", type=int, default=1024, help="samples per epoch (default 1024: 16 batches)")
    g.add_argument("--num-workers", type=int, default=2)
    g.add_argument("--loader-timeout", type=float, default=120.0, help="DataLoader timeout per batch, s")
    g.add_argument("--items-expected", type=int, default=2, help=".item() calls per step inside pbm.expect")
    g.add_argument("--items-unexpected", type=int, default=1, help=".item() calls per step outside any guard")
    g = p.add_argument_group("other components")
    g.add_argument("--threads-per-wave", type=int, default=4)
    g.add_argument("--thread-iters", type=int, default=3, help="counted rounds per short-lived thread")
    g.add_argument("--scrapers", type=int, default=8, help="Prometheus client threads")
    g.add_argument("--scrape-interval", type=float, default=0.1,
                   help="pause between two scrapes of one client, s (default 0.1: each scrape is a new TCP "
                        "connection, and the sockets they leave in TIME_WAIT must not exhaust local ports)")
    g.add_argument("--scrape-timeout", type=float, default=30.0)
    g.add_argument("--cycle-period", type=float, default=1.0,
                   help="seconds between two telemetry state changes (default 1: each re-subscribes to CUPTI)")
    g.add_argument("--hold", type=float, default=0.02, help="seconds telemetry stays detached/stopped per cycle")
    g.add_argument("--stop-every", type=int, default=4, help="every Nth cycle is stop()/start() instead of detach()/attach()")
    g = p.add_argument_group("memory")
    g.add_argument("--rss-bound-mib", type=float, default=16.0)
    g.add_argument("--warmup-fraction", type=float, default=0.25)
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.num_workers < 1 or args.scrapers < 0 or args.batch_size < 1:
        p.error("--seconds, --num-workers and --batch-size must be positive, --scrapers >= 0")
    if args.dataset_size < args.batch_size * args.num_workers:
        p.error("--dataset-size must give every worker at least one batch per epoch")
    if args.items_expected + args.items_unexpected < 1:
        p.error("at least one counted .item() per step")
    if args.margin is None:
        args.margin = max(120.0, args.seconds / 2)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    watchdog = Watchdog(args.seconds + args.margin)
    watchdog.start()
    required = os.environ.get("PBM_REQUIRE_EXT") == "1"
    torch, pbm = import_torch_and_pbm(required)

    # Telemetry in count mode, attached; the exporter on a free local port.
    status = pbm.telemetry.start(mode="count")
    if not status["attached"]:
        finish_skip(f"pbm telemetry is not attached: {status['reason']}", required)
    exporter = None
    url = None
    if getattr(pbm.telemetry, "HAVE_EXPORTERS", False):
        exporter = pbm.telemetry.start_prometheus("127.0.0.1:0", threads=4)
        if not exporter.serving:
            print(f"SOAK FAIL: the Prometheus exporter is not serving: {exporter.status()}", flush=True)
            return EXIT_FAIL
        url = f"http://127.0.0.1:{exporter.port}/metrics"
    device = torch.cuda.get_device_name(0)
    print(f"[soak] {device}, torch {torch.__version__}, pbm telemetry {pbm.telemetry.status()['mode']}, "
          f"{args.seconds:g} s, exporter {url or 'not built (no scrapes)'}", flush=True)

    failures = Failures()
    windows = Windows(torch, pbm)
    baseline = range_counts(counter_samples(pbm), COUNTED_RANGES)
    totals_before = pbm.telemetry.totals()
    problems = preflight(torch, pbm, windows)
    if problems:
        for p in problems:
            print(f"[soak] preflight: {p}", flush=True)
        print(f"SOAK FAIL: preflight: {problems[0]}", flush=True)
        return EXIT_FAIL

    trainer = Trainer(torch, windows, failures, args)
    churn = ThreadChurn(torch, windows, failures, args)
    mailbox = MailboxPipeline(torch, pbm, failures, args)
    scrapers = Scrapers(url, failures, args) if url else None
    controller = Controller(pbm, windows, failures, args)
    rss: List[Tuple[float, float]] = []
    threads_max = threading.active_count()

    def sample_rss() -> None:
        nonlocal threads_max
        t0 = time.monotonic()
        next_print = 10.0
        while not done.wait(1.0):
            t = time.monotonic() - t0
            rss.append((t, rss_mib()))
            threads_max = max(threads_max, threading.active_count())
            if t >= next_print:
                next_print += 10.0
                print(f"[soak] t={t:5.0f}s steps={trainer.steps} epochs={trainer.epochs_finished} "
                      f"threads={churn.started} pushed={mailbox.pushed} scrapes={scrapers.scrapes if scrapers else 0} "
                      f"detach={controller.detach_cycles} stop={controller.stop_cycles} rss={rss[-1][1]:.1f} MiB", flush=True)

    done = threading.Event()
    sampler = threading.Thread(target=sample_rss, name="rss-sampler", daemon=True)
    components: List[threading.Thread] = [churn, mailbox.producer, mailbox.consumer, controller]
    if scrapers:
        components += scrapers.threads
    rss.append((0.0, rss_mib()))
    sampler.start()
    for c in components:
        c.start()
    t_work = time.monotonic()
    deadline = t_work + args.seconds
    try:
        trainer.run(deadline)  # the main thread trains (and forks the DataLoader's workers)
    except BaseException:
        failures.add(f"training: {traceback.format_exc().strip()}")
    failures.stop.set()  # the end (or a failure): every loop finishes its round and returns
    for c in components:
        c.join(timeout=60.0)
        if c.is_alive():
            failures.add(f"{c.name} did not finish within 60 s of the end (hang)")
    worked = time.monotonic() - t_work
    done.set()
    sampler.join(timeout=5.0)

    # Telemetry is attached again (the controller returns only between cycles): read the counts.
    if not pbm.telemetry.status()["attached"]:
        failures.add(f"telemetry not attached at the end: {pbm.telemetry.status()}")
    pbm.telemetry.flush()
    samples = counter_samples(pbm)
    seen = subtract(range_counts(samples, COUNTED_RANGES), baseline)
    scraped = None
    final_scrape_errors: List[str] = []
    if scrapers:
        try:
            final = scrapers.scrape_once()
            final_scrape_errors = final.errors
            scraped = subtract(range_counts(final.as_samples(), COUNTED_RANGES), baseline)
        except Exception as e:
            final_scrape_errors = [f"{type(e).__name__}: {e}"]
    rows = compare_counts(windows, seen, scraped)
    mailbox_problems = mailbox.check()
    totals_after = pbm.telemetry.totals()
    rss_verdict = judge_rss(rss, worked, args.warmup_fraction, args.rss_bound_mib)

    # ---- verdict
    reasons = list(failures.items)
    for row in rows:
        if not row.ok:
            reasons.append(f"counts under {row.range_name}: {row.calls} calls, want {fmt_counts(row.want)}, "
                           f"pbm saw {fmt_counts(row.checked_seen)}"
                           + (f", the scrape said {fmt_counts(row.scraped)}" if row.scraped is not None else ""))
    for range_name in WORK_RANGES:
        if windows.calls[range_name] == 0:
            reasons.append(f"no counted call under {range_name}: nothing was compared")
    reasons += mailbox_problems
    if final_scrape_errors:
        reasons.append(f"final scrape: {final_scrape_errors[:3]}")
    if trainer.epochs_finished != trainer.epochs_started or trainer.epochs_finished == 0:
        reasons.append(f"epochs: {trainer.epochs_finished} of {trainer.epochs_started} finished")
    if trainer.workers_exited_ok != trainer.workers_forked:
        reasons.append(f"DataLoader workers: {trainer.workers_exited_ok} of {trainer.workers_forked} exited with status 0")
    if churn.finished != churn.started:
        reasons.append(f"short-lived threads: {churn.finished} of {churn.started} finished")
    if controller.detach_cycles == 0 or (args.stop_every > 0 and controller.stop_cycles == 0):
        reasons.append(f"control: only {controller.detach_cycles} detach and {controller.stop_cycles} stop cycles "
                       "(run longer or lower --cycle-period)")
    if not rss_verdict.ok:
        reasons.append(f"resident memory grew: {rss_verdict.text}")

    figures = build_figures(args, device, torch, worked, trainer, churn, mailbox, scrapers, controller, rows,
                            rss_verdict, totals_before, totals_after, threads_max)
    print_figures(figures, rows, rss_verdict)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**figures, "pass": not reasons, "reasons": reasons}, indent=2) + "\n")
    if exporter is not None:
        exporter.close()
    watchdog.cancel()
    # A hang at interpreter exit (pbm's at-exit flush, CUDA teardown) is a failure too.
    faulthandler.dump_traceback_later(60.0, exit=True)
    if reasons:
        for r in reasons[1:]:
            print(f"  also: {r}")
        print(f"SOAK FAIL: {reasons[0]}" + (f" (+{len(reasons) - 1} more above)" if len(reasons) > 1 else ""), flush=True)
        return EXIT_FAIL
    growth = rss_verdict.figures.get("growth_mib")
    print(f"SOAK PASS: {worked:.0f} s; {trainer.steps} steps, {trainer.epochs_finished} epochs, "
          f"{trainer.workers_forked} workers, {churn.started} threads, {scrapers.scrapes if scrapers else 0} scrapes, "
          f"{controller.detach_cycles}+{controller.stop_cycles} detach+stop cycles; counts exact ({len(rows)} ranges), "
          f"mailbox exact, RSS {'not judged' if growth is None else f'{growth:+.1f} MiB'}", flush=True)
    return EXIT_PASS


def build_figures(args: argparse.Namespace, device: str, torch: Any, worked: float, trainer: Trainer,
                  churn: ThreadChurn, mailbox: MailboxPipeline, scrapers: Optional[Scrapers], controller: Controller,
                  rows: List[RangeRow], rss_verdict: RssVerdict, totals_before: dict, totals_after: dict,
                  threads_max: int) -> Dict[str, Any]:
    def ms(value: Optional[float]) -> Optional[float]:
        return None if value is None or math.isnan(value) else round(value, 2)

    return {
        "schema": "pbm-soak/1",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": device,
        "torch": torch.__version__,
        "seconds_asked": args.seconds,
        "seconds_run": round(worked, 1),
        "training": {"steps": trainer.steps, "epochs_started": trainer.epochs_started,
                     "epochs_finished": trainer.epochs_finished, "workers_forked": trainer.workers_forked,
                     "workers_exited_ok": trainer.workers_exited_ok, "last_loss": trainer.last_loss},
        "threads": {"started": churn.started, "finished": churn.finished, "max_alive": threads_max},
        "mailbox": {"pushed": mailbox.pushed, "popped": mailbox.popped, "push_calls": mailbox.push_calls,
                    "pop_calls": mailbox.pop_calls, "nonempty_pops": mailbox.nonempty_pops,
                    "bad_records": mailbox.bad_records},
        "prometheus": None if scrapers is None else {
            "clients": args.scrapers, "scrapes": scrapers.scrapes, "bytes": scrapers.bytes,
            "http_errors": len(scrapers.http_errors), "parse_errors": len(scrapers.parse_errors),
            "counter_decreases": len(scrapers.decreases),
            "latency_ms_median": ms(scrapers.latency_ms.quantile(0.5)),
            "latency_ms_p99": ms(scrapers.latency_ms.quantile(0.99)),
            "latency_ms_max": ms(scrapers.latency_ms.max)},
        "control": {"detach_attach_cycles": controller.detach_cycles, "stop_start_cycles": controller.stop_cycles,
                    "longest_exclusive_ms": round(controller.longest_exclusive_ms, 1)},
        "counts": [{"range": r.range_name, "calls": r.calls, "want": fmt_counts(r.want),
                    "seen": fmt_counts(r.checked_seen), "polls_seen": fmt_counts(r.polls), "exact": r.ok} for r in rows],
        "totals_before": totals_before,
        "totals_after": totals_after,
        "rss": {k: round(v, 1) if isinstance(v, float) else v for k, v in rss_verdict.figures.items()},
    }


def print_figures(f: Dict[str, Any], rows: List[RangeRow], rss_verdict: RssVerdict) -> None:
    t, th, mb, pr, ct = f["training"], f["threads"], f["mailbox"], f["prometheus"], f["control"]
    print()
    print(f"soak figures ({f['date']}, {f['device']}, torch {f['torch']}); markdown for docs/RELIABILITY.md:")
    print()
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| run | {f['seconds_run']:g} s of work ({f['seconds_asked']:g} s asked), telemetry in count mode |")
    print(f"| training | {t['steps']:,} steps in {t['epochs_finished']} of {t['epochs_started']} epochs finished; "
          f"{t['workers_forked']} DataLoader workers forked (fork, persistent_workers=False), "
          f"{t['workers_exited_ok']} exited with status 0 |")
    print(f"| short-lived threads | {th['started']:,} started, {th['finished']:,} finished; at most {th['max_alive']} threads alive |")
    print(f"| mailbox | {mb['pushed']:,} records pushed in {mb['push_calls']:,} calls, {mb['popped']:,} popped in "
          f"{mb['pop_calls']:,} calls ({mb['nonempty_pops']:,} non-empty); {mb['bad_records']} bad records |")
    if pr:
        print(f"| Prometheus | {pr['clients']} clients, {pr['scrapes']:,} scrapes ({pr['bytes'] / 2**20:.0f} MiB); "
              f"{pr['http_errors']} failed, {pr['parse_errors']} unparsable, {pr['counter_decreases']} counter decreases; "
              f"latency median {pr['latency_ms_median']} ms, p99 {pr['latency_ms_p99']} ms, max {pr['latency_ms_max']} ms |")
    else:
        print("| Prometheus | not built: no scrapes |")
    print(f"| telemetry control | {ct['detach_attach_cycles']} detach/attach cycles, {ct['stop_start_cycles']} stop/start "
          f"cycles; longest exclusive window {ct['longest_exclusive_ms']} ms |")
    r = f["rss"]
    if "start_mib" in r:
        print(f"| resident memory | start {r['start_mib']} MiB, end {r['end_mib']} MiB, max {r['max_mib']} MiB; {rss_verdict.text} |")
    print(f"| totals (whole process) | before {f['totals_before']}; after {f['totals_after']} |")
    print()
    print("| NVTX range (counted calls) | calls | pbm must count | pbm counted | polls (not compared) | exact |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row.range_name} | {row.calls:,} | {fmt_counts(row.want)} | {fmt_counts(row.checked_seen)} | "
              f"{fmt_counts(row.polls)} | {'yes' if row.ok else 'NO'} |")
    print()


if __name__ == "__main__":
    sys.exit(main())
