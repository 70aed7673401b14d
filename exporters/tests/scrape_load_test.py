#!/usr/bin/env python3
"""Load: 20 concurrent scrapers for 10 s against /metrics of a pbm process that keeps pushing and
popping; zero errors allowed, p99 scrape time printed (and written to scrape_load.txt)."""
import subprocess
import sys

import pbmtest

args = pbmtest.parse_args()
if not args.scrape_load:
    pbmtest.fail("--scrape-load (the pbm_scrape_load program) is required")
wd = pbmtest.work_dir(args, "scrape-load")

with pbmtest.Fixture(args, wd, duration=40) as fixture:
    before = pbmtest.parse_exposition(pbmtest.http_get(fixture.url)[1])
    r = subprocess.run([args.scrape_load, str(fixture.port), "20", "10"], capture_output=True, text=True, timeout=60)
    print(r.stdout + r.stderr)
    (wd / "scrape_load.txt").write_text(r.stdout)
    after = pbmtest.parse_exposition(pbmtest.http_get(fixture.url)[1])

    def pushed(f):
        return sum(v for l, v in f["pbm_push_records_total"]["samples"] if l.get("mailbox") == "tiles")

    print(f"records pushed during the load: {pushed(after) - pushed(before):.0f}")
    code = fixture.stop()
    failures = []
    if r.returncode != 0:
        failures.append("scrape errors under load (see above)")
    if pushed(after) <= pushed(before):
        failures.append("the fixture stopped pushing during the load")
    if code != 0:
        failures.append(f"fixture exited with {code}")
    for f in failures:
        print(f"FAIL: {f}")
    sys.exit(1 if failures else 0)
