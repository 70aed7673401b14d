"""A function using the mailbox ops compiles under torch.compile (fullgraph) and gives the eager results."""

import pytest

from _env import require  # noqa: E402

torch, pbm = require()

from _records import decode  # noqa: E402

STRIDE = 16


def step(hdr, payload, x):
    # Producer kernels in torch: records of four int32 words [0, i, 7i, 7i] from x.
    i = x.to(torch.int32)
    records = torch.stack((torch.zeros_like(i), i, i * 7, i * 7), dim=1).contiguous().view(torch.uint8)
    pushed = torch.ops.pbm.push(hdr, payload, records)
    buffer, count = torch.ops.pbm.pop(hdr, payload, 4, STRIDE)
    return pushed, buffer, count


@pytest.mark.parametrize("dynamic", [False, True])
def test_compiled_push_pop_matches_eager(dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, dynamic=dynamic)
    mb_eager, mb_compiled = pbm.Mailbox(64, STRIDE), pbm.Mailbox(64, STRIDE)
    for k in range(3):  # 6 records in, 4 out per step: the mailbox fills up across steps
        x = torch.arange(6 * k, 6 * k + 6, device="cuda")
        eager = step(mb_eager.hdr, mb_eager.payload, x)
        got = compiled(mb_compiled.hdr, mb_compiled.payload, x)
        for a, b in zip(got, eager):
            assert torch.equal(a, b)
        assert int(got[0]) == 6 and int(got[2]) == 4
        assert [i for _, i in decode(got[1], STRIDE)] == list(range(4 * k, 4 * k + 4))
    assert mb_compiled.stats()["occupancy"] == mb_eager.stats()["occupancy"] == 6
