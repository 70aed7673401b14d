#!/usr/bin/env python3
"""The implicit synchronisations named by the dashboard generator and by the alert rules are exactly
telemetry's: the SyncApi values after memcpy_sync in telemetry/include/pbm/telemetry/events.hpp.
A new kind added there without its panel query and alert (or one renamed) fails here.
Usage: implicit_syncs_test.py [ignored tool arguments]   (python3 standard library only)"""
import pathlib
import re
import sys

dash = pathlib.Path(__file__).resolve().parents[1]
root = dash.parent
problems = []

events = (root / "telemetry" / "include" / "pbm" / "telemetry" / "events.hpp").read_text()
body = re.search(r"enum class SyncApi[^{]*\{(.*?)\};", events, re.S).group(1)
names = re.findall(r"^\s*([a-z_]+),", body, re.M)
implicit = names[names.index("memcpy_sync") + 1:names.index("unknown")]
if not implicit:
    problems.append(f"no implicit SyncApi values found after memcpy_sync in events.hpp: {names}")

sys.path.insert(0, str(dash / "tools"))
import gen_dashboard  # noqa: E402

if sorted(gen_dashboard.IMPLICIT_SYNCS) != sorted(implicit):
    problems.append(f"gen_dashboard.IMPLICIT_SYNCS {sorted(gen_dashboard.IMPLICIT_SYNCS)} != telemetry's {sorted(implicit)}")

rules = (dash / "prometheus" / "pbm_alerts.yml").read_text()
for alert, op in (("PbmImplicitSync", "=~"), ("PbmUnexpectedSync", "!~")):
    m = re.search(r"- alert: " + alert + r"\n(?:\s*#.*\n)*\s*expr: (.*)", rules)
    if m is None:
        problems.append(f"alert {alert} not found")
        continue
    regex = re.search(r'api' + re.escape(op) + r'"([^"]*)"', m.group(1))
    if regex is None:
        problems.append(f"alert {alert} has no api{op} matcher: {m.group(1)}")
    elif sorted(regex.group(1).split("|")) != sorted(implicit):
        problems.append(f"alert {alert} names {sorted(regex.group(1).split('|'))}, telemetry has {sorted(implicit)}")

panel = (dash / "grafana" / "pbm-overview.json").read_text()
if "Implicit synchronisations" not in panel:
    problems.append("the dashboard has no 'Implicit synchronisations' panel (run dashboards/tools/gen_dashboard.py)")

for p in problems:
    print("FAIL:", p)
print(f"{len(implicit)} implicit sync kinds: {', '.join(implicit)}" if not problems else "")
sys.exit(1 if problems else 0)
