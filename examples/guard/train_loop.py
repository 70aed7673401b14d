#!/usr/bin/env python3
"""PyTorch version of pbm-guard's regression demo.

A launch-bound training loop: every step runs on the GPU and nothing comes back to the host until
the end. `--item-in-step` is the one-line regression that slows real training runs: `loss.item()`
inside the `train_step` NVTX range (a device-to-host copy and a stream synchronisation per step).

  pbm-guard run --budget examples/guard/budget_torch.json -- python3 examples/guard/train_loop.py                 -> 0
  pbm-guard run --budget examples/guard/budget_torch.json -- python3 examples/guard/train_loop.py --item-in-step  -> 3
"""
import argparse
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--item-in-step", action="store_true", help="the regression: loss.item() every step")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 77

    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(args.size, args.size, device=dev, generator=gen)
    w = torch.randn(args.size, args.size, device=dev, generator=gen) * 0.01

    def step():
        y = torch.tanh(x @ w)
        w.sub_(y, alpha=0.001)
        return y.sum()

    # Warm-up outside any range: cuBLAS handle, caching allocator and module loading happen here.
    for _ in range(3):
        loss = step()
    torch.cuda.synchronize()

    start = time.perf_counter()
    for _ in range(args.steps):
        torch.cuda.nvtx.range_push("train_step")
        loss = step()
        if args.item_in_step:
            loss.item()
        torch.cuda.nvtx.range_pop()
    torch.cuda.nvtx.range_push("readback")
    final = loss.item()  # the one intended host round trip
    torch.cuda.nvtx.range_pop()
    elapsed = time.perf_counter() - start
    print(f"steps {args.steps}, loss {final:.4g}, {args.steps / elapsed:.1f} steps/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
