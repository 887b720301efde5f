"""An independent numpy statement of the semantics (docs/semantics.md), for the tests only:
token coordinates, masks, text rules and masked softmax attention in float64. Written from
the semantics, not from the library, so that the two can disagree."""
import numpy as np


def ceil_div(a, b):
    return -(-a // b)


def tiled_coords(video, tile):
    """(t, y, x) of every video token in tiled order: tiles row-major, tokens row-major
    inside each (possibly shorter, ragged) tile."""
    T, H, W = video
    t, h, w = tile
    out = []
    for ct in range(ceil_div(T, t)):
        for ch in range(ceil_div(H, h)):
            for cw in range(ceil_div(W, w)):
                tt, yy, xx = np.meshgrid(np.arange(ct * t, min(T, ct * t + t)),
                                         np.arange(ch * h, min(H, ch * h + h)),
                                         np.arange(cw * w, min(W, cw * w + w)), indexing="ij")
                out.append(np.stack([tt.ravel(), yy.ravel(), xx.ravel()], axis=1))
    return np.concatenate(out)


def raster_coords(video):
    T, H, W = video
    tt, yy, xx = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing="ij")
    return np.stack([tt.ravel(), yy.ravel(), xx.ravel()], axis=1)


def axis_allowed(kind, window, length, tile, q, k):
    """[len(q), len(k)] bool: keys a query coordinate sees on one axis."""
    q = q[:, None]
    k = k[None, :]
    if kind == "full":
        return np.ones((q.shape[0], k.shape[1]), bool)
    if kind == "sta":
        n = ceil_div(length, tile)
        half = window // 2
        qt, kt = q // tile, k // tile
        centre = np.minimum(np.maximum(qt, half), n - 1 - half)  # torch.clamp: upper bound wins
        return np.abs(centre - kt) <= half
    if kind == "swa":
        if window >= length:
            return np.ones((q.shape[0], k.shape[1]), bool)
        start = np.clip(q - window // 2, 0, length - window)
        return (k >= start) & (k < start + window)
    if kind == "swa-torus":
        return ((k - (q - window // 2)) % length) < window
    raise ValueError(kind)


def parse_mask(text):
    if text == "full":
        return "full", (1, 1, 1)
    kind, w = text.split(":")
    w = [int(x) for x in w.split(",")]
    if len(w) == 2:
        w = [1] + w
    return kind, tuple(w)


def mask_matrix(video, tile, mask, text_length, text_pad, layout="tiled", rows=None):
    """[len(rows), S] bool mask of the whole sequence (video then text slots)."""
    kind, window = parse_mask(mask)
    V = int(np.prod(video))
    S = V + text_pad
    coords = tiled_coords(video, tile) if layout == "tiled" else raster_coords(video)
    rows = np.arange(S) if rows is None else np.asarray(rows)
    valid = np.arange(S) < V + text_length
    m = np.zeros((rows.size, S), bool)
    video_rows = rows < V
    m[~video_rows] = valid  # text queries: every valid key
    if video_rows.any():
        qc = coords[rows[video_rows]]
        allowed = np.ones((qc.shape[0], V), bool)
        for a in range(3):
            allowed &= axis_allowed(kind, window[a], video[a], tile[a], qc[:, a], coords[:, a])
        block = np.zeros((qc.shape[0], S), bool)
        block[:, :V] = allowed
        block[:, V:] = valid[V:]
        m[video_rows] = block
    return m


def attention(q, k, v, video, tile, masks, text_length, text_pad, layout="tiled", scale=None,
              rows=None):
    """out [B,H,R,D], lse [B,H,R] in float64 for query rows `rows` (default all)."""
    B, H, S, D = q.shape
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    rows = np.arange(S) if rows is None else np.asarray(rows)
    out = np.zeros((B, H, rows.size, D))
    lse = np.full((B, H, rows.size), -np.inf)
    for h in range(H):
        mask = masks[h] if len(masks) > 1 else masks[0]
        allowed = mask_matrix(video, tile, mask, text_length, text_pad, layout, rows)
        for b in range(B):
            s = scale * (q[b, h, rows].astype(np.float64) @ k[b, h].astype(np.float64).T)
            s = np.where(allowed, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            any_ = np.isfinite(m[:, 0])
            m = np.where(np.isfinite(m), m, 0.0)
            p = np.exp(s - m)
            total = p.sum(axis=1, keepdims=True)
            o = (p @ v[b, h].astype(np.float64)) / np.where(total > 0, total, 1.0)
            out[b, h] = np.where(any_[:, None], o, 0.0)
            lse[b, h] = np.where(any_, m[:, 0] + np.log(np.where(total[:, 0] > 0, total[:, 0], 1.0)), -np.inf)
    return out, lse


def attention_grad(q, k, v, dout, video, tile, masks, text_length, text_pad, layout="tiled",
                   scale=None):
    """dq, dk, dv [B,H,S,D] in float64 of L = sum(out * dout), from the softmax Jacobian:
    with P the masked softmax of s = scale q k^T and out = P v,
    dL/dP_ij = dout_i . v_j, dL/ds_ij = P_ij (dL/dP_ij - sum_l P_il dL/dP_il),
    dq = scale dS k, dk = scale dS^T q, dv = P^T dout. A row with no allowed key has P = 0."""
    B, H, S, D = q.shape
    scale = 1.0 / np.sqrt(D) if scale is None else scale
    dq, dk, dv = (np.zeros((B, H, S, D)) for _ in range(3))
    for h in range(H):
        mask = masks[h] if len(masks) > 1 else masks[0]
        allowed = mask_matrix(video, tile, mask, text_length, text_pad, layout)
        for b in range(B):
            qb, kb, vb, gb = (x[b, h].astype(np.float64) for x in (q, k, v, dout))
            s = np.where(allowed, scale * (qb @ kb.T), -np.inf)
            m = s.max(axis=1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            e = np.exp(s - m)
            total = e.sum(axis=1, keepdims=True)
            p = e / np.where(total > 0, total, 1.0)
            dp = gb @ vb.T
            ds = p * (dp - (p * dp).sum(axis=1, keepdims=True))
            dq[b, h] = scale * ds @ kb
            dk[b, h] = scale * ds.T @ qb
            dv[b, h] = p.T @ gb
    return dq, dk, dv
