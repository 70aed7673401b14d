#!/usr/bin/env python3
"""Runs tile_pipeline with /metrics on a free loopback port, scrapes it while the example lingers,
parses the text with prometheus_client's parser and checks the push/pop counters are non-zero.
Prints every pbm_* sample it read. Usage: scrape_tile_pipeline.py PATH/TO/tile_pipeline"""
import socket
import subprocess
import sys
import time
import urllib.request

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("SKIP: prometheus_client is not installed")
    sys.exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    env = {"PBM_PROMETHEUS_ADDR": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    proc = subprocess.Popen([sys.argv[1], "20", "--linger", "6"], env=env, stdout=subprocess.PIPE, text=True)
    out = []
    for line in proc.stdout:  # wait until the run is done and it lingers
        out.append(line)
        print(line, end="")
        if line.startswith("no CUDA device"):
            proc.wait()
            print("SKIP: no CUDA device")
            return 0
        if line.startswith("lingering"):
            break
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    proc.wait(timeout=30)
    values = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name.startswith("pbm_") and sample.labels.get("mailbox") == "tiles":
                key = sample.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}"
                values[key] = sample.value
                print(f"  {key} = {sample.value:g}")
    pushed = sum(v for k, v in values.items() if k.startswith("pbm_push_records_total"))
    popped = sum(v for k, v in values.items() if k.startswith("pbm_pop_records_total"))
    print(f"parsed: pbm_push_records_total={pushed:g} pbm_pop_records_total={popped:g}")
    if pushed <= 0 or popped <= 0 or pushed != popped:
        print("FAIL: push/pop counters missing, zero or unequal")
        return 1
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
