"""pbm.Mailbox: a GPU mailbox of fixed-stride records over two uint8 CUDA tensors.

Every operation runs on PyTorch's current stream of the mailbox's device. ``push`` never waits.
``pop`` waits for its own count only, through pinned mapped memory (never ``.cpu()``/``.item()``,
never a device-to-host copy); ``pop_async`` does not wait at all. Bad input raises ``ValueError``
(``pbm.HeaderError`` for a header the device rejects) and changes nothing.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from ._ext import ext

WAIT_MODES = ("spin", "block", "spin_then_block")


def _device(device: Union[None, int, str, torch.device]) -> torch.device:
    if device is None:
        return torch.device("cuda", torch.cuda.current_device())
    dev = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
    if dev.type != "cuda":
        raise ValueError(f"pbm: a mailbox lives on a CUDA device, not {dev}")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def as_bytes(t: torch.Tensor) -> torch.Tensor:
    """A flat uint8 view of a contiguous tensor's bytes (records for ``push``). No copy, no sync."""
    if not t.is_contiguous():
        raise ValueError("pbm: as_bytes needs a contiguous tensor (call .contiguous() first)")
    flat = t.reshape(-1)
    return flat if flat.dtype == torch.uint8 else flat.view(torch.uint8)


class PopResult:
    """An asynchronous pop: ``buffer`` (max_records x stride bytes), ``count`` (0-dim int64 CUDA
    tensor written by the kernel) and the handle. Only ``wait``/``records`` wait, and only for this pop.
    Bytes of ``buffer`` past ``count`` records are unspecified: mask them with ``count`` (see
    examples/torch_pipeline.py) or take ``records()``."""

    __slots__ = ("buffer", "count", "handle", "stride")

    def __init__(self, buffer: torch.Tensor, count: torch.Tensor, handle, stride: int):
        self.buffer = buffer
        self.count = count
        self.handle = handle
        self.stride = stride

    def ready(self) -> bool:
        """True once the kernel published its count. Reads pinned memory; no CUDA call."""
        return self.handle.ready()

    def wait(self, mode: str = "spin_then_block", spin_ns: int = 200_000) -> int:
        """The number of records popped (waits for this pop only)."""
        return self.handle.wait(mode, spin_ns)

    def records(self, mode: str = "spin_then_block", spin_ns: int = 200_000) -> torch.Tensor:
        """The popped records as a [count, stride] uint8 view of the buffer (waits for this pop)."""
        n = self.wait(mode, spin_ns)
        return self.buffer[: n * self.stride].view(n, self.stride)

    def wait_on(self, stream: Optional[torch.cuda.Stream] = None) -> None:
        """Makes `stream` (default: the current stream) wait for this pop. Does not block the host."""
        stream = torch.cuda.current_stream(self.buffer.device) if stream is None else stream
        self.handle.wait_on(stream.cuda_stream)


class Mailbox:
    """A mailbox of ``capacity`` records of ``stride`` bytes (a multiple of 4) on a CUDA device.

    Thread-safety: push/pop/pop_async/stats may be called from several threads and streams at once.
    The header and payload tensors are ``hdr`` and ``payload``; the raw functions of ``mailbox_ext``
    (``pbm.pbm_push_bytes_cuda`` ...) and the ``torch.ops.pbm`` ops accept them too, and reach the
    same mailbox.

    A Mailbox holds a bound C++ object (``mailbox_ext.BoundMailbox``) with the mailbox, its geometry
    and device, so that a call checks its one tensor argument and launches: nothing is derived from
    tensor sizes or looked up per call.
    """

    def __init__(self, capacity: int, stride: int, device=None, name: str = "mailbox"):
        dev = _device(device)
        self.device = dev
        self.name = name
        self.capacity = int(capacity)
        self.stride = int(stride)
        with torch.cuda.device(dev):
            self.hdr, self.payload = ext.pbm_alloc(self.capacity, self.stride, name, dev.index)
        self._impl = ext.BoundMailbox(self.hdr, self.payload)  # pbm_alloc adopted it: no sync

    def _bound(self):
        """The bound object; after close(), the tensors adopted again (validates the header: syncs once)."""
        impl = self._impl
        if impl is None:
            impl = self._impl = ext.BoundMailbox(self.hdr, self.payload)
        return impl

    # ---------------------------------------------------------------- producers
    def push(self, records: torch.Tensor) -> torch.Tensor:
        """Pushes records (contiguous uint8 CUDA, n x stride bytes; [n, stride] or flat) on the current
        stream. Returns the count pushed as a 0-dim int64 CUDA tensor; what did not fit is dropped and
        counted. Never waits."""
        impl = self._impl
        return (impl if impl is not None else self._bound()).push(records)

    def push_async(self, records: torch.Tensor):
        """Like push, plus a handle: ``handle.wait()`` gives the count on the host (waits for this push)."""
        return self._bound().push_async(records)

    # ---------------------------------------------------------------- consumers
    def pop(self, max_records: int, wait: str = "spin_then_block", spin_ns: int = 200_000) -> torch.Tensor:
        """Pops up to max_records records (FIFO). Returns a [count, stride] uint8 CUDA tensor.
        Waits for this pop's count only (``wait``: 'spin', 'block' or 'spin_then_block')."""
        impl = self._impl
        return (impl if impl is not None else self._bound()).pop(int(max_records), wait, int(spin_ns))

    def pop_async(self, max_records: int) -> PopResult:
        """Launches a pop and returns at once (no wait): see PopResult."""
        buffer, count, handle = self._bound().pop_async(int(max_records))
        return PopResult(buffer, count, handle, self.stride)

    # ---------------------------------------------------------------- state
    def stats(self) -> dict:
        """pushed, popped, dropped, pop_calls, occupancy, capacity, stride: from the snapshot the last
        pbm launch left in mapped host memory (no CUDA call, no sync). Launches still in flight are not
        counted yet; ``refresh_stats()`` launches a snapshot on the current stream."""
        return self._bound().stats()

    def refresh_stats(self) -> None:
        self._bound().refresh_stats()

    def __len__(self) -> int:
        """Occupancy (records in the mailbox or being popped), as of the last pbm launch."""
        return int(self.stats()["occupancy"])

    def close(self) -> None:
        """Forgets pbm's host state for this mailbox (frees its completion pool: cudaFree waits for the
        device). The tensors stay valid; a later operation adopts them again (and synchronises once)."""
        self._impl = None  # the cache's reference is then the last one (unless a call is in flight)
        ext.pbm_release(self.hdr)

    def __repr__(self) -> str:
        return f"pbm.Mailbox(capacity={self.capacity}, stride={self.stride}, device='{self.device}', name='{self.name}')"
