"""The PyTorch example runs as a user would run it: a fresh interpreter, the built package on the path.
It checks its own checksum (exit 1 on a mismatch) and runs its loop inside pbm.forbid()."""

import os
import re
import subprocess
import sys

from _env import REPO, require  # noqa: E402

torch, pbm = require()


def test_torch_pipeline_example_runs_and_checks_itself():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "torch_pipeline.py"), "--steps", "50",
                           "--batch", "128"], env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "torch_pipeline: OK" in proc.stdout, out
    loop = re.search(r"in the loop +violations=(\d+) unexpected copies=(\d+) unexpected syncs=(\d+) "
                     r"expected syncs=(\d+)", proc.stdout)
    whole = re.search(r"whole run +violations=(\d+)", proc.stdout)
    assert loop and whole, out
    assert loop.group(1, 2, 3) == ("0", "0", "0"), out
    assert whole.group(1) == "0", out  # the deliberate syncs and copy are declared with pbm.expect
