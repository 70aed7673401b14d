"""Reads pbm's Grafana dashboard and alert rules: panels, targets, variables, PromQL selectors.

A small PromQL scanner, enough for the linter rules and the metric-name checks: it finds every
vector selector with its matchers, range and enclosing function. Syntax itself is checked by
promtool (the real Prometheus parser). python3 standard library only.
"""
import json
import pathlib
import re

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "bool", "offset", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile"}


def load_dashboard(dashboards_dir):
    return json.loads((pathlib.Path(dashboards_dir) / "grafana" / "pbm-overview.json").read_text(encoding="utf-8"))


def panels(dashboard):
    """Every panel, rows' nested panels included, rows themselves excluded."""
    out = []
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def targets(dashboard):
    """(panel, target) for every query of every panel."""
    return [(p, t) for p in panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard):
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def variable_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


def alert_rules(dashboards_dir):
    """(name, expr) of every rule in prometheus/pbm_alerts.yml (parsed without a YAML library:
    the file keeps `- alert:` / `expr:` on their own lines, folded exprs indented below)."""
    lines = (pathlib.Path(dashboards_dir) / "prometheus" / "pbm_alerts.yml").read_text().splitlines()
    rules, name, i = [], None, 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("- alert:") or s.startswith("- record:"):
            name = s.split(":", 1)[1].strip()
        elif s.startswith("expr:"):
            expr = s[len("expr:"):].strip()
            if expr in (">-", ">", "|", "|-"):
                indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
                parts = []
                while i + 1 < len(lines) and (len(lines[i + 1]) - len(lines[i + 1].lstrip())) >= indent \
                        and lines[i + 1].strip():
                    i += 1
                    parts.append(lines[i].strip())
                expr = " ".join(parts)
            rules.append((name, expr))
        i += 1
    return rules


_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|[a-zA-Z_:][a-zA-Z0-9_:]*|\d+(?:\.\d+)?[a-z]*|.')


class Selector:
    def __init__(self, metric, matchers, range_, function):
        self.metric = metric          # metric name
        self.matchers = matchers      # {label: (op, value)}
        self.range = range_           # "$__rate_interval", "5m" or None
        self.function = function      # innermost enclosing function call, or None

    def __repr__(self):
        return f"Selector({self.metric}, {self.matchers}, {self.range}, in {self.function})"


_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_matchers(text):
    body = text.strip()[1:-1]
    out, pos = {}, 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise ValueError(f"bad matcher list {text!r}")
        out[m.group(1)] = (m.group(2), m.group(3))
        pos = m.end()
    return out


def selectors(expr):
    """Every vector selector of a PromQL expression, with the function that directly encloses it."""
    tokens = [t for t in _TOKEN.findall(expr) if not t.isspace()]
    out, stack, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t in AGGREGATIONS and nxt in ("by", "without"):  # sum by (x) (...): the call comes after
            i += 2
            while i < len(tokens) and tokens[i] != ")":
                i += 1
            if i + 1 < len(tokens) and tokens[i + 1] == "(":
                stack.append(t)
                i += 1
        elif t in ("by", "without", "on", "ignoring", "group_left", "group_right") and nxt == "(":
            while i < len(tokens) and tokens[i] != ")":  # a label list, not selectors
                i += 1
        elif re.match(r"[a-zA-Z_:]", t) and nxt == "(":
            stack.append(t)
            i += 1
        elif t == "(":
            stack.append(None)
        elif t == ")":
            if stack:
                stack.pop()
        elif re.match(r"[a-zA-Z_:]", t) and t.lower() not in KEYWORDS:
            matchers, range_ = {}, None
            if nxt.startswith("{"):
                matchers = parse_matchers(nxt)
                i += 1
                nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt.startswith("["):
                range_ = nxt[1:-1]
                i += 1
            out.append(Selector(t, matchers, range_, stack[-1] if stack else None))
        i += 1
    return out


def metric_names(expr):
    return {s.metric for s in selectors(expr)}


def substitute(expr, values, rate_interval):
    """Grafana's variable interpolation for Prometheus: multi-value variables become (a|b)."""
    def fmt(v):
        if isinstance(v, (list, tuple)):
            return v[0] if len(v) == 1 else "(" + "|".join(v) + ")"
        return v
    expr = expr.replace("$__rate_interval", rate_interval).replace("${__rate_interval}", rate_interval)
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", fmt(values[name])).replace("$" + name, fmt(values[name]))
    return expr
