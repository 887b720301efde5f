#!/usr/bin/env python3
"""Check an attention kernel against a golden folder written by `sta golden`.

Needs nothing but numpy. Replace `my_kernel` with a call into your port (CUDA, Triton,
ThunderKittens, MLX, ...): it gets float32 q, k, v [B,H,S,D] and the manifest, and returns
out [B,H,S,D] and lse [B,H,S]. The stand-in below is a plain numpy STA that follows
SPEC sections 1, 2, 4 and 6 (tiled layout, FastVideo's centre clamp, text tokens).

Usage: python3 examples/check_golden.py GOLDEN_DIR
Exit code 0 when out and lse are within the manifest's tolerances.
"""
import json
import sys

import numpy as np


def token_coords(video, tile, layout):
    """(t, y, x) of every video token in the file's order (tiled: tile by tile)."""
    T, H, W = video
    t, y, x = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing="ij")
    coords = np.stack([t.ravel(), y.ravel(), x.ravel()], axis=1)  # raster order
    if layout == "raster":
        return coords
    # ceil: a "ragged": true manifest has a shorter last tile on an axis (tiles stay
    # row-major, tokens row-major inside each tile, so the sort key below still works).
    n = [-(-video[a] // tile[a]) for a in range(3)]
    tile_id = ((coords[:, 0] // tile[0]) * n[1] + coords[:, 1] // tile[1]) * n[2] + coords[:, 2] // tile[2]
    inner = ((coords[:, 0] % tile[0]) * tile[1] + coords[:, 1] % tile[1]) * tile[2] + coords[:, 2] % tile[2]
    order = np.argsort(tile_id * np.prod(tile) + inner)
    return coords[order]


def axis_allowed(kind, window, length, tile, q, k):
    """Boolean [len(q), len(k)]: may query coordinate q see key coordinate k on this axis."""
    q = q[:, None]
    k = k[None, :]
    if kind == "full":
        return np.ones((q.shape[0], k.shape[1]), dtype=bool)
    if kind == "sta":  # window in tiles, FastVideo's centre clamp
        n, half = -(-length // tile), window // 2  # ceil: ragged last tile
        centre = np.minimum(np.maximum(q // tile, half), n - 1 - half)
        return np.abs(centre - k // tile) <= half
    if window >= length:
        return np.ones((q.shape[0], k.shape[1]), dtype=bool)
    if kind == "swa":  # window in tokens, shifted at the borders (NATTEN)
        start = np.clip(q - window // 2, 0, length - window)
        return (k >= start) & (k < start + window)
    start = q - window // 2  # swa-torus
    return (k - start) % length < window


def build_mask(manifest, mask_text):
    video, tile = manifest["video"], manifest["tile"]
    V = int(np.prod(video))
    S = manifest["shape"]["S"]
    valid = V + manifest["text_length"]
    kind, _, rest = mask_text.partition(":")
    window = [int(w) for w in rest.split(",")] if rest else [1, 1, 1]
    c = token_coords(video, tile, manifest["layout"])
    mask = np.zeros((S, S), dtype=bool)
    video_mask = np.ones((V, V), dtype=bool)
    for a in range(3):
        video_mask &= axis_allowed(kind, window[a], video[a], tile[a], c[:, a], c[:, a])
    mask[:V, :V] = video_mask
    mask[:, V:valid] = True  # every query sees the real text tokens
    mask[V:, :valid] = True  # text queries (padded ones too) see every valid key
    return mask


def my_kernel(q, k, v, manifest):
    """Stand-in for the port under test: masked softmax attention in float64."""
    B, H, S, D = q.shape
    out = np.zeros((B, H, S, D), dtype=np.float32)
    lse = np.zeros((B, H, S), dtype=np.float32)
    for h in range(H):
        mask = build_mask(manifest, manifest["masks"][h])
        for b in range(B):
            s = manifest["scale"] * (q[b, h].astype(np.float64) @ k[b, h].astype(np.float64).T)
            s = np.where(mask, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            p = np.exp(s - m)
            l = p.sum(axis=1, keepdims=True)
            out[b, h] = (p @ v[b, h].astype(np.float64)) / l
            lse[b, h] = (m + np.log(l))[:, 0]
    return out, lse


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    d = sys.argv[1]
    with open(f"{d}/manifest.json") as f:
        manifest = json.load(f)
    q, k, v = (np.load(f"{d}/{n}.npy") for n in ("q", "k", "v"))
    out, lse = my_kernel(q, k, v, manifest)
    ok = True
    for name, mine in (("out", out), ("lse", lse)):
        gold = np.load(f"{d}/{name}.npy")
        atol = manifest["tolerances"][name]["atol"]
        err = np.abs(mine.astype(np.float64) - gold)
        worst = np.unravel_index(np.argmax(err), err.shape)
        bad = int((err > atol).sum())
        print(f"{name}: max abs error {err.max():.3g} at {tuple(int(i) for i in worst)}, "
              f"{bad} of {err.size} above atol {atol:g}")
        ok = ok and bad == 0
    print("port agrees with the golden outputs" if ok else "port DISAGREES with the golden outputs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
