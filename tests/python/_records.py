"""Test records built with torch ops on the GPU: record i of producer p holds the int32 words
[p, start + i, 7 * (start + i) + p, ...] so that order, origin and integrity can be checked."""

import torch


def make_records(n, stride=16, producer=0, start=0, device="cuda"):
    words = stride // 4
    idx = torch.arange(start, start + n, device=device, dtype=torch.int32)
    rec = torch.empty(n, words, device=device, dtype=torch.int32)
    rec[:, 0] = producer
    rec[:, 1] = idx
    if words > 2:
        rec[:, 2:] = (idx * 7 + producer).unsqueeze(1)
    return rec.view(torch.uint8)  # [n, stride], contiguous


def decode(records, stride=16):
    """(producer, index) pairs of a [count, stride] or flat uint8 tensor; checks the filler words."""
    words = records.reshape(-1, stride).view(torch.int32).cpu()
    if words.shape[1] > 2:
        expect = (words[:, 1] * 7 + words[:, 0]).unsqueeze(1).expand(-1, words.shape[1] - 2)
        assert torch.equal(words[:, 2:], expect), "a record's filler words are corrupted"
    return [(int(p), int(i)) for p, i in zip(words[:, 0], words[:, 1])]
