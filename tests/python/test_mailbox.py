"""Round trips through pbm.Mailbox and the raw mailbox_ext functions: values, FIFO order, counts,
drops when full, pop on empty, async pops."""

import pytest

from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode, make_records  # noqa: E402


def test_round_trip_fifo_and_counts(stride):
    mb = pbm.Mailbox(64, stride, name="test_round_trip")
    counts = [mb.push(make_records(n, stride, start=s)) for n, s in ((5, 0), (7, 5), (3, 12))]
    assert [int(c) for c in counts] == [5, 7, 3]
    assert all(c.is_cuda and c.dtype == torch.int64 and c.dim() == 0 for c in counts)
    first = mb.pop(4)
    rest = mb.pop(100)
    assert first.shape == (4, stride) and rest.shape == (11, stride)
    assert first.dtype == torch.uint8 and first.is_cuda
    assert [i for _, i in decode(first, stride) + decode(rest, stride)] == list(range(15))
    stats = mb.stats()
    assert stats["pushed"] == 15 and stats["popped"] == 15 and stats["dropped"] == 0
    assert stats["capacity"] == 64 and stats["stride"] == stride
    assert len(mb) == 0


def test_raw_functions_round_trip(stride):
    hdr, payload = pbm.pbm_alloc(32, stride)
    assert hdr.dtype == torch.uint8 and payload.dtype == torch.uint8
    assert hdr.numel() == pbm.header_bytes(32) and payload.numel() == 32 * stride
    one = make_records(1, stride, start=41).reshape(-1)  # a single record
    many = make_records(6, stride, start=42)
    assert int(pbm.pbm_push_bytes_cuda(hdr, payload, one)) == 1
    assert int(pbm.pbm_push_bytes_cuda(hdr, payload, many)) == 6
    out = pbm.pbm_pop_bulk_cuda(hdr, payload, 10, stride)
    assert out.dim() == 1 and out.numel() == 7 * stride  # exactly count x stride bytes
    assert [i for _, i in decode(out, stride)] == list(range(41, 48))


def test_wraps_around_many_times(stride):
    mb = pbm.Mailbox(8, stride)
    seen = []
    for k in range(50):  # 150 records through 8 slots
        assert int(mb.push(make_records(3, stride, start=3 * k))) == 3
        seen += [i for _, i in decode(mb.pop(3), stride)]
    assert seen == list(range(150))


def test_full_mailbox_drops_and_never_overwrites(stride):
    mb = pbm.Mailbox(8, stride)
    assert int(mb.push(make_records(5, stride, start=0))) == 5
    assert int(mb.push(make_records(6, stride, start=5))) == 3  # 3 fit, 3 dropped
    assert int(mb.push(make_records(2, stride, start=11))) == 0
    out = mb.pop(100)
    assert [i for _, i in decode(out, stride)] == list(range(8))  # the first 8, in order
    stats = mb.stats()
    assert stats["dropped"] == 5 and stats["pushed"] == 8 and stats["popped"] == 8


def test_pop_on_empty(stride):
    mb = pbm.Mailbox(16, stride)
    out = mb.pop(4)
    assert out.shape == (0, stride)
    flat = pbm.pbm_pop_bulk_cuda(mb.hdr, mb.payload, 4, stride)
    assert flat.numel() == 0 and flat.is_cuda
    result = mb.pop_async(4)
    assert result.wait() == 0
    assert int(result.count) == 0
    assert mb.pop(0).shape == (0, stride)


def test_pop_async_returns_buffer_count_and_handle(stride):
    mb = pbm.Mailbox(16, stride)
    mb.push(make_records(5, stride, start=100))
    result = mb.pop_async(8)
    assert result.buffer.numel() == 8 * stride  # the full buffer: static shape
    assert result.count.dim() == 0 and result.count.is_cuda and result.count.dtype == torch.int64
    assert result.wait() == 5
    assert result.ready()
    assert int(result.count) == 5
    assert [i for _, i in decode(result.records(), stride)] == list(range(100, 105))
    buffer, count, handle = pbm.pbm_pop_bulk_async(mb.hdr, mb.payload, 4, stride)
    assert handle.wait() == 0 and buffer.numel() == 4 * stride


def test_push_async_handle(stride):
    mb = pbm.Mailbox(4, stride)
    count, handle = mb.push_async(make_records(6, stride))
    assert handle.wait() == 4 and int(count) == 4 and handle.requested == 6


def test_wait_modes(stride):
    mb = pbm.Mailbox(16, stride)
    for mode in ("spin", "block", "spin_then_block"):
        mb.push(make_records(2, stride))
        assert mb.pop(2, wait=mode).shape == (2, stride)
    with pytest.raises(ValueError, match="wait mode"):
        mb.pop(1, wait="nap")


def test_adopts_any_initialised_header_once(stride):
    hdr, payload = pbm.pbm_alloc(16, stride)
    clone_hdr, clone_payload = hdr.clone(), payload.clone()  # a copy of an initialised mailbox
    pbm.pbm_push_bytes_cuda(hdr, payload, make_records(2, stride))
    assert pbm.pbm_pop_bulk_cuda(clone_hdr, clone_payload, 4, stride).numel() == 0  # the copy was empty
    assert pbm.pbm_pop_bulk_cuda(hdr, payload, 4, stride).numel() == 2 * stride


def test_registry_and_close(stride):
    mb = pbm.Mailbox(16, stride, name="registry_probe")
    mb.push(make_records(3, stride))
    names = [m["name"] for m in pbm.mailboxes()]
    assert "registry_probe" in names
    mb.close()
    assert "registry_probe" not in [m["name"] for m in pbm.mailboxes()]
    assert mb.pop(8).shape == (3, stride)  # adopted again: records still there


def test_records_of_other_dtypes_via_as_bytes():
    mb = pbm.Mailbox(16, 8)
    x = torch.arange(10, device="cuda", dtype=torch.float32)  # 5 records of two floats
    assert int(mb.push(pbm.as_bytes(x))) == 5
    out = mb.pop(5)
    assert torch.equal(out.reshape(-1).view(torch.float32), x)
