"""Tests of sta.attention_backward and the torch autograd Function (issue 12, Python part).

The library's dq, dk, dv are held to brute.attention_grad, a float64 numpy statement of the
softmax Jacobian, which is itself held to central finite differences of brute.attention on a
tiny problem; torch_attention is held to torch's own autograd of a dense masked softmax
attention in float64 whose boolean mask comes from brute.mask_matrix (the semantics), not
from the library. Random inputs use fixed seeds printed on failure."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import brute  # noqa: E402
import sta  # noqa: E402

try:
    import torch
except ImportError:  # optional test dependency (Debian: python3-torch)
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed (apt-get install python3-torch): autograd not tested")


def grad_err(got, ref):
    """SPEC 8's measure: max abs error / max(1, max |reference|)."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    return float(np.abs(got - ref).max() / max(1.0, np.abs(ref).max()))


GRAD_TOL = 1e-4  # SPEC 8, fp32 inputs


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def test_brute_gradient_matches_finite_differences():
    """The numpy Jacobian formula against central differences in float64 (per-head masks,
    text with padding, so padded keys must get zero gradient)."""
    video, tile, masks, tl, tp = (2, 4, 4), (1, 2, 2), ["sta:1,1,1", "swa:1,3,3"], 2, 3
    S, D, seed = 32 + tp, 3, 5
    rng = np.random.default_rng(seed)
    q, k, v, g = (rng.standard_normal((1, 2, S, D)) for _ in range(4))

    def loss(q_, k_, v_):
        out, _ = brute.attention(q_, k_, v_, video, tile, masks, tl, tp)
        return float((out * g).sum())

    dq, dk, dv = brute.attention_grad(q, k, v, g, video, tile, masks, tl, tp)
    eps = 1e-6
    for name, x, grad in (("q", q, dq), ("k", k, dk), ("v", v, dv)):
        num = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            old = x[idx]
            x[idx] = old + eps
            up = loss(q, k, v)
            x[idx] = old - eps
            down = loss(q, k, v)
            x[idx] = old
            num[idx] = (up - down) / (2 * eps)
        assert np.abs(num - grad).max() < 1e-6, f"{name}, seed {seed}"
    # Padded text keys (S - tp + tl onwards) are never attended: zero gradient.
    assert not dk[:, :, 32 + tl:].any() and not dv[:, :, 32 + tl:].any()


GRAD_CASES = [
    # video, tile, masks (per head), text_length, text_pad, layout, backend
    ((6, 8, 16), (3, 4, 4), ["sta:1,1,1", "sta:2,1,3"], 5, 8, "tiled", "sta"),
    ((6, 8, 16), (3, 4, 4), ["sta:1,2,3", "full"], 2, 4, "raster", "sta"),
    ((6, 8, 16), (3, 4, 4), ["swa:3,5,7", "swa:4,4,4"], 3, 4, "tiled", "natten"),
    ((6, 8, 16), (3, 4, 4), ["swa:3,5,7", "sta:1,1,1"], 3, 4, "raster", "natten"),
    ((5, 7, 10), (3, 4, 4), ["sta:1,1,1", "sta:2,3,1"], 4, 6, "tiled", "sta"),  # ragged
    ((4, 8, 8), (2, 4, 4), ["full"], 1, 3, "tiled", "dense"),
    ((4, 8, 8), (2, 4, 4), ["swa-torus:3,5,5", "sta:1,2,1"], 2, 5, "tiled", "reference"),
    ((1, 16, 16), (1, 4, 4), ["sta:3,3", "sta:1,1"], 0, 0, "tiled", "sta"),  # a 2D image
]


@pytest.mark.parametrize("case", range(len(GRAD_CASES)))
@pytest.mark.parametrize("given", [True, False], ids=["out_lse_given", "recomputed"])
def test_backward_matches_bruteforce(case, given):
    video, tile, masks, tl, tp, layout, backend = GRAD_CASES[case]
    seed = 300 + case
    S = int(np.prod(video)) + tp
    shape = (2, len(masks), S, 16)
    q, k, v, dout = (randn(shape, seed + i) for i in range(4))
    ragged = any(a % b for a, b in zip(video, tile))
    kw = dict(video=video, tile=tile, masks=masks, text_length=tl, text_pad=tp, layout=layout,
              backend=backend, ragged=ragged)
    extra = {}
    if given:
        out, lse, _ = sta.attention(q, k, v, **kw)
        extra = dict(out=out, lse=lse)
    dq, dk, dv, stats = sta.attention_backward(q, k, v, dout, **kw, **extra)
    rq, rk, rv = brute.attention_grad(q, k, v, dout, video, tile, masks, tl, tp, layout)
    for name, got, ref in (("dq", dq, rq), ("dk", dk, rk), ("dv", dv, rv)):
        assert got.dtype == np.float32 and got.shape == q.shape
        assert grad_err(got, ref) <= GRAD_TOL, f"{name}: {grad_err(got, ref)}, seed {seed}"
    assert stats["backend"] == backend and stats["converted"] == []
    assert stats["precision"] == "fp32" and stats["counts"]["total"] == stats["total"]
    # The backward computes each video block once: its counters are the forward's.
    _, _, fstats = sta.attention(q, k, v, **kw)
    assert stats["counts"] == fstats["counts"]


def small_problem(seed=3):
    video, tile = (4, 8, 8), (2, 4, 4)
    q, k, v, dout = (randn((1, 2, 256 + 4, 16), seed + i) for i in range(4))
    kw = dict(video=video, tile=tile, masks=["sta:1,1,1", "sta:2,2,2"], text_length=3)
    return q, k, v, dout, kw


def test_backward_inputs_are_converted_like_attention():
    q, k, v, dout, kw = small_problem()
    ref = sta.attention_backward(q, k, v, dout, **kw)
    got = sta.attention_backward(*(a.astype(np.float64) for a in (q, k, v, dout)), **kw)
    for a, b in zip(got[:3], ref[:3]):
        assert np.array_equal(a, b)
    assert len(got[3]["converted"]) == 4, got[3]["converted"]
    # Non-contiguous dout is copied, contiguous float32 inputs are not noted.
    big = np.repeat(dout, 2, axis=3)  # big[..., ::2] is dout
    got = sta.attention_backward(q, k, v, big[..., ::2], **kw)
    assert np.array_equal(got[0], ref[0]) and got[3]["converted"] == ["dout: non-contiguous array copied"]
    # With rounding the gradients are those of the rounded inputs (bf16 round to nearest even
    # in numpy; dout is not rounded).
    def bf16(a):
        bits = a.view(np.uint32).astype(np.uint64)
        return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    rounded = sta.attention_backward(q, k, v, dout, rounding="bf16", **kw)
    by_hand = sta.attention_backward(bf16(q), bf16(k), bf16(v), dout, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(rounded[:3], by_hand[:3]))
    assert not np.array_equal(rounded[0], ref[0])
    # Threads give the same bits.
    one = sta.attention_backward(q, k, v, dout, threads=1, **kw)
    two = sta.attention_backward(q, k, v, dout, threads=2, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(one[:3], two[:3]))


def test_bf16_mode_gradients():
    """precision="bf16" (SPEC 8's bf16 mode): within the bf16 tolerance of the float64
    gradients of the bf16-rounded inputs (brute.attention_grad), not the fp32 gradients, the
    same bits for 1 and 2 threads, and the reference backend's are those float64 ones."""
    q, k, v, dout, kw = small_problem(seed=12)

    def bf16(a):
        bits = a.view(np.uint32).astype(np.uint64)
        return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)

    text_pad = q.shape[2] - int(np.prod(kw["video"]))
    want = brute.attention_grad(*(bf16(a).astype(np.float64) for a in (q, k, v, dout)),
                                kw["video"], kw["tile"], kw["masks"], kw["text_length"], text_pad)
    out, lse, _ = sta.attention(q, k, v, precision="bf16", **kw)
    got = sta.attention_backward(q, k, v, dout, out=out, lse=lse, precision="bf16", **kw)
    assert got[3]["precision"] == "bf16"
    fp32 = sta.attention_backward(q, k, v, dout, **kw)
    for name, g, w, f in zip("qkv", got[:3], want, fp32[:3]):
        assert grad_err(g, w) <= 2e-2, f"d{name}: {grad_err(g, w)}"
        assert not np.array_equal(g, f), f"d{name}: bf16 mode gave the fp32 gradients"
    two = sta.attention_backward(q, k, v, dout, out=out, lse=lse, precision="bf16", threads=2, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(got[:3], two[:3]))
    ref = sta.attention_backward(q, k, v, dout, precision="bf16", **{**kw, "backend": "reference"})
    for name, g, w in zip("qkv", ref[:3], want):
        assert grad_err(g, w) <= 1e-6, f"reference d{name}: {grad_err(g, w)}"


def raises(exc, match, fn, *a, **kw):
    with pytest.raises(exc) as info:
        fn(*a, **kw)
    msg = str(info.value)
    assert match in msg, msg
    assert "--" not in msg, f"a command-line flag leaked into a Python error: {msg}"
    return msg


def test_backward_errors_name_the_argument():
    q, k, v, dout, kw = small_problem()
    out, lse, _ = sta.attention(q, k, v, **kw)
    bw = sta.attention_backward
    raises(ValueError, "dout:", bw, q, k, v, dout[:, :1], **kw)
    raises(TypeError, "dout:", bw, q, k, v, "dout", **kw)
    raises(TypeError, "dout:", bw, q, k, v, dout.astype(np.int32), **kw)
    raises(ValueError, "k:", bw, q, k[:, :1], v, dout, **kw)
    raises(ValueError, "out, lse", bw, q, k, v, dout, out=out, **kw)
    raises(ValueError, "out, lse", bw, q, k, v, dout, lse=lse, **kw)
    raises(ValueError, "out:", bw, q, k, v, dout, out=out[:, :, :4], lse=lse, **kw)
    raises(ValueError, "lse:", bw, q, k, v, dout, out=out, lse=out, **kw)
    raises(ValueError, "precision", bw, q, k, v, dout, precision="fp16", **kw)
    raises(ValueError, "masks[1]", bw, q, k, v, dout, **{**kw, "masks": ["sta:1,1,1", "sta:0,1,1"]})
    raises(ValueError, "backend", bw, q, k, v, dout, backend="gpu", **kw)
    raises(ValueError, "text_length", bw, q, k, v, dout, **{**kw, "text_length": 9})
    raises(ValueError, "threads", bw, q, k, v, dout, threads=0, **kw)


# --- torch autograd ---------------------------------------------------------------------------

def torch_dense_attention(q, k, v, allowed, scale):
    """Masked softmax attention in plain torch ops (float64): torch's autograd differentiates
    it. `allowed` is a [H, S, S] bool tensor; rows with no allowed key give 0."""
    s = scale * q @ k.transpose(-1, -2)
    s = s.masked_fill(~allowed, float("-inf"))
    m = s.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m)).detach()
    e = torch.exp(s - m)  # exp(-inf) = 0 on masked pairs
    total = e.sum(dim=-1, keepdim=True)
    p = e / torch.where(total > 0, total, torch.ones_like(total))
    return p @ v


TORCH_CASES = [
    ((6, 8, 16), (3, 4, 4), ["sta:1,1,1", "sta:2,1,3"], 5, 8, "tiled", "sta"),
    ((6, 8, 16), (3, 4, 4), ["swa:3,5,7", "swa:4,4,4"], 3, 4, "raster", "natten"),
    ((4, 8, 8), (2, 4, 4), ["full"], 1, 3, "tiled", "dense"),
    ((4, 8, 8), (2, 4, 4), ["swa-torus:3,5,5", "sta:1,2,1"], 2, 5, "tiled", "reference"),
]


@needs_torch
@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_torch_autograd_matches_torch_dense_attention(case):
    video, tile, masks, tl, tp, layout, backend = TORCH_CASES[case]
    seed = 400 + case
    S = int(np.prod(video)) + tp
    shape = (2, len(masks), S, 16)
    arrays = [randn(shape, seed + i).astype(np.float64) for i in range(4)]
    allowed = torch.from_numpy(np.stack([brute.mask_matrix(video, tile, m, tl, tp, layout)
                                         for m in masks]))
    ref_inputs = [torch.tensor(a, requires_grad=True) for a in arrays[:3]]
    g = torch.from_numpy(arrays[3])
    ref_out = torch_dense_attention(*ref_inputs, allowed, 1.0 / np.sqrt(16))
    (ref_out * g).sum().backward()
    inputs = [torch.tensor(a, requires_grad=True) for a in arrays[:3]]
    out = sta.torch_attention(*inputs, video=video, tile=tile, masks=masks, text_length=tl,
                              text_pad=tp, layout=layout, backend=backend)
    assert out.dtype == torch.float64 and out.requires_grad
    assert grad_err(out.detach().numpy(), ref_out.detach().numpy()) <= 1e-5, f"seed {seed}"
    (out * g).sum().backward()
    for name, a, b in zip("qkv", inputs, ref_inputs):
        assert a.grad is not None and a.grad.dtype == torch.float64
        err = grad_err(a.grad.numpy(), b.grad.numpy())
        assert err <= GRAD_TOL, f"d{name}: {err}, seed {seed}"


@needs_torch
def test_torch_autograd_is_the_library_backward():
    """loss.backward() gives exactly attention_backward's dq, dk, dv for float32 tensors, and
    only the inputs that require a gradient receive one."""
    q, k, v, dout, kw = small_problem(seed=8)
    tq, tk, tv = (torch.from_numpy(a.copy()) for a in (q, k, v))
    tq.requires_grad_(True)
    tv.requires_grad_(True)
    out = sta.torch_attention(tq, tk, tv, **kw)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    ro, _, _ = sta.attention(q, k, v, **kw)
    assert np.array_equal(out.detach().numpy(), ro)
    out.backward(torch.from_numpy(dout))
    dq, _, dv, _ = sta.attention_backward(q, k, v, dout, **kw)
    assert np.array_equal(tq.grad.numpy(), dq) and np.array_equal(tv.grad.numpy(), dv)
    assert tk.grad is None
    assert issubclass(sta.StaAttentionFunction, torch.autograd.Function)
    # out.sum() hands the backward a zero-stride (expanded) gradient: copied, same result.
    tk.requires_grad_(True)
    sta.torch_attention(tq, tk, tv, **kw).sum().backward()
    _, dk1, _, _ = sta.attention_backward(q, k, v, np.ones_like(dout), **kw)
    assert np.array_equal(tk.grad.numpy(), dk1)
    # torch in, torch out for the plain backward too.
    dq_t, dk_t, dv_t, _ = sta.attention_backward(tq.detach(), tk, tv.detach(), torch.from_numpy(dout), **kw)
    assert isinstance(dq_t, torch.Tensor) and np.array_equal(dq_t.numpy(), dq)


@needs_torch
def test_torch_attention_errors():
    q, k, v, _, kw = small_problem()
    tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
    raises(ValueError, "precision", sta.torch_attention, tq, tk, tv, precision="fp8", **kw)
    raises(TypeError, "q:", sta.torch_attention, q, tk, tv, **kw)
    raises(TypeError, "windows", sta.torch_attention, tq, tk, tv, windows=3, **kw)
    raises(TypeError, "video", sta.torch_attention, tq, tk, tv)
