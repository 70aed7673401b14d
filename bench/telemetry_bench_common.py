"""Shared by bench/telemetry_cost.py and bench/telemetry_loops.py: finding torch and pbm, switching
telemetry between attached and detached, reading pbm's counts, block statistics and output.

Only the standard library is imported here, so the scripts can say "SKIP: ..." (exit 77) where torch,
a CUDA GPU or the pbm extension is missing.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, NoReturn, Optional, Sequence, Tuple

from torch_bench import import_pbm  # beside this file: stdlib imports only until called

REPO = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_FAIL, EXIT_SKIP = 0, 1, 77

# pbm_sync_total{api=...} values that block the calling host thread (telemetry events.hpp: blocks_host).
BLOCKING_SYNCS = frozenset(
    {"stream_synchronize", "event_synchronize", "device_synchronize", "context_synchronize", "memcpy_sync"}
)


def write_json(path: str, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def skip(reason: str, json_path: Optional[str], benchmark: str) -> NoReturn:
    """Prints 'SKIP: reason' and exits 77 (with a JSON saying so when asked for one)."""
    print(f"SKIP: {reason}", flush=True)
    if json_path:
        write_json(json_path, {"schema": "pbm-bench/1", "benchmark": benchmark, "skipped": reason})
    sys.exit(EXIT_SKIP)


def fail(message: str) -> NoReturn:
    print(f"FAIL: {message}", flush=True)
    sys.exit(EXIT_FAIL)


def import_torch_and_pbm(json_path: Optional[str], benchmark: str) -> Tuple[Any, Any]:
    """torch and pbm, or SKIP (77). pbm comes from PYTHONPATH, else from $PBM_BUILD_DIR/python or a
    build folder of this repository. PBM_REQUIRE_EXT=1 (gpu-check) makes a missing extension a
    failure instead."""
    try:
        import torch
    except Exception as e:  # ImportError, or a torch that does not load
        skip(f"torch not importable ({e})", json_path, benchmark)
    if not torch.cuda.is_available():
        skip("no CUDA GPU visible to torch", json_path, benchmark)
    pbm, error = import_pbm()  # the one locator of the bench scripts
    if pbm is not None:
        return torch, pbm
    reason = f"the pbm extension is not built or not importable ({error})"
    if os.environ.get("PBM_REQUIRE_EXT") == "1":
        fail(reason + " (PBM_REQUIRE_EXT=1)")
    skip(reason, json_path, benchmark)


def start_telemetry(pbm: Any, json_path: Optional[str], benchmark: str) -> None:
    """Telemetry in count mode, attached (CUPTI subscribed), or SKIP/FAIL saying why not."""
    status = pbm.telemetry.start(mode="count")
    if not status["attached"]:
        reason = f"pbm telemetry is not attached: {status['reason']}"
        if os.environ.get("PBM_REQUIRE_EXT") == "1":
            fail(reason + " (PBM_REQUIRE_EXT=1)")
        skip(reason, json_path, benchmark)


def set_attached(pbm: Any, attached: bool) -> None:
    """attach() or detach(), checked with status(): a block never runs in the wrong state."""
    if attached:
        pbm.telemetry.attach()
    else:
        pbm.telemetry.detach()
    status = pbm.telemetry.status()
    if status["attached"] != attached:
        fail(f"telemetry should be {'attached' if attached else 'detached'} but status() says {status}")


STATES = ("detached", "attached")


def interleaved(blocks: int) -> Iterator[Tuple[int, str]]:
    """(block, state) for `blocks` pairs, the order alternating (A B, B A, A B, ...) so neither state
    always runs first after the switch."""
    for b in range(blocks):
        order = STATES if b % 2 == 0 else STATES[::-1]
        for state in order:
            yield b, state


@dataclass
class Counts:
    """pbm's counts so far, over all labels: syncs by API and copies by direction."""

    syncs: collections.Counter = field(default_factory=collections.Counter)
    copies: collections.Counter = field(default_factory=collections.Counter)
    by_range: collections.Counter = field(default_factory=collections.Counter)  # (api, range) -> n

    def __sub__(self, other: "Counts") -> "Counts":
        out = Counts(collections.Counter(self.syncs), collections.Counter(self.copies), collections.Counter(self.by_range))
        out.syncs.subtract(other.syncs)
        out.copies.subtract(other.copies)
        out.by_range.subtract(other.by_range)
        return out

    @property
    def blocking(self) -> int:
        return sum(n for api, n in self.syncs.items() if api in BLOCKING_SYNCS)

    @property
    def dtoh(self) -> int:
        return self.copies["DtoH"]

    def total(self) -> int:
        return sum(self.syncs.values()) + sum(self.copies.values())


def read_counts(pbm: Any) -> Counts:
    """Reads counters() (no CUDA call)."""
    c = Counts()
    for s in pbm.telemetry.counters():
        labels = s["labels"]
        if s["name"] == "pbm_sync_total":
            c.syncs[labels.get("api", "unknown")] += int(s["value"])
            c.by_range[(labels.get("api", "unknown"), labels.get("range", ""))] += int(s["value"])
        elif s["name"] == "pbm_memcpy_total":
            c.copies[labels.get("direction", "unknown")] += int(s["value"])
    return c


def summary(values: Sequence[float], digits: int = 4) -> Dict[str, float]:
    """median, p25, p75, min, max (and n) of block values."""
    v = sorted(values)
    if not v:
        return {"n": 0}

    def q(p: float) -> float:  # linear interpolation between closest ranks
        pos = p * (len(v) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    out = {"median": statistics.median(v), "p25": q(0.25), "p75": q(0.75), "min": v[0], "max": v[-1]}
    return {"n": len(v), **{k: round(x, digits) for k, x in out.items()}}


def environment(torch: Any) -> Dict[str, Any]:
    """What the numbers were measured on."""
    props = torch.cuda.get_device_properties(0)
    return {
        "device": torch.cuda.get_device_name(0),
        "sm": f"{props.major}{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def emit(result: Dict[str, Any]) -> None:
    """One measurement as a line 'RESULT {json}' (for BENCHMARKS.md and scripts)."""
    print("RESULT " + json.dumps(result, sort_keys=True), flush=True)
