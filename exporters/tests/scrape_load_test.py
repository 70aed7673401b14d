#!/usr/bin/env python3
"""Load (issue 8): 50 concurrent scrapers for 60 s against /metrics of a pbm process that keeps
pushing and popping; zero failed scrapes allowed, p99 scrape time printed (and written to
scrape_load.txt), and the serving process's memory must stay flat: its resident set, sampled every
second, may not grow by more than 8 MiB from the first 10 s of load to the end.
PBM_SCRAPE_LOAD="SCRAPERS SECONDS" overrides the load (e.g. "20 10" for a quick run)."""
import os
import subprocess
import sys
import threading
import time

import pbmtest

args = pbmtest.parse_args()
if not args.scrape_load:
    pbmtest.fail("--scrape-load (the pbm_scrape_load program) is required")
wd = pbmtest.work_dir(args, "scrape-load")

scrapers, seconds = (int(x) for x in os.environ.get("PBM_SCRAPE_LOAD", "50 60").split())
GROWTH_LIMIT_KIB = 8 * 1024


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


with pbmtest.Fixture(args, wd, duration=seconds + 30) as fixture:
    before = pbmtest.parse_exposition(pbmtest.http_get(fixture.url)[1])
    samples = []  # (seconds since the load began, RSS KiB)
    done = threading.Event()

    def sample():
        t0 = time.monotonic()
        while not done.wait(1.0):
            kib = rss_kib(fixture.proc.pid)
            if kib is not None:
                samples.append((time.monotonic() - t0, kib))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    r = subprocess.run([args.scrape_load, str(fixture.port), str(scrapers), str(seconds)], capture_output=True,
                       text=True, timeout=seconds + 60)
    done.set()
    sampler.join()
    print(r.stdout + r.stderr)
    (wd / "scrape_load.txt").write_text(r.stdout)
    after = pbmtest.parse_exposition(pbmtest.http_get(fixture.url)[1])

    def pushed(f):
        return sum(v for l, v in f["pbm_push_records_total"]["samples"] if l.get("mailbox") == "tiles")

    print(f"records pushed during the load: {pushed(after) - pushed(before):.0f}")
    warm = [kib for t, kib in samples if t <= 10] or [kib for _, kib in samples[:1]]
    growth = (samples[-1][1] - max(warm)) if samples and warm else None
    if samples:
        print(f"serving process RSS: {min(k for _, k in samples) / 1024:.1f} .. {max(k for _, k in samples) / 1024:.1f} MiB "
              f"over {len(samples)} samples; growth after the first 10 s: {growth / 1024:+.1f} MiB "
              f"(limit +{GROWTH_LIMIT_KIB / 1024:.0f} MiB)")
    code = fixture.stop()
    failures = []
    if not samples:
        failures.append("could not read the serving process's memory (/proc)")
    elif growth > GROWTH_LIMIT_KIB:
        failures.append(f"memory grew by {growth / 1024:.1f} MiB under load")
    if r.returncode != 0:
        failures.append("scrape errors under load (see above)")
    if pushed(after) <= pushed(before):
        failures.append("the fixture stopped pushing during the load")
    if code != 0:
        failures.append(f"fixture exited with {code}")
    for f in failures:
        print(f"FAIL: {f}")
    sys.exit(1 if failures else 0)
