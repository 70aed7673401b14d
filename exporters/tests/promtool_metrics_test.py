#!/usr/bin/env python3
"""A real scrape of a real pbm process passes `promtool check metrics` with no findings, and holds
the series DESIGN.md promises (names, labels, build info, known series, non-zero push/pop)."""
import subprocess
import sys
import time

import pbmtest

args = pbmtest.parse_args()
promtool = pbmtest.tool(args.promtool, "promtool", "prometheus")
wd = pbmtest.work_dir(args, "promtool-metrics")

with pbmtest.Fixture(args, wd, duration=20) as fixture:
    time.sleep(1.0)  # let the rings and the synthetic CUPTI feed count something
    status, body, seconds = pbmtest.http_get(fixture.url)
    if status != 200:
        pbmtest.fail(f"scrape of {fixture.url}: HTTP {status} {body[:200]}")
    (wd / "scrape.txt").write_text(body)
    print(f"scraped {len(body)} bytes in {seconds * 1000:.1f} ms from {fixture.url}")
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    print(f"promtool check metrics -> {r.returncode}\n{r.stdout}{r.stderr}")
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        pbmtest.fail("promtool check metrics reported problems")

    families = pbmtest.parse_exposition(body)
    problems = []
    for name in ["pbm_push_records_total", "pbm_pop_records_total", "pbm_pop_calls_total", "pbm_dropped_records_total",
                 "pbm_push_bytes_total", "pbm_pop_bytes_total", "pbm_occupancy_records", "pbm_capacity_records",
                 "pbm_memcpy_total", "pbm_memcpy_bytes_total", "pbm_sync_total", "pbm_violations_total",
                 "pbm_telemetry_cupti_attached", "pbm_telemetry_dropped_records_total", "pbm_build_info"]:
        if name not in families:
            problems.append(f"missing {name}")
    # prometheus-cpp adds its own exposer_* series (scrapes, bytes, latency summary) to every endpoint.
    exposer = sorted(n for n in families if n.startswith("exposer_"))
    print(f"prometheus-cpp's own families: {exposer}")
    families = {n: f for n, f in families.items() if not n.startswith("exposer_")}
    for name in families:
        if not name.startswith("pbm_"):
            problems.append(f"{name}: not a pbm_ metric")
    for name, f in families.items():
        if not f["help"] or f["type"] not in ("counter", "gauge"):
            problems.append(f"{name}: HELP {f['help']!r} TYPE {f['type']!r}")
        for labels, _ in f["samples"]:
            if labels.get("rank") != "0":
                problems.append(f"{name}{labels}: no rank=\"0\" label (RANK=0 in the fixture's environment)")
    info = families.get("pbm_build_info", {"samples": []})["samples"]
    if len(info) != 1 or info[0][1] != 1 or not info[0][0].get("version"):
        problems.append(f"pbm_build_info should be one series = 1 with a version: {info}")

    def value(name, **labels):
        return sum(v for l, v in families.get(name, {"samples": []})["samples"]
                   if all(l.get(k) == w for k, w in labels.items()))

    if value("pbm_push_records_total", mailbox="tiles") <= 0 or value("pbm_pop_records_total", mailbox="tiles") <= 0:
        problems.append("push/pop counters of mailbox 'tiles' are zero")
    if value("pbm_pop_calls_total", mailbox="tiles", stream_class="peripheral") <= 0:
        problems.append("pbm_pop_calls_total{stream_class=peripheral} is zero")
    if value("pbm_memcpy_total", direction="DtoH", memory="pageable", expected="false") <= 0:
        problems.append("no unexpected pageable DtoH copy counted from the synthetic CUPTI records")
    zero = [l for l, v in families["pbm_sync_total"]["samples"] if l.get("api") == "context_synchronize" and v == 0]
    if not zero:
        problems.append("known series pbm_sync_total{api=context_synchronize} is not there at zero")
    ranges = {l.get("range") for l, _ in families["pbm_memcpy_total"]["samples"]}
    if not {"none", "tile_upload", "tile_readback"} <= ranges:
        problems.append(f"memcpy range labels {ranges}")
    code = fixture.stop()
    if code != 0:
        problems.append(f"fixture exited with {code} after SIGTERM")
    for p in problems:
        print(f"FAIL: {p}")
    print(f"{len(families)} metric families, "
          f"{sum(len(f['samples']) for f in families.values())} series: {'FAIL' if problems else 'ok'}")
    sys.exit(1 if problems else 0)
