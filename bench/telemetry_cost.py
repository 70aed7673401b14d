#!/usr/bin/env python3
"""The cost of telemetry being on, per call: nanoseconds per intercepted CUDA call and per NVTX
range, attached vs detached, in one process.

    PYTHONPATH=<build>/python python3 bench/telemetry_cost.py [--quick] [--blocks N] [--calls N] [--json PATH]

pbm.telemetry.start(mode="count"); then, for each call below, blocks of --calls calls timed with
time.perf_counter_ns() around a plain Python loop, with telemetry attached (CUPTI subscribed) and
detached (pbm.telemetry.detach(): NVTX still goes to libcupti, nothing listens), --blocks pairs
interleaved in alternating order (A B, B A, ...), each after a short warm-up in its state:

  stream_query     torch.cuda.current_stream().query()   cudaStreamQuery: intercepted, never blocks
  event_query      torch.cuda.Event().query()            cudaEventQuery on a completed event
  stream_sync      stream.synchronize() on an idle stream cudaStreamSynchronize: intercepted, counted
                                                         (unexpected in count mode: a violation counted)
  nvtx_range       torch.cuda.nvtx.range_push/range_pop  one NVTX push/pop pair (pbm's range stack)

and the opt-in legacy default stream rule, both states attached in count mode, rule on against off:

  launch_legacy    x.add_(1) on the default (legacy) stream, beside a blocking stream: one kernel
                   launch; with the rule on it gets a CUPTI callback and is counted as legacy_stream

The loop's own Python cost is in both columns; their difference is what telemetry adds. Per call
kind: median and spread (p25..p75, min..max over blocks) of ns per call in each state, and of the
difference attached - detached over the block pairs. Every attached block must have been counted
(pbm's counter for its API grew by the number of calls: never a timing on zeros) and every detached
block must have counted nothing; NVTX blocks are checked with a probe call inside a range of their
own after each block. Violating either is a failure (exit 1).

Output: a table, a 'RESULT {json}' line per call kind, a 'SUMMARY: ...' line; --json writes all of it.
Exit status: 0 measured, 1 a check failed, 77 skipped ('SKIP: ...': no torch, no CUDA GPU, no pbm
extension, or telemetry cannot attach), 2 usage error.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import telemetry_bench_common as common

BENCHMARK = "telemetry_cost"
NVTX_NAME = "cost.nvtx"
PROBE_RANGE = "cost.nvtx.probe"


@dataclass
class Op:
    """One kind of call: how to time n of them, and which pbm_sync_total{api} counts them."""

    name: str
    what: str
    api: Optional[str]  # None: NVTX (checked with a probe instead)
    timed: Callable[[int], int]  # n -> nanoseconds for n calls


def make_ops(torch: Any) -> List[Op]:
    stream = torch.cuda.current_stream()
    event = torch.cuda.Event()
    event.record(stream)
    stream.synchronize()
    push, pop = torch.cuda.nvtx.range_push, torch.cuda.nvtx.range_pop
    clock = time.perf_counter_ns

    # One loop per call kind, each as lean as Python allows (bound methods looked up once).
    def stream_query(n: int) -> int:
        query = stream.query
        t0 = clock()
        for _ in range(n):
            query()
        return clock() - t0

    def event_query(n: int) -> int:
        query = event.query
        t0 = clock()
        for _ in range(n):
            query()
        return clock() - t0

    def stream_sync(n: int) -> int:
        sync = stream.synchronize
        t0 = clock()
        for _ in range(n):
            sync()
        return clock() - t0

    def nvtx_range(n: int) -> int:
        t0 = clock()
        for _ in range(n):
            push(NVTX_NAME)
            pop()
        return clock() - t0

    return [
        Op("stream_query", "torch.cuda.current_stream().query() (cudaStreamQuery)", "stream_query", stream_query),
        Op("event_query", "torch.cuda.Event.query() (cudaEventQuery)", "event_query", event_query),
        Op("stream_sync", "stream.synchronize() on an idle stream (cudaStreamSynchronize)", "stream_synchronize", stream_sync),
        Op("nvtx_range", "torch.cuda.nvtx.range_push + range_pop", None, nvtx_range),
    ]


def nvtx_probe(torch: Any, pbm: Any) -> int:
    """One stream query inside PROBE_RANGE: how many pbm counted under that range (1 when NVTX
    ranges reach pbm, 0 when detached)."""
    before = common.read_counts(pbm).by_range[("stream_query", PROBE_RANGE)]
    torch.cuda.nvtx.range_push(PROBE_RANGE)
    torch.cuda.current_stream().query()
    torch.cuda.nvtx.range_pop()
    return common.read_counts(pbm).by_range[("stream_query", PROBE_RANGE)] - before


def measure(torch: Any, pbm: Any, op: Op, blocks: int, calls: int, warmup: int) -> Dict[str, Any]:
    """Interleaved blocks of one call kind; returns its result (ns per call, counts)."""
    ns: Dict[str, List[float]] = {s: [] for s in common.STATES}
    counted: Dict[str, List[int]] = {s: [] for s in common.STATES}
    probes: Dict[str, List[int]] = {s: [] for s in common.STATES}
    for _, state in common.interleaved(blocks):
        common.set_attached(pbm, state == "attached")
        op.timed(warmup)
        gc.collect()
        before = common.read_counts(pbm)
        elapsed = op.timed(calls)
        delta = common.read_counts(pbm) - before
        ns[state].append(elapsed / calls)
        counted[state].append(delta.syncs[op.api] if op.api else 0)
        if op.api is None:
            probes[state].append(nvtx_probe(torch, pbm))
    common.set_attached(pbm, True)

    # Never a timing on zeros: attached blocks were seen call by call, detached ones not at all.
    if op.api is not None:
        if min(counted["attached"]) < calls:
            common.fail(f"{op.name}: an attached block of {calls} calls was counted only {min(counted['attached'])} "
                        f"times (pbm_sync_total{{api=\"{op.api}\"}}): telemetry did not see the calls")
        if max(counted["detached"]) != 0:
            common.fail(f"{op.name}: a detached block counted {max(counted['detached'])} calls: detach() did not take effect")
    else:
        if min(probes["attached"]) != 1:
            common.fail(f"{op.name}: the probe inside NVTX range {PROBE_RANGE!r} was not counted under it while "
                        f"attached ({probes['attached']}): NVTX ranges do not reach pbm, nothing was measured")
        if max(probes["detached"]) != 0:
            common.fail(f"{op.name}: the probe was counted while detached ({probes['detached']})")
    deltas = [a - d for a, d in zip(ns["attached"], ns["detached"])]
    return {
        "bench": BENCHMARK,
        "op": op.name,
        "what": op.what,
        "api": op.api,
        "blocks": blocks,
        "calls_per_block": calls,
        "detached_ns": common.summary(ns["detached"], 1),
        "attached_ns": common.summary(ns["attached"], 1),
        "cost_ns": common.summary(deltas, 1),
        "counted_per_attached_block": {"min": min(counted["attached"]), "max": max(counted["attached"])}
        if op.api else None,
        "nvtx_probe_attached": probes["attached"] or None,
    }


def measure_legacy_rule(torch: Any, pbm: Any, blocks: int, calls: int, warmup: int) -> Dict[str, Any]:
    """Kernel launches on the legacy default stream beside a blocking stream, the legacy stream rule
    on against off (both attached, count mode), interleaved blocks. Rule-on blocks must have counted
    every launch as legacy_stream, rule-off blocks none."""
    import ctypes

    x = torch.zeros(1, device="cuda")
    driver = ctypes.CDLL("libcuda.so.1")
    blocking = ctypes.c_void_p()
    pbm.telemetry.set_legacy_stream_rule(True)  # on while the stream is made: pbm sees it created blocking
    if driver.cuStreamCreate(ctypes.byref(blocking), 0) != 0:
        common.fail("cuStreamCreate failed: no blocking stream to measure the legacy stream rule beside")
    add = x.add_
    clock = time.perf_counter_ns

    def launches(n: int) -> int:
        t0 = clock()
        for _ in range(n):
            add(1)
        return clock() - t0

    ns: Dict[str, List[float]] = {s: [] for s in common.STATES}
    counted: Dict[str, List[int]] = {s: [] for s in common.STATES}
    for _, state in common.interleaved(blocks):
        pbm.telemetry.set_legacy_stream_rule(state == "attached")  # "attached": the rule on
        launches(warmup)
        torch.cuda.synchronize()
        gc.collect()
        before = common.read_counts(pbm)
        elapsed = launches(calls)
        torch.cuda.synchronize()
        delta = common.read_counts(pbm) - before
        ns[state].append(elapsed / calls)
        counted[state].append(delta.syncs["legacy_stream"])
    pbm.telemetry.set_legacy_stream_rule(False)
    driver.cuStreamDestroy_v2(blocking)
    if min(counted["attached"]) < calls:
        common.fail(f"launch_legacy: a rule-on block of {calls} launches counted {min(counted['attached'])} as "
                    "legacy_stream: the rule did not see them")
    if max(counted["detached"]) != 0:
        common.fail(f"launch_legacy: a rule-off block counted {max(counted['detached'])} legacy_stream launches")
    deltas = [a - d for a, d in zip(ns["attached"], ns["detached"])]
    return {
        "bench": BENCHMARK,
        "op": "launch_legacy",
        "what": "x.add_(1) on the legacy stream (legacy rule on - off)",
        "api": "legacy_stream",
        "blocks": blocks,
        "calls_per_block": calls,
        "detached_ns": common.summary(ns["detached"], 1),
        "attached_ns": common.summary(ns["attached"], 1),
        "cost_ns": common.summary(deltas, 1),
        "counted_per_attached_block": {"min": min(counted["attached"]), "max": max(counted["attached"])},
        "nvtx_probe_attached": None,
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring for what is measured and checked.")
    p.add_argument("--quick", action="store_true", help="short run (4 block pairs x 5,000 calls), for gpu-check")
    p.add_argument("--blocks", type=int, help="block pairs per call kind (default 10; --quick 4)")
    p.add_argument("--calls", type=int, help="calls per block (default 20,000; --quick 5,000)")
    p.add_argument("--warmup", type=int, default=500, help="untimed calls before each block (default 500)")
    p.add_argument("--only", help="comma-separated call kinds (stream_query, event_query, stream_sync, nvtx_range, "
                                  "launch_legacy)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.blocks = args.blocks if args.blocks is not None else (4 if args.quick else 10)
    args.calls = args.calls if args.calls is not None else (5_000 if args.quick else 20_000)
    if args.blocks < 1 or args.calls < 1 or args.warmup < 0:
        p.error("--blocks and --calls must be positive, --warmup >= 0")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch, pbm = common.import_torch_and_pbm(args.json, BENCHMARK)
    common.start_telemetry(pbm, args.json, BENCHMARK)
    env = common.environment(torch)
    ops = make_ops(torch)
    legacy = True
    if args.only:
        wanted = set(args.only.split(","))
        legacy = "launch_legacy" in wanted
        wanted.discard("launch_legacy")
        unknown = wanted - {op.name for op in ops}
        if unknown:
            print(f"telemetry_cost.py: unknown call kind(s) {sorted(unknown)}", file=sys.stderr)
            return 2
        ops = [op for op in ops if op.name in wanted]

    print(f"telemetry cost per call: {env['device']}, torch {env['torch']} (CUDA {env['cuda']}); "
          f"count mode; {args.blocks} block pairs x {args.calls:,} calls, attached/detached interleaved")
    results = []
    for op in ops:
        result = measure(torch, pbm, op, args.blocks, args.calls, args.warmup)
        results.append(result)
    if legacy:
        results.append(measure_legacy_rule(torch, pbm, args.blocks, args.calls, args.warmup))

    print()
    print("(launch_legacy: 'detached' is the rule off, 'attached' the rule on; both attached in count mode)")
    print(f"{'call':<62} {'detached ns':>11} {'attached ns':>11}  {'cost ns (median, p25..p75)':<30} {'counted/block':>13}")
    for r in results:
        c = r["cost_ns"]
        cost = f"{c['median']:+.1f} ({c['p25']:+.1f}..{c['p75']:+.1f})"
        counted = (f"{r['counted_per_attached_block']['min']:,}" if r["counted_per_attached_block"]
                   else "probe ok")
        print(f"{r['what']:<62} {r['detached_ns']['median']:>11.1f} {r['attached_ns']['median']:>11.1f}  {cost:<30} {counted:>13}")
    print()
    for r in results:
        common.emit({**r, **env})
    summary = ", ".join(f"{r['op']} {r['cost_ns']['median']:+.0f} ns" for r in results)
    print(f"SUMMARY: ns per call, attached - detached: {summary}")
    if args.json:
        common.write_json(args.json, {"schema": "pbm-bench/1", "benchmark": BENCHMARK, "environment": env,
                                      "settings": vars(args), "results": results})
    return common.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
