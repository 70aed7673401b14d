#!/usr/bin/env python3
"""Merges the JSON of pbm's benchmark programs into one results file and prints the table.

    python3 bench/report.py --out results.json --mode quick \
        [--pbm-bench pbm_bench.json] [--telemetry small.json] [--telemetry pipeline.json] \
        [--torch torch_bench.json] [--status NAME=RC ...] [--skipped FIG=REASON ...] [--driver X] [--git REV]

scripts/bench calls it; BENCHMARKS.md describes the keys. Figures 1-5 and 8 come from pbm_bench,
6 from torch_bench.py, 7 from telemetry_overhead (converted here to the same row format).
`--print-only FILE` prints the table of an existing results file. Standard library only.
"""

import argparse
import json
import math
import sys
from pathlib import Path

SCHEMA = "pbm-bench/1"


def load(path):
    if not path:
        return None
    p = Path(path)
    if not p.is_file():
        return {"missing": str(p)}
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"unreadable": f"{p}: {e}"}


def number(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def row(item, value, unit, reference, reference_value, ratio, ratio_is, goal=None):
    r = {"item": item, "value": value, "unit": unit, "reference": reference, "reference_value": reference_value,
         "ratio": ratio, "ratio_is": ratio_is}
    if goal is not None:
        r["goal"] = goal
    return r


def telemetry_figure(runs):
    """Figure 7 from telemetry_overhead's JSON (one per loop kind): each column against `off`; count mode
    attached against detached in one process (the goal: median ratio per block pair <= 1.03) with the ns per
    intercepted callback; NVTX tool against none in forked children, with their spread."""
    fig = {
        "id": "7",
        "title": "Telemetry overhead: off / NVTX only / count / assert, per loop iteration",
        "method": "telemetry_overhead: host steady_clock per iteration; off measured in children forked before CUDA "
                  "or NVTX; count and assert interleaved round by round; count attached vs detached in interleaved "
                  "block pairs in one process (block = median iteration); NVTX tool vs none in forked children, "
                  "alternating (see bench/telemetry_overhead.cu)",
        "loops": {},
        "table": [],
        "goals": [],
    }
    for data in runs:
        if not isinstance(data, dict) or "columns" not in data:
            continue
        kind = data.get("loop_kind", "small")
        fig["loops"][kind] = data
        cols = data["columns"]
        base_name = "off" if "off" in cols else "nvtx"
        base = cols.get(base_name, {}).get("median_us")
        for name in ("nvtx", "count", "assert"):
            c = cols.get(name)
            if not c or name == base_name:
                continue
            ratio = c["median_us"] / base if number(base) else None
            label = {"off": "off: no telemetry, no NVTX tool", "nvtx": "nvtx: NVTX into libcupti only"}[base_name]
            fig["table"].append(row(f"{kind} loop: {name}, median", c.get("median_us"), "us", label, base, ratio,
                                    f"{name}/{base_name}"))
        ad = data.get("attached_detached")
        if isinstance(ad, dict):
            ratio = (ad.get("ratio") or {}).get("median")
            goal = next((g for g in data.get("goals", []) if isinstance(g, dict)
                         and "attached/detached" in str(g.get("what", ""))), None)
            if goal is None and number(ratio):
                goal = {"what": f"{kind} loop: count attached/detached", "value": ratio, "op": "<=", "target": 1.03,
                        "met": ratio <= 1.03}
            if goal is not None:
                fig["goals"].append(goal)
            fig["table"].append(row(f"{kind} loop: count attached, block median", (ad.get("attached_us") or {}).get("median"),
                                    "us", "count detached, same process",
                                    (ad.get("detached_us") or {}).get("median"), ratio,
                                    "attached/detached", goal))
            fig["table"].append(row(f"{kind} loop: ns per intercepted callback", ad.get("ns_per_callback"), "ns",
                                    "callbacks per iteration, API + NVTX", ad.get("callbacks_per_iteration"), None,
                                    "diff/callbacks"))
        ch = data.get("nvtx_children")
        if isinstance(ch, dict):
            nvtx_med = (ch.get("nvtx_us") or {}).get("median")
            none_med = (ch.get("none_us") or {}).get("median")
            fig["table"].append(row(f"{kind} loop: NVTX tool, children's median", nvtx_med, "us",
                                    "no NVTX tool, children's median", none_med, ch.get("ratio_of_medians"),
                                    "nvtx/none medians"))
    return fig if fig["loops"] else None


def collect_goals(figures):
    goals = []
    for fid, fig in figures.items():
        for g in fig.get("goals", []) if isinstance(fig, dict) else []:
            goals.append(dict(g, figure=fid))
    return goals


def fmt(x, width, spec=".4g"):
    return f"{x:>{width}{spec}}" if number(x) is not None else f"{'-':>{width}}"


def print_table(results, out=sys.stdout):
    dev = results.get("device", {})
    print(f"\npbm benchmarks: {dev.get('name', '?')}, driver {results.get('driver_version') or '?'} "
          f"(CUDA {dev.get('cuda_driver_version', '?')}), mode {results.get('mode', '?')}, {results.get('date', '?')}",
          file=out)
    head = f"{'fig':<4} {'measured':<44} {'value':>10} {'unit':<8} {'against':<36} {'its value':>10} {'ratio':>8} " \
           f"{'ratio is':<18} goal"
    print(head, file=out)
    print("-" * len(head), file=out)
    for fid in sorted(results.get("figures", {}), key=lambda k: (len(k), k)):
        fig = results["figures"][fid]
        if not isinstance(fig, dict):
            continue
        if fig.get("skipped"):
            print(f"{fid:<4} skipped: {fig['skipped']}", file=out)
            continue
        for r in fig.get("table", []):
            goal = "-"
            g = r.get("goal")
            if isinstance(g, dict):
                goal = f"{g.get('op')} {g.get('target')}: {'MET' if g.get('met') else 'NOT MET'}"
            print(f"{fid:<4} {str(r.get('item'))[:44]:<44} {fmt(r.get('value'), 10)} {str(r.get('unit')):<8} "
                  f"{str(r.get('reference'))[:36]:<36} {fmt(r.get('reference_value'), 10)} {fmt(r.get('ratio'), 8, '.3f')} "
                  f"{str(r.get('ratio_is')):<18} {goal}", file=out)
    goals = results.get("goals", [])
    if goals:
        met = sum(1 for g in goals if g.get("met"))
        print(f"\ngoals met: {met} of {len(goals)}", file=out)
        for g in goals:
            value = g.get("value")
            shown = f"{value:.3g}" if number(value) is not None else "n/a"
            print(f"  [{'MET' if g.get('met') else 'NOT MET':>7}] fig {g.get('figure')}: {g.get('what')} "
                  f"(measured {shown}, target {g.get('op')} {g.get('target')})", file=out)
    for name, prog in results.get("programs", {}).items():
        if prog.get("status") not in ("ok", "skipped"):
            print(f"  program {name}: {prog.get('status')} {prog.get('note', '')}", file=out)
    errors = results.get("errors", [])
    if errors:
        print(f"\nCHECKS FAILED ({len(errors)}): the figures involved are not to be trusted", file=out)
        for e in errors:
            print(f"  {e}", file=out)


def print_scaling(results, out=sys.stdout):
    """Figure 8, one small table per series."""
    sc = results.get("figures", {}).get("8")
    if not isinstance(sc, dict):
        return

    def med(p, k):
        return (p.get(k) or {}).get("median")

    def ratio(a, b):
        return a / b if number(a) is not None and number(b) else None

    def table(key, title, columns):
        points = sc.get(key) or []
        if not points:
            return
        print(f"\n8: {title}", file=out)
        print("  " + " ".join(f"{c[0]:>{c[1]}}" for c in columns), file=out)
        for p in points:
            cells = []
            for name, width, get, spec in columns:
                v = get(p)
                cells.append(fmt(v, width, spec) if not isinstance(v, str) else f"{v:>{width}}")
            print("  " + " ".join(cells) + ("" if p.get("valid", True) else "  (CHECKS FAILED)"), file=out)

    lat = [("pbm us", 10, lambda p: med(p, "pbm"), ".3g"), ("(a) us", 10, lambda p: med(p, "memcpy_sync"), ".3g"),
           ("(b) us", 10, lambda p: med(p, "floor"), ".3g"),
           ("(a)/pbm", 8, lambda p: ratio(med(p, "memcpy_sync"), med(p, "pbm")), ".2f"),
           ("pbm/(b)", 8, lambda p: ratio(med(p, "pbm"), med(p, "floor")), ".2f")]
    table("count_latency_by_record_size", "count-to-host latency (median) by record size, 8 records",
          [("bytes", 7, lambda p: p.get("record_bytes"), "d")] + lat)
    table("count_latency_by_batch", "count-to-host latency (median) by records per pop, 64 B",
          [("batch", 7, lambda p: p.get("batch_records"), "d")] + lat)

    def rate(p, k):
        v = (p.get(k) or {}).get("records_per_s")
        return v / 1e9 if number(v) is not None else None

    table("push_throughput_by_record_size", "device push throughput (G records/s) by record size, full grid",
          [("bytes", 7, lambda p: p.get("record_bytes"), "d"), ("warp_push", 10, lambda p: rate(p, "warp_push"), ".3g"),
           ("block_push", 10, lambda p: rate(p, "block_push"), ".3g"),
           ("try_push", 10, lambda p: rate(p, "try_push"), ".3g"),
           ("plain", 10, lambda p: rate(p, "plain_write"), ".3g"),
           ("warp %", 8, lambda p: p.get("warp_push_pct_of_plain"), ".1f"),
           ("block %", 8, lambda p: p.get("block_push_pct_of_plain"), ".1f"),
           ("thread %", 8, lambda p: p.get("try_push_pct_of_plain"), ".1f"),
           ("GB/s warp", 10, lambda p: (p.get("warp_push") or {}).get("gb_per_s"), ".4g")])
    pop = [("pbm GB/s", 10, lambda p: (p.get("pbm") or {}).get("gb_per_s"), ".4g"),
           ("memcpy", 10, lambda p: (p.get("memcpy") or {}).get("gb_per_s"), ".4g"),
           ("pbm %", 8, lambda p: p.get("pct_of_memcpy"), ".1f")]
    table("pop_bandwidth_by_record_size", "bulk pop bandwidth by record size (64 MiB in one pop)",
          [("bytes", 7, lambda p: p.get("record_bytes"), "d")] + pop)
    table("pop_bandwidth_by_batch", "pop bandwidth by records per call (64 B, 64 MiB; ungated: host-bound counts)",
          [("batch", 8, lambda p: p.get("batch_records"), "d"), ("gated", 6, lambda p: str(p.get("gated")), "")] + pop)


def figure_lines(results):
    """One 'FIGURE: ...' line per goal (scripts/gpu-check collects these from test logs)."""
    dev = results.get("device", {}).get("name", "?")
    lines = []
    for fid, fig in sorted(results.get("figures", {}).items(), key=lambda kv: (len(kv[0]), kv[0])):
        if not isinstance(fig, dict):
            continue
        for r in fig.get("table", []):
            g = r.get("goal")
            if not isinstance(g, dict):
                continue
            lines.append(f"FIGURE: bench fig {fid} {r.get('item')}: {fmt(r.get('value'), 0)} {r.get('unit')} vs "
                         f"{r.get('reference')} {fmt(r.get('reference_value'), 0)} ({r.get('ratio_is')} "
                         f"{fmt(r.get('ratio'), 0, '.3f')}; goal {g.get('op')} {g.get('target')}: "
                         f"{'MET' if g.get('met') else 'NOT MET'}) [{dev}, {results.get('mode')}]")
    return lines


def merge(args):
    pbm_bench = load(args.pbm_bench)
    telemetry = [load(p) for p in args.telemetry]
    torch = load(args.torch)
    status = dict(s.split("=", 1) for s in args.status)
    skipped = dict(s.split("=", 1) for s in args.skipped)

    results = {"schema": SCHEMA, "mode": args.mode, "date": None, "driver_version": args.driver or None,
               "git": args.git or None, "device": {}, "figures": {}, "programs": {}, "errors": []}

    def program(name, data, path):
        rc = status.get(name)
        entry = {"rc": int(rc) if rc not in (None, "") else None, "json": path}
        if data is None:
            entry["status"] = "not run"
        elif "missing" in data or "unreadable" in data:
            entry["status"] = "no results"
            entry["note"] = data.get("missing") or data.get("unreadable")
        elif data.get("skipped"):
            entry["status"] = "skipped"
            entry["note"] = data["skipped"]
        elif entry["rc"] not in (None, 0):
            entry["status"] = "failed"
        else:
            entry["status"] = "ok"
        results["programs"][name] = entry
        return entry

    program("pbm_bench", pbm_bench, args.pbm_bench)
    if isinstance(pbm_bench, dict) and "figures" in pbm_bench:
        results["date"] = pbm_bench.get("date")
        results["device"] = pbm_bench.get("device", {})
        results["host"] = pbm_bench.get("host")
        results["figures"].update(pbm_bench["figures"])
        results["errors"] += [f"pbm_bench: {e}" for e in pbm_bench.get("errors", [])]
    for i, t in enumerate(telemetry):
        program(f"telemetry_overhead[{i}]", t, args.telemetry[i])
    fig7 = telemetry_figure(telemetry)
    if fig7:
        results["figures"]["7"] = fig7
    elif args.telemetry:
        results["figures"]["7"] = {"id": "7", "skipped": "telemetry_overhead produced no results (see its log)"}
    else:
        results["figures"]["7"] = {"id": "7", "skipped": skipped.get("7", "telemetry_overhead did not run")}
    entry = program("torch_bench", torch, args.torch)
    if isinstance(torch, dict) and "figures" in torch:
        results["figures"].update(torch["figures"])
        results["errors"] += [f"torch_bench: {e}" for e in torch.get("errors", [])]
        results["torch_version"] = torch.get("torch_version")
        if not results["device"]:
            results["device"] = torch.get("device", {})
    else:
        results["figures"]["6"] = {"id": "6", "skipped": skipped.get("6") or entry.get("note") or entry["status"]}
    if results["date"] is None:
        import datetime

        results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, prog in results["programs"].items():
        if prog["status"] in ("failed", "no results"):
            results["errors"].append(f"{name}: {prog['status']} (rc {prog['rc']}) {prog.get('note', '')}".rstrip())
    results["goals"] = collect_goals(results["figures"])
    results["valid"] = not results["errors"]
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="merged results file to write")
    ap.add_argument("--mode", default="?")
    ap.add_argument("--pbm-bench")
    ap.add_argument("--telemetry", action="append", default=[])
    ap.add_argument("--torch")
    ap.add_argument("--status", action="append", default=[], help="NAME=RC of a program run")
    ap.add_argument("--skipped", action="append", default=[], help="FIGURE=REASON for a figure not run")
    ap.add_argument("--driver", help="NVIDIA driver version (nvidia-smi)")
    ap.add_argument("--git", help="commit the run was built from")
    ap.add_argument("--print-only", metavar="FILE", help="print the table of an existing results file")
    args = ap.parse_args()
    if args.print_only:
        results = load(args.print_only)
        print_table(results)
        print_scaling(results)
        return 0
    if not args.out:
        ap.error("--out is required (or --print-only FILE)")
    results = merge(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print_table(results)
    print_scaling(results)
    for line in figure_lines(results):
        print(line)
    print(f"\nresults: {args.out}")
    return 0 if results["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
