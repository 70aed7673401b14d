#!/usr/bin/env python3
"""Figure 8 as a PNG: how count latency, push throughput and pop bandwidth change with record size
and batch size, from a results file of scripts/bench (or pbm_bench --json).

    python3 bench/plot.py RESULTS.json [--out scaling.png]

Exit 0 with "SKIP: ..." when matplotlib is missing or the file has no scaling data; 1 when the
file cannot be read.
"""

import argparse
import json
import sys
from pathlib import Path


def series(points, key, value):
    xs, ys = [], []
    for p in points:
        v = value(p)
        if isinstance(v, (int, float)) and v == v and p.get("valid", True):
            xs.append(p[key])
            ys.append(v)
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out", help="PNG to write (default: scaling.png beside the results)")
    args = ap.parse_args()
    try:
        with open(args.results) as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        print(f"plot: cannot read {args.results}: {e}", file=sys.stderr)
        return 1
    scaling = results.get("figures", {}).get("8")
    if not isinstance(scaling, dict) or not any(isinstance(v, list) and v for v in scaling.values()):
        print("SKIP: no scaling data (figure 8) in the results")
        return 0
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"SKIP: matplotlib is not installed ({e}); pip install matplotlib to draw figure 8")
        return 0
    except Exception as e:  # a broken install (missing data files, ...): not the benchmark's failure
        print(f"SKIP: matplotlib does not load ({type(e).__name__}: {e})")
        return 0

    out = Path(args.out) if args.out else Path(args.results).with_name("scaling.png")
    dev = results.get("device", {}).get("name", "?")
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    fig.suptitle(f"pbm scaling: {dev}, {results.get('mode', '?')} mode, {results.get('date', '')}")

    def panel(ax, points, key, lines, title, ylabel, xlabel, logy=True):
        if not points:
            ax.set_axis_off()
            ax.set_title(f"{title}\n(not measured)")
            return
        for label, value, style in lines:
            xs, ys = series(points, key, value)
            if xs:
                ax.plot(xs, ys, style, label=label)
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)

    med = lambda name: (lambda p: p.get(name, {}).get("median"))  # noqa: E731
    latency_lines = [("pbm pop + wait(spin)", med("pbm"), "o-"),
                     ("(a) pop + memcpy + sync", med("memcpy_sync"), "s--"),
                     ("(b) floor: launch + mapped write", med("floor"), "^:")]
    panel(axes[0][0], scaling.get("count_latency_by_record_size", []), "record_bytes", latency_lines,
          "1: count-to-host latency vs record size (8 records)", "median latency [us]", "record size [B]")
    panel(axes[0][1], scaling.get("count_latency_by_batch", []), "batch_records", latency_lines,
          "1: count-to-host latency vs batch (64 B records)", "median latency [us]", "records per pop")
    def rate(name):  # None where the variant is missing (results from before block_push): no point drawn
        def get(p):
            v = (p.get(name) or {}).get("records_per_s")
            return v / 1e9 if isinstance(v, (int, float)) else None
        return get
    panel(axes[0][2], scaling.get("push_throughput_by_record_size", []), "record_bytes",
          [("warp_push", rate("warp_push"), "o-"), ("block_push", rate("block_push"), "D-"),
           ("try_push", rate("try_push"), "s--"),
           ("plain write (same bytes)", rate("plain_write"), "^:")],
          "3: device push throughput vs record size", "G records/s", "record size [B]")
    gbs = lambda name: (lambda p: p.get(name, {}).get("gb_per_s"))  # noqa: E731
    pop_lines = [("pbm pop_bulk_async", gbs("pbm"), "o-"), ("cudaMemcpyAsync D2D", gbs("memcpy"), "s--")]
    panel(axes[1][0], scaling.get("pop_bandwidth_by_record_size", []), "record_bytes", pop_lines,
          "4: bulk pop bandwidth vs record size (64 MiB)", "GB/s", "record size [B]")
    panel(axes[1][1], scaling.get("pop_bandwidth_by_batch", []), "batch_records", pop_lines,
          "4: pop bandwidth vs records per call (64 B, 64 MiB)", "GB/s", "records per pop call")
    panel(axes[1][2], scaling.get("push_throughput_by_record_size", []), "record_bytes",
          [("warp_push", lambda p: p.get("warp_push_pct_of_plain"), "o-"),
           ("block_push", lambda p: p.get("block_push_pct_of_plain"), "D-"),
           ("try_push", lambda p: p.get("try_push_pct_of_plain"), "s--")],
          "3: push as % of the plain write", "% of plain write rate", "record size [B]", logy=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
