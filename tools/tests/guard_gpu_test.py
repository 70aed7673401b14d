#!/usr/bin/env python3
"""pbm-guard on a real GPU (ctest label gpu). Exit 0 pass, 1 fail, 77 skipped (reason printed).

Cases:
  cpp_within_budget    guard_train_loop under the committed budget             -> 0
  cpp_regression       the same with --dtoh-in-step                            -> 3, diff names train_step
  cpp_baseline         baseline --range train_step, then run against it        -> 0, regression -> 3
  torch_within_budget  examples/guard/train_loop.py under budget_torch.json    -> 0
  torch_regression     the same with --item-in-step                            -> 3, diff names train_step
  torch_overhead       launch-bound loop with and without pbm-guard: prints steps/s and the ratio
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

SKIP = 77


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fail(reason, output=""):
    if output:
        print(output)
    print(f"FAIL: {reason}")
    sys.exit(1)


def run(cmd, timeout=240, env=None):
    print("+", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout


def expect(cmd, code, patterns=(), absent=()):
    rc, out = run(cmd)
    print(out)
    if rc != code:
        fail(f"exit code {rc}, expected {code}")
    for p in patterns:
        if not re.search(p, out, re.MULTILINE):
            fail(f"output lacks /{p}/")
    for p in absent:
        if re.search(p, out, re.MULTILINE):
            fail(f"output has /{p}/")
    return out


def need_device(args):
    if args.have_cupti != "1":
        skip("pbm was built without CUPTI (PBM_WITH_CUPTI): pbm-guard cannot measure")
    rc, out = run([args.program, "--device-count"], timeout=60)
    count = out.strip().splitlines()[-1] if out.strip() else "0"
    if rc != 0 or not count.isdigit() or int(count) == 0:
        skip("no CUDA device")


def need_torch(args):
    need_device(args)
    rc, out = run([sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"], timeout=120)
    if rc == 3:
        skip("torch sees no CUDA device")
    if rc != 0:
        skip(f"no usable torch for {sys.executable}: " + (out.strip().splitlines() or ["?"])[-1])


def steps_per_second(output):
    m = re.search(r"([0-9.]+) steps/s", output)
    if not m:
        fail("no 'steps/s' in the output", output)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guard", required=True)
    ap.add_argument("--program", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--have-cupti", default="1")
    ap.add_argument("case")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    budget = os.path.join(args.examples, "budget.json")
    torch_budget = os.path.join(args.examples, "budget_torch.json")
    script = os.path.join(args.examples, "train_loop.py")
    attached = r"detection attached, mode count"

    if args.case == "cpp_within_budget":
        need_device(args)
        expect([args.guard, "run", "--budget", budget, "--", args.program], 0,
               [attached, r"within budget \(7 limits checked\)", r"readback +DtoH +pinned +1"])
    elif args.case == "cpp_regression":
        need_device(args)
        expect([args.guard, "run", "--budget", budget, "--", args.program, "--dtoh-in-step"], 3,
               [attached, r"OVER BUDGET", r"range train_step +memcpy total +0 +20 +\+20",
                r"range train_step +sync total +0 +40", r"train_step +DtoH +pageable +20",
                r"exit 3: over budget"])
    elif args.case == "cpp_baseline":
        need_device(args)
        out_budget = os.path.join(args.work, "baseline.json")
        expect([args.guard, "baseline", "-o", out_budget, "--slack", "10%", "--range", "train_step", "--",
                args.program], 0, [r"budget written to"])
        with open(out_budget) as f:
            text = f.read()
        print(text)
        if '"train_step"' not in text:
            fail("the baseline has no train_step range")
        expect([args.guard, "run", "--budget", out_budget, "--", args.program], 0, [r"within budget"])
        expect([args.guard, "run", "--budget", out_budget, "--", args.program, "--dtoh-in-step"], 3,
               [r"range train_step +memcpy total"])
    elif args.case == "torch_within_budget":
        need_torch(args)
        expect([args.guard, "run", "--budget", torch_budget, "--", sys.executable, script], 0,
               [attached, r"within budget"])
    elif args.case == "torch_regression":
        need_torch(args)
        expect([args.guard, "run", "--budget", torch_budget, "--", sys.executable, script, "--item-in-step"], 3,
               [attached, r"OVER BUDGET", r"range train_step +memcpy total +0 +\d+",
                r"range train_step +sync total +0 +\d+", r"exit 3: over budget"])
    elif args.case == "torch_overhead":
        need_torch(args)
        # Launch-bound: tiny tensors, many steps; the timed loop excludes start-up and warm-up.
        base = [sys.executable, script, "--steps", "5000", "--size", "32"]
        plain, guarded = [], []
        for _ in range(5):  # interleaved, so clock and thermal drift hit both alike
            rc, out = run(base)
            if rc != 0:
                fail("the script failed without pbm-guard", out)
            plain.append(steps_per_second(out))
            rc, out = run([args.guard, "run", "--"] + base)
            if rc != 0:
                fail(f"the script failed under pbm-guard (exit {rc})", out)
            guarded.append(steps_per_second(out))
        p, g = statistics.median(plain), statistics.median(guarded)
        ratio = p / g
        print(f"torch launch-bound loop: {p:.1f} steps/s plain, {g:.1f} steps/s under pbm-guard "
              f"(medians of 5); time ratio guarded/plain = {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")
        print("goal (issue 6): within 5 %" + ("" if ratio <= 1.05 else " -- NOT MET"))
        print(f"FIGURE: pbm-guard overhead, torch launch-bound loop: {p:.1f} steps/s plain, {g:.1f} under "
              f"pbm-guard, time ratio {ratio:.3f} (goal <= 1.05: {'met' if ratio <= 1.05 else 'MISSED'})")
    else:
        ap.error(f"unknown case {args.case}")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
