#!/usr/bin/env python3
"""Writes dashboards/grafana/pbm-overview.json, the Grafana dashboard for pbm's metrics.

The dashboard is generated so every query is built from one selector and one place lists the
panels; dashboards/tests/generated_test.py fails when the committed JSON differs from this output.
Usage: gen_dashboard.py [--check] [output]   (python3 standard library only)
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import metric_table  # noqa: E402  (the series pbm defines: telemetry's metric_table.hpp)

METRICS = metric_table.load()

UID = "pbm-overview"
TITLE = "pbm: mailboxes and GPU copy/sync telemetry"
# Every query selects one job, instance and rank set; the linter tests require these matchers.
SEL = 'job=~"$job", instance=~"$instance", rank=~"$rank"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PAGEABLE = 'memory="pageable"'
UNEXPECTED = 'expected="false"'
# Implicit synchronisations (telemetry/README.md, "APIs watched"): API calls that wait for the device
# or serialise it without saying so, and "async" copies the host waits for.
IMPLICIT_SYNCS = ("memcpy_blocking", "free", "free_host", "host_alloc", "host_register", "host_unregister",
                  "malloc", "free_array", "set_limit", "set_cache_config", "memset_sync")
IMPLICIT = 'api=~"' + "|".join(IMPLICIT_SYNCS) + '"'
BLOCKING_COPY = 'api="memcpy_blocking"'


def rate(metric, extra=""):
    """rate() of a counter over Grafana's $__rate_interval, with the dashboard selector."""
    metric_table.require(metric, "counter", METRICS)
    sel = SEL + (", " + extra if extra else "")
    return f"rate({metric}{{{sel}}}[$__rate_interval])"


def gauge(metric, extra=""):
    """A gauge of the metric table, with the dashboard selector."""
    metric_table.require(metric, "gauge", METRICS)
    sel = SEL + (", " + extra if extra else "")
    return f"{metric}{{{sel}}}"


def target(expr, legend, ref):
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref,
            "range": True, "instant": False}


def panel(title, description, unit, targets, kind="timeseries", stack=False, decimals=None, min0=True):
    defaults = {"unit": unit, "color": {"mode": "palette-classic"}, "custom": {}}
    if min0:
        defaults["min"] = 0
    if decimals is not None:
        defaults["decimals"] = decimals
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                              "spanNulls": False,
                              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    p = {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
         "fieldConfig": {"defaults": defaults, "overrides": []},
         "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)]}
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                                   "calcs": ["mean", "max", "lastNotNull"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def panels():
    by = "sum by (mailbox, device)"  # one series per mailbox and GPU (same name on two GPUs)
    return [
        row("Mailboxes"),
        panel("Push and pop rate",
              "Records pushed into and popped from each mailbox per second (pbm_push_records_total, "
              "pbm_pop_records_total). A widening gap means the consumer falls behind.",
              "cps",
              [(f"{by} ({rate('pbm_push_records_total')})", "{{mailbox}} (GPU {{device}}) push"),
               (f"{by} ({rate('pbm_pop_records_total')})", "{{mailbox}} (GPU {{device}}) pop")]),
        panel("Pop batch size",
              "Mean records per host-launched pop call: popped records per second divided by pop calls "
              "per second. Small batches mean launch overhead dominates.",
              "short",
              [(f"{by} ({rate('pbm_pop_records_total')}) / {by} ({rate('pbm_pop_calls_total')})",
                "{{mailbox}} (GPU {{device}})")]),
        panel("Occupancy vs capacity",
              "Records in each mailbox now (pbm_occupancy_records) against its capacity "
              "(pbm_capacity_records). Occupancy at capacity means pushes are being dropped.",
              "short",
              [(f"{by} ({gauge('pbm_occupancy_records')})", "{{mailbox}} (GPU {{device}}) occupancy"),
               (f"{by} ({gauge('pbm_capacity_records')})", "{{mailbox}} (GPU {{device}}) capacity")]),
        panel("Fill ratio",
              "Occupancy divided by capacity, per mailbox; the PbmMailboxNearFull alert fires above 90 %.",
              "percentunit",
              [(f"max by (mailbox, device) ({gauge('pbm_occupancy_records')} / {gauge('pbm_capacity_records')})",
                "{{mailbox}} (GPU {{device}})")], min0=True),
        panel("Dropped records",
              "Records refused per second because the mailbox was full (pbm_dropped_records_total). "
              "pbm never overwrites; any non-zero value is lost data.",
              "cps",
              [(f"{by} ({rate('pbm_dropped_records_total')})", "{{mailbox}} (GPU {{device}})")]),
        panel("Push and pop bytes",
              "Bytes per second through each mailbox (records times stride).",
              "Bps",
              [(f"{by} ({rate('pbm_push_bytes_total')})", "{{mailbox}} (GPU {{device}}) push"),
               (f"{by} ({rate('pbm_pop_bytes_total')})", "{{mailbox}} (GPU {{device}}) pop")]),
        panel("Calls by stream class",
              "Host-launched push and pop calls per second, split by stream class (focus: the device's "
              "greatest priority; peripheral: the rest).",
              "ops",
              [(f"sum by (stream_class) ({rate('pbm_push_calls_total')})", "push {{stream_class}}"),
               (f"sum by (stream_class) ({rate('pbm_pop_calls_total')})", "pop {{stream_class}}")]),
        row("Copies and synchronisations"),
        panel("Memcpys by direction",
              "Memory copies per second seen by CUPTI, by direction and whether the policy expected them "
              "(expected=\"false\" are violations of the memcpy rules).",
              "ops",
              [(f"sum by (direction, expected) ({rate('pbm_memcpy_total')})",
                "{{direction}} expected={{expected}}")]),
        panel("Memcpy bytes by direction",
              "Bytes per second moved by the copies counted in pbm_memcpy_total.",
              "Bps",
              [(f"sum by (direction) ({rate('pbm_memcpy_bytes_total')})", "{{direction}}")]),
        panel("Memcpys by NVTX range",
              "Copies per second by the innermost NVTX range open at the call (\"none\": outside any "
              "range; \"other\": names beyond the label cap).",
              "ops",
              [(f"sum by (range, direction) ({rate('pbm_memcpy_total')})", "{{range}} {{direction}}")]),
        panel("Pageable copies",
              "Copies per second whose host side is pageable memory: they cannot overlap with kernels and "
              "make the copy synchronous. Pin the host buffer.",
              "ops",
              [(f"sum by (direction, expected) ({rate('pbm_memcpy_total', PAGEABLE)})",
                "{{direction}} expected={{expected}}")]),
        panel("Syncs by API",
              "Synchronisations per second by API (stream, event, device, context, synchronous memcpy, "
              "and the implicit ones: frees, page-locked allocations, blocking copies, ...) and whether "
              "they were expected.",
              "ops",
              [(f"sum by (api, expected) ({rate('pbm_sync_total')})", "{{api}} expected={{expected}}")]),
        panel("Implicit synchronisations",
              "Calls that make the host wait (or serialise the device) without saying so, per second: "
              "cudaFree (free), cudaFreeHost (free_host), cudaMallocHost/cudaHostAlloc (host_alloc), "
              "cudaHostRegister/Unregister, cudaMalloc (malloc), cudaFreeArray (free_array), "
              "cudaDeviceSetLimit (set_limit), cudaDeviceSetCacheConfig (set_cache_config), a memset of "
              "pinned or managed memory (memset_sync) and cudaMemcpyAsync to or from pageable memory "
              "(memcpy_blocking). Use the stream-ordered allocator and pinned buffers in hot loops.",
              "ops",
              [(f"sum by (api, expected) ({rate('pbm_sync_total', IMPLICIT)})", "{{api}} expected={{expected}}")]),
        panel("Blocking copies by NVTX range",
              "\"Async\" copies the host waited for (pageable memory on one side, or host to host), per "
              "second, by the innermost NVTX range open at the call. Each one is also counted in the "
              "copy panels above.",
              "ops",
              [(f"sum by (range, expected) ({rate('pbm_sync_total', BLOCKING_COPY)})",
                "{{range}} expected={{expected}}")]),
        panel("Syncs by NVTX range",
              "Unexpected synchronisations per second by the innermost NVTX range open at the call.",
              "ops",
              [(f"sum by (range, api) ({rate('pbm_sync_total', UNEXPECTED)})", "{{range}} {{api}}")]),
        panel("Policy violations",
              "Violations per second by broken rule (memcpy_dtoh, memcpy_pageable, memcpy_forbidden, "
              "sync_unexpected, sync_forbidden). In assert mode the first one aborts the process.",
              "ops",
              [(f"sum by (rule) ({rate('pbm_violations_total')})", "{{rule}}")]),
        row("Telemetry health"),
        panel("CUPTI attached",
              "1 when pbm holds the CUPTI subscriber (detection works). 0 with subscriber taken = 1: "
              "another tool (Nsight, torch.profiler) holds CUPTI and pbm stepped aside.",
              "bool_yes_no",
              [(f"min by (instance, rank) ({gauge('pbm_telemetry_cupti_attached')})", "attached {{instance}} {{rank}}"),
               (f"max by (instance, rank) ({gauge('pbm_telemetry_subscriber_taken')})",
                "subscriber taken {{instance}} {{rank}}")],
              kind="stat"),
        panel("Dropped CUPTI records",
              "CUPTI activity records lost per second (buffers full) and buffer requests refused because "
              "the pool was empty. Non-zero: counts above are too low; raise buffer_count/buffer_size.",
              "cps",
              [(f"sum by (instance) ({rate('pbm_telemetry_dropped_records_total')})", "dropped {{instance}}"),
               (f"sum by (instance) ({rate('pbm_telemetry_buffer_pool_exhausted_total')})",
                "pool exhausted {{instance}}")]),
        panel("CUPTI records processed",
              "Activity records and buffers processed per second, and records with no matching API call "
              "(unattributed).",
              "cps",
              [(f"sum by (instance) ({rate('pbm_telemetry_records_processed_total')})", "records {{instance}}"),
               (f"sum by (instance) ({rate('pbm_telemetry_buffers_processed_total')})", "buffers {{instance}}"),
               (f"sum by (instance) ({rate('pbm_telemetry_unattributed_records_total')})",
                "unattributed {{instance}}")]),
        panel("Build",
              "pbm_build_info of each process: pbm version, CUDA version, CUPTI and Prometheus support.",
              "none",
              [(f"max by (instance, rank, version, cuda_version, cupti, prometheus) ({gauge('pbm_build_info')})",
                "{{instance}} {{version}} CUDA {{cuda_version}} cupti={{cupti}}")],
              kind="stat", min0=False),
    ]


def layout(items):
    """Grid positions: rows span the width; panels two per row (stat panels three)."""
    y, x, next_id = 0, 0, 1
    for p in items:
        p["id"] = next_id
        next_id += 1
        if p["type"] == "row":
            if x:
                y, x = y + 8, 0
            p["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        w = 12
        p["gridPos"] = {"h": 8, "w": w, "x": x, "y": y}
        x += w
        if x >= 24:
            y, x = y + 8, 0
    return items


def variable(name, label, query, all_value, description):
    return {"type": "query", "name": name, "label": label, "description": description,
            "datasource": DATASOURCE,
            "definition": query, "query": {"query": query, "refId": f"pbm-{name}"},
            "refresh": 2, "multi": True, "includeAll": True, "allValue": all_value,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "hide": 0, "options": [], "regex": ""}


def dashboard():
    return {
        "__comment": "Generated by dashboards/tools/gen_dashboard.py; edit that, then regenerate.",
        "uid": UID,
        "title": TITLE,
        "description": "pbm GPU mailboxes (push/pop, occupancy, drops) and the copies and synchronisations "
                       "pbm's CUPTI telemetry sees, per job, instance and rank.",
        "tags": ["pbm", "cuda", "gpu"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard"}]},
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
             "description": "The Prometheus that scrapes pbm processes.",
             "current": {}, "hide": 0, "includeAll": False, "multi": False, "options": [], "refresh": 1,
             "regex": ""},
            variable("job", "Job", "label_values(pbm_build_info, job)", ".+",
                     "Prometheus job(s) scraping pbm processes."),
            variable("instance", "Instance", 'label_values(pbm_build_info{job=~"$job"}, instance)', ".+",
                     "Scraped process endpoint(s)."),
            # ".*", not ".+": a process without RANK/LOCAL_RANK has no rank label and must still show.
            variable("rank", "Rank", 'label_values(pbm_build_info{job=~"$job", instance=~"$instance"}, rank)',
                     ".*", "Distributed rank(s) (env RANK or LOCAL_RANK of the process)."),
        ]},
        "panels": layout(panels()),
    }


def render():
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    out = pathlib.Path(__file__).resolve().parent.parent / "grafana" / "pbm-overview.json"
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if args:
        out = pathlib.Path(args[0])
    text = render()
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is out of date: run dashboards/tools/gen_dashboard.py")
            return 1
        print(f"{out} matches the generator")
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
