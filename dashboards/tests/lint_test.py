#!/usr/bin/env python3
"""The rules of Grafana's dashboard linter (grafana/dashboard-linter), implemented as a test of
dashboards/grafana/pbm-overview.json, plus pbm's own (rank matcher, stable uid).

Each rule is also run against a dashboard broken on purpose, so a rule that stopped detecting its
problem fails the test too. PromQL syntax is checked by promtool (Prometheus's own parser).
"""
import copy
import json
import pathlib
import re
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "exporters" / "tests"))
import pbmtest  # noqa: E402

args = pbmtest.parse_args()
import dashboard_queries as dq  # noqa: E402  (path set by parse_args)

# Grafana's unit ids (packages/grafana-data valueFormats), the subset that fits pbm's panels.
VALID_UNITS = {
    "none", "string", "short", "percent", "percentunit", "sci", "locale",
    "bytes", "decbytes", "bits", "decbits", "kbytes", "mbytes", "gbytes",
    "pps", "binBps", "Bps", "binbps", "bps", "KiBs", "KBs", "MiBs", "MBs", "GiBs", "GBs",
    "hertz", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations",
    "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
    "bool", "bool_yes_no", "bool_on_off",
}
DS_UIDS = {"$datasource", "${datasource}"}
RATE_FUNCS = {"rate", "irate", "increase"}


def rule_template_datasource(d):
    ds = [v for v in d["templating"]["list"] if v.get("type") == "datasource"]
    if len(ds) != 1:
        return [f"needs exactly one datasource variable, has {len(ds)}"]
    v, errs = ds[0], []
    if v.get("name") != "datasource":
        errs.append(f"datasource variable named {v.get('name')!r}, should be 'datasource'")
    if v.get("label") != "Data source":
        errs.append(f"datasource variable labeled {v.get('label')!r}, should be 'Data source'")
    if v.get("query") != "prometheus":
        errs.append(f"datasource variable query {v.get('query')!r}, should be 'prometheus'")
    return errs


def check_template(d, name, all_value=".+"):
    v = dq.variables(d).get(name)
    if v is None:
        return [f"is missing the {name} template"]
    errs = []
    if (v.get("datasource") or {}).get("uid") not in DS_UIDS:
        errs.append(f"{name} template should use datasource '$datasource', is {v.get('datasource')}")
    if v.get("type") != "query":
        errs.append(f"{name} template should be a Prometheus query, is {v.get('type')!r}")
    if v.get("label") != name.title():
        errs.append(f"{name} template should be labeled {name.title()!r}, is {v.get('label')!r}")
    if not v.get("multi"):
        errs.append(f"{name} template should be a multi select")
    if not v.get("includeAll"):
        errs.append(f"{name} template should include All")
    if v.get("allValue") != all_value:
        errs.append(f"{name} template allValue should be {all_value!r}, is {v.get('allValue')!r}")
    return errs


def rule_template_job(d):
    return check_template(d, "job")


def rule_template_instance(d):
    return check_template(d, "instance")


def rule_template_rank(d):
    # pbm's rule: processes without RANK have no rank label; ".*" keeps them visible under All.
    return check_template(d, "rank", all_value=".*")


def rule_template_on_time_change_reload(d):
    return [f"variable {v['name']} should refresh on time range change (refresh=2), is {v.get('refresh')}"
            for v in d["templating"]["list"] if v.get("type") == "query" and v.get("refresh") != 2]


def rule_template_label_promql(d):
    errs = []
    for v in d["templating"]["list"]:
        if v.get("type") != "query":
            continue
        q = dq.variable_query(v)
        m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", q)
        if not m:
            errs.append(f"variable {v['name']}: {q!r} is not label_values(<selector>, <label>)")
            continue
        PROMQL_CHECKS.append((f"variable {v['name']}", m.group(1)))
    return errs


def rule_uneditable(d):
    return [] if d.get("editable") is False else ["dashboard should not be editable (editable: false)"]


def rule_stable_uid(d):
    return [] if d.get("uid") == "pbm-overview" else [f"uid must stay 'pbm-overview', is {d.get('uid')!r}"]


def rule_panel_datasource(d):
    errs = []
    for p in dq.panels(d):
        if (p.get("datasource") or {}).get("uid") not in DS_UIDS:
            errs.append(f"panel {p.get('title')!r} does not use the templated datasource")
        for t in p.get("targets", []):
            if (t.get("datasource") or {}).get("uid") not in DS_UIDS:
                errs.append(f"panel {p.get('title')!r} target {t.get('refId')} does not use the templated datasource")
    return errs


def rule_panel_title_description(d):
    return [f"panel {p.get('id')} {p.get('title')!r} needs a title and a description"
            for p in dq.panels(d) if not p.get("title", "").strip() or not p.get("description", "").strip()]


def rule_panel_units(d):
    errs = []
    for p in dq.panels(d):
        if p.get("type") not in ("stat", "singlestat", "graph", "table", "timeseries", "gauge"):
            continue
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        for o in p.get("fieldConfig", {}).get("overrides", []):
            for prop in o.get("properties", []):
                if prop.get("id") == "unit":
                    unit = prop.get("value")
        if unit not in VALID_UNITS:
            errs.append(f"panel {p.get('title')!r} has no or invalid units: {unit!r}")
    return errs


def rule_panel_no_targets(d):
    return [f"panel {p.get('title')!r} has no queries" for p in dq.panels(d)
            if not [t for t in p.get("targets", []) if t.get("expr", "").strip()]]


def each_selector(d):
    for p, t in dq.targets(d):
        for s in dq.selectors(t["expr"]):
            yield p, t, s


def rule_target_promql(d):
    for p, t in dq.targets(d):
        PROMQL_CHECKS.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    return []


def rule_target_rate_interval(d):
    return [f"panel {p['title']!r} {t['refId']}: {s.function}() of {s.metric} over [{s.range}], "
            "should use [$__rate_interval]"
            for p, t, s in each_selector(d) if s.function in RATE_FUNCS and s.range != "$__rate_interval"]


def required_matcher(label):
    def rule(d):
        want = ("=~", f"${label}")
        return [f"panel {p['title']!r} {t['refId']}: {s.metric} lacks {label}=~\"${label}\""
                for p, t, s in each_selector(d) if s.matchers.get(label) != want]
    return rule


def rule_target_counter_agg(d):
    return [f"panel {p['title']!r} {t['refId']}: counter {s.metric} is not aggregated with rate, irate or increase"
            for p, t, s in each_selector(d)
            if s.metric.endswith("_total") and (s.range is None or s.function not in RATE_FUNCS)]


def rule_pbm_metrics_only(d):
    return [f"panel {p['title']!r} {t['refId']}: {s.metric} is not a pbm metric"
            for p, t, s in each_selector(d) if not s.metric.startswith("pbm_")]


RULES = {
    "template-datasource-rule": rule_template_datasource,
    "template-job-rule": rule_template_job,
    "template-instance-rule": rule_template_instance,
    "template-rank-rule (pbm)": rule_template_rank,
    "template-on-time-change-reload-rule": rule_template_on_time_change_reload,
    "template-label-promql-rule": rule_template_label_promql,
    "template-uneditable-rule": rule_uneditable,
    "stable-uid-rule (pbm)": rule_stable_uid,
    "panel-datasource-rule": rule_panel_datasource,
    "panel-title-description-rule": rule_panel_title_description,
    "panel-units-rule": rule_panel_units,
    "panel-no-targets-rule": rule_panel_no_targets,
    "target-promql-rule": rule_target_promql,
    "target-rate-interval-rule": rule_target_rate_interval,
    "target-job-rule": required_matcher("job"),
    "target-instance-rule": required_matcher("instance"),
    "target-rank-rule (pbm)": required_matcher("rank"),
    "target-counter-agg-rule": rule_target_counter_agg,
    "pbm-metrics-only-rule (pbm)": rule_pbm_metrics_only,
}
PROMQL_CHECKS = []


def promql_errors(checks, promtool):
    """Parses every expression with promtool (as recording rules): [] when all are valid PromQL."""
    values = {"job": ".+", "instance": ".+", "rank": ".*", "datasource": "x"}
    rules = [{"record": f"pbm_lint:q{i}", "expr": dq.substitute(expr, values, "1m")} for i, (_, expr) in enumerate(checks)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": [{"name": "lint", "rules": rules}]}, f)
    r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True, timeout=60)
    pathlib.Path(f.name).unlink()
    if r.returncode == 0:
        return []
    return [f"promtool rejects the PromQL: {r.stdout}{r.stderr}"]


def lint(d, promtool):
    PROMQL_CHECKS.clear()
    found = {name: rule(d) for name, rule in RULES.items()}
    found["target-promql-rule"] += promql_errors(PROMQL_CHECKS, promtool)
    return found


def broken(mutate):
    d = copy.deepcopy(DASHBOARD)
    mutate(d)
    return d


def set_expr(d, expr):
    dq.panels(d)[0]["targets"][0]["expr"] = expr


DASHBOARD = dq.load_dashboard(args.dashboards)
# Each rule with a dashboard that breaks it: proves the rule still detects its problem.
SELF_TESTS = {
    "template-datasource-rule": lambda d: d["templating"]["list"][0].update(name="ds"),
    "template-job-rule": lambda d: dq.variables(d)["job"].update(allValue=".*"),
    "template-instance-rule": lambda d: d["templating"]["list"].remove(dq.variables(d)["instance"]),
    "template-rank-rule (pbm)": lambda d: dq.variables(d)["rank"].update(multi=False),
    "template-on-time-change-reload-rule": lambda d: dq.variables(d)["job"].update(refresh=1),
    "template-label-promql-rule": lambda d: dq.variables(d)["job"].update(query={"query": "pbm_build_info"}),
    "template-uneditable-rule": lambda d: d.update(editable=True),
    "stable-uid-rule (pbm)": lambda d: d.update(uid="random"),
    "panel-datasource-rule": lambda d: dq.panels(d)[1].update(datasource={"type": "prometheus", "uid": "abc"}),
    "panel-title-description-rule": lambda d: dq.panels(d)[2].update(description=""),
    "panel-units-rule": lambda d: dq.panels(d)[3]["fieldConfig"]["defaults"].update(unit="records"),
    "panel-no-targets-rule": lambda d: dq.panels(d)[4].update(targets=[]),
    "target-promql-rule": lambda d: set_expr(d, 'sum by (mailbox) (rate(pbm_push_records_total{job=~"$job", '
                                                'instance=~"$instance", rank=~"$rank"}[$__rate_interval])'),
    "target-rate-interval-rule": lambda d: set_expr(d, 'rate(pbm_push_records_total{job=~"$job", '
                                                       'instance=~"$instance", rank=~"$rank"}[5m])'),
    "target-job-rule": lambda d: set_expr(d, 'rate(pbm_push_records_total{instance=~"$instance", '
                                             'rank=~"$rank"}[$__rate_interval])'),
    "target-instance-rule": lambda d: set_expr(d, 'rate(pbm_push_records_total{job=~"$job", '
                                                  'rank=~"$rank"}[$__rate_interval])'),
    "target-rank-rule (pbm)": lambda d: set_expr(d, 'rate(pbm_push_records_total{job=~"$job", '
                                                    'instance=~"$instance"}[$__rate_interval])'),
    "target-counter-agg-rule": lambda d: set_expr(d, 'sum(pbm_push_records_total{job=~"$job", '
                                                     'instance=~"$instance", rank=~"$rank"})'),
    "pbm-metrics-only-rule (pbm)": lambda d: set_expr(d, 'up{job=~"$job", instance=~"$instance", rank=~"$rank"}'),
}


def main():
    promtool = pbmtest.tool(args.promtool, "promtool", "prometheus")
    failures = 0
    result = lint(DASHBOARD, promtool)
    for name, errs in result.items():
        print(f"{'ok  ' if not errs else 'FAIL'} {name}")
        for e in errs:
            print(f"       {e}")
        failures += bool(errs)
    print(f"{len(dq.panels(DASHBOARD))} panels, {len(dq.targets(DASHBOARD))} queries checked")
    missing = set(RULES) - set(SELF_TESTS)
    if missing:
        print(f"FAIL rules without a self-test: {sorted(missing)}")
        failures += 1
    for name, mutate in SELF_TESTS.items():
        caught = lint(broken(mutate), promtool)[name]
        if not caught:
            print(f"FAIL self-test: {name} did not catch its broken dashboard")
            failures += 1
    print(f"self-tests: {len(SELF_TESTS)} broken dashboards, each caught by its rule" if not failures else "")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
