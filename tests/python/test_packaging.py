"""Packaging checks that need neither torch nor a GPU, so they run everywhere (never skipped for a
missing torch: that is the case most of them are about).

- setup.py without torch fails with one line naming torch, the interpreter and the fix, not a
  traceback (really without torch where it is absent, and with torch blocked where it is there).
- pyproject.toml declares the build system and the same metadata as setup.py.
- python/README.md's pip commands build without isolation (offline, against the installed torch).
- The top-level shim python/mailbox_ext.py turns `import mailbox_ext` into pbm's compiled module
  itself, and fails with pbm's ImportError (not an AttributeError or a loop) where it is missing.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = REPO / "python"

# Runs python/setup.py as `python3 python/setup.py ARGS` would, with `import torch` failing.
BLOCK_TORCH = r"""
import runpy, sys
sys.modules["torch"] = None  # import torch -> ModuleNotFoundError, whatever is installed
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PBM_BUILD_DIR")}
    env.update(extra)
    return env


def _check_one_line(proc):
    err = proc.stderr.strip()
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(err.splitlines()) == 1, f"expected one line, got:\n{proc.stderr}"
    assert "torch" in err and sys.executable in err, err
    assert f"{sys.executable} -m pip install torch" in err, err
    assert "--no-build-isolation" in err, err


@pytest.mark.parametrize("args", [["--name"], ["build_ext"]])
def test_setup_py_without_torch_is_one_clear_line(args):
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is importable here; test_setup_py_with_torch_blocked covers this case")
    proc = subprocess.run([sys.executable, "python/setup.py", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=60)
    _check_one_line(proc)
    assert "No module named 'torch'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["--name"], ["build_ext"]])
def test_setup_py_with_torch_blocked(args):
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "python/setup.py", *args], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=60)
    _check_one_line(proc)


def _stub_torch(root):
    """A torch with just what setup.py uses, so its metadata can be read without the real one."""
    ext = root / "torch" / "utils"
    ext.mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text("from . import utils\n")
    (ext / "__init__.py").write_text("from . import cpp_extension\n")
    (ext / "cpp_extension.py").write_text(
        "from setuptools import Extension\n"
        "from setuptools.command.build_ext import build_ext as BuildExtension\n"
        "CUDA_HOME = None\n"
        "def CUDAExtension(name, sources, extra_compile_args=None, **kw):\n"
        "    return Extension(name, sources, **kw)\n")


def test_pyproject_declares_build_system_and_matches_setup_py(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((PY / "pyproject.toml").read_text())
    system = meta["build-system"]
    assert system["build-backend"] == "setuptools.build_meta"
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in system["requires"]}
    assert {"setuptools", "wheel", "torch"} <= names, system["requires"]

    _stub_torch(tmp_path)
    proc = subprocess.run([sys.executable, "python/setup.py", "--name", "--version", "--description"],
                          cwd=REPO, env=_env(PYTHONPATH=str(tmp_path)), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    project = meta["project"]
    assert proc.stdout.split("\n")[:3] == [project["name"], project["version"], project["description"]]
    setup_src = (PY / "setup.py").read_text()
    assert f'python_requires="{project["requires-python"]}"' in setup_src
    assert 'py_modules=["mailbox_ext"]' in setup_src, "the mailbox_ext shim must be installed"


def test_readme_pip_commands_build_without_isolation():
    for path in (PY / "README.md", PY / "setup.py", PY / "pyproject.toml"):
        for line in path.read_text().splitlines():
            if re.search(r"pip (install|wheel)\b.*\./python", line):
                assert "--no-build-isolation" in line, f"{path.name}: {line.strip()}"


def _site_with_shim(root, pbm_files):
    """root/ as a site directory: the shim beside a pbm package made of pbm_files {name: text}."""
    (root / "pbm").mkdir(parents=True)
    for name, text in pbm_files.items():
        (root / "pbm" / name).write_text(text)
    shutil.copy(PY / "mailbox_ext.py", root / "mailbox_ext.py")
    return root


def _run(code, path, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(PYTHONPATH=str(path)),
                          capture_output=True, text=True, timeout=60)


def test_import_mailbox_ext_gives_pbms_compiled_module(tmp_path):
    # A stand-in for the compiled module (a plain module object): the shim must hand out that very
    # object, not a copy, so that `mailbox_ext` and `pbm` share one state.
    site = _site_with_shim(tmp_path / "site", {
        "__init__.py": "from ._ext import ext\n",
        "_ext.py": ("import types\n"
                    "ext = types.ModuleType('mailbox_ext')\n"
                    "ext.pbm_push_bytes_cuda = lambda hdr, payload, rec: ('push', rec)\n"
                    "ext.pbm_pop_bulk_cuda = lambda hdr, payload, n, stride: ('pop', n, stride)\n"),
    })
    proc = _run("import sys\n"
                "assert 'pbm' not in sys.modules\n"
                "import mailbox_ext\n"
                "import pbm\n"
                "assert mailbox_ext is pbm.ext is sys.modules['mailbox_ext'], mailbox_ext\n"
                "assert mailbox_ext.pbm_push_bytes_cuda(0, 0, 7) == ('push', 7)\n"
                "assert mailbox_ext.pbm_pop_bulk_cuda(0, 0, 8, 16) == ('pop', 8, 16)\n"
                "from mailbox_ext import pbm_pop_bulk_cuda\n"
                "print('shim OK')\n", site, tmp_path)
    assert proc.returncode == 0 and "shim OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("first", ["mailbox_ext", "pbm"])
def test_shim_without_compiled_module_raises_pbms_import_error(tmp_path, first):
    # The real pbm package without its mailbox_ext*.so, and a torch that imports: pbm._ext's fallback
    # (a top-level mailbox_ext) must not take the shim for the compiled module, in either import order.
    files = {p.name: p.read_text() for p in (PY / "pbm").glob("*.py")}
    site = _site_with_shim(tmp_path / "site", files)
    (site / "torch.py").write_text("")
    proc = _run(f"import {first}\n", site, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pbm: the compiled module mailbox_ext was not found"), proc.stderr
