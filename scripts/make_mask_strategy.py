#!/usr/bin/env python3
"""Writes a synthetic FastVideo mask strategy file ("t_l_h" -> [kt, kh, kw] in tiles).

The default size is FastVideo's HunyuanVideo file (assets/mask_strategy_hunyuan.json):
50 steps x 60 layers x 24 heads = 72,000 keys, written like json.dump(..., indent=4)
(about 4 MB), so `sta strategy` and the parser can be timed on a file of the real size
without committing one. Windows are drawn with a fixed seed from windows FastVideo uses on
the 5x6x10-tile Hunyuan grid; the first `--full-steps` steps use full attention [5, 6, 10],
as FastVideo's STA keeps the early denoising steps dense.

Usage: scripts/make_mask_strategy.py OUT.json [--steps 50] [--layers 60] [--heads 24]
                                              [--seed 0] [--full-steps 15] [--compact]
Standard library only.
"""
import argparse
import json
import random
import sys

WINDOWS = [[3, 3, 3], [1, 6, 10], [5, 6, 1], [3, 6, 10], [5, 3, 3], [3, 3, 10], [5, 6, 10]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output JSON file")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--layers", type=int, default=60)
    ap.add_argument("--heads", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-steps", type=int, default=15,
                    help="leading steps that use full attention [5, 6, 10]")
    ap.add_argument("--compact", action="store_true", help="no indentation (smaller file)")
    args = ap.parse_args()
    if min(args.steps, args.layers, args.heads) < 1:
        ap.error("--steps, --layers and --heads must be >= 1")
    rng = random.Random(args.seed)
    strategy = {}
    for t in range(args.steps):
        for layer in range(args.layers):
            for h in range(args.heads):
                w = [5, 6, 10] if t < args.full_steps else rng.choice(WINDOWS)
                strategy[f"{t}_{layer}_{h}"] = list(w)
    with open(args.out, "w") as f:
        if args.compact:
            json.dump(strategy, f, separators=(",", ":"))
        else:
            json.dump(strategy, f, indent=4)
        f.write("\n")
    print(f"{args.out}: {len(strategy)} keys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
