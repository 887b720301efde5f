#!/usr/bin/env python3
"""Check an attention kernel against a golden folder written by `sta golden`.

Needs nothing but numpy. Replace `my_kernel` with a call into your port (CUDA, Triton,
ThunderKittens, MLX, ...): it gets float32 q, k, v [B,H,S,D], the manifest and the query
rows to check, and returns out [B,H,R,D] and lse [B,H,R] for those R rows (a port computes
every row and returns out[:, :, rows], lse[:, :, rows]). The stand-in below is a plain numpy
STA that follows SPEC sections 1, 2, 4 and 6 (tiled layout, FastVideo's centre clamp, text
tokens) and computes only the rows asked for.

Usage: python3 examples/check_golden.py GOLDEN_DIR [--stride N]
--stride N checks query rows 0, N, 2N, ... and the last one (default 1: every row); a stride
that does not divide the tile size still visits every query tile at varying offsets, which
keeps larger presets (medium: S = 13,952) to a second or two.
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


def build_mask(manifest, mask_text, rows):
    """Boolean [len(rows), S]: may query row i attend key j (SPEC sections 2 and 4)."""
    video, tile = manifest["video"], manifest["tile"]
    V = int(np.prod(video))
    S = manifest["shape"]["S"]
    valid = V + manifest["text_length"]
    kind, _, rest = mask_text.partition(":")
    window = [int(w) for w in rest.split(",")] if rest else [1, 1, 1]
    c = token_coords(video, tile, manifest["layout"])
    video_rows = rows[rows < V]
    mask = np.zeros((len(rows), S), dtype=bool)
    video_mask = np.ones((len(video_rows), V), dtype=bool)
    for a in range(3):
        video_mask &= axis_allowed(kind, window[a], video[a], tile[a], c[video_rows, a], c[:, a])
    mask[: len(video_rows), :V] = video_mask  # rows are sorted: video rows come first
    mask[:, V:valid] = True  # every query sees the real text tokens
    mask[len(video_rows):, :valid] = True  # text queries (padded ones too) see every valid key
    return mask


def my_kernel(q, k, v, manifest, rows):
    """Stand-in for the port under test: masked softmax attention in float64, query rows
    `rows` only (in chunks, so that memory stays small)."""
    B, H, S, D = q.shape
    out = np.zeros((B, H, len(rows), D), dtype=np.float32)
    lse = np.zeros((B, H, len(rows)), dtype=np.float32)
    chunk = 512
    for h in range(H):
        for r0 in range(0, len(rows), chunk):
            part = rows[r0:r0 + chunk]
            mask = build_mask(manifest, manifest["masks"][h], part)
            for b in range(B):
                qb = q[b, h, part].astype(np.float64)
                s = manifest["scale"] * (qb @ k[b, h].astype(np.float64).T)
                s = np.where(mask, s, -np.inf)
                m = s.max(axis=1, keepdims=True)
                p = np.exp(s - m)
                l = p.sum(axis=1, keepdims=True)
                out[b, h, r0:r0 + chunk] = (p @ v[b, h].astype(np.float64)) / l
                lse[b, h, r0:r0 + chunk] = (m + np.log(l))[:, 0]
    return out, lse


def main():
    args = sys.argv[1:]
    stride = 1
    if len(args) == 3 and args[1] == "--stride" and args[2].isdigit() and int(args[2]) > 0:
        stride = int(args[2])
        args = args[:1]
    if len(args) != 1:
        print(__doc__)
        return 2
    d = args[0]
    with open(f"{d}/manifest.json") as f:
        manifest = json.load(f)
    q, k, v = (np.load(f"{d}/{n}.npy") for n in ("q", "k", "v"))
    S = q.shape[2]
    rows = np.unique(np.append(np.arange(0, S, stride), S - 1))
    out, lse = my_kernel(q, k, v, manifest, rows)
    print(f"{len(rows)} of {S} query rows checked (stride {stride})")
    ok = True
    for name, mine in (("out", out), ("lse", lse)):
        gold = np.load(f"{d}/{name}.npy")[:, :, rows]
        atol = manifest["tolerances"][name]["atol"]
        err = np.abs(mine.astype(np.float64) - gold)
        worst = list(np.unravel_index(np.argmax(err), err.shape))
        worst[2] = rows[worst[2]]  # the query row in the file
        bad = int((err > atol).sum())
        print(f"{name}: max abs error {err.max():.3g} at {tuple(int(i) for i in worst)}, "
              f"{bad} of {err.size} above atol {atol:g}")
        ok = ok and bad == 0
    print("port agrees with the golden outputs" if ok else "port DISAGREES with the golden outputs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
