#!/usr/bin/env python3
"""The demo's metrics without a GPU, as the README shows them: runs tile_pipeline with
PBM_PROMETHEUS_ADDR on a free 127.0.0.1 port, PBM_REPORT_JSON and --linger, scrapes /metrics while it
lingers and checks the mailbox series (non-zero push and pop records, equal at the end), then that
the JSON report was written at exit with the same counts. Standard library only (runs in CI).
On a machine with a GPU it checks the device path the same way (device label 0 instead of -1).

Usage: host_metrics_test.py PATH/TO/tile_pipeline"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import urllib.request

SERIES = ("pbm_push_records_total", "pbm_pop_records_total", "pbm_dropped_records_total",
          "pbm_push_bytes_total", "pbm_pop_bytes_total", "pbm_pop_calls_total",
          "pbm_occupancy_records", "pbm_capacity_records")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiles_samples(body):
    """{name: [(labels, value)]} of the samples labelled mailbox="tiles"."""
    out = {}
    for line in body.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if labels.get("mailbox") == "tiles":
            out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def fail(message, proc=None):
    print("FAIL:", message)
    if proc is not None and proc.poll() is None:
        proc.kill()
    return 1


def main():
    port = free_port()
    report = os.path.join(tempfile.mkdtemp(prefix="pbm-demo-"), "report.json")
    env = {**os.environ, "PBM_PROMETHEUS_ADDR": f"127.0.0.1:{port}", "PBM_REPORT_JSON": report}
    cmd = [sys.argv[1], "20", "--linger", "3"]
    print("+ PBM_PROMETHEUS_ADDR=127.0.0.1:%d PBM_REPORT_JSON=%s %s" % (port, report, " ".join(cmd)), flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lingering = False
    for line in proc.stdout:  # until the run is done and it lingers
        print(line, end="", flush=True)
        if line.startswith("lingering"):
            lingering = True
            break
    if not lingering:
        proc.wait(timeout=30)
        return fail("the demo exited (status %s) without lingering: --linger ignored" % proc.returncode)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError as e:
        return fail(f"scraping http://127.0.0.1:{port}/metrics: {e}", proc)
    rest, _ = proc.communicate(timeout=60)
    print(rest, end="")
    if proc.returncode != 0:
        return fail(f"the demo exited with status {proc.returncode}")

    got = tiles_samples(body)
    for name in SERIES:
        print(f"  {name}: {got.get(name)}")
        if name not in got:
            return fail(f'{name}{{mailbox="tiles"}} missing from /metrics')
    pushed = sum(v for _, v in got["pbm_push_records_total"])
    popped = sum(v for _, v in got["pbm_pop_records_total"])
    devices = {labels.get("device") for series in got.values() for labels, _ in series}
    print(f"scraped: push={pushed:g} pop={popped:g} device={sorted(devices)}")
    if pushed <= 0 or popped <= 0 or pushed != popped:
        return fail("push/pop records zero or unequal after the run")
    if sum(v for _, v in got["pbm_pop_calls_total"]) <= 0:
        return fail("pbm_pop_calls_total is zero")

    if not os.path.exists(report):
        return fail(f"PBM_REPORT_JSON={report} was not written")
    with open(report) as f:
        doc = json.load(f)
    totals = doc.get("totals", {})
    print(f"report: push_records={totals.get('push_records')} pop_records={totals.get('pop_records')}")
    if totals.get("push_records") != pushed or totals.get("pop_records") != popped:
        return fail("the JSON report's totals differ from the scrape")
    samples = doc.get("metrics", {}).get("pbm_push_records_total", {}).get("samples", [])
    if not any(s["labels"].get("mailbox") == "tiles" and s["value"] == pushed for s in samples):
        return fail('the JSON report has no pbm_push_records_total{mailbox="tiles"} with the scraped count')
    print("OK: /metrics served while lingering; JSON report written with the same counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
