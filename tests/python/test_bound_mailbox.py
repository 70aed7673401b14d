"""pbm.Mailbox through its bound C++ object (mailbox_ext.BoundMailbox): the same errors and results as
the tensor functions, one mailbox shared with them and with torch.ops.pbm, use from two threads at
once, and the C++ reference cycle of bench/torch_bench.py."""

import threading
import time

import pytest

from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode, make_records  # noqa: E402


def test_mailbox_holds_the_bound_object(stride):
    mb = pbm.Mailbox(32, stride)
    bound = mb._bound()
    assert isinstance(bound, pbm.ext.BoundMailbox)
    assert bound.capacity == 32 and bound.stride == stride and bound.device == mb.device.index
    assert bound.hdr.data_ptr() == mb.hdr.data_ptr() and bound.payload.data_ptr() == mb.payload.data_ptr()


def test_errors_are_those_of_the_tensor_functions(stride):
    mb = pbm.Mailbox(16, stride)
    mb.push(make_records(4, stride))
    hdr_before = mb.hdr.clone()
    with pytest.raises(ValueError, match="rec must be a CUDA tensor"):
        mb.push(make_records(1, stride).cpu())
    with pytest.raises(ValueError, match="torch.uint8"):
        mb.push(torch.zeros(stride, device="cuda", dtype=torch.float32))
    with pytest.raises(ValueError, match="contiguous"):
        mb.push(make_records(4, stride)[::2])
    with pytest.raises(ValueError, match="not a multiple of the record stride"):
        mb.push(make_records(2, stride).reshape(-1)[:-4])
    with pytest.raises(ValueError, match="max_records"):
        mb.pop(-1)
    with pytest.raises(ValueError, match="max_records"):
        mb.pop_async(-1)
    with pytest.raises(ValueError, match="wait mode"):
        mb.pop(1, wait="nap")
    assert torch.equal(mb.hdr, hdr_before), "a refused call changed the header"
    assert [i for _, i in decode(mb.pop(16), stride)] == [0, 1, 2, 3]


def test_binding_checks_the_tensors(stride):
    hdr, payload = pbm.pbm_alloc(8, stride)
    with pytest.raises(ValueError, match="in use with another payload"):
        pbm.ext.BoundMailbox(hdr, payload.clone())
    with pytest.raises(ValueError, match="not a multiple of the capacity"):
        pbm.ext.BoundMailbox(hdr, payload[:-1])
    blank = torch.zeros(pbm.header_bytes(8), device="cuda", dtype=torch.uint8)
    with pytest.raises(pbm.HeaderError, match="not initialised"):
        pbm.ext.BoundMailbox(blank, torch.zeros(8 * stride, device="cuda", dtype=torch.uint8))
    assert int(blank.count_nonzero()) == 0


def test_results_match_the_tensor_functions(stride):
    mb = pbm.Mailbox(64, stride)
    count = mb.push(make_records(6, stride))
    assert count.is_cuda and count.dtype == torch.int64 and count.dim() == 0 and int(count) == 6
    out = mb.pop(8)  # fewer than asked: the sizes say how many
    assert out.shape == (6, stride) and out.dtype == torch.uint8 and out.is_cuda and out.is_contiguous()
    assert out.reshape(-1).numel() == 6 * stride and torch.equal(out.clone(), out)
    assert [i for _, i in decode(out, stride)] == list(range(6))
    assert mb.pop(8).shape == (0, stride) and mb.pop(0).shape == (0, stride)
    assert mb.pop(1000).shape == (0, stride)  # more than the capacity is clamped, as before


def test_one_mailbox_for_the_bound_object_the_tensor_functions_and_the_ops(stride):
    mb = pbm.Mailbox(64, stride, name="bound_shared")
    mb.push(make_records(3, stride, start=0))
    pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, make_records(3, stride, start=3))
    torch.ops.pbm.push(mb.hdr, mb.payload, make_records(3, stride, start=6))
    first = mb.pop(4)
    second = pbm.pbm_pop_bulk_cuda(mb.hdr, mb.payload, 2, stride)
    buffer, popped = torch.ops.pbm.pop(mb.hdr, mb.payload, 8, stride)
    assert int(popped) == 3
    seen = decode(first, stride) + decode(second, stride) + decode(buffer[: 3 * stride], stride)
    assert [i for _, i in seen] == list(range(9))
    stats = mb.stats()  # one pbm::Mailbox: its counters saw every call
    assert stats["pushed"] == 9 and stats["popped"] == 9
    assert [m["name"] for m in pbm.mailboxes()].count("bound_shared") == 1


def test_pop_async_result(stride):
    mb = pbm.Mailbox(16, stride)
    mb.push(make_records(5, stride, start=100))
    result = mb.pop_async(8)
    assert result.buffer.numel() == 8 * stride and result.count.dim() == 0 and result.count.dtype == torch.int64
    assert result.wait() == 5 and result.ready() and int(result.count) == 5
    assert [i for _, i in decode(result.records(), stride)] == list(range(100, 105))
    count, handle = mb.push_async(make_records(20, stride))
    assert handle.wait() == 16 and int(count) == 16 and handle.requested == 20


def test_close_then_use_again(stride):
    mb = pbm.Mailbox(16, stride)
    mb.push(make_records(2, stride))
    mb.close()
    mb.push(make_records(1, stride, start=2))  # adopted again on first use
    assert [i for _, i in decode(mb.pop(8), stride)] == [0, 1, 2]
    assert mb.stats()["capacity"] == 16


def test_producer_and_consumer_threads(stride):
    mb = pbm.Mailbox(256, stride)
    batches, per_batch = 50, 4
    total = batches * per_batch
    popped, errors = [], []

    def produce():
        try:
            stream = pbm.peripheral_stream(index=3)
            with torch.cuda.stream(stream):
                for k in range(batches):
                    mb.push(make_records(per_batch, stride, start=per_batch * k))
            stream.synchronize()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def consume():
        try:
            got, deadline = 0, time.monotonic() + 60
            while got < total and time.monotonic() < deadline:
                out = mb.pop(16, wait="spin")
                got += out.shape[0]
                if out.shape[0]:
                    popped.append(out)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    torch.cuda.synchronize()
    indices = [i for out in popped for _, i in decode(out, stride)]
    assert indices == list(range(total))  # every record once, in order


def test_two_consumer_threads(stride):
    mb = pbm.Mailbox(1024, stride)
    total = 512
    mb.push(make_records(total, stride))
    torch.cuda.synchronize()
    popped, errors = {0: [], 1: []}, []

    def consume(me):
        try:
            while True:
                out = mb.pop(8, wait="spin")
                if out.shape[0] == 0:
                    return
                popped[me].append(out)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(me,)) for me in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    torch.cuda.synchronize()
    mine = {me: [i for out in outs for _, i in decode(out, stride)] for me, outs in popped.items()}
    for me in (0, 1):
        assert mine[me] == sorted(mine[me])  # each consumer sees FIFO order
    assert sorted(mine[0] + mine[1]) == list(range(total))  # none lost, none twice


def test_cxx_reference_cycle(stride):
    mb = pbm.Mailbox(64, stride)
    records = make_records(8, stride, start=7)
    dst = torch.zeros(8 * stride, device="cuda", dtype=torch.uint8)
    count = torch.zeros((), device="cuda", dtype=torch.int64)
    ns = pbm.ext._cxx_cycle_ns(mb._bound(), records, dst, 5, count)
    assert len(ns) == 5 and all(isinstance(t, int) and t > 0 for t in ns)
    assert torch.equal(dst.view(8, stride), records) and int(count) == 8
    assert pbm.ext._cxx_cycle_ns(mb._bound(), records, dst, 3) and len(mb.pop(64)) == 0  # no count tensor
    with pytest.raises(ValueError, match="dst"):
        pbm.ext._cxx_cycle_ns(mb._bound(), records, dst[: stride], 1)


def test_cxx_reference_cycle_checks_its_counts(stride):
    small = pbm.Mailbox(4, stride)  # 8 records do not fit: the pop finds 4
    dst = torch.zeros(8 * stride, device="cuda", dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="popped 4 records, expected 8"):
        pbm.ext._cxx_cycle_ns(small._bound(), make_records(8, stride), dst, 2)
