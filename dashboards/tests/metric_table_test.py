#!/usr/bin/env python3
"""Every series a dashboard query, an alert rule, an alert unit test, a docs page or a Python script
(benchmarks, tests, examples) names is in the metric table (telemetry/include/pbm/telemetry/metric_table.hpp), and every label such a query
matches or groups a pbm series by is one the table lists for it (or rank, job, instance). The other
direction (the table holds nothing that is not emitted) is exporters/tests/metric_table_test.cpp.
Each check is also run on an input broken on purpose, so a check that stopped detecting fails too.
Usage: metric_table_test.py [ignored tool arguments]   (python3 standard library only)"""
import pathlib
import re
import sys

dash = pathlib.Path(__file__).resolve().parents[1]
root = dash.parent
sys.path.insert(0, str(dash / "tests"))
sys.path.insert(0, str(dash / "tools"))
import dashboard_queries as dq  # noqa: E402
import metric_table  # noqa: E402

TABLE = metric_table.load()
SCRAPE_LABELS = {metric_table.RANK, "job", "instance"}  # added by collect() and by Prometheus
# A series name in prose: pbm_ ... with the ending of a series (tool, library and file names have other endings).
SERIES_IN_TEXT = re.compile(r"\bpbm_[a-z0-9_]*_(?:total|records|info|attached|taken|bytes|seconds|ratio|nodes)\b")
BY_CLAUSE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def expr_problems(where, expr):
    """Unknown series, and labels a pbm series is matched on that the table does not list."""
    out = []
    pbm = [s for s in dq.selectors(expr) if s.metric.startswith("pbm_")]
    for s in pbm:
        m = TABLE.get(s.metric)
        if m is None:
            out.append(f"{where}: {s.metric} is not in the metric table")
            continue
        for label in s.matchers:
            if label not in m.labels and label not in SCRAPE_LABELS:
                out.append(f"{where}: {s.metric} has no label {label!r} (table: {' '.join(m.labels) or 'none'})")
    known = set(SCRAPE_LABELS)
    for s in pbm:
        if s.metric in TABLE:
            known.update(TABLE[s.metric].labels)
    for clause in BY_CLAUSE.findall(expr) if pbm else []:
        for label in (l.strip() for l in clause.split(",") if l.strip()):
            if label not in known:
                out.append(f"{where}: groups by {label!r}, a label none of its pbm series carries")
    return out


def dashboard_problems(dashboard):
    out = []
    for p, t in dq.targets(dashboard):
        out += expr_problems(f"dashboard panel {p.get('title')!r} {t.get('refId')}", t.get("expr", ""))
    for name, v in dq.variables(dashboard).items():
        q = dq.variable_query(v)
        if q:
            inner = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)", q)
            out += expr_problems(f"dashboard variable {name}", inner.group(1) if inner else q)
    return out


def rules_problems(rules):
    out = []
    for name, expr in rules:
        out += expr_problems(f"alert {name}", expr)
    return out


def alert_test_problems(text):
    out = []
    for series in re.findall(r"series:\s*'([^']*)'", text):
        out += expr_problems("pbm_alerts_test.yml input series", series)
    return out


def docs_problems(path, text):
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        names = set(SERIES_IN_TEXT.findall(line))
        if line.lstrip().startswith("|") and re.search(r"\|\s*(counter|gauge)\s*\|", line):
            names |= set(re.findall(r"`(pbm_[a-z0-9_]+)", line))  # a metrics table row: every name in it
        out += [f"{path}:{n}: names {name}, which is not in the metric table" for name in sorted(names)
                if name not in TABLE]
    return out


def texts():
    """Docs pages and Python scripts of the checkout (not build folders, not this test's broken inputs)."""
    for p in sorted(list(root.rglob("*.md")) + list(root.rglob("*.py"))):
        rel = p.relative_to(root)
        if rel.parts[0].startswith((".", "build")) or "node_modules" in rel.parts or p == pathlib.Path(__file__).resolve():
            continue
        yield p


problems = []
dashboard = dq.load_dashboard(dash)
problems += dashboard_problems(dashboard)
problems += rules_problems(dq.alert_rules(dash))
alert_tests = (dash / "prometheus" / "pbm_alerts_test.yml").read_text()
problems += alert_test_problems(alert_tests)
doc_count = 0
for p in texts():
    doc_count += 1
    problems += docs_problems(p.relative_to(root), p.read_text(encoding="utf-8", errors="replace"))

# Self-tests: each check catches an input broken on purpose.
SEL = 'job=~"$job", instance=~"$instance", rank=~"$rank"'
self_tests = {
    "dashboard, unknown series": dashboard_problems(
        {"panels": [{"title": "t", "targets": [{"refId": "A", "expr": f"rate(pbm_no_such_total{{{SEL}}}[1m])"}]}]}),
    "dashboard, unknown label": dashboard_problems(
        {"panels": [{"title": "t", "targets": [{"refId": "A",
                                                  "expr": f'rate(pbm_sync_total{{{SEL}, mailbox="x"}}[1m])'}]}]}),
    "dashboard, grouped by an unknown label": dashboard_problems(
        {"panels": [{"title": "t", "targets": [{"refId": "A",
                                                  "expr": f"sum by (direction) (rate(pbm_sync_total{{{SEL}}}[1m]))"}]}]}),
    "alert rule": rules_problems([("Broken", "rate(pbm_memcpy_totl[5m]) > 0")]),
    "alert unit test": alert_test_problems("      - series: 'pbm_dropped_record_total{job=\"pbm\"}'\n"),
    "docs prose": docs_problems("x.md", "Watch `pbm_push_record_total` in Grafana."),
    "docs table": docs_problems("x.md", "| `pbm_telemetry_attached` | gauge | 1 when attached |"),
}
for name, caught in self_tests.items():
    if not caught:
        problems.append(f"self-test: the {name} check did not catch its broken input")

for p in problems:
    print("FAIL:", p)
if not problems:
    print(f"{len(TABLE)} series in the table; {len(dq.targets(dashboard))} dashboard queries, "
          f"{len(dq.alert_rules(dash))} alert rules, the alert unit tests and {doc_count} docs pages and Python "
          f"scripts name only those; "
          f"{len(self_tests)} broken inputs caught")
sys.exit(1 if problems else 0)
