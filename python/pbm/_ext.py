"""Loads the compiled module ``mailbox_ext`` (torch first: it provides the libraries it links)."""

import torch  # noqa: F401  (loads libtorch, libc10_cuda and the CUDA runtime the extension uses)

try:
    from . import mailbox_ext as ext  # built by CMake into <build>/python/pbm, or by setup.py
except ImportError as _package_error:  # pragma: no cover - depends on how it was built
    try:
        import mailbox_ext as ext  # a top-level module on sys.path
    except ImportError:
        raise ImportError(
            "pbm: the compiled module mailbox_ext was not found next to the pbm package nor on "
            "sys.path. Build it with CMake (-DPBM_WITH_TORCH=ON, then PYTHONPATH=<build>/python) "
            f"or `pip install --no-build-isolation ./python` (see python/README.md): {_package_error}"
        ) from _package_error

HeaderError = ext.HeaderError
"""Raised when the device finds a mailbox header invalid (never initialised, corrupted, or made for
another record stride). A ValueError: the operation changed nothing."""

__all__ = ["ext", "HeaderError"]
