"""Loads the compiled module ``mailbox_ext`` (torch first: it provides the libraries it links)."""

import ctypes
import os

import torch  # noqa: F401  (loads libtorch, libc10_cuda and the CUDA runtime the extension uses)


def _share_libstdcxx():
    """Puts the libstdc++ torch loaded into the global symbol scope before the extension loads.

    mailbox_ext carries weak copies of libstdc++ template members and facet ids (std::num_put<char>::id,
    std::ostream::_M_insert<...>). Python loads extensions RTLD_LOCAL and torch's libstdc++ is not
    global either, so the extension's references bound to its own copies: a std::ostringstream
    formatting a number then looked up a facet under an id the process locale never registered, and
    jumped to address 0 (seen on an H100 with torch 2.11: every violation report crashed pytest).
    With libstdc++ global, those references bind to the one copy libstdc++ itself uses.
    """
    flags = os.RTLD_GLOBAL | getattr(os, "RTLD_NOLOAD", 0)
    try:
        ctypes.CDLL("libstdc++.so.6", mode=flags)  # already loaded by torch: only promoted
    except OSError:
        try:
            ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL)
        except OSError:
            pass  # not a GNU toolchain: nothing to share


_share_libstdcxx()

try:
    from . import mailbox_ext as ext  # built by CMake into <build>/python/pbm, or by setup.py
except ImportError as _package_error:  # pragma: no cover - depends on how it was built
    try:
        import mailbox_ext as ext  # a compiled top-level module on sys.path
        if getattr(ext, "__pbm_shim__", False):  # python/mailbox_ext.py, which imports us
            raise ImportError("only the mailbox_ext shim is on sys.path")
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
