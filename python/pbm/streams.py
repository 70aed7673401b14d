"""Focus and peripheral streams as torch.cuda.Stream objects.

A focus stream has the device's greatest priority, a peripheral stream its least (from
cudaDeviceGetStreamPriorityRange); pbm splits every metric by this class. The streams are created by
pbm (torch's own pool streams stop short of the greatest priority on H100-class GPUs, so
``torch.cuda.Stream(priority=...)`` would count as peripheral) and wrapped with
``torch.cuda.ExternalStream``. They live as long as the process.
"""

from __future__ import annotations

import threading
from typing import Dict, Tuple

import torch

from ._ext import ext

_lock = threading.Lock()
_streams: Dict[Tuple[int, bool, int], torch.cuda.Stream] = {}


def _index(device) -> int:
    if device is None:
        return torch.cuda.current_device()
    if isinstance(device, int):
        return device
    dev = torch.device(device)
    if dev.type != "cuda":
        raise ValueError(f"pbm: streams live on CUDA devices, not {dev}")
    return torch.cuda.current_device() if dev.index is None else dev.index


def _stream(device, focus: bool, index: int) -> torch.cuda.Stream:
    dev = _index(device)
    key = (dev, focus, int(index))
    with _lock:
        stream = _streams.get(key)
        if stream is None:
            handle = ext.stream(dev, focus, int(index))
            stream = torch.cuda.ExternalStream(handle, device=torch.device("cuda", dev))
            _streams[key] = stream
        return stream


def focus_stream(device=None, index: int = 0) -> torch.cuda.Stream:
    """pbm's focus stream number `index` on `device` (default: current): greatest priority,
    non-blocking. The same object for the same arguments."""
    return _stream(device, True, index)


def peripheral_stream(device=None, index: int = 0) -> torch.cuda.Stream:
    """pbm's peripheral stream number `index` on `device`: least priority, non-blocking."""
    return _stream(device, False, index)


def priority_range(device=None) -> Tuple[int, int]:
    """(least, greatest) stream priority of the device; greatest is numerically lowest."""
    return tuple(ext.priority_range(_index(device)))


def stream_class(stream: torch.cuda.Stream) -> str:
    """'focus' when the stream has the device's greatest priority, else 'peripheral'."""
    return ext.stream_class(stream.cuda_stream)
