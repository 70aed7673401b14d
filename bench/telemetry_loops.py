#!/usr/bin/env python3
"""The cost of telemetry being on, per step of two real loops: count mode attached vs detached,
interleaved in blocks, in one process.

    PYTHONPATH=<build>/python python3 bench/telemetry_loops.py [--quick] [--blocks N] [--loops amp_step,greedy_decode] [--json PATH]

  amp_step       one training step of a small transformer encoder (2 layers, d_model 256, 4 heads,
                 batch 32 x 64 tokens) under torch.autocast(float16) with torch.amp.GradScaler and
                 AdamW (not fused): scaler.step() reads found_inf on the host, a device-to-host copy
                 and a stream sync every step, as in most mixed-precision training code.
  greedy_decode  one token of naive greedy generation with a tiny decoder (4 blocks of causal
                 attention + MLP, d_model 256, vocab 512, no KV cache): forward over the whole
                 sequence, argmax of the last logits, torch.cat, and `.item()` to compare with the EOS
                 token every step. EOS never ends a sequence early (fixed length, so blocks compare).

pbm.telemetry.start(mode="count"); per loop: a warm-up in both states, then --blocks pairs of
blocks, attached (CUPTI subscribed) and detached (pbm.telemetry.detach()), in alternating order.
A block is torch.cuda.synchronize(), N steps, torch.cuda.synchronize(), timed on the host clock;
its step time is the block's time / N. Per loop: the median (and p25..p75, min..max) step time in
each state, and the ratio attached / detached of each block pair, summarised the same way. Goal:
median ratio <= 1.03 (within 3%); printed, not enforced. Counted syncs and device-to-host copies
per step come from pbm's counters in the attached blocks (the boundary synchronize excluded); an
attached block that counted no sync, or a detached block that counted any, is a failure (exit 1):
then the timing did not compare what it says.

Output: a table, a 'RESULT {json}' line per loop, a 'SUMMARY: ...' line; --json writes all of it.
Exit status: 0 measured, 1 a check failed, 77 skipped ('SKIP: ...'), 2 usage error.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import telemetry_bench_common as common

BENCHMARK = "telemetry_loops"
GOAL_RATIO = 1.03


@dataclass
class Loop:
    name: str
    what: str
    steps_per_block: int
    step: Callable[[], None]  # one step (a training step, one generated token)
    reset: Callable[[], None]  # before each block (e.g. a new prompt)


def make_amp_step(torch: Any, seed: int) -> Callable[[], None]:
    nn = torch.nn
    torch.manual_seed(seed)
    d_model, batch, tokens, classes = 256, 32, 64, 10
    layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=1024, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    head = nn.Linear(d_model, classes)
    model = nn.ModuleDict({"encoder": encoder, "head": head}).cuda()
    # foreach, never fused (a fused optimizer takes found_inf on the device): GradScaler's step then
    # reads found_inf on the host, as it does for most optimizers.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    grad_scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    scaler = grad_scaler("cuda") if grad_scaler is not None else torch.cuda.amp.GradScaler()
    x = torch.randn(batch, tokens, d_model, device="cuda")
    y = torch.randint(0, classes, (batch,), device="cuda")
    cross_entropy = nn.functional.cross_entropy

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            logits = model["head"](model["encoder"](x).mean(dim=1))
            loss = cross_entropy(logits, y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def make_decoder(torch: Any, seed: int, vocab: int, max_len: int) -> Any:
    nn = torch.nn
    F = nn.functional
    torch.manual_seed(seed)

    class Block(nn.Module):
        def __init__(self, d: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x: Any) -> Any:
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(attn.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.ln2(x))

    class TinyDecoder(nn.Module):
        def __init__(self, d: int = 256, layers: int = 4, heads: int = 4) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(max_len, d)
            self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
            self.ln = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)

        def forward(self, tokens: Any) -> Any:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.tok(tokens) + self.pos(positions)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x))

    return TinyDecoder().cuda().eval()


def make_greedy_decode(torch: Any, seed: int, max_steps: int) -> Dict[str, Callable[[], None]]:
    """step() generates one token; reset() starts a new sequence; at most max_steps steps between resets."""
    vocab, prompt_len, eos = 512, 16, 0
    model = make_decoder(torch, seed, vocab, max_len=prompt_len + max_steps + 1)
    state: Dict[str, Any] = {"eos_seen": 0}

    def reset() -> None:
        state["tokens"] = torch.randint(1, vocab, (1, prompt_len), device="cuda")

    def step() -> None:
        with torch.inference_mode():
            logits = model(state["tokens"])[:, -1, :]
            nxt = logits.argmax(dim=-1, keepdim=True)
            state["tokens"] = torch.cat([state["tokens"], nxt], dim=1)
        if nxt.item() == eos:  # what naive generation code does every step: a copy home and a sync
            state["eos_seen"] += 1

    reset()
    return {"step": step, "reset": reset}


def run_block(torch: Any, pbm: Any, loop: Loop) -> Dict[str, Any]:
    """One timed block: seconds per step and what pbm counted during the steps."""
    loop.reset()
    gc.collect()
    torch.cuda.synchronize()
    before = common.read_counts(pbm)
    t0 = time.perf_counter_ns()
    for _ in range(loop.steps_per_block):
        loop.step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter_ns() - t0
    delta = common.read_counts(pbm) - before
    if delta.syncs["device_synchronize"] > 0:  # the block's closing torch.cuda.synchronize()
        delta.syncs["device_synchronize"] -= 1
    return {"ms_per_step": elapsed / 1e6 / loop.steps_per_block, "counts": delta}


def measure(torch: Any, pbm: Any, loop: Loop, blocks: int, warmup_steps: int) -> Dict[str, Any]:
    for state in common.STATES:  # compile kernels, fill caches, settle clocks in both states
        common.set_attached(pbm, state == "attached")
        loop.reset()
        for _ in range(warmup_steps):
            loop.step()
        torch.cuda.synchronize()
    ms: Dict[str, List[float]] = {s: [] for s in common.STATES}
    per_step: Dict[str, List[Dict[str, float]]] = {s: [] for s in common.STATES}
    for _, state in common.interleaved(blocks):
        common.set_attached(pbm, state == "attached")
        r = run_block(torch, pbm, loop)
        ms[state].append(r["ms_per_step"])
        c, n = r["counts"], loop.steps_per_block
        per_step[state].append({"blocking": c.blocking / n, "dtoh": c.dtoh / n, "all": c.total() / n,
                                "by_api": {api: v / n for api, v in c.syncs.items() if v}})
    common.set_attached(pbm, True)

    attached_blocking = [p["blocking"] for p in per_step["attached"]]
    if min(attached_blocking) == 0:
        common.fail(f"{loop.name}: an attached block counted no blocking sync ({attached_blocking} per step): "
                    "telemetry did not see the loop, so attached vs detached compared nothing")
    detached_all = [p["all"] for p in per_step["detached"]]
    if max(detached_all) != 0:
        common.fail(f"{loop.name}: a detached block counted calls ({detached_all} per step): detach() did not take effect")
    ratios = [a / d for a, d in zip(ms["attached"], ms["detached"])]
    ratio = common.summary(ratios, 4)
    return {
        "bench": BENCHMARK,
        "loop": loop.name,
        "what": loop.what,
        "blocks": blocks,
        "steps_per_block": loop.steps_per_block,
        "step_ms_detached": common.summary(ms["detached"], 4),
        "step_ms_attached": common.summary(ms["attached"], 4),
        "ratio_attached_over_detached": ratio,
        "goal_ratio_max": GOAL_RATIO,
        "goal_met": ratio["median"] <= GOAL_RATIO,
        "blocking_syncs_per_step": max(attached_blocking),
        "dtoh_copies_per_step": max(p["dtoh"] for p in per_step["attached"]),
        "syncs_per_step_by_api": per_step["attached"][-1]["by_api"],
    }


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring for the loops, the method and the checks.")
    p.add_argument("--quick", action="store_true", help="short run (4 block pairs, fewer steps), for gpu-check")
    p.add_argument("--blocks", type=int, help="block pairs per loop (default 10; --quick 4)")
    p.add_argument("--amp-steps", type=int, help="training steps per block (default 50; --quick 20)")
    p.add_argument("--tokens", type=int, help="generated tokens per block (default 128; --quick 32)")
    p.add_argument("--warmup", type=int, help="untimed steps per state before the blocks (default 20; --quick 5)")
    p.add_argument("--loops", default="amp_step,greedy_decode", help="comma-separated: amp_step, greedy_decode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.blocks = args.blocks if args.blocks is not None else (4 if args.quick else 10)
    args.amp_steps = args.amp_steps if args.amp_steps is not None else (20 if args.quick else 50)
    args.tokens = args.tokens if args.tokens is not None else (32 if args.quick else 128)
    args.warmup = args.warmup if args.warmup is not None else (5 if args.quick else 20)
    unknown = set(args.loops.split(",")) - {"amp_step", "greedy_decode"}
    if unknown:
        p.error(f"unknown loop(s) {sorted(unknown)}")
    if min(args.blocks, args.amp_steps, args.tokens) < 1 or args.warmup < 0:
        p.error("--blocks, --amp-steps and --tokens must be positive, --warmup >= 0")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    torch, pbm = common.import_torch_and_pbm(args.json, BENCHMARK)
    common.start_telemetry(pbm, args.json, BENCHMARK)
    env = common.environment(torch)
    loops: List[Loop] = []
    names = args.loops.split(",")
    if "amp_step" in names:
        loops.append(Loop("amp_step", "AMP training step (autocast fp16 + GradScaler, 2-layer transformer encoder)",
                          args.amp_steps, make_amp_step(torch, args.seed), lambda: None))
    if "greedy_decode" in names:
        gen = make_greedy_decode(torch, args.seed, max(args.tokens, args.warmup))
        loops.append(Loop("greedy_decode", "greedy decode, one token (tiny decoder, .item() EOS check per token)",
                          args.tokens, gen["step"], gen["reset"]))

    print(f"telemetry cost per loop step: {env['device']}, torch {env['torch']} (CUDA {env['cuda']}); count mode; "
          f"{args.blocks} block pairs, attached/detached interleaved; goal: attached/detached <= {GOAL_RATIO}")
    results = [measure(torch, pbm, loop, args.blocks, args.warmup) for loop in loops]

    print()
    print(f"{'loop':<14} {'detached ms/step':>16} {'attached ms/step':>16}  {'attached/detached (median, p25..p75, min..max)':<48} "
          f"{'syncs/step':>10} {'D2H/step':>8}  goal <= {GOAL_RATIO}")
    for r in results:
        q = r["ratio_attached_over_detached"]
        ratio = f"{q['median']:.4f} ({q['p25']:.4f}..{q['p75']:.4f}, {q['min']:.4f}..{q['max']:.4f})"
        print(f"{r['loop']:<14} {r['step_ms_detached']['median']:>16.4f} {r['step_ms_attached']['median']:>16.4f}  {ratio:<48} "
              f"{r['blocking_syncs_per_step']:>10g} {r['dtoh_copies_per_step']:>8g}  {'met' if r['goal_met'] else 'NOT met'}")
    print()
    for r in results:
        common.emit({**r, **env})
    summary = ", ".join(f"{r['loop']} {r['ratio_attached_over_detached']['median']:.3f}x "
                        f"{'met' if r['goal_met'] else 'NOT met'}" for r in results)
    print(f"SUMMARY: step time attached/detached (goal <= {GOAL_RATIO}): {summary}")
    if args.json:
        common.write_json(args.json, {"schema": "pbm-bench/1", "benchmark": BENCHMARK, "environment": env,
                                      "settings": vars(args), "results": results})
    return common.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
