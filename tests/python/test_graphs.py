"""CUDA graphs and stream capture from PyTorch: a graph's device-to-host copy is reported at every
replay, with the replay's Python line; a sync refused during capture is reported with the line
that made it; torch.compile(mode="reduce-overhead") replays stay clean under forbid(sync)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from _env import require  # noqa: E402

torch, pbm = require()


def _copies(direction, memory):
    return sum(s["value"] for s in pbm.telemetry.counters()
               if s["name"] == "pbm_memcpy_total" and s["labels"].get("direction") == direction
               and s["labels"].get("memory") == memory)


def test_graph_replay_copy_to_host_is_reported_at_each_replay(telemetry_attached):
    x = torch.randn(4096, device="cuda")
    out = torch.empty(4096, pin_memory=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture, as PyTorch asks
        out.copy_(x * 2, non_blocking=True)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out.copy_(x * 2, non_blocking=True)  # a device-to-pinned memcpy node
    torch.cuda.synchronize()
    before = _copies("DtoH", "pinned")
    for _ in range(4):
        graph.replay()
    torch.cuda.synchronize()
    assert _copies("DtoH", "pinned") - before == 4, "one device-to-host copy per replay"
    torch.testing.assert_close(out, (x * 2).cpu())

    with pytest.raises(pbm.ViolationError) as caught:
        with pbm.forbid(memcpy=True, sync=False):
            graph.replay()  # the replay's copy is forbidden here
    torch.cuda.synchronize()
    copies = [v for v in caught.value.violations if v["kind"] == "memcpy"]
    assert copies, caught.value.violations
    assert copies[0]["api"] == "cudaGraphLaunch"
    assert copies[0]["direction"] == "DtoH"
    if pbm.ext.HAVE_PYTHON_STACKS:
        assert "graph.replay()" in "".join(copies[0]["python_stack"]), copies[0]["python_stack"]


_CAPTURE_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch, pbm
    pbm.telemetry.start(mode="count")
    x = torch.ones(1024, device="cuda")
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    guard = pbm.forbid(memcpy=False, sync=True)
    error = ""
    try:
        with guard:
            with torch.cuda.graph(graph):
                y = (x * 2).sum()
                y.item()  # CAPTURE-LINE: a sync while the stream is captured
    except RuntimeError as e:
        error = str(e)
    found = [v for v in guard.violations if v["rule"] == "sync_in_capture"]
    print("RESULT " + json.dumps({"error": error[:200], "found": [
        {"api": v["api"], "stack": "".join(v["python_stack"] or [])} for v in found]}))
""")


def test_a_sync_during_capture_is_reported_with_its_python_line(telemetry_attached, tmp_path):
    # In its own process: a failed capture leaves PyTorch's graph pool in a state other tests need not share.
    script = tmp_path / "capture_sync.py"
    script.write_text(_CAPTURE_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # where pbm was found
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["error"], "PyTorch did not fail the capture"
    assert result["found"], f"no sync_in_capture violation; stderr:\n{run.stderr[-3000:]}"
    assert result["found"][0]["api"] in ("cudaStreamSynchronize", "cudaMemcpyAsync"), result["found"]
    if pbm.ext.HAVE_PYTHON_STACKS:
        assert "CAPTURE-LINE" in result["found"][0]["stack"], result["found"][0]["stack"]


def test_compiled_reduce_overhead_replays_stay_clean_under_forbid_sync(telemetry_attached):
    pytest.importorskip("triton", reason="torch.compile's GPU backend needs triton")
    import torch._dynamo

    def step(x):
        return torch.relu(x * 2 + 1)

    compiled = torch.compile(step, mode="reduce-overhead")
    x = torch.randn(1 << 16, device="cuda")
    for _ in range(4):  # compile, warm up, record the CUDA graph
        y = compiled(x)
    torch.cuda.synchronize()
    skips = torch._dynamo.utils.counters["inductor"].get("cudagraph_skips", 0)
    assert skips == 0, "inductor skipped CUDA graphs: the replays below would not be graph launches"
    with pbm.forbid(memcpy=False, sync=True):  # raises ViolationError on any sync
        for _ in range(8):
            y = compiled(x)
    torch.cuda.synchronize()
    torch.testing.assert_close(y, step(x))
