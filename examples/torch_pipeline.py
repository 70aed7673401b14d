"""A PyTorch pipeline over a pbm mailbox.

Two producers build records with torch ops on a focus and a peripheral stream and push them; a
consumer hands off with CUDA events (no host sync), pops in bulk and reduces on the GPU, masking by
the device-side count. The whole loop runs inside pbm.forbid(): no memcpy, no host synchronisation
(the pop's own count wait is pbm's, expected). The few deliberate syncs and the checksum's copy home
outside the loop are declared with pbm.expect(), so the whole run has no violation either. Metrics at
the end.

    PYTHONPATH=build/python python3 examples/torch_pipeline.py [--steps 200] [--batch 256]

Exit status 0 when the checksum matches, 1 when not, 77 when torch, a GPU or pbm is missing.
"""

import argparse
import os
import sys
import time

RECORD = 32  # bytes: int32 producer, int32 seq, 2 x int32 pad, 4 x float32 values

try:
    import torch
except ImportError:
    print("torch_pipeline: skipped (torch is not installed)")
    sys.exit(77)
if not torch.cuda.is_available():
    print("torch_pipeline: skipped (no CUDA GPU)")
    sys.exit(77)
try:
    import pbm
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "python"))
    try:
        import pbm
    except ImportError as e:
        print(f"torch_pipeline: skipped (pbm is not built: {e})")
        sys.exit(77)


def produce(producer, first, n):
    """n records built on the GPU: ints [producer, seq, 0, 0] then floats (seq % 97) * (producer + 1)."""
    seq = torch.arange(first, first + n, device="cuda", dtype=torch.int32)
    ints = torch.stack((torch.full_like(seq, producer), seq, torch.zeros_like(seq), torch.zeros_like(seq)), dim=1)
    values = ((seq % 97).to(torch.float32) * (producer + 1)).unsqueeze(1).expand(n, 4)
    return torch.cat((ints.view(torch.uint8), values.contiguous().view(torch.uint8)), dim=1)  # [n, 32]


def expected_sum(producers, total_per_producer):
    per = sum(i % 97 for i in range(total_per_producer))
    return 4.0 * per * sum(p + 1 for p in range(producers))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256, help="records per producer per step")
    args = parser.parse_args()

    pbm.telemetry.start()  # count mode unless PBM_MODE says otherwise
    mb = pbm.Mailbox(capacity=8 * args.batch, stride=RECORD, name="torch_pipeline")
    producers = (pbm.focus_stream(), pbm.peripheral_stream())
    consumer = torch.cuda.current_stream()
    events = [torch.cuda.Event() for _ in producers]
    checksum = torch.zeros((), device="cuda", dtype=torch.float64)
    max_pop = 2 * args.batch
    slots = torch.arange(max_pop, device="cuda")
    popped = pops = 0

    # Warm-up, outside the forbid scope: PyTorch's caching allocator takes its first blocks for each
    # stream here (cudaMalloc synchronises the device: pbm reports it inside forbid(sync=True)). The
    # mailbox is empty, so the pop returns nothing and the checksum adds zeros.
    with pbm.expect(sync=True):
        for p, stream in enumerate(producers):
            with torch.cuda.stream(stream):
                produce(p, 0, args.batch)
        result = mb.pop_async(max_pop)
        values = result.buffer.view(max_pop, RECORD)[:, 16:].contiguous().view(torch.float32)
        valid = slots < result.count
        checksum += torch.where(valid, values.sum(dim=1), torch.zeros((), device="cuda")).sum(dtype=torch.float64)
        result.wait()
        torch.cuda.synchronize()  # deliberate: the timing starts on an idle GPU
    before = pbm.telemetry.totals()
    start = time.perf_counter()
    with pbm.forbid(memcpy=True, sync=True):
        for step in range(args.steps):
            for p, (stream, done) in enumerate(zip(producers, events)):
                with torch.cuda.stream(stream):
                    mb.push(produce(p, step * args.batch, args.batch))
                    done.record(stream)
            for done in events:
                consumer.wait_event(done)  # device-side handoff
            result = mb.pop_async(max_pop)
            values = result.buffer.view(max_pop, RECORD)[:, 16:].contiguous().view(torch.float32)
            valid = slots < result.count  # device-side count: no host round trip for the math
            per_record = torch.where(valid, values.sum(dim=1), torch.zeros((), device="cuda"))
            checksum += per_record.sum(dtype=torch.float64)  # bytes past count are garbage: masked out
            popped += result.wait()  # pbm's own wait: pinned mapped memory
            pops += 1
    loop = {k: v - before[k] for k, v in pbm.telemetry.totals().items()}
    with pbm.expect(sync=True, memcpy=True):  # deliberate: the end of the timing, the checksum home
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        got = checksum.item()

    stats = mb.stats()
    want = expected_sum(len(producers), args.steps * args.batch)
    totals = pbm.telemetry.totals()
    print(f"records pushed     {stats['pushed']} ({stats['dropped']} dropped)")
    print(f"records popped     {popped} in {pops} bulk pops ({popped / max(pops, 1):.0f} per pop)")
    print(f"throughput         {popped / elapsed / 1e6:.2f} M records/s, {popped * RECORD / elapsed / 1e9:.2f} GB/s")
    print(f"step time          {elapsed / args.steps * 1e6:.1f} us")
    print(f"occupancy at end   {len(mb)} of {stats['capacity']}")
    print(f"telemetry          attached={pbm.telemetry.status()['attached']}")
    print(f"  in the loop      violations={loop['violations']} unexpected copies={loop['memcpy_unexpected']} "
          f"unexpected syncs={loop['sync_unexpected']} expected syncs={loop['sync_expected']}")
    print(f"  whole run        violations={totals['violations']} unexpected copies={totals['memcpy_unexpected']} "
          f"unexpected syncs={totals['sync_unexpected']} (the deliberate ones declared with pbm.expect)")
    print(f"checksum           {got:.1f} (expected {want:.1f})")
    ok = abs(got - want) <= 1e-9 * max(1.0, abs(want)) and popped == stats["pushed"] - stats["occupancy"]
    print("torch_pipeline: OK" if ok else "torch_pipeline: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
