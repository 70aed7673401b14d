#!/usr/bin/env python3
"""promtool on the shipped Prometheus files: check rules, test rules (a case per alert) and check
config of the sample prometheus.yml; every alert has a unit test."""
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "exporters" / "tests"))
import pbmtest  # noqa: E402

args = pbmtest.parse_args()
import dashboard_queries as dq  # noqa: E402

promtool = pbmtest.tool(args.promtool, "promtool", "prometheus")
prom_dir = args.dashboards / "prometheus"


def run(*cmd):
    r = subprocess.run([promtool, *cmd], capture_output=True, text=True, cwd=prom_dir, timeout=60)
    print(f"$ promtool {' '.join(cmd)}  -> {r.returncode}\n{r.stdout}{r.stderr}")
    return r.returncode


failures = 0
failures += run("check", "rules", "pbm_alerts.yml") != 0
failures += run("test", "rules", "pbm_alerts_test.yml") != 0
failures += run("check", "config", "prometheus.yml") != 0

tests = (prom_dir / "pbm_alerts_test.yml").read_text()
for name, _ in dq.alert_rules(args.dashboards):
    if f"alertname: {name}\n" not in tests:
        print(f"FAIL: alert {name} has no unit test in pbm_alerts_test.yml")
        failures += 1
print("FAIL" if failures else "all alert rules valid and tested")
sys.exit(1 if failures else 0)
