#!/usr/bin/env python3
"""BENCHMARKS.md quotes the line pbm_bench prints first without a GPU: check it is what the bench
prints on this machine, and that a machine without a driver is told so ("no CUDA driver"), not that
its driver is too old. On a machine with a GPU there is nothing to check (exit 77: skipped).
Usage: bench_first_line_test.py PATH/TO/pbm_bench PATH/TO/BENCHMARKS.md"""
import ctypes
import subprocess
import sys


def main():
    bench, doc = sys.argv[1], sys.argv[2]
    r = subprocess.run([bench, "--quick"], capture_output=True, text=True, timeout=60)
    first = (r.stdout.splitlines() or [""])[0]
    print("pbm_bench first line:", first)
    if not first.startswith("SKIP:"):
        print("SKIP: a GPU is present; the no-GPU line cannot be checked here")
        return 77
    if r.returncode != 0:
        print(f"FAIL: exit status {r.returncode} without a GPU (documented: 0)")
        return 1
    try:
        ctypes.CDLL("libcuda.so.1")
        driver = True
    except OSError:
        driver = False
    if not driver and "no CUDA driver (libcuda.so.1 not loadable)" not in first:
        print("FAIL: libcuda.so.1 cannot be loaded here, but the line does not say 'no CUDA driver'")
        return 1
    if not driver and "version is insufficient" in first:
        print("FAIL: the line blames the driver's version; there is no driver")
        return 1
    text = open(doc).read()
    if f"`{first}`" not in text:
        print(f"FAIL: {doc} does not quote this line (in backticks)")
        return 1
    print(f"OK: {doc} quotes it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
