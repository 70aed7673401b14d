"""Code written against the original extension runs unchanged: `import mailbox_ext` (no `import pbm`
first), hdr and payload from mailbox_ext.pbm_alloc, single-record pushes with pbm_push_bytes_cuda and
bulk pops with pbm_pop_bulk_cuda, each returning exactly count x stride bytes in FIFO order. The
original usage runs in a fresh interpreter so that nothing has imported pbm before it."""

import os
import subprocess
import sys
from pathlib import Path

from _env import require  # noqa: E402

torch, pbm = require()

# As a user of the original extension wrote it (plus the checks).
ORIGINAL = r"""
import sys
assert "pbm" not in sys.modules and "mailbox_ext" not in sys.modules

import torch
import mailbox_ext

STRIDE = 16
hdr, payload = mailbox_ext.pbm_alloc(64, STRIDE)
for i in range(16):
    # record i holds the bytes 16*i .. 16*i+15: contents, order and boundaries are all visible
    rec = torch.arange(i * STRIDE, (i + 1) * STRIDE, device="cuda").to(torch.uint8)
    mailbox_ext.pbm_push_bytes_cuda(hdr, payload, rec)
first = mailbox_ext.pbm_pop_bulk_cuda(hdr, payload, 8, STRIDE)
second = mailbox_ext.pbm_pop_bulk_cuda(hdr, payload, 8, STRIDE)
empty = mailbox_ext.pbm_pop_bulk_cuda(hdr, payload, 8, STRIDE)

for out in (first, second, empty):
    assert out.is_cuda and out.dtype == torch.uint8 and out.dim() == 1, (out.device, out.dtype, out.shape)
assert first.numel() == 8 * STRIDE and second.numel() == 8 * STRIDE, (first.numel(), second.numel())
assert empty.numel() == 0, empty.numel()
expect = torch.arange(256).to(torch.uint8)
assert torch.equal(first.cpu(), expect[:128]), first.cpu().view(-1, STRIDE)[:, 0].tolist()
assert torch.equal(second.cpu(), expect[128:]), second.cpu().view(-1, STRIDE)[:, 0].tolist()

# One module, one state: mailbox_ext is pbm's compiled module itself, loaded once.
pbm = sys.modules["pbm"]
assert mailbox_ext is pbm.ext is pbm.mailbox_ext, (mailbox_ext, pbm.ext)
assert mailbox_ext.__file__.endswith(".so"), mailbox_ext.__file__
print("original API OK", mailbox_ext.__file__)
"""


def _package_dir():
    """The directory that holds the pbm package under test (PYTHONPATH or what _env.py added)."""
    return str(Path(pbm.__file__).resolve().parents[1])


def test_original_usage_in_a_fresh_interpreter(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_dir(), env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", ORIGINAL], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "original API OK" in proc.stdout, proc.stdout + proc.stderr


def test_import_mailbox_ext_after_pbm_is_the_same_module(stride):
    import mailbox_ext

    assert mailbox_ext is pbm.ext
    assert mailbox_ext.pbm_push_bytes_cuda is pbm.pbm_push_bytes_cuda
    # A mailbox made through pbm, fed through mailbox_ext and drained through pbm: one state.
    mb = pbm.Mailbox(16, stride, name="test_original_api")
    rec = torch.arange(stride, device="cuda").to(torch.uint8)
    mailbox_ext.pbm_push_bytes_cuda(mb.hdr, mb.payload, rec)
    out = mb.pop(4)
    assert out.shape == (1, stride) and torch.equal(out.reshape(-1), rec)
