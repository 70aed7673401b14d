"""What the Python tests need (torch, a CUDA GPU, the built pbm package) and why they skip.

The package is imported from PYTHONPATH when it is there, else from the first of
$PBM_BUILD_DIR/python, <repo>/build/python and <repo>/python that holds pbm/mailbox_ext*.so.
PBM_REQUIRE_EXT=1 (gpu-check) turns a missing extension into an error instead of a skip.
"""

import glob
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _candidate_dirs():
    if os.environ.get("PBM_BUILD_DIR"):
        yield Path(os.environ["PBM_BUILD_DIR"]) / "python"
    yield REPO / "build" / "python"
    yield REPO / "python"


def _add_package_to_path():
    for d in _candidate_dirs():
        if glob.glob(str(d / "pbm" / "mailbox_ext*.so")):
            sys.path.insert(0, str(d))
            return


def _skip_reason():
    try:
        import torch
    except ImportError as e:
        return f"torch is not installed ({e})"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    try:
        import pbm  # noqa: F401
    except ImportError:
        _add_package_to_path()
        try:
            import pbm  # noqa: F401,F811
        except ImportError as e:
            if os.environ.get("PBM_REQUIRE_EXT") == "1":
                raise
            return f"the pbm extension is not built or not importable ({e})"
    return None


SKIP_REASON = _skip_reason()


def require():
    """(torch, pbm) for a test module, or a module-level skip with the reason."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON, allow_module_level=True)
    import pbm
    import torch

    return torch, pbm
