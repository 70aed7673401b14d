"""`pip install ./python` and `pip wheel ./python` as a user without network would run them: no build
isolation, no index, against the CMake build gpu-check made (PBM_BUILD_DIR). The installed package is
then imported in a fresh interpreter, away from the repository and the build tree, with the private
library prefix of the GPU machine's prometheus-cpp and the build directories taken off
LD_LIBRARY_PATH (the extension must find it by its RPATH): `import mailbox_ext` (the original
extension's name, before pbm) and `import pbm` give one module, and records move through a mailbox."""

import os
import site as sitelib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _env import REPO, require  # noqa: E402

torch, pbm = require()

CHILD = r"""
import os, sys
site = os.path.realpath(sys.argv[1])
assert "pbm" not in sys.modules
import mailbox_ext  # the original extension's name, before pbm
import pbm, torch
for mod in (pbm, mailbox_ext):
    where = os.path.realpath(mod.__file__)
    assert where.startswith(site + os.sep), f"{mod.__name__} imported from {where}, not from {site}"
assert mailbox_ext is pbm.ext, "import mailbox_ext must give pbm's compiled module itself"
box = pbm.Mailbox(64, 16, name="pip")
x = torch.arange(64, dtype=torch.uint8, device="cuda").reshape(4, 16)
box.push(x)
y = box.pop(64, wait="spin")
assert y.shape == (4, 16), y.shape
assert torch.equal(y.reshape(-1), x.reshape(-1))
hdr, payload = mailbox_ext.pbm_alloc(8, 16)
mailbox_ext.pbm_push_bytes_cuda(hdr, payload, x[2])
out = mailbox_ext.pbm_pop_bulk_cuda(hdr, payload, 8, 16)
assert out.numel() == 16 and torch.equal(out, x[2]), out
print("pip-installed pbm OK", pbm.__file__, mailbox_ext.__file__)
"""


def _cmake_build():
    """gpu-check's CMake build of pbm, or a skip: setup.py links its static libraries."""
    build = os.environ.get("PBM_BUILD_DIR")
    if not build or not (Path(build) / "core" / "libpbm_core.a").exists():
        pytest.skip("no CMake build of pbm to link against (PBM_BUILD_DIR with core/libpbm_core.a)")
    return Path(build).resolve()


def _pip_env(build):
    return dict(os.environ, PBM_BUILD_DIR=str(build), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")


def _child_env(build, **extra):
    """The environment of a user's fresh interpreter: no PYTHONPATH into the tree, and neither the
    dependency prefix nor the repository or build directories on LD_LIBRARY_PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PBM_BUILD_DIR")}
    prefixes = (os.environ.get("PBM_DEPS_PREFIX", "/tmp/pbm-deps"),  # where gpu-check unpacks the -dev packages
                str(build), str(REPO))
    if "LD_LIBRARY_PATH" in env:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in env["LD_LIBRARY_PATH"].split(os.pathsep) if p and not p.startswith(prefixes))
    env.update(extra)
    return env


def _run_child(python, site, env, cwd):
    run = subprocess.run([str(python), "-c", CHILD, str(site)], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pip-installed pbm OK" in run.stdout, run.stdout + run.stderr


def test_pip_install_without_network_builds_and_runs(tmp_path):
    build = _cmake_build()
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                           "--no-index", "--target", str(site), str(REPO / "python")],
                          env=_pip_env(build), capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert list((site / "pbm").glob("mailbox_ext*.so")), sorted(p.name for p in (site / "pbm").iterdir())
    assert (site / "mailbox_ext.py").is_file(), sorted(p.name for p in site.iterdir())
    _run_child(sys.executable, site, _child_env(build, PYTHONPATH=str(site)), tmp_path)


def test_pip_wheel_installs_into_a_fresh_venv(tmp_path):
    build = _cmake_build()
    # The wheel (its build reuses python/build's objects from the test above: ninja relinks only).
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                           "--no-index", "--wheel-dir", str(wheels), str(REPO / "python")],
                          env=_pip_env(build), capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    found = list(wheels.glob("pbm-*.whl"))
    assert len(found) == 1, sorted(p.name for p in wheels.iterdir())
    wheel = found[0]
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "mailbox_ext.py" in names and any(n.startswith("pbm/mailbox_ext") and n.endswith(".so")
                                             for n in names), names

    # A fresh venv that sees torch offline. --system-site-packages shows the base interpreter's
    # packages; where python3 is itself a venv (the GPU image's /opt/torch/.venv), torch is in that
    # venv's site-packages instead, so a .pth adds them (after the new venv's own site-packages).
    # No pip of its own (ensurepip may be absent): the pip it sees installs into the venv's prefix.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    env = _child_env(build)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                          env=env, check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    if sys.prefix != sys.base_prefix:  # addsitedir: their own .pth files are read too
        Path(site, "_outer_site_packages.pth").write_text(
            "".join(f"import site; site.addsitedir({d!r})\n" for d in sitelib.getsitepackages()))
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall",
                           str(wheel)], env=dict(env, PIP_DISABLE_PIP_VERSION_CHECK="1"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    _run_child(python, site, env, tmp_path)
