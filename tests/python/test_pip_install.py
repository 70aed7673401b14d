"""`pip install ./python` as a user without network would run it: no build isolation, no index, against
the CMake build gpu-check made (PBM_BUILD_DIR). The installed package is then imported in a fresh
interpreter, away from the repository and the build tree, with the private library prefix of the
GPU machine's prometheus-cpp taken off LD_LIBRARY_PATH (the extension must find it by its RPATH),
and it moves records through a mailbox."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _env import REPO, require  # noqa: E402

torch, pbm = require()

CHILD = r"""
import sys
import pbm, torch
site = sys.argv[1]
assert pbm.__file__.startswith(site), f"pbm imported from {pbm.__file__}, not from {site}"
box = pbm.Mailbox(64, 16, name="pip")
x = torch.arange(64, dtype=torch.uint8, device="cuda").reshape(4, 16)
box.push(x)
y = box.pop(64, wait="spin")
assert y.shape == (4, 16), y.shape
assert torch.equal(y.reshape(-1), x.reshape(-1))
print("pip-installed pbm OK", pbm.__file__, pbm.mailbox_ext.__file__)
"""


def test_pip_install_without_network_builds_and_runs(tmp_path):
    build = os.environ.get("PBM_BUILD_DIR")
    if not build or not (Path(build) / "core" / "libpbm_core.a").exists():
        pytest.skip("no CMake build of pbm to link against (PBM_BUILD_DIR with core/libpbm_core.a)")
    site = tmp_path / "site"
    env = dict(os.environ, PBM_BUILD_DIR=str(Path(build).resolve()), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                           "--no-index", "--target", str(site), str(REPO / "python")],
                          env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert list((site / "pbm").glob("mailbox_ext*.so")), sorted(p.name for p in (site / "pbm").iterdir())

    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PBM_BUILD_DIR")}
    child_env["PYTHONPATH"] = str(site)
    prefix = os.environ.get("PBM_DEPS_PREFIX", "/tmp/pbm-deps")  # where gpu-check unpacks the -dev packages
    if "LD_LIBRARY_PATH" in child_env:
        child_env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in child_env["LD_LIBRARY_PATH"].split(os.pathsep) if p and not p.startswith(prefix))
    run = subprocess.run([sys.executable, "-c", CHILD, str(site)], env=child_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pip-installed pbm OK" in run.stdout, run.stdout + run.stderr
