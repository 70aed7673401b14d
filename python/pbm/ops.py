"""torch.library custom ops ``torch.ops.pbm.push`` and ``torch.ops.pbm.pop``, with fake kernels, so
functions that use the mailbox trace under torch.compile (and pass torch.library.opcheck).

* ``push(hdr, payload, rec) -> count``: mutates hdr and payload; count is a 0-dim int64 CUDA tensor.
* ``pop(hdr, payload, max_records, record_stride) -> (buffer, count)``: mutates hdr; buffer has
  max_records x record_stride bytes (static shape: zeros past count x stride), count is a 0-dim int64
  CUDA tensor written by the kernel. The data-dependent slice is left to the caller
  (``buffer[: int(count) * stride]`` synchronises; keep the count on the device where you can).

Neither waits for the GPU. Under torch.compile the header is a mutated input, so the ops stay in the
order the program gave them.
"""


from typing import Tuple

import torch

from ._ext import ext


@torch.library.custom_op("pbm::push", mutates_args=("hdr", "payload"))
def push(hdr: torch.Tensor, payload: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    return ext.pbm_push_bytes_cuda(hdr, payload, rec)


@push.register_fake
def _push_fake(hdr, payload, rec):
    return hdr.new_empty((), dtype=torch.int64)


@torch.library.custom_op("pbm::pop", mutates_args=("hdr",))
def pop(hdr: torch.Tensor, payload: torch.Tensor, max_records: int, record_stride: int) -> Tuple[torch.Tensor, torch.Tensor]:
    buffer, count, _handle = ext.pbm_pop_bulk_async(hdr, payload, max_records, record_stride, True)
    return buffer, count


@pop.register_fake
def _pop_fake(hdr, payload, max_records, record_stride):
    buffer = hdr.new_empty((max_records * record_stride,))
    count = hdr.new_empty((), dtype=torch.int64)
    return buffer, count


__all__ = ["push", "pop"]
