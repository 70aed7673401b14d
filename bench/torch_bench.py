#!/usr/bin/env python3
"""Figure 6: a pbm.Mailbox push + pop cycle against the plainest PyTorch ring read with .item(), and
against the same cycle in C++ in this process.

    PYTHONPATH=<build>/python python3 bench/torch_bench.py [--quick | --full] [--json PATH]

One cycle pushes 8 records of 64 B (a [8, 64] uint8 CUDA tensor) and pops up to 8; at the end the host
holds the popped count and the records. Variants, all on the current stream:

  pbm          mb.push(records); mb.pop(8, wait="spin"): the count comes home through pinned mapped
               memory written by the pop kernel (no memcpy, no stream sync).
  cxx          the same cycle in C++ on the same mailbox (mailbox_ext._cxx_cycle_ns, no GIL):
               Mailbox::push (its count written to a device word, as mb.push writes its count tensor) +
               pop_bulk_async(8) into a buffer allocated once + wait(spin), steady_clock around each
               cycle. What the Python cycle costs above it is the binding's.
  tensor_ring  the rival: the plainest PyTorch a user writes first (BENCHMARKS.md says why). A
               [capacity, 64] uint8 payload tensor and one int64 CUDA tensor, the write index, advanced
               on the GPU: push = payload.index_copy_(0, (tail + steps[:n]) % capacity, records);
               tail += n. The one consumer, the host, keeps its read index as a Python int:
               pop = n = min(tail.item() - head, 8) (device-to-host copy + stream sync), the n rows
               from head % capacity copied out (.clone(); two slices and a cat when they wrap), head += n.
  index_ring   the earlier rival, kept to compare with earlier runs (no goal): head and tail both 0-dim
               CUDA tensors; pop = count = clamp(tail - head, max=8), count.item(), index_select at
               (head + arange(n)) % capacity, head += n on the GPU.

Host time per cycle (time.perf_counter_ns; the C++ cycle reads steady_clock, the same clock), median
and p99. The variants are interleaved in rounds of cycles, the order reversed every other round, after
a warm-up. Every count is checked (8 per cycle; the C++ cycle checks its own and raises); a sample of
cycles also compares the popped bytes with the pushed ones (untimed; for the C++ cycle, its buffer,
zeroed before each round, after the round). The rings are checked across a wrap-around first.
Goals: tensor_ring >= 3x pbm (median); pbm <= 1.3x cxx (median); pbm p99 <= 60 us.

Exit status 0 (first line "SKIP: ...") where torch, a CUDA GPU or the pbm extension is missing,
1 when a check failed, 2 for usage errors.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDS = 8
STRIDE = 64


def skip(reason, json_path):
    print(f"SKIP: {reason}")
    if json_path:
        write_json(json_path, {"schema": "pbm-bench/1", "benchmark": "torch_bench", "skipped": reason})
    sys.exit(0)


def write_json(path, data):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def import_pbm():
    """pbm from PYTHONPATH, else from $PBM_BUILD_DIR/python or a build folder of this repo (as tests/python/_env.py)."""
    try:
        import pbm  # noqa: F401

        return pbm, None
    except ImportError as first:
        error = first
    except Exception as broken:  # found but does not load: say why instead of a traceback
        return None, broken
    candidates = []
    if os.environ.get("PBM_BUILD_DIR"):
        candidates.append(Path(os.environ["PBM_BUILD_DIR"]) / "python")
    candidates += [REPO / "build-gpu" / "python", REPO / "build" / "python", REPO / "python"]
    for d in candidates:
        if glob.glob(str(d / "pbm" / "mailbox_ext*.so")):
            sys.path.insert(0, str(d))
            try:
                import pbm  # noqa: F401,F811

                return pbm, None
            except Exception as e:  # ImportError, or a module that does not load
                error = e
            break
    return None, error


class TensorRing:
    """The rival: the plainest single-producer, single-consumer ring in PyTorch. The write index lives on
    the GPU (the producer's count is known there only); the host, the one consumer, keeps its read index
    and reads the write index with .item()."""

    def __init__(self, torch, capacity, stride, device):
        self.torch = torch
        self.capacity = capacity
        self.payload = torch.zeros((capacity, stride), dtype=torch.uint8, device=device)
        self.tail = torch.zeros((), dtype=torch.int64, device=device)  # next free slot, advanced on the GPU
        self.head = 0  # next record to pop: the host's own count
        self.steps = torch.arange(capacity, dtype=torch.int64, device=device)

    def push(self, records):
        n = records.shape[0]
        self.payload.index_copy_(0, (self.tail + self.steps[:n]) % self.capacity, records)
        self.tail += n

    def pop(self, max_records):
        n = min(self.tail.item() - self.head, max_records)  # the device-to-host copy and sync pbm does without
        start = self.head % self.capacity
        if start + n <= self.capacity:
            out = self.payload[start:start + n].clone()  # the caller's own copy, as pbm's pop gives
        else:
            out = self.torch.cat((self.payload[start:], self.payload[:start + n - self.capacity]))
        self.head += n
        return out


class IndexRing:
    """The earlier rival: head and tail as 0-dim CUDA tensors, pops through index_select."""

    def __init__(self, torch, capacity, stride, device):
        self.torch = torch
        self.capacity = capacity
        self.buf = torch.zeros((capacity, stride), dtype=torch.uint8, device=device)
        self.head = torch.zeros((), dtype=torch.int64, device=device)  # next record to pop
        self.tail = torch.zeros((), dtype=torch.int64, device=device)  # next free slot
        self.offsets = torch.arange(capacity, dtype=torch.int64, device=device)

    def push(self, records):
        n = records.shape[0]
        idx = (self.tail + self.offsets[:n]) % self.capacity
        self.buf.index_copy_(0, idx, records)
        self.tail += n

    def pop(self, max_records):
        count = self.torch.clamp(self.tail - self.head, max=max_records)
        n = int(count.item())  # the device-to-host copy and sync pbm does without
        idx = (self.head + self.offsets[:n]) % self.capacity
        out = self.buf.index_select(0, idx)
        self.head += n
        return out


def check_ring_wraps(torch, ring_type, records):
    """A ring of 12 slots fed 8 records per cycle wraps on the second cycle: the bytes must survive it."""
    ring = ring_type(torch, 12, records.shape[1], records.device)
    for cycle in range(4):
        ring.push(records)
        out = ring.pop(records.shape[0])
        if out.shape[0] != records.shape[0] or not torch.equal(out, records):
            return f"{ring_type.__name__}: cycle {cycle} across the wrap-around popped other bytes than it pushed"
    return None


def summarise(samples_ns):
    v = sorted(samples_ns)
    if not v:
        return {"unit": "us", "n": 0}

    def at(q):
        return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] / 1e3

    return {
        "unit": "us",
        "median": at(0.5),
        "p99": at(0.99),
        "p1": at(0.01),
        "mean": sum(v) / len(v) / 1e3,
        "min": v[0] / 1e3,
        "max": v[-1] / 1e3,
        "n": len(v),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="short run (default)")
    group.add_argument("--full", action="store_true", help="longer run")
    parser.add_argument("--json", default=os.environ.get("PBM_BENCH_TORCH_JSON", ""), help="write results here")
    parser.add_argument("--no-nvtx-injection", action="store_true",
                        help="PBM_NVTX_INJECTION=0 before importing pbm (default: what a user gets)")
    args = parser.parse_args()
    full = bool(args.full)
    if args.no_nvtx_injection:
        os.environ["PBM_NVTX_INJECTION"] = "0"

    try:
        import torch
    except ImportError as e:
        skip(f"torch is not installed ({e})", args.json)
    if not torch.cuda.is_available():
        skip("no CUDA GPU visible to torch", args.json)
    pbm, error = import_pbm()
    if pbm is None:
        skip(f"the pbm extension is not built or not importable ({error}); set PYTHONPATH=<build>/python", args.json)

    warmup = 500 if full else 200
    rounds = 40 if full else 10
    per_round = 500 if full else 200
    check_every = 25
    device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device)
    print(f"[torch_bench] {name}, torch {torch.__version__}, {'full' if full else 'quick'}: "
          f"{rounds} rounds x {per_round} cycles per variant")

    records = (torch.arange(RECORDS * STRIDE, device=device, dtype=torch.int64) * 7 + 3).remainder(251).add(1)
    records = records.to(torch.uint8).view(RECORDS, STRIDE).contiguous()
    mb = pbm.Mailbox(capacity=4096, stride=STRIDE, name="torch_bench")
    ring = TensorRing(torch, 4096, STRIDE, device)
    index_ring = IndexRing(torch, 4096, STRIDE, device)
    cxx_dst = torch.zeros(RECORDS * STRIDE, dtype=torch.uint8, device=device)  # the C++ cycle's pop buffer
    cxx_count = torch.zeros((), dtype=torch.int64, device=device)  # where its pushes write their count
    errors = [e for e in (check_ring_wraps(torch, TensorRing, records), check_ring_wraps(torch, IndexRing, records))
              if e]
    variants = ("pbm", "cxx", "tensor_ring", "index_ring")
    checked = {v: 0 for v in variants}  # records whose bytes were compared
    counted = {v: 0 for v in variants}  # cycles whose count was checked
    samples = {v: [] for v in variants}

    def cycle_pbm():
        mb.push(records)
        return mb.pop(RECORDS, wait="spin")

    def cycle_ring():
        ring.push(records)
        return ring.pop(RECORDS)

    def cycle_index_ring():
        index_ring.push(records)
        return index_ring.pop(RECORDS)

    cycles = {"pbm": cycle_pbm, "tensor_ring": cycle_ring, "index_ring": cycle_index_ring}

    def run_python(variant, n, keep):
        fn = cycles[variant]
        clock = time.perf_counter_ns
        for i in range(n):
            t0 = clock()
            out = fn()
            t1 = clock()
            if out.shape[0] != RECORDS:
                errors.append(f"{variant}: popped {out.shape[0]} records, expected {RECORDS}")
                return False
            counted[variant] += 1
            if keep:
                samples[variant].append(t1 - t0)
            if i % check_every == 0:  # untimed: the bytes that came out are the bytes that went in
                if not torch.equal(out, records):
                    errors.append(f"{variant}: popped bytes differ from the pushed records")
                    return False
                checked[variant] += RECORDS
        return True

    def run_cxx(n, keep):
        cxx_dst.zero_()  # untimed: stale bytes from the last round cannot pass the check below
        try:
            ns = pbm.ext._cxx_cycle_ns(mb._bound(), records, cxx_dst, n, cxx_count)  # checks every count
        except RuntimeError as e:
            errors.append(f"cxx: {e}")
            return False
        counted["cxx"] += len(ns)
        if keep:
            samples["cxx"].extend(ns)
        if not torch.equal(cxx_dst.view(RECORDS, STRIDE), records) or int(cxx_count) != RECORDS:
            errors.append("cxx: the last cycle's popped bytes or push count differ from the pushed records")
            return False
        checked["cxx"] += RECORDS
        return True

    def run(variant, n, keep):
        return run_cxx(n, keep) if variant == "cxx" else run_python(variant, n, keep)

    torch.cuda.synchronize()
    ok = not errors and all(run(v, warmup, False) for v in variants)
    for r in range(rounds):
        if not ok:
            break
        for variant in (variants if r % 2 == 0 else variants[::-1]):
            ok = ok and run(variant, per_round, True)
    torch.cuda.synchronize()
    stats = mb.stats()
    if stats["dropped"] != 0:
        errors.append(f"pbm: {stats['dropped']} records dropped")

    p, c = summarise(samples["pbm"]), summarise(samples["cxx"])
    t, x = summarise(samples["tensor_ring"]), summarise(samples["index_ring"])

    def ratio(a, b, key):
        return a[key] / b[key] if a.get(key) and b.get(key) else None

    ring_over_pbm = ratio(t, p, "median")
    py_over_cxx = ratio(p, c, "median")
    p99 = p.get("p99")

    def goal(what, value, op, target):
        met = value is not None and (value >= target if op == ">=" else value <= target)
        return {"what": what, "value": value, "op": op, "target": target, "met": met}

    goal_ring = goal("pbm push+pop cycle >= 3x faster than the plain tensor ring with .item() (median)",
                     ring_over_pbm, ">=", 3.0)
    goal_cxx = goal("pbm Python cycle <= 1.3x the same cycle in C++, same mailbox, same process (median)",
                    py_over_cxx, "<=", 1.3)
    goal_p99 = goal("pbm Python cycle p99 <= 60 us", p99, "<=", 60.0)

    def row(item, value, unit, reference, reference_value, ratio_, ratio_is, goal_=None):
        r = {"item": item, "value": value, "unit": unit, "reference": reference, "reference_value": reference_value,
             "ratio": ratio_, "ratio_is": ratio_is}
        if goal_ is not None:
            r["goal"] = goal_
        return r

    fig = {
        "id": "6",
        "title": "PyTorch: pbm.Mailbox push + pop cycle vs the plainest tensor ring read with .item(), and vs "
                 "the same cycle in C++",
        "method": "host time.perf_counter_ns per cycle (C++ cycle: steady_clock, in C++); variants interleaved in "
                  "rounds, order reversed every other round, after a warm-up; every count checked, a sample of "
                  "cycles' bytes compared (untimed)",
        "params": {"records_per_cycle": RECORDS, "record_bytes": STRIDE, "warmup_cycles": warmup, "rounds": rounds,
                   "cycles_per_round": per_round, "verified_records": checked, "checked_counts": counted,
                   "pbm_wait": "spin", "cxx_push_device_count": True,
                   "nvtx_injection": os.environ.get("NVTX_INJECTION64_PATH", ""),
                   "telemetry_mode": pbm.telemetry.mode() if hasattr(pbm.telemetry, "mode") else None},
        "series": {
            "pbm": dict(p, what="pbm.Mailbox.push(records) + pop(8, wait='spin')"),
            "cxx": dict(c, what="C++ on the same mailbox: Mailbox::push (device count) + pop_bulk_async(8) + "
                                "wait(spin)"),
            "tensor_ring": dict(t, what="payload.index_copy_ at (tail + steps) % capacity, tail += n on the GPU; "
                                        "pop: tail.item(), rows cloned from the host's head"),
            "index_ring": dict(x, what="earlier rival: head/tail on the GPU, clamp + count.item() + index_select"),
        },
        "ratios": {"tensor_ring_over_pbm_median": ring_over_pbm,
                   "tensor_ring_over_pbm_p99": ratio(t, p, "p99"),
                   "pbm_over_cxx_median": py_over_cxx,
                   "pbm_over_cxx_p99": ratio(p, c, "p99"),
                   "index_ring_over_pbm_median": ratio(x, p, "median")},
        "goals": [goal_ring, goal_cxx, goal_p99],
        "table": [
            row("pbm push+pop cycle, median", p.get("median"), "us", "plain tensor ring + .item()", t.get("median"),
                ring_over_pbm, "ring/pbm", goal_ring),
            row("pbm push+pop cycle, p99", p99, "us", "plain tensor ring + .item() p99", t.get("p99"),
                ratio(t, p, "p99"), "ring/pbm"),
            row("pbm Python cycle, median", p.get("median"), "us", "same cycle in C++", c.get("median"),
                py_over_cxx, "python/cxx", goal_cxx),
            row("pbm Python cycle, p99", p99, "us", "the goal's bound", 60.0, p99 / 60.0 if p99 else None,
                "p99/60us", goal_p99),
            row("pbm push+pop cycle, median", p.get("median"), "us", "earlier rival (index ring)", x.get("median"),
                ratio(x, p, "median"), "index_ring/pbm"),
        ],
        "checks_passed": not errors,
    }
    result = {
        "schema": "pbm-bench/1",
        "benchmark": "torch_bench",
        "mode": "full" if full else "quick",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": {"name": name},
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "figures": {"6": fig},
        "errors": errors,
        "valid": not errors,
    }
    for e in errors:
        print(f"torch_bench: CHECK FAILED: {e}", file=sys.stderr)

    def verdict(g):
        return "MET" if g["met"] else "NOT MET"

    if p.get("median") and t.get("median"):
        print(f"[torch_bench] pbm cycle {p['median']:.1f} us median ({p['p99']:.1f} p99) vs plain tensor ring "
              f"{t['median']:.1f} us ({t['p99']:.1f} p99): {ring_over_pbm:.2f}x (goal >= 3: {verdict(goal_ring)}); "
              f"earlier index ring {x.get('median', float('nan')):.1f} us")
    if p.get("median") and c.get("median"):
        print(f"[torch_bench] pbm cycle vs the same cycle in C++ {c['median']:.1f} us median ({c['p99']:.1f} p99): "
              f"{py_over_cxx:.2f}x (goal <= 1.3: {verdict(goal_cxx)}); pbm p99 {p99:.1f} us "
              f"(goal <= 60: {verdict(goal_p99)})")
    if args.json:
        write_json(args.json, result)
        print(f"JSON: {args.json}")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
