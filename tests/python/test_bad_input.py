"""Every bad input raises a Python exception with a clear message and changes nothing."""

import pytest

from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode, make_records  # noqa: E402


@pytest.fixture
def loaded(stride):
    """A mailbox holding records 0..3, and a check that it still holds exactly them."""
    mb = pbm.Mailbox(16, stride)
    mb.push(make_records(4, stride))
    hdr_before = mb.hdr.clone()

    def unchanged():
        assert torch.equal(mb.hdr, hdr_before), "the header changed"
        assert [i for _, i in decode(mb.pop(16), stride)] == [0, 1, 2, 3]

    return mb, unchanged


def test_cpu_tensor(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="must be a CUDA tensor"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, make_records(1, stride).cpu())
    with pytest.raises(ValueError, match="hdr must be a CUDA tensor"):
        pbm.pbm_pop_bulk_cuda(mb.hdr.cpu(), mb.payload, 1, stride)
    unchanged()


def test_wrong_dtype(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="torch.uint8"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, torch.zeros(stride, device="cuda", dtype=torch.float32))
    with pytest.raises(ValueError, match="torch.uint8"):
        pbm.pbm_pop_bulk_cuda(mb.hdr, mb.payload.view(torch.int32), 1, stride)
    unchanged()


def test_non_contiguous(loaded, stride):
    mb, unchanged = loaded
    wide = make_records(4, stride)
    with pytest.raises(ValueError, match="contiguous"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, wide[::2])
    with pytest.raises(ValueError, match="contiguous"):
        mb.push(wide.t())
    unchanged()


def test_size_not_a_multiple_of_stride(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="not a multiple of the record stride"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, make_records(2, stride).reshape(-1)[:-4])
    unchanged()


def test_stride_mismatch(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="record_stride"):
        pbm.pbm_pop_bulk_cuda(mb.hdr, mb.payload, 2, stride * 2)
    with pytest.raises(ValueError, match="record_stride"):
        pbm.pbm_pop_bulk_async(mb.hdr, mb.payload, 2, stride + 4)
    unchanged()


def test_header_initialised_for_another_stride(stride):
    hdr, payload = pbm.pbm_alloc(8, stride)
    other_payload = torch.zeros(8 * stride * 2, device="cuda", dtype=torch.uint8)  # implies 2 x stride
    hdr_before = hdr.clone()
    with pytest.raises(pbm.HeaderError, match="stride"):
        pbm.pbm_push_bytes_cuda(hdr.clone(), other_payload, make_records(1, stride * 2))
    assert torch.equal(hdr, hdr_before) and int(other_payload.count_nonzero()) == 0


def test_payload_size_inconsistent_with_header(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="not a multiple of the capacity"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload[:-1], make_records(1, stride))
    with pytest.raises(ValueError, match="a header for C records"):
        pbm.pbm_push_bytes_cuda(mb.hdr[:-3], mb.payload, make_records(1, stride))
    unchanged()


def test_header_used_with_another_payload(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="in use with another payload"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload.clone(), make_records(1, stride))
    unchanged()


def test_uninitialised_header(stride):
    hdr = torch.zeros(pbm.header_bytes(8), device="cuda", dtype=torch.uint8)
    payload = torch.zeros(8 * stride, device="cuda", dtype=torch.uint8)
    with pytest.raises(pbm.HeaderError, match="not initialised"):
        pbm.pbm_push_bytes_cuda(hdr, payload, make_records(2, stride))
    with pytest.raises(ValueError, match="not initialised"):  # HeaderError is a ValueError
        pbm.pbm_pop_bulk_cuda(hdr, payload, 2, stride)
    assert int(hdr.count_nonzero()) == 0 and int(payload.count_nonzero()) == 0


def test_corrupted_header_is_rejected_by_the_device(loaded, stride):
    mb, unchanged = loaded
    magic = mb.hdr[0].clone()
    mb.hdr[0] ^= 0xFF  # corrupt the magic of a mailbox pbm already knows
    with pytest.raises(pbm.HeaderError, match="bad magic"):
        mb.pop(2)
    mb.push(make_records(1, stride, start=99))  # refused by the device, silently: push never waits
    mb.hdr[0] = magic
    unchanged()


def test_different_devices(stride):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    mb = pbm.Mailbox(8, stride, device=0)
    with pytest.raises(ValueError, match="one device"):
        pbm.pbm_push_bytes_cuda(mb.hdr, mb.payload, make_records(1, stride, device="cuda:1"))


def test_bad_geometry():
    with pytest.raises(ValueError):
        pbm.pbm_alloc(0, 16)
    with pytest.raises(ValueError):
        pbm.pbm_alloc(16, 0)
    with pytest.raises(ValueError):
        pbm.pbm_alloc(16, 6)  # not a multiple of 4
    with pytest.raises(ValueError):
        pbm.pbm_alloc(1 << 40, 16)
    with pytest.raises(ValueError):
        pbm.Mailbox(16, 16, device="cpu")


def test_negative_max_records(loaded, stride):
    mb, unchanged = loaded
    with pytest.raises(ValueError, match="max_records"):
        pbm.pbm_pop_bulk_cuda(mb.hdr, mb.payload, -1, stride)
    unchanged()
