#!/usr/bin/env python3
"""This project beside PyTorch on the same cores, in one run: the issue's server comparison.

Runs sta_bench's Table-2 rows (one head, D=128, HunyuanVideo canvas 30x48x80, tile 6x8x8, no
text; dense, natten swa:19,25,25, sta sta:3,3,3; fp32 and bf16) and, where torch imports,
PyTorch SDPA (full attention) and FlexAttention with compiled block masks (FastVideo's STA
mask_mod and NATTEN's SWA mask_mod, tiled token order) in both dtypes, then prints one
Markdown table with the ratios the issue sets as targets.

With --backward: the gradients instead (issue 12): sta_bench's Table2-backward rows (fp32) and
Table2-backward-bf16 rows (dense, natten 19,25,25, sta 5,5,5, sta 3,3,3; each backward timed
beside the same backend's forward) and PyTorch's SDPA backward (full attention: the only
CPU backward PyTorch has for these shapes; compiled FlexAttention runs forward only on CPU).

Usage: python3 bench/peers.py [--sta-bench build/sta_bench] [--threads N] [--reps R]
                              [--json OUT.json] [--skip-torch] [--skip-ours] [--backward]
Times: ours = median of R repetitions (Google Benchmark, wall time); torch = best of R calls
after a warm-up (and after compiling). Both use N threads (OMP_NUM_THREADS / torch threads).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VIDEO, TILE, D_DEFAULT = (30, 48, 80), (6, 8, 8), 128
OURS = ["dense/full", "natten/swa:19,25,25", "sta/sta:3,3,3"]


UNITS = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}


def keyed(d):
    """{(precision, problem): v} as JSON's {"precision/problem": v}."""
    return {f"{p}/{n}": v for (p, n), v in d.items()}


def best(reps, f):
    """Seconds of the fastest of `reps` calls of f, after one warm-up call."""
    f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return min(t)


def run_bench(sta_bench, threads, reps, pattern):
    """sta_bench's rows matching `pattern` on `threads` threads: (its JSON, the repetitions'
    rows: the aggregates left out)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = f"/tmp/sta_peers_{os.getpid()}.json"
    cmd = [sta_bench, f"--benchmark_filter={pattern}", f"--benchmark_repetitions={reps}",
           f"--benchmark_out={out}", "--benchmark_out_format=json"]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
    with open(out) as f:
        data = json.load(f)
    os.remove(out)
    return data, [b for b in data["benchmarks"] if b.get("run_type") != "aggregate"]


def run_ours(sta_bench, threads, reps):
    data, rows = run_bench(sta_bench, threads, reps,
                           "Table2/(fp32|bf16)/(dense/full|natten/swa:19,25,25|sta/sta:3,3,3)/")
    times, labels = {}, {}
    for b in rows:
        parts = b["run_name"].split("/")
        key = (parts[1], "/".join(parts[2:4]))
        times.setdefault(key, []).append(b["real_time"] * UNITS[b["time_unit"]])
        labels[key] = b.get("label", "")
    return {k: statistics.median(v) for k, v in times.items()}, labels, data.get("context", {})


def run_ours_backward(sta_bench, threads, reps):
    """Backward and forward seconds (medians) per (precision, backend/mask)."""
    data, rows = run_bench(sta_bench, threads, reps, "^Table2-backward(-bf16)?/")
    back, fwd, labels = {}, {}, {}
    for b in rows:
        parts = b["run_name"].split("/")
        key = ("bf16" if parts[0].endswith("-bf16") else "fp32", "/".join(parts[1:3]))
        back.setdefault(key, []).append(b["real_time"] * UNITS[b["time_unit"]])
        fwd.setdefault(key, []).append(b["forward_ms"] * 1e-3)
        labels[key] = b.get("label", "")
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}
    return med(back), med(fwd), labels, data.get("context", {})


def run_torch_backward(threads, reps, dim):
    """Seconds of the backward alone (torch.autograd.grad of a forward kept alive) per
    (precision, problem): SDPA's, full attention only."""
    try:
        import torch
    except Exception as e:
        print(f"torch peers skipped: {type(e).__name__}: {e}", file=sys.stderr)
        return {}, None
    torch.set_num_threads(threads)
    S = VIDEO[0] * VIDEO[1] * VIDEO[2]
    res = {}

    torch.manual_seed(0)
    for dname, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        q, k, v = (torch.randn(1, 1, S, dim).to(dtype).requires_grad_(True) for _ in range(3))
        g = torch.randn(1, 1, S, dim).to(dtype)
        print(f"torch {dname}: SDPA backward", file=sys.stderr, flush=True)
        try:
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            res[(dname, "dense/full")] = best(
                reps, lambda: torch.autograd.grad(out, (q, k, v), g, retain_graph=True))
        except Exception as e:  # torch without SDPA (Debian's 1.13), or no CPU backward
            print(f"  failed: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
    return res, torch.__version__


def main_backward(a):
    ours, fwd, labels, ctx = ({}, {}, {}, {}) if a.skip_ours else run_ours_backward(a.sta_bench, a.threads, a.reps)
    theirs, torch_version = ({}, None) if a.skip_torch else run_torch_backward(a.threads, a.reps, D_DEFAULT)
    print(f"CPU: {ctx.get('cpu', '?')}; {a.threads} threads; torch {torch_version}")
    print("\nOne head, D=128, 30x48x80 canvas, tile 6x8x8, no text. Seconds (ours: median wall "
          "time; torch: best call of the backward alone).\n")
    print("| precision | problem | kernels | backward | forward | backward / forward | PyTorch SDPA backward |")
    print("|---|---|---|---:|---:|---:|---:|")
    for prec in ("fp32", "bf16"):
        for name in ("dense/full", "natten/swa:19,25,25", "sta/sta:5,5,5", "sta/sta:3,3,3"):
            o, f, t = ours.get((prec, name)), fwd.get((prec, name)), theirs.get((prec, name))
            cell = lambda x: "-" if x is None else f"{x:.3f}"
            ratio = f"{o / f:.2f}x" if o and f else "-"
            print(f"| {prec} | {name} | {labels.get((prec, name), '')} | {cell(o)} | {cell(f)} | "
                  f"{ratio} | {cell(t)} |")
    for prec in ("fp32", "bf16"):
        d, s = ours.get((prec, "dense/full")), ours.get((prec, "sta/sta:3,3,3"))
        if d and s:
            print(f"- {prec}: sta 3,3,3 backward {d / s:.1f}x faster than dense backward")
        t = theirs.get((prec, "dense/full"))
        if t and s:
            print(f"- {prec}: sta 3,3,3 backward {t / s:.1f}x faster than PyTorch SDPA's (full) backward")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"context": ctx, "torch": torch_version, "threads": a.threads,
                       "backward": keyed(ours), "forward": keyed(fwd),
                       "torch_backward": keyed(theirs)}, fh, indent=1)


def run_torch(threads, reps, dim):
    try:
        import torch
        from torch.nn.attention.flex_attention import flex_attention, create_block_mask
    except Exception as e:  # torch missing or too old (Debian's 1.13 has no FlexAttention)
        print(f"torch peers skipped: {type(e).__name__}: {e}", file=sys.stderr)
        return {}, None
    torch.set_num_threads(threads)
    n = [VIDEO[a] // TILE[a] for a in range(3)]
    S = VIDEO[0] * VIDEO[1] * VIDEO[2]
    vol = TILE[0] * TILE[1] * TILE[2]

    def coords(i):  # tiled order: token index -> (token coords, tile coords)
        tid, off = i // vol, i % vol
        tt, th, tw = tid // (n[1] * n[2]), (tid // n[2]) % n[1], tid % n[2]
        it, ih, iw = off // (TILE[1] * TILE[2]), (off // TILE[2]) % TILE[1], off % TILE[2]
        return (tt * TILE[0] + it, th * TILE[1] + ih, tw * TILE[2] + iw), (tt, th, tw)

    def mask_mod(kind, win):
        def mod(b, h, qi, ki):
            (qc, qt), (kc, kt) = coords(qi), coords(ki)
            m = qi == qi
            for a in range(3):
                if kind == "sta":  # FastVideo: window centre clamped inside the tile grid
                    c = torch.clamp(qt[a], min=win[a] // 2, max=n[a] - 1 - win[a] // 2)
                    m = m & ((c - kt[a]).abs() <= win[a] // 2)
                else:  # NATTEN: token window start clamped inside the canvas
                    s = torch.clamp(qc[a] - win[a] // 2, min=0, max=VIDEO[a] - win[a])
                    m = m & (kc[a] >= s) & (kc[a] < s + win[a])
            return m
        return mod

    res = {}
    torch.manual_seed(0)
    flex = torch.compile(flex_attention, dynamic=False)
    masks = {}
    for name, kind, win in (("sta/sta:3,3,3", "sta", (3, 3, 3)), ("natten/swa:19,25,25", "swa", (19, 25, 25))):
        masks[name] = create_block_mask(mask_mod(kind, win), B=None, H=None, Q_LEN=S, KV_LEN=S,
                                        device="cpu", BLOCK_SIZE=128, _compile=True)
    for dname, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        q, k, v = (torch.randn(1, 1, S, dim).to(dtype) for _ in range(3))
        print(f"torch {dname}: SDPA", file=sys.stderr, flush=True)
        res[(dname, "dense/full")] = best(
            reps, lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
        for name, bm in masks.items():
            print(f"torch {dname}: Flex {name}", file=sys.stderr, flush=True)
            try:
                res[(dname, name)] = best(reps, lambda: flex(q, k, v, block_mask=bm))
            except Exception as e:  # report, keep going
                print(f"  failed: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
    return res, torch.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sta-bench", default="build/sta_bench")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--backward", action="store_true", help="time the gradients instead")
    a = ap.parse_args()
    if a.backward:
        return main_backward(a)
    ours, labels, ctx = ({}, {}, {}) if a.skip_ours else run_ours(a.sta_bench, a.threads, a.reps)
    theirs, torch_version = ({}, None) if a.skip_torch else run_torch(a.threads, a.reps, D_DEFAULT)

    print(f"CPU: {ctx.get('cpu', '?')}; {a.threads} threads; GEMM kernels: fp32 "
          f"{ctx.get('gemm_fp32', '?')}, bf16 {ctx.get('gemm_bf16', '?')}; torch {torch_version}")
    print("\nOne head, D=128, 30x48x80 canvas, tile 6x8x8, no text. Seconds (ours: median wall "
          "time; torch: best call).\n")
    print("| precision | problem | sta-cpu | PyTorch (SDPA / Flex) | PyTorch / sta-cpu |")
    print("|---|---|---:|---:|---:|")
    for prec in ("fp32", "bf16"):
        for name in OURS:
            o, t = ours.get((prec, name)), theirs.get((prec, name))
            ratio = f"{t / o:.2f}x" if o and t else "-"
            print(f"| {prec} | {name} | {o if o is None else f'{o:.3f}'} | "
                  f"{t if t is None else f'{t:.3f}'} | {ratio} |")
    print("\nTargets (16-core server):\n")
    targets = [("fp32", "sta/sta:3,3,3", 2.5, "Flex fp32"), ("fp32", "dense/full", 1.8, "SDPA fp32"),
               ("bf16", "sta/sta:3,3,3", 2.0, "Flex bf16"), ("bf16", "dense/full", 1.5, "SDPA bf16")]
    for prec, name, target, who in targets:
        o, t = ours.get((prec, name)), theirs.get((prec, name))
        if o and t:
            print(f"- [{'x' if t / o >= target else ' '}] {prec} {name} >= {target}x {who}: {t / o:.2f}x")
    for prec in ("fp32", "bf16"):
        s, n = ours.get((prec, "sta/sta:3,3,3")), ours.get((prec, "natten/swa:19,25,25"))
        if s and n:
            print(f"- [{'x' if n / s >= 3 else ' '}] {prec} sta 3,3,3 >= 3x natten 19,25,25: {n / s:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"context": ctx, "torch": torch_version, "threads": a.threads,
                       "ours": keyed(ours), "labels": keyed(labels),
                       "torch_times": keyed(theirs)}, f, indent=1)


if __name__ == "__main__":
    main()
