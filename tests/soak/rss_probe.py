"""Where resident memory goes when telemetry is left on: growth per operation, in one process.

The soak (soak.py) runs everything at once and checks that resident memory stays flat; this probe
takes the kinds of operation apart, each after a warm-up of the same kind, so a growth can be put
on one of them:
  - short-lived threads doing CUDA work, telemetry attached and detached, interleaved in blocks
    (a difference between the two is telemetry's; pbm's own per-thread states are counted too);
  - detach()/attach() cycles and stop()/start() cycles (each subscribes to CUPTI again).

  PYTHONPATH=build-gpu/python python3 tests/soak/rss_probe.py [--threads 2000] [--cycles 200]

Prints one line per phase (KiB per operation) and a RESULT {json} line. Exit 0, or 77 (SKIP) without
torch, CUDA or the extension.
"""
import argparse
import json
import sys
import threading


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2000, help="short-lived threads per phase")
    ap.add_argument("--cycles", type=int, default=200, help="detach/attach cycles (stop/start: half as many)")
    args = ap.parse_args()
    try:
        import torch
        import pbm
    except ImportError as e:
        print(f"SKIP: {e}")
        return 77
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return 77
    pbm.telemetry.start(mode="count")
    if not pbm.telemetry.status()["attached"]:
        print(f"SKIP: telemetry not attached: {pbm.telemetry.status()['reason']}")
        return 77
    x = torch.ones(1024, device="cuda")

    def work() -> None:
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            y = (x * 2).sum()
        stream.synchronize()
        y.item()

    def threads(n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=work)
            t.start()
            t.join()

    def detach_attach(n: int) -> None:
        for _ in range(n):
            pbm.telemetry.detach()
            pbm.telemetry.attach()

    def stop_start(n: int) -> None:
        for _ in range(n):
            pbm.telemetry.stop()
            pbm.telemetry.start(mode="count")

    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}

    def measure(run, n: int) -> int:
        torch.cuda.synchronize()
        before = rss_kib()
        run(n)
        torch.cuda.synchronize()
        return rss_kib() - before

    def report(name: str, n: int, grown: int, **extra) -> None:
        per = grown / n
        print(f"{name:24s} {n:6d} ops  RSS {grown:+8d} KiB  ({per:+.3f} KiB per op)"
              + "".join(f"  {k} {v}" for k, v in extra.items()))
        result[name] = {"ops": n, "rss_growth_kib": grown, "kib_per_op": round(per, 3), **extra}

    # Short-lived threads, attached and detached interleaved in blocks (A D A D ...), after a
    # warm-up of each, so a growth that comes with time alone lands on both; pbm's own per-thread
    # states are counted too (status()["thread_states"]: allocated, never freed, reused).
    blocks = 4
    per_block = max(1, args.threads // blocks)
    threads(max(1, per_block // 4))
    pbm.telemetry.detach()
    threads(max(1, per_block // 4))
    pbm.telemetry.attach()
    grown = {"attached": 0, "detached": 0}
    states_before = pbm.telemetry.status()["thread_states"]
    for _ in range(blocks):
        grown["attached"] += measure(threads, per_block)
        pbm.telemetry.detach()
        grown["detached"] += measure(threads, per_block)
        pbm.telemetry.attach()
    states = pbm.telemetry.status()["thread_states"] - states_before
    report("threads, attached", blocks * per_block, grown["attached"], pbm_thread_states_added=states)
    report("threads, detached", blocks * per_block, grown["detached"])

    for name, run, n in [("detach/attach cycles", detach_attach, args.cycles),
                         ("stop/start cycles", stop_start, max(1, args.cycles // 2))]:
        run(max(1, n // 10))  # warm-up of the same kind
        report(name, n, measure(run, n))
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
