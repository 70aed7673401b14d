"""Shared helpers for the exporter's process-level tests (python3 standard library only).

Runs real processes on loopback only: the pbm metrics fixture, promtool and a Prometheus server,
each with bounded waits and cleaned up on exit. Exit code 77 means "skipped" (a tool is missing).
"""
import argparse
import contextlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SKIP = 77


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--fixture", default="")
    p.add_argument("--dashboards", default=str(pathlib.Path(__file__).resolve().parents[2] / "dashboards"))
    p.add_argument("--promtool", default="")
    p.add_argument("--prometheus", default="")
    p.add_argument("--work-dir", default="")
    p.add_argument("--scrape-load", default="")
    args, _ = p.parse_known_args(argv)
    args.dashboards = pathlib.Path(args.dashboards)
    sys.path.insert(0, str(args.dashboards / "tests"))
    return args


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def tool(path, name, package):
    """The tool's path, or skip the test saying what to install."""
    if path and not path.endswith("-NOTFOUND") and os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found:
        return found
    skip(f"{name} not found (Debian: apt-get install {package}); CI installs it in scripts/setup")


def work_dir(args, name):
    """A fresh folder per test (the previous run's is removed; its files are there to read after a run)."""
    base = pathlib.Path(args.work_dir) if args.work_dir else pathlib.Path(tempfile.gettempdir()) / "pbm-exporter-tests"
    d = base / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _die_with_parent():
    """Child processes get SIGTERM when the test process dies (even by SIGKILL from a ctest
    timeout), so no server outlives its test."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0, headers=None):
    """(status, body text, seconds). Status 0 on a connection error."""
    req = urllib.request.Request(url, headers=headers or {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read().decode("utf-8")
            return r.status, body, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, "", time.perf_counter() - t0
    except OSError as e:
        return 0, str(e), time.perf_counter() - t0


def wait_until(what, predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    fail(f"timed out after {timeout:.0f} s waiting for {what}")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{name: {"type": t, "help": h, "samples": [(labels dict, value)]}} from the text format."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            _, kind, name, rest = (line.split(" ", 3) + [""])[:4]
            families.setdefault(name, {"type": None, "help": None, "samples": []})
            families[name]["help" if kind == "HELP" else "type"] = rest
            continue
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            fail(f"unparsable exposition line: {line!r}")
        labels = dict(_LABEL.findall(m.group(3) or ""))
        name = m.group(1)
        for suffix in ("_count", "_sum", "_bucket"):  # summary and histogram parts
            if name not in families and name.endswith(suffix) and name[:-len(suffix)] in families:
                name = name[:-len(suffix)]
        families.setdefault(name, {"type": None, "help": None, "samples": []})
        families[name]["samples"].append((labels, float(m.group(4))))
    return families


class Fixture(contextlib.AbstractContextManager):
    """The pbm metrics fixture: host-ring push/pop + synthetic CUPTI records, serving /metrics."""

    def __init__(self, args, wd, duration=40, rank="0", report=None):
        if not args.fixture or not os.access(args.fixture, os.X_OK):
            fail(f"--fixture {args.fixture!r} is not an executable (build pbm_metrics_fixture)")
        self.port_file = wd / "fixture.port"
        cmd = [args.fixture, "--address", "127.0.0.1:0", "--port-file", str(self.port_file),
               "--duration", str(duration)]
        if report:
            cmd += ["--report", str(report)]
        env = dict(os.environ)
        env.pop("LOCAL_RANK", None)
        env.pop("PBM_PROMETHEUS_ADDR", None)
        env.pop("PBM_PROMETHEUS_BASIC_AUTH", None)
        if rank is None:
            env.pop("RANK", None)
        else:
            env["RANK"] = rank
        self.log = open(wd / "fixture.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_parent)
        self.port = int(wait_until("the fixture's port file", self._read_port, 20))
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.target = f"127.0.0.1:{self.port}"

    def _read_port(self):
        if self.proc.poll() is not None:
            fail(f"the fixture exited early with {self.proc.returncode}: {self.log.name}")
        try:
            return self.port_file.read_text().strip()
        except FileNotFoundError:
            return None

    def stop(self, timeout=15):
        """SIGTERM, then wait (the exporter stops within ~2 s); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("the fixture did not stop within 15 s of SIGTERM")
        self.log.close()
        return self.proc.returncode

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return False


class PrometheusServer(contextlib.AbstractContextManager):
    """A real Prometheus on a free loopback port with a temporary data dir."""

    def __init__(self, args, wd, targets, job="pbm-fixture", rule_files=(), interval="1s"):
        binary = tool(args.prometheus, "prometheus", "prometheus")
        self.wd = wd
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        }
        (wd / "prometheus.yml").write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
        self.proc = None
        for attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self.log = open(wd / f"prometheus-{attempt}.log", "w")
            self.proc = subprocess.Popen(
                [binary, f"--config.file={wd / 'prometheus.yml'}", f"--storage.tsdb.path={wd / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdout=self.log, stderr=subprocess.STDOUT, cwd=wd, preexec_fn=_die_with_parent)
            self.base = f"http://127.0.0.1:{self.port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                status, _, _ = http_get(self.base + "/-/ready", timeout=1)
                if status == 200:
                    return
                time.sleep(0.2)
            self._kill()
        fail(f"Prometheus did not become ready; see {wd}/prometheus-*.log")

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log and not self.log.closed:
            self.log.close()

    def api(self, path, **params):
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        status, body, _ = http_get(url, timeout=10)
        if status != 200:
            fail(f"Prometheus API {path} {params}: HTTP {status} {body[:300]}")
        doc = json.loads(body)
        if doc.get("status") != "success":
            fail(f"Prometheus API {path} {params}: {doc}")
        return doc["data"]

    def query(self, expr):
        return self.api("query", query=expr)

    def __exit__(self, *exc):
        self._kill()
        return False
