"""pbm: a GPU mailbox for PyTorch, with telemetry that polices memcpys and synchronisations.

    import torch, pbm
    mb = pbm.Mailbox(capacity=4096, stride=64)      # uint8 CUDA tensors mb.hdr, mb.payload
    with torch.cuda.stream(pbm.focus_stream()):
        n = mb.push(records)                         # 0-dim int64 CUDA tensor; never waits
    out = mb.pop(256)                                # [count, 64] uint8; waits for its count only
    with pbm.forbid():                               # raises pbm.ViolationError at the end of the
        step()                                       # block for any memcpy or host sync inside

See python/README.md.
"""

import os as _os

from ._ext import HeaderError, ext
from . import telemetry
from .mailbox import Mailbox, PopResult, as_bytes
from .streams import focus_stream, peripheral_stream, priority_range, stream_class
from .telemetry import ViolationError, expect, forbid
from . import ops

# The functions of the original extension, by their names.
pbm_alloc = ext.pbm_alloc
pbm_push_bytes_cuda = ext.pbm_push_bytes_cuda
pbm_pop_bulk_cuda = ext.pbm_pop_bulk_cuda
pbm_pop_bulk_async = ext.pbm_pop_bulk_async
pbm_push_async = ext.pbm_push_async
header_bytes = ext.header_bytes
mailboxes = ext.mailboxes

# NVTX reads NVTX_INJECTION64_PATH once, at its first range: point it at CUPTI now (when unset) so
# that NVTX ranges (pbm's, torch.cuda.nvtx's) name the code in violation reports.
if _os.environ.get("PBM_NVTX_INJECTION", "1") != "0":
    ext.ensure_nvtx_injection()
# PBM_MODE in the environment asks for telemetry: start it (CUPTI attaches now).
if _os.environ.get("PBM_MODE"):
    telemetry.start()

__all__ = [
    "HeaderError",
    "Mailbox",
    "PopResult",
    "ViolationError",
    "as_bytes",
    "expect",
    "focus_stream",
    "forbid",
    "header_bytes",
    "mailboxes",
    "ops",
    "pbm_alloc",
    "pbm_pop_bulk_async",
    "pbm_pop_bulk_cuda",
    "pbm_push_async",
    "pbm_push_bytes_cuda",
    "peripheral_stream",
    "priority_range",
    "stream_class",
    "telemetry",
]
