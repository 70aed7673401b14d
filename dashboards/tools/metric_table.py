"""pbm's metric table for Python: read from telemetry/include/pbm/telemetry/metric_table.hpp, the
one place a series is defined (name, type, unit, labels, help). python3 standard library only.

    import metric_table
    metric_table.load()["pbm_sync_total"].labels  ->  ("api", "expected", "range")
"""
import collections
import pathlib
import re

HEADER = (pathlib.Path(__file__).resolve().parents[2] / "telemetry" / "include" / "pbm" / "telemetry"
          / "metric_table.hpp")
RANK = "rank"  # every series may carry it (added once, by exporters::collect())

Metric = collections.namedtuple("Metric", "id name type unit labels help")

_ENTRY = re.compile(r'\{MetricId::(\w+),\s*"([^"\\]*)",\s*MetricType::(\w+),\s*"([^"\\]*)",\s*"([^"\\]*)",\s*'
                    r'"([^"\\]*)"\}')


def load(header=HEADER):
    """{name: Metric} in table order. Raises ValueError when the table cannot be read."""
    text = pathlib.Path(header).read_text(encoding="utf-8")
    body = re.search(r"kMetrics\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if body is None:
        raise ValueError(f"{header}: no kMetrics[] table")
    entries = [l.strip() for l in body.group(1).splitlines() if l.strip().startswith("{")]
    table = collections.OrderedDict()
    for line in entries:
        m = _ENTRY.fullmatch(line.rstrip(","))
        if m is None:
            raise ValueError(f"{header}: cannot read table entry {line!r}")
        ident, name, kind, unit, labels, help_ = m.groups()
        table[name] = Metric(ident, name, kind, unit, tuple(labels.split()), help_)
    if not table:
        raise ValueError(f"{header}: empty kMetrics[] table")
    return table


def require(name, kind=None, table=None):
    """`name` when the table holds it (and it is a `kind`: "counter" or "gauge"); else ValueError."""
    m = (table or load()).get(name)
    if m is None:
        raise ValueError(f"{name} is not in the metric table ({HEADER.name})")
    if kind is not None and m.type != kind:
        raise ValueError(f"{name} is a {m.type} in the metric table, not a {kind}")
    return name
