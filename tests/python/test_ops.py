"""torch.ops.pbm.push / torch.ops.pbm.pop: eager behaviour and torch.library.opcheck."""


from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode, make_records  # noqa: E402


def test_ops_are_registered():
    assert hasattr(torch.ops.pbm, "push") and hasattr(torch.ops.pbm, "pop")


def test_ops_round_trip(stride):
    mb = pbm.Mailbox(32, stride)
    count = torch.ops.pbm.push(mb.hdr, mb.payload, make_records(5, stride))
    buffer, popped = torch.ops.pbm.pop(mb.hdr, mb.payload, 8, stride)
    assert int(count) == 5 and int(popped) == 5
    assert buffer.numel() == 8 * stride  # static shape; zeros past count x stride
    assert [i for _, i in decode(buffer[: 5 * stride], stride)] == list(range(5))
    assert int(buffer[5 * stride :].count_nonzero()) == 0


def test_opcheck_push(stride):
    mb = pbm.Mailbox(32, stride)
    torch.library.opcheck(torch.ops.pbm.push.default, (mb.hdr, mb.payload, make_records(3, stride)))


def test_opcheck_pop(stride):
    mb = pbm.Mailbox(32, stride)
    mb.push(make_records(6, stride))
    torch.library.opcheck(torch.ops.pbm.pop.default, (mb.hdr, mb.payload, 4, stride))


def test_opcheck_pop_empty(stride):
    mb = pbm.Mailbox(32, stride)
    torch.library.opcheck(torch.ops.pbm.pop.default, (mb.hdr, mb.payload, 4, stride))
