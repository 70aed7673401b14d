"""Implicit synchronisations under pbm.forbid: frees, page-locked allocations and "async" copies the
host waits for are syncs with their own API names (telemetry/README.md, "APIs watched"); the work
that never makes the host wait stays clean."""

import os

import pytest

from _env import require  # noqa: E402

torch, pbm = require()

_ALLOC_CONF = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")


def _syncs(violations, kind):
    return [v for v in violations if v.get("kind") != "memcpy" and v.get("sync_api") == kind]


def _describe(violations):
    return [(v.get("rule"), v.get("api"), v.get("sync_api")) for v in violations]


@pytest.mark.skipif("expandable_segments:True" in _ALLOC_CONF or "cudaMallocAsync" in _ALLOC_CONF,
                    reason="this allocator configuration does not return memory with cudaFree")
def test_empty_cache_after_free_is_caught_with_the_python_line(telemetry_attached):
    big = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    with pytest.raises(pbm.ViolationError) as caught:
        with pbm.forbid(sync=True):
            del big
            torch.cuda.empty_cache()  # the cached block goes back to CUDA: cudaFree waits for the device
    frees = _syncs(caught.value.violations, "free")
    assert frees, _describe(caught.value.violations)
    assert frees[0]["api"] == "cudaFree"
    assert frees[0]["rule"] == "sync_forbidden"
    if pbm.ext.HAVE_PYTHON_STACKS:
        assert "torch.cuda.empty_cache()" in "".join(frees[0]["python_stack"]), frees[0]["python_stack"]
        assert "test_implicit_sync.py" in str(caught.value)


def test_pinned_allocation_is_caught_as_host_alloc(telemetry_attached):
    host_empty_cache = getattr(torch._C, "_host_emptyCache", None)
    if host_empty_cache is not None:
        host_empty_cache()  # no cached pinned block to reuse: the allocation must reach CUDA
    with pytest.raises(pbm.ViolationError) as caught:
        with pbm.forbid(sync=True):
            pinned = torch.empty((3 << 20) + 4096, dtype=torch.uint8, pin_memory=True)
    kinds = {v.get("sync_api") for v in caught.value.violations}
    # The caching host allocator uses cudaHostAlloc, or cudaHostRegister when configured to.
    assert kinds & {"host_alloc", "host_register"}, _describe(caught.value.violations)
    if "pinned_use_cuda_host_register:True" not in _ALLOC_CONF:
        allocs = _syncs(caught.value.violations, "host_alloc")
        assert allocs and allocs[0]["api"] in ("cudaHostAlloc", "cudaMallocHost"), _describe(caught.value.violations)
        if pbm.ext.HAVE_PYTHON_STACKS:
            assert "pin_memory=True" in "".join(allocs[0]["python_stack"])
    del pinned


def test_device_to_pageable_non_blocking_copy_is_a_blocking_copy_sync(telemetry_attached):
    x = torch.ones(1 << 20, device="cuda")
    pageable = torch.empty(1 << 20)  # not pinned: the "async" copy returns only once it is done
    assert not pageable.is_pinned()
    torch.cuda.synchronize()
    before = pbm.telemetry.totals()
    with pytest.raises(pbm.ViolationError) as caught:
        with pbm.forbid(memcpy=False, sync=True):
            pageable.copy_(x, non_blocking=True)
    blocking = _syncs(caught.value.violations, "memcpy_blocking")
    assert blocking, _describe(caught.value.violations)
    assert blocking[0]["api"] == "cudaMemcpyAsync"
    assert blocking[0]["rule"] == "sync_forbidden"
    if pbm.ext.HAVE_PYTHON_STACKS:
        assert "pageable.copy_(x, non_blocking=True)" in "".join(blocking[0]["python_stack"])
    assert torch.equal(pageable, torch.ones(1 << 20))
    after = pbm.telemetry.totals()
    # The copy still counts as a copy (unexpected: D2H), and now as an unexpected sync too.
    assert after["memcpy_unexpected"] >= before["memcpy_unexpected"] + 1, (before, after)
    assert after["sync_unexpected"] >= before["sync_unexpected"] + 1, (before, after)


def test_work_that_never_blocks_the_host_stays_clean(telemetry_attached):
    n = 1 << 20
    x = torch.ones(n, device="cuda")
    pinned = torch.ones(n, pin_memory=True)
    side = torch.cuda.Stream()

    def sync_free_work():
        # The caching allocator reuses the block freed just before: no cudaMalloc, no cudaFree.
        y = torch.empty(n, device="cuda")
        torch.mul(x, 2, out=y)  # a kernel
        del y
        event = torch.cuda.Event()
        event.record()
        side.wait_stream(torch.cuda.current_stream())  # cudaEventRecord + cudaStreamWaitEvent
        side.wait_event(event)
        event.query()
        side.query()
        return event

    # Warm-up outside the guards: first use of kernels, streams and the allocator's blocks.
    sync_free_work()
    on_device = pinned.to("cuda", non_blocking=True)
    d2d = torch.empty_like(x)
    d2d.copy_(x)
    torch.cuda.synchronize()
    del on_device

    with pbm.forbid(sync=True):  # memcpy forbidden too: nothing here copies
        sync_free_work()
    with pbm.forbid(memcpy=False, sync=True):
        sync_free_work()
        on_device = pinned.to("cuda", non_blocking=True)  # pinned host to device: asynchronous
        d2d.copy_(x)  # device to device
        del on_device
    torch.cuda.synchronize()
    assert torch.equal(d2d, x)
