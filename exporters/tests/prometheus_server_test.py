#!/usr/bin/env python3
"""End to end with a real Prometheus: it scrapes a real pbm process (host-ring push/pop and
synthetic CUPTI records through telemetry's decoder) every second and loads the shipped alert
rules; then every PromQL expression of the dashboard (variables resolved as Grafana would) must
return data, every metric the dashboard and the alerts name must be one the exporter emits, and
the JSON report written at the end must agree with what Prometheus saw.

Writes dashboard_results.md (a table of each panel's data) to the work dir.
"""
import json
import sys
import time

import pbmtest

args = pbmtest.parse_args()
import dashboard_queries as dq  # noqa: E402

pbmtest.tool(args.prometheus, "prometheus", "prometheus")
wd = pbmtest.work_dir(args, "prometheus-server")
dashboard = dq.load_dashboard(args.dashboards)
JOB = "pbm-fixture"
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
        print(f"FAIL: {message}")
    return ok


def label_values(prom, v, resolved):
    """label_values(<selector>, <label>) the way Grafana's Prometheus datasource runs it."""
    query = dq.variable_query(v)
    inner = query[len("label_values("):-1]
    selector, label = inner.rsplit(",", 1)
    selector = dq.substitute(selector.strip(), resolved, "1m")
    return sorted(prom.api(f"label/{label.strip()}/values", **{"match[]": selector}))


report_path = wd / "report.json"
with pbmtest.Fixture(args, wd, duration=60, report=report_path) as fixture, \
        pbmtest.PrometheusServer(args, wd, [fixture.target], job=JOB,
                                 rule_files=[args.dashboards / "prometheus" / "pbm_alerts.yml"]) as prom:
    t0 = time.monotonic()

    def enough_scrapes():
        r = prom.query(f'count_over_time(up{{job="{JOB}"}}[1m])')
        up = prom.query(f'up{{job="{JOB}"}}')
        return r["result"] and float(r["result"][0]["value"][1]) >= 6 and float(up["result"][0]["value"][1]) == 1

    pbmtest.wait_until("6 successful scrapes", enough_scrapes, 40, interval=0.5)
    print(f"Prometheus {prom.base} scraped {fixture.url} 6 times in {time.monotonic() - t0:.1f} s")

    # Variables, in dashboard order: each query must return values; All = every value.
    resolved = {}
    for name in ("job", "instance", "rank"):
        values = label_values(prom, dq.variables(dashboard)[name], resolved)
        check(values, f"variable {name}: {dq.variable_query(dq.variables(dashboard)[name])!r} returned nothing")
        resolved[name] = values
        print(f"variable {name} = {values}")
    check(JOB in resolved["job"], f"job variable lacks {JOB}")
    check(resolved["rank"] == ["0"], f"rank variable {resolved['rank']} (fixture runs with RANK=0)")

    # The scrape interval is 1 s, so Grafana's $__rate_interval is max(4 x 1 s, step + 1 s) = 4 s.
    rate_interval = "4s"
    rows = []
    now = time.time()
    for panel, target in dq.targets(dashboard):
        expr = dq.substitute(target["expr"], resolved, rate_interval)
        instant = prom.query(expr)["result"]
        series = prom.api("query_range", query=expr, start=now - 10, end=now, step=1)["result"]
        ok = check(instant and series, f"panel {panel['title']!r} {target['refId']} returned no data: {expr}")
        values = []
        for s in instant[:6]:
            legend = target.get("legendFormat", "")
            for k, v in s["metric"].items():
                legend = legend.replace("{{" + k + "}}", v)
            values.append(f"{legend.strip() or s['metric']}={float(s['value'][1]):.4g}")
        rows.append((panel["title"], target["refId"], panel["fieldConfig"]["defaults"]["unit"], len(instant),
                     len(series), "; ".join(values) + (" …" if len(instant) > 6 else ""), ok))

    # Names: every metric the dashboard and the alerts use is one this exporter emits.
    scraped = set(pbmtest.parse_exposition(pbmtest.http_get(fixture.url)[1]))
    in_prometheus = set(prom.api("label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'}))
    used = {m for _, t in dq.targets(dashboard) for m in dq.metric_names(t["expr"])}
    alerts = dq.alert_rules(args.dashboards)
    used_by_alerts = {m for _, e in alerts for m in dq.metric_names(e)}
    for m in sorted(used - scraped):
        check(False, f"the dashboard queries {m}, which the exporter does not emit")
    for m in sorted(used_by_alerts - scraped):
        check(False, f"an alert rule uses {m}, which the exporter does not emit")
    check(scraped <= in_prometheus | {"pbm_build_info"}, f"not ingested: {sorted(scraped - in_prometheus)}")
    print(f"metric names: dashboard uses {len(used)}, alerts {len(used_by_alerts)}, exporter emits {len(scraped)}; "
          f"emitted but not on the dashboard: {sorted(scraped - used - used_by_alerts)}")

    # Alert rules loaded and evaluated without error against real data.
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    check(len(rules) == len(alerts), f"Prometheus loaded {len(rules)} rules, pbm_alerts.yml has {len(alerts)}")
    pbmtest.wait_until("an evaluation of every rule",
                       lambda: all(r.get("lastEvaluation", "").startswith("2") for r in
                                   [r for g in prom.api("rules")["groups"] for r in g["rules"]]), 20, interval=0.5)
    for r in [r for g in prom.api("rules")["groups"] for r in g["rules"]]:
        check(r.get("health") == "ok", f"rule {r['name']} health {r.get('health')}: {r.get('lastError')}")
    firing = sorted({a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]})
    print(f"alerts pending/firing against the fixture: {firing}")
    check({"PbmUnexpectedMemcpy", "PbmUnexpectedSync", "PbmDroppedRecords"} <= set(firing),
          "the fixture's unexpected copies/syncs and drops should make their alerts pending")

    last_push = float(prom.query(f'sum(pbm_push_records_total{{job="{JOB}", mailbox="tiles"}})')["result"][0]["value"][1])
    check(last_push > 0, "pbm_push_records_total{mailbox=tiles} is zero in Prometheus")
    code = fixture.stop()
    check(code == 0, f"fixture exited with {code}")

# The JSON report the fixture wrote on the way out: same counters, at least what Prometheus saw.
report = json.loads(report_path.read_text())
check(report["schema"] == "pbm.report/1", f"report schema {report.get('schema')}")
check(report["process"]["rank"] == "0", "report rank")
check(report["totals"]["push_records"] >= last_push,
      f"report push_records {report['totals']['push_records']} < last scraped {last_push}")
check(report["totals"]["memcpy_unexpected"] > 0 and report["totals"]["dropped_records"] > 0,
      "report totals should show the fixture's unexpected copies and drops")

lines = ["| panel | query | unit | series (instant) | series (range) | values now |", "|---|---|---|---|---|---|"]
for title, ref, unit, n_instant, n_range, values, ok in rows:
    lines.append(f"| {title} | {ref} | {unit} | {n_instant} | {n_range} | {values if ok else 'NO DATA'} |")
table = "\n".join(lines)
(wd / "dashboard_results.md").write_text(table + "\n")
print(table)
print(f"{len(rows)} dashboard queries evaluated; {len(failures)} failures")
sys.exit(1 if failures else 0)
