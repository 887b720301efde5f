"""Sliding Tile Attention on CPU, from Python.

The C++ library (reference, tiled NATTEN and STA backends) behind numpy and PyTorch:

* :func:`sliding_tile_attention` is FastVideo's call, with FastVideo's arguments and meaning,
  for any canvas, tile and head dim (ragged canvases too), on CPU arrays or tensors;
* :func:`attention` is the general call over every option of the library and returns
  ``(out, lse, stats)``; :func:`attention_backward` its gradients ``(dq, dk, dv, stats)``;
* :func:`torch_attention` (``StaAttentionFunction``, a ``torch.autograd.Function``) is
  :func:`attention` as a differentiable torch operation: ``loss.backward()`` gives the
  library's dq, dk, dv;
* :func:`tile` / :func:`untile` convert ``[B, H, S, D]`` between raster and tiled order;
* :func:`block_counts`, :func:`theorem31`, :func:`theorem32`, :func:`check_theorems`,
  :func:`read_mask_strategy`, :func:`load_golden`, :func:`verify_golden`,
  :func:`write_golden` expose the classifier, the theorems, FastVideo's mask-strategy files
  and golden folders.

Inputs: a C-contiguous float32 numpy array is used in place (no copy). float16, float64,
bfloat16 (``ml_dtypes.bfloat16``, or its bits as ``uint16``) and non-contiguous arrays are
converted to a contiguous float32 copy first; ``stats["converted"]`` says which. Objects with
``__array__`` or ``__dlpack__`` are accepted; a CPU ``torch.Tensor`` in gives a
``torch.Tensor`` out (a float32 contiguous tensor is read without a copy).

The GIL is released while the library computes; Ctrl-C is honoured between heads. Bad
arguments raise ``ValueError`` (bad values) or ``TypeError`` (bad types) naming the argument.
docs/semantics.md in the repository describes what is computed.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _sta

__version__: str = _sta.__version__

__all__ = [
    "Mask", "sliding_tile_attention", "attention", "attention_backward", "torch_attention",
    "tile", "untile", "block_counts",
    "theorem31", "theorem31_per_query_tile", "theorem32", "check_theorem31", "check_theorem32",
    "check_theorems", "sta_key_tiles", "effective_window", "read_mask_strategy",
    "parse_mask_strategy", "MaskStrategy", "golden_presets", "golden_inputs", "golden_tolerance",
    "load_golden", "verify_golden", "write_golden", "simd_isa", "gemm_kernel_name",
    "cpu_description", "release_buffer_cache", "__version__",
]

MaskStrategy = _sta.MaskStrategy

# Library messages name the command line's flags; Python users know the arguments.
_FLAG_NAMES = {
    "--video": "video", "--tile": "tile", "--text-length": "text_length",
    "--text-pad": "text_pad", "--mask": "masks", "--layout": "layout",
    "--backend": "backend", "--precision": "precision", "--round": "rounding",
    "--block": "block", "--ragged": "ragged=True",
}


def _renamed(message: str, names: Dict[str, str]) -> str:
    for flag, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(flag, name)
    return message


def _call(fn, *args, names: Optional[Dict[str, str]] = None):
    """Calls the extension, re-raising library errors with Python argument names."""
    table = dict(_FLAG_NAMES)
    table.update(names or {})
    try:
        return fn(*args)
    except ValueError as e:
        raise ValueError(_renamed(str(e), table)) from None


# --- masks ----------------------------------------------------------------------------------

class Mask:
    """One head's video mask (docs/semantics.md, "Masks").

    ``Mask.sta(kt, kh, kw)``: sliding tile attention, window in tiles (FastVideo's rule, an
    even window covers one more tile). ``Mask.swa(wt, wh, ww)``: token-wise sliding window in
    tokens (NATTEN). ``Mask.swa_torus(...)``: the same with wrap-around. ``Mask.full()``.
    ``str(mask)`` is the text form (``"sta:3,3,3"``) that every function also accepts.
    """

    __slots__ = ("kind", "window")

    def __init__(self, kind: str = "full", window: Sequence[int] = (1, 1, 1)):
        if kind not in ("full", "sta", "swa", "swa-torus"):
            raise ValueError(f"kind: {kind!r}; expected 'full', 'sta', 'swa' or 'swa-torus'")
        w = tuple(int(x) for x in window)
        if len(w) == 2:
            w = (1,) + w
        if len(w) != 3:
            raise ValueError(f"window: {window!r}; expected 3 integers (t, h, w)")
        self.kind = kind
        self.window = w

    @classmethod
    def full(cls) -> "Mask":
        return cls("full")

    @classmethod
    def sta(cls, kt: int, kh: int, kw: int) -> "Mask":
        return cls("sta", (kt, kh, kw))

    @classmethod
    def swa(cls, wt: int, wh: int, ww: int) -> "Mask":
        return cls("swa", (wt, wh, ww))

    @classmethod
    def swa_torus(cls, wt: int, wh: int, ww: int) -> "Mask":
        return cls("swa-torus", (wt, wh, ww))

    @classmethod
    def parse(cls, text: str) -> "Mask":
        """Parses "full", "sta:Kt,Kh,Kw", "swa:Wt,Wh,Ww" or "swa-torus:..."."""
        canon = _call(_sta.normalize_mask, text, "mask")
        if canon == "full":
            return cls.full()
        kind, window = canon.split(":")
        return cls(kind, [int(x) for x in window.split(",")])

    def __str__(self) -> str:
        if self.kind == "full":
            return "full"
        return f"{self.kind}:{self.window[0]},{self.window[1]},{self.window[2]}"

    def __repr__(self) -> str:
        return f"Mask({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Mask) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def _mask_text(mask: Any, arg: str) -> str:
    if isinstance(mask, Mask):
        return str(mask)
    if isinstance(mask, str):
        return _call(_sta.normalize_mask, mask, arg)
    raise TypeError(f"{arg}: {type(mask).__name__}; expected a mask string such as "
                    "'sta:3,3,3', 'swa:19,25,25', 'full', or an sta.Mask")


def _mask_list(masks: Any, arg: str = "masks") -> List[str]:
    if isinstance(masks, (str, Mask)):
        return [_mask_text(masks, arg)]
    if not isinstance(masks, (list, tuple)) or len(masks) == 0:
        raise TypeError(f"{arg}: expected one mask or a non-empty list of masks (one per head)")
    return [_mask_text(m, f"{arg}[{i}]") for i, m in enumerate(masks)]


# --- shapes ---------------------------------------------------------------------------------

def _extent(value: Any, arg: str) -> Tuple[int, int, int]:
    """(t, h, w) from "30x48x80", "30,48,80", (30, 48, 80); two numbers mean (1, h, w)."""
    if isinstance(value, str):
        parts = value.replace("x", ",").replace("*", ",").split(",")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{arg}: {value!r} is malformed; expected 'TxHxW' such as "
                             "'30x48x80'") from None
    else:
        try:
            nums = [int(x) for x in value]
        except TypeError:
            raise TypeError(f"{arg}: {type(value).__name__}; expected 3 integers (t, h, w) "
                            "or a string 'TxHxW'") from None
    if len(nums) == 2:
        nums = [1] + nums
    if len(nums) != 3:
        raise ValueError(f"{arg}: {value!r} has {len(nums)} entries; expected 3 (t, h, w)")
    if any(n < 1 for n in nums):
        raise ValueError(f"{arg}: {value!r}; every entry must be >= 1")
    return nums[0], nums[1], nums[2]


def _is_ragged(video, tile_) -> bool:
    return any(v % t != 0 for v, t in zip(video, tile_))


def _threads(threads: Optional[int]) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads: {type(threads).__name__}; expected an int >= 1 or None")
    if threads < 1:
        raise ValueError(f"threads: {threads}; expected >= 1 (or None for the default)")
    return int(threads)


# --- array conversion -----------------------------------------------------------------------

def _torch():
    import sys
    return sys.modules.get("torch")


class _Origin:
    """Where an input came from, so that outputs go back the same way."""

    def __init__(self, torch_dtype=None, device=None):
        self.torch_dtype = torch_dtype
        self.device = device

    def wrap(self, a: np.ndarray, keep_dtype: bool = False):
        if self.torch_dtype is None:
            return a
        torch = _torch()
        t = torch.from_numpy(a)
        if keep_dtype and self.torch_dtype != torch.float32:
            t = t.to(self.torch_dtype)
        if self.device is not None and str(self.device) != "cpu":
            t = t.to(self.device)
        return t


def _bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (np.ascontiguousarray(bits).astype(np.uint32) << 16).view(np.float32)


def _as_f32(x: Any, arg: str, notes: List[str]) -> Tuple[np.ndarray, _Origin]:
    """float32 C-contiguous view of `x` (no copy when it already is one), and its origin."""
    torch = _torch()
    origin = _Origin()
    if torch is not None and isinstance(x, torch.Tensor):
        origin = _Origin(x.dtype, x.device)
        t = x.detach()
        if t.device.type != "cpu":
            notes.append(f"{arg}: copied from {t.device} to cpu")
            t = t.cpu()
        if not (t.is_floating_point()):
            raise TypeError(f"{arg}: torch dtype {t.dtype}; expected a floating-point tensor")
        if t.dtype != torch.float32:
            notes.append(f"{arg}: {str(t.dtype).replace('torch.', '')} converted to float32")
            t = t.float()
        if not t.is_contiguous():
            notes.append(f"{arg}: non-contiguous tensor copied")
            t = t.contiguous()
        return t.numpy(), origin
    if not isinstance(x, np.ndarray):
        if (hasattr(x, "__array__") or hasattr(x, "__array_interface__")
                or isinstance(x, (list, tuple))):
            x = np.asarray(x)
        elif hasattr(x, "__dlpack__"):
            x = np.from_dlpack(x)
        else:
            raise TypeError(f"{arg}: {type(x).__name__}; expected a numpy array, a CPU "
                            "torch.Tensor or an object with __array__ / __dlpack__")
    # A big-endian array (e.g. np.load of a '>f4' file) knows its byte order: numpy converts
    # it to little-endian values (never a reinterpretation of the bytes); the C++ side takes
    # little-endian only.
    big = x.dtype.byteorder == ">" and x.dtype.kind in "fu"
    if big:
        x = x.astype(x.dtype.newbyteorder("<"))
    order = "big-endian " if big else ""
    dt = x.dtype
    if dt == np.float32:
        if big:
            notes.append(f"{arg}: big-endian float32 converted to little-endian")
        a = x
    elif dt.name == "bfloat16":  # ml_dtypes.bfloat16
        notes.append(f"{arg}: bfloat16 converted to float32")
        a = _bf16_bits_to_f32(x.view(np.uint16))
    elif dt == np.uint16:
        notes.append(f"{arg}: {order}uint16 read as bfloat16 bits, converted to float32")
        a = _bf16_bits_to_f32(x)
    elif dt in (np.float16, np.float64):
        notes.append(f"{arg}: {order}{dt.name} converted to float32")
        a = x.astype(np.float32)
    else:
        raise TypeError(f"{arg}: dtype {dt}; expected float32, float16, float64 or bfloat16 "
                        "(ml_dtypes.bfloat16, or its bits as uint16)")
    if not a.flags.c_contiguous:
        notes.append(f"{arg}: non-contiguous array copied")
        a = np.ascontiguousarray(a)
    assert a.dtype == np.dtype("<f4"), a.dtype  # what the C++ side reads in place
    return a, origin


def _qkv(q, k, v, notes):
    qa, origin = _as_f32(q, "q", notes)
    ka, _ = _as_f32(k, "k", notes)
    va, _ = _as_f32(v, "v", notes)
    if qa.ndim != 4:
        raise ValueError(f"q: shape {list(qa.shape)}; expected [B, H, S, D]")
    for name, a in (("k", ka), ("v", va)):
        if a.shape != qa.shape:
            raise ValueError(f"{name}: shape {list(a.shape)} differs from q's {list(qa.shape)}; "
                             "expected the same [B, H, S, D]")
    return qa, ka, va, origin


# --- attention ------------------------------------------------------------------------------

_PRECISIONS = ("fp32", "bf16")


def attention(q, k, v, *, video, tile=(6, 8, 8), masks: Any = "full", text_length: int = 0,
              text_pad: Optional[int] = None, ragged: bool = False, layout: str = "tiled",
              backend: str = "auto", precision: str = "fp32", scale: Optional[float] = None,
              rounding: str = "none", threads: Optional[int] = None):
    """Masked attention with every option of the library; returns ``(out, lse, stats)``.

    Args:
      q, k, v: ``[B, H, S, D]``, ``S = prod(video) + text_pad``; video tokens in `layout`
        order, then the text slots.
      video: canvas in tokens, ``(T, H, W)``, ``"TxHxW"`` or ``(H, W)`` for an image.
      tile: tile in tokens (default FastVideo's ``(6, 8, 8)``).
      masks: one mask for all heads or one per head: ``"sta:Kt,Kh,Kw"`` (tiles),
        ``"swa:Wt,Wh,Ww"`` (tokens), ``"swa-torus:..."``, ``"full"`` or :class:`Mask`.
      text_length: real text tokens (keys after them are padding, never attended).
      text_pad: text slots after the video; default ``S - prod(video)``.
      ragged: allow canvas axes not divisible by the tile (shorter last tile).
      layout: ``"tiled"`` (FastVideo's kernel order) or ``"raster"``.
      backend: ``"sta"`` (window key tiles only; sta/full masks), ``"natten"`` (every
        non-empty block, mixed ones masked), ``"dense"``, ``"reference"`` (double
        precision oracle) or ``"auto"`` (sta when every mask allows it, else natten).
      precision: ``"fp32"`` or ``"bf16"`` (FastVideo's kernel arithmetic).
      scale: softmax scale, default ``1/sqrt(D)``.
      rounding: ``"none"``, ``"bf16"`` or ``"fp16"``: round the inputs first.
      threads: OpenMP threads (default: the library's default).

    Returns:
      ``out`` float32 ``[B, H, S, D]``, ``lse`` float32 ``[B, H, S]`` (natural log; a query
      with no allowed key has ``out = 0``, ``lse = -inf``), and ``stats``: a dict with the
      kernel's block counters (``dense``, ``mixed``, ``empty``, ``total``, summed over
      batches and heads), ``backend``, ``isa``, ``gemm``, ``precision``, ``threads`` and
      ``converted`` (input conversions made). torch tensors in give tensors out.
    """
    notes: List[str] = []
    qa, ka, va, origin = _qkv(q, k, v, notes)
    opts = _options(qa, video, tile, masks, text_length, text_pad, ragged, layout, backend,
                    precision, scale, rounding, threads)
    out, lse, stats = _call(_sta.attention, qa, ka, va, *opts)
    stats["converted"] = notes
    stats["counts"] = {key: stats[key] for key in ("dense", "mixed", "empty", "total")}
    return origin.wrap(out), origin.wrap(lse), stats


def _options(qa, video, tile, masks, text_length, text_pad, ragged, layout, backend,
             precision, scale, rounding, threads) -> list:
    """The extension's option arguments (video ... threads) from attention()'s keywords."""
    video_ = _extent(video, "video")
    tile_ = _extent(tile, "tile")
    mask_texts = _mask_list(masks)
    vt = video_[0] * video_[1] * video_[2]
    seq = qa.shape[2]
    if text_pad is None:
        if seq < vt:
            raise ValueError(f"q: S = {seq} is shorter than the video ({vt} tokens of "
                             f"{video_}); expected S = prod(video) + text_pad")
        text_pad = seq - vt
    if not isinstance(layout, str):
        raise TypeError("layout: expected 'tiled' or 'raster'")
    if backend == "auto":
        backend = "sta" if all(m == "full" or m.startswith("sta:") for m in mask_texts) else "natten"
    if not isinstance(backend, str):
        raise TypeError("backend: expected 'sta', 'natten', 'dense', 'reference' or 'auto'")
    if scale is None:
        scale = 0.0
    elif not float(scale) > 0:
        raise ValueError(f"scale: {scale}; expected a positive number (or None for 1/sqrt(D))")
    return [list(video_), list(tile_), mask_texts, int(text_length), int(text_pad),
            bool(ragged), layout, backend, precision, float(scale), rounding, _threads(threads)]


def attention_backward(q, k, v, dout, *, out=None, lse=None, video, tile=(6, 8, 8),
                       masks: Any = "full", text_length: int = 0,
                       text_pad: Optional[int] = None, ragged: bool = False,
                       layout: str = "tiled", backend: str = "auto", precision: str = "fp32",
                       scale: Optional[float] = None, rounding: str = "none",
                       threads: Optional[int] = None):
    """Gradients of :func:`attention`; returns ``(dq, dk, dv, stats)``.

    The exact derivative of ``L = sum(out * dout)`` with respect to q, k and v, where
    ``out`` is :func:`attention` of the same inputs and options (FlashAttention-2's
    formulas, SPEC section 8): ``P = exp(scale * q k^T - lse)`` over the allowed keys,
    ``dv = P^T dout``, ``dS = P * (dout v^T - rowsum(dout * out))``, ``dq = scale dS k``,
    ``dk = scale dS^T q``. Padded text keys get zero gradient; a query with no allowed key
    contributes nothing.

    Args:
      q, k, v, dout: ``[B, H, S, D]`` (same handling as :func:`attention`: float32
        C-contiguous numpy arrays are read in place, other dtypes converted, torch in gives
        torch out).
      out, lse: the forward's ``out`` ``[B, H, S, D]`` and ``lse`` ``[B, H, S]`` for the same
        inputs and options (both or neither); without them the library recomputes them with
        `backend`. The ``"reference"`` backend always recomputes them in double.
      video, tile, masks, text_length, text_pad, ragged, layout, backend, scale, rounding,
        threads: as in :func:`attention`. With `rounding`, the gradients are those of the
        rounded inputs.
      precision: ``"fp32"``, or ``"bf16"`` (SPEC 8's bf16 mode, as FlashAttention-2's and
        FlexAttention's bf16 kernels compute: q, k, v, dout rounded to bf16, ``P`` rounded
        before ``dv = P^T dout``, ``dS`` rounded before ``dq`` and ``dk``, fp32 sums; an exact
        emulation on the fp32 kernels, the same on every CPU). Pass the ``out`` and ``lse``
        of :func:`attention` in the same precision.

    Returns:
      ``dq``, ``dk``, ``dv`` float32 ``[B, H, S, D]`` in `layout` order, and ``stats``: the
      block counters of the backward (``dense``, ``mixed``, ``empty``, ``total``; they equal
      the forward's), ``backend`` (``"reference"`` when an input held a NaN or Inf),
      ``isa``, ``gemm``, ``precision``, ``threads`` and ``converted``. The GIL is released
      during the computation (Ctrl-C is honoured once it returns).
    """
    notes: List[str] = []
    qa, ka, va, origin = _qkv(q, k, v, notes)
    da, _ = _as_f32(dout, "dout", notes)
    if da.shape != qa.shape:
        raise ValueError(f"dout: shape {list(da.shape)} differs from q's {list(qa.shape)}; "
                         "expected the same [B, H, S, D]")
    if (out is None) != (lse is None):
        raise ValueError("out, lse: give both of the forward's out and lse, or neither "
                         "(then they are recomputed)")
    oa = la = None
    if out is not None:
        oa, _ = _as_f32(out, "out", notes)
        la, _ = _as_f32(lse, "lse", notes)
        if oa.shape != qa.shape:
            raise ValueError(f"out: shape {list(oa.shape)} differs from q's {list(qa.shape)}; "
                             "expected the same [B, H, S, D]")
        if la.shape != qa.shape[:3]:
            raise ValueError(f"lse: shape {list(la.shape)}; expected q's [B, H, S] "
                             f"{list(qa.shape[:3])}")
    opts = _options(qa, video, tile, masks, text_length, text_pad, ragged, layout, backend,
                    precision, scale, rounding, threads)
    dq, dk, dv, stats = _call(_sta.attention_backward, qa, ka, va, da, oa, la, *opts,
                              names={"--out/--lse": "out/lse"})
    stats["converted"] = notes
    stats["counts"] = {key: stats[key] for key in ("dense", "mixed", "empty", "total")}
    return origin.wrap(dq), origin.wrap(dk), origin.wrap(dv), stats


def sliding_tile_attention(q, k, v, window_size, text_length: int, has_text: bool = True,
                           seq_shape: Any = "30x48x80", tile: Any = (6, 8, 8), *,
                           dit_seq_shape: Any = None, return_lse: bool = False,
                           backend: str = "sta", precision: str = "fp32",
                           scale: Optional[float] = None, threads: Optional[int] = None,
                           ragged: Optional[bool] = None):
    """FastVideo's ``sliding_tile_attention`` on CPU, for any canvas, tile and head dim.

    Drop-in for ``st_attn.sliding_tile_attention(q, k, v, window_size, text_length,
    has_text=True, seq_shape="30x48x80")``: the same arguments and meaning, but no
    restriction to FastVideo's three canvases (30x48x80 with text, 36x48x48 and 18x48x80
    without) or to its 6x8x8 tile.

    Args:
      q, k, v: ``[B, H, S, D]`` in tiled order (FastVideo's ``tile()``; see :func:`tile`):
        the ``prod(seq_shape)`` video tokens, then, with `has_text`, the text slots.
        numpy arrays, CPU torch tensors (any float dtype, bf16 included) or array-likes.
      window_size: one ``[kt, kh, kw]`` per head, in tiles. FastVideo's centre clamp: an
        even window covers one more tile, a window >= the axis covers the axis.
      text_length: real text tokens among the ``S - prod(seq_shape)`` text slots (0..slots);
        the remaining slots are padding that no query attends. Ignored without text.
      has_text: text tokens follow the video (``S > prod(seq_shape)``); without it
        ``S`` must equal ``prod(seq_shape)``. Video and text queries attend every real text
        key; text queries attend every valid key.
      seq_shape: video canvas in tokens, ``"TxHxW"`` or ``(T, H, W)`` (``dit_seq_shape`` is
        accepted as FastVideo's newer name).
      tile: tile in tokens (FastVideo: ``(6, 8, 8)``). A canvas not divisible by the tile
        gets shorter edge tiles (``ragged``, default automatic).
      return_lse: also return ``lse`` ``[B, H, S]`` (float32, natural log).
      backend: ``"sta"`` (default), ``"reference"`` (double oracle), ``"natten"``, ``"dense"``
        (only for windows covering the whole canvas).
      precision: ``"fp32"`` (default) or ``"bf16"`` (FastVideo's kernel arithmetic).
      scale: softmax scale (default ``1/sqrt(D)``, as FastVideo).
      threads: OpenMP threads.

    Returns:
      ``out`` ``[B, H, S, D]`` like FastVideo's (a torch tensor of q's dtype for a torch
      input, float32 numpy otherwise), or ``(out, lse)`` with `return_lse`.

    Example::

        out = sta.sliding_tile_attention(q, k, v, [[3, 3, 3]] * heads, 226,
                                         has_text=True, seq_shape="30x48x80")
    """
    if dit_seq_shape is not None:
        seq_shape = dit_seq_shape
    notes: List[str] = []
    qa, ka, va, origin = _qkv(q, k, v, notes)
    batch, heads, seq, dim = qa.shape
    video_ = _extent(seq_shape, "seq_shape")
    tile_ = _extent(tile, "tile")
    try:
        windows = [list(w) for w in window_size]
    except TypeError:
        raise TypeError("window_size: expected one [kt, kh, kw] (tiles) per head") from None
    if len(windows) != heads:
        raise ValueError(f"window_size: {len(windows)} windows for {heads} heads (q.shape[1]); "
                         "expected one [kt, kh, kw] per head")
    masks = []
    for h, w in enumerate(windows):
        kt, kh, kw = _extent(w, f"window_size[{h}]")
        masks.append(f"sta:{kt},{kh},{kw}")
    vt = video_[0] * video_[1] * video_[2]
    if has_text:
        if seq < vt:
            raise ValueError(f"q: S = {seq} is shorter than seq_shape {video_} ({vt} video "
                             "tokens); expected S = video tokens + text slots")
        text_pad = seq - vt
        try:
            text_length = int(text_length)
        except (TypeError, ValueError):
            raise TypeError("text_length: expected an int") from None
        if not 0 <= text_length <= text_pad:
            raise ValueError(f"text_length: {text_length}; expected 0 <= text_length <= "
                             f"{text_pad} (the text slots, S - prod(seq_shape))")
    else:
        if seq != vt:
            raise ValueError(f"q: S = {seq} but seq_shape {video_} has {vt} video tokens; "
                             "without text S must equal prod(seq_shape)")
        text_pad, text_length = 0, 0
    if ragged is None:
        ragged = _is_ragged(video_, tile_)
    if scale is None:
        scale = 0.0
    names = {"--mask": "window_size", "masks[": "window_size[", "--video": "seq_shape"}
    out, lse, _ = _call(_sta.attention, qa, ka, va, list(video_), list(tile_), masks,
                        text_length, text_pad, bool(ragged), "tiled", backend, precision,
                        float(scale), "none", _threads(threads), names=names)
    out_t = origin.wrap(out, keep_dtype=True)
    if return_lse:
        return out_t, origin.wrap(lse)
    return out_t


# --- torch autograd ---------------------------------------------------------------------------

_AUTOGRAD_FUNCTION = None


def _attention_function():
    """sta.StaAttentionFunction, built on first use (importing torch is slow and optional)."""
    global _AUTOGRAD_FUNCTION
    if _AUTOGRAD_FUNCTION is not None:
        return _AUTOGRAD_FUNCTION
    import torch
    from torch.autograd.function import once_differentiable

    class StaAttentionFunction(torch.autograd.Function):
        """``torch.autograd.Function`` of :func:`attention`: the forward saves q, k, v, out
        and lse; the backward is :func:`attention_backward` (the library's dq, dk, dv).
        ``StaAttentionFunction.apply(q, k, v, options)`` with `options` a dict of
        :func:`attention`'s keywords; :func:`torch_attention` is the friendlier call."""

        @staticmethod
        def forward(ctx, q, k, v, options):
            out, lse, _ = attention(q, k, v, **options)
            ctx.save_for_backward(q, k, v, out, lse)
            ctx.options = options
            return out.to(q.dtype)

        @staticmethod
        @once_differentiable
        def backward(ctx, dout):
            q, k, v, out, lse = ctx.saved_tensors
            dq, dk, dv, _ = attention_backward(q, k, v, dout, out=out, lse=lse, **ctx.options)
            return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None

    _AUTOGRAD_FUNCTION = StaAttentionFunction
    return StaAttentionFunction


def __getattr__(name: str):
    if name == "StaAttentionFunction":
        return _attention_function()
    raise AttributeError(f"module 'sta' has no attribute {name!r}")


def torch_attention(q, k, v, **options):
    """:func:`attention` as a differentiable torch operation; returns ``out`` only.

    ``q, k, v`` are torch tensors ``[B, H, S, D]`` (any float dtype; computed in float32);
    `options` are :func:`attention`'s keywords (``video``, ``tile``, ``masks``,
    ``text_length``, ``text_pad``, ``ragged``, ``layout``, ``backend``, ``scale``,
    ``precision``, ``rounding``, ``threads``). ``out`` has q's dtype. ``out.backward(g)`` (or
    any loss built on it) gives q, k and v the library's gradients (:func:`attention_backward`,
    with the saved out and lse, in the same precision: ``precision="bf16"`` gives SPEC 8's
    bf16-mode gradients). Not twice differentiable.

    Example::

        out = sta.torch_attention(q, k, v, video=(30, 48, 80), masks=["sta:3,3,3"] * heads,
                                  text_length=226)
        out.float().pow(2).sum().backward()   # q.grad, k.grad, v.grad
    """
    torch = _torch()
    if torch is None:
        import torch  # noqa: F401  (raises ImportError when torch is absent)
        torch = _torch()
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: {type(x).__name__}; expected a torch.Tensor "
                            "(use sta.attention for numpy arrays)")
    if "video" not in options:
        raise TypeError("video: missing; expected the canvas in tokens, e.g. video=(30, 48, 80)")
    known = ("video", "tile", "masks", "text_length", "text_pad", "ragged", "layout",
             "backend", "precision", "scale", "rounding", "threads")
    for key in options:
        if key not in known:
            raise TypeError(f"{key}: unknown option; expected one of {', '.join(known)}")
    return _attention_function().apply(q, k, v, dict(options))


# --- layout ---------------------------------------------------------------------------------

def _permute(x, video, tile_, ragged, seq_dim, to_tiled: bool):
    video_ = _extent(video, "video")
    tile_ = _extent(tile_, "tile")
    if ragged is None:
        ragged = _is_ragged(video_, tile_)
    elif not ragged and _is_ragged(video_, tile_):
        _call(_sta.tiled_to_raster, list(video_), list(tile_), False)  # raises, names the axis
    torch = _torch()
    is_torch = torch is not None and isinstance(x, torch.Tensor)
    arr = x if is_torch else (x if isinstance(x, np.ndarray) else np.asarray(x))
    ndim = arr.dim() if is_torch else arr.ndim
    if ndim < 2:
        raise ValueError(f"x: {ndim} dimensions; expected [B, H, S, D] (or any [..., S, ...])")
    axis = seq_dim % ndim
    seq = arr.shape[axis]
    vt = video_[0] * video_[1] * video_[2]
    if seq < vt:
        raise ValueError(f"x: S = {seq} (dimension {axis}) is shorter than the video "
                         f"({vt} tokens of {video_})")
    # Fast path: float32 C-contiguous [B, H, S, D] numpy through the library's permutation.
    if (not is_torch and axis == ndim - 2 and arr.dtype == np.float32
            and arr.flags.c_contiguous):
        flat = arr.reshape(-1, seq, arr.shape[-1]) if ndim > 2 else arr.reshape(1, seq, 1)
        fn = _sta.tile if to_tiled else _sta.untile
        return _call(fn, flat, list(video_), list(tile_), bool(ragged)).reshape(arr.shape)
    index = _call(_sta.tiled_to_raster, list(video_), list(tile_), bool(ragged))
    if not to_tiled:
        inverse = np.empty_like(index)
        inverse[index] = np.arange(index.size)
        index = inverse
    index = np.concatenate([index, np.arange(vt, seq)])
    if is_torch:
        return torch.index_select(x, axis, torch.from_numpy(index).to(x.device))
    return np.take(arr, index, axis=axis)


def tile(x, video, tile=(6, 8, 8), *, ragged: Optional[bool] = None, seq_dim: int = 2):
    """Raster to tiled order along the sequence dimension (FastVideo's ``tile``).

    ``x`` is ``[B, H, S, D]`` (or any array with the sequence at `seq_dim`, e.g. ``-3`` for
    ``[B, S, H, D]``), numpy or torch, any dtype. The first ``prod(video)`` tokens are the
    raster-order canvas ``(T, H, W)``; later (text) tokens are kept in place. The result is
    the einops rearrange ``"(nt t nh h nw w) -> (nt nh nw t h w)"`` of the video part: tiles
    row-major, each tile's tokens contiguous and row-major. Exact: ``untile(tile(x)) == x``.
    A canvas not divisible by the tile has shorter last tiles (``ragged``, default automatic).
    """
    return _permute(x, video, tile, ragged, seq_dim, True)


def untile(x, video, tile=(6, 8, 8), *, ragged: Optional[bool] = None, seq_dim: int = 2):
    """Tiled to raster order: the inverse of :func:`tile` (same arguments)."""
    return _permute(x, video, tile, ragged, seq_dim, False)


# --- blocks and theorems --------------------------------------------------------------------

def block_counts(video, tile=(6, 8, 8), mask: Any = "sta:3,3,3", *, order: str = "tiled",
                 block: Optional[Sequence[int]] = None, ragged: bool = False) -> Dict[str, Any]:
    """Dense / mixed / empty blocks of one head's video attention map.

    A block is one query tile x one key tile in tiled order (``block`` must be None), or
    ``block = (Bq, Bk)`` tokens in raster order. Returns ``dense``, ``mixed``, ``empty``,
    ``total``, ``allowed_pairs``, ``total_pairs`` and ``sparsity`` (fraction masked out).
    """
    bq, bk = (0, 0) if block is None else (int(block[0]), int(block[1]))
    return _call(_sta.classify_blocks, list(_extent(video, "video")), list(_extent(tile, "tile")),
                 _mask_text(mask, "mask"), order, bq, bk, bool(ragged),
                 names={"--mask": "mask"})


def theorem31_per_query_tile(tile: int, window: int, dims: int = 3) -> Dict[str, int]:
    """Theorem 3.1 per query tile (cube tile T, cube window W tokens):
    dense = max(2*floor((W+1)/(2T)) - 1, 0)^dims, mixed = (2*ceil((W-1)/(2T)) + 1)^dims - dense."""
    return _call(_sta.theorem31_per_query_tile, int(tile), int(window), int(dims))


def theorem31(canvas: int, tile: int, window: int, dims: int = 3) -> Dict[str, int]:
    """Theorem 3.1 over a cube canvas of L tokens (n = L/T tiles per axis)."""
    return _call(_sta.theorem31, int(canvas), int(tile), int(window), int(dims))


def theorem32(num_tiles: int, window_tiles: int, dims: int = 3) -> Dict[str, int]:
    """Theorem 3.2: dense = K^dims * n^dims, mixed = 0."""
    return _call(_sta.theorem32, int(num_tiles), int(window_tiles), int(dims))


def check_theorem31(canvas: int, tile: int, window: int, mode: str = "torus",
                    dims: int = 3) -> Dict[str, Any]:
    """Theorem 3.1 against the classifier; mode "torus", "interior" or "clamped"."""
    return _call(_sta.check_theorem31, int(canvas), int(tile), int(window), mode, int(dims))


def check_theorem32(num_tiles: int, tile: int, window_tiles: int, dims: int = 3) -> Dict[str, Any]:
    """Theorem 3.2 against the classifier for n tiles of T tokens and an STA window K."""
    return _call(_sta.check_theorem32, int(num_tiles), int(tile), int(window_tiles), int(dims))


def check_theorems() -> List[Dict[str, Any]]:
    """The sweep of ``sta theorems``: one dict per configuration (``failed`` marks an exact
    claim the classifier contradicts)."""
    return _sta.check_theorems()


def sta_key_tiles(window_tiles: int, num_tiles: int, query_tile: int) -> Tuple[int, int]:
    """(first, count) of the key tiles an STA query tile sees on one axis."""
    return _call(_sta.sta_key_tiles, int(window_tiles), int(num_tiles), int(query_tile))


def effective_window(window_tiles, num_tiles) -> Tuple[int, int, int]:
    """What an STA window covers on a tile grid (even K -> K+1, K >= n -> n)."""
    return _call(_sta.effective_sta_window, list(_extent(window_tiles, "window_tiles")),
                 list(_extent(num_tiles, "num_tiles")))


# --- mask strategies ------------------------------------------------------------------------

def read_mask_strategy(path: Union[str, os.PathLike]) -> MaskStrategy:
    """Reads a FastVideo mask-strategy JSON ("step_layer_head" -> [kt, kh, kw]).

    ``strategy.window_size(step, layer, heads=-1)`` is the ``window_size`` argument of
    :func:`sliding_tile_attention` for one layer at one step; ``masks(...)`` the mask strings.
    """
    return _call(_sta.read_mask_strategy, os.fspath(path))


def parse_mask_strategy(text: str, source: str = "<string>") -> MaskStrategy:
    """Parses the text of a mask-strategy file (errors name `source`, line and column)."""
    return _call(_sta.parse_mask_strategy, text, source)


# --- golden folders -------------------------------------------------------------------------

def golden_presets() -> List[Dict[str, Any]]:
    """The built-in golden problems of ``sta golden --list``."""
    return _sta.golden_presets()


def golden_tolerance(rounding: str = "none") -> float:
    """Max abs error allowed against the double reference: fp32 1e-5, fp16 2e-3, bf16 2e-2."""
    return _call(_sta.golden_tolerance, rounding)


def golden_inputs(shape: Sequence[int], seed: int = 0, rounding: str = "none"):
    """q, k, v of a golden folder: approximately N(0, 1), the same bits on every platform
    (``sta golden`` with this seed and rounding)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape))
    arrays = []
    for stream in range(3):
        a = _call(_sta.golden_fill, n, int(seed), stream).reshape(shape)
        _call(_sta.round_inputs, a, rounding)
        arrays.append(a)
    return tuple(arrays)


class GoldenFolder(dict):
    """A loaded golden folder: ``manifest`` (dict), arrays ``q, k, v, out, lse`` and
    ``options`` (keyword arguments of :func:`attention` that recompute ``out``/``lse``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _manifest_options(m: Dict[str, Any]) -> Dict[str, Any]:
    return dict(video=tuple(m["video"]), tile=tuple(m["tile"]), masks=list(m["masks"]),
                text_length=m["text_length"], text_pad=m["text_pad"],
                ragged=bool(m.get("ragged", False)), layout=m["layout"], backend=m["backend"],
                scale=m["scale"])


def load_golden(path: Union[str, os.PathLike], mmap: bool = False) -> GoldenFolder:
    """Loads a folder written by ``sta golden`` (or :func:`write_golden`)."""
    path = os.fspath(path)
    manifest_path = os.path.join(path, "manifest.json")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except OSError as e:
        raise ValueError(f"path: cannot read {manifest_path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"path: {manifest_path} is not valid JSON: {e}") from None
    if manifest.get("format") != "sta-golden/1":
        raise ValueError(f"path: {manifest_path} is not an sta-golden/1 manifest")
    g = GoldenFolder(manifest=manifest, options=_manifest_options(manifest), path=path)
    for name in ("q", "k", "v", "out", "lse"):
        g[name] = np.load(os.path.join(path, f"{name}.npy"), mmap_mode="r" if mmap else None)
    return g


def verify_golden(path: Union[str, os.PathLike], *, hashes_only: bool = False,
                  threads: Optional[int] = None) -> Dict[str, Any]:
    """Checks a golden folder with the library's verifier, exactly as ``sta verify`` does:
    every file a regular file of the size its shape needs, its header and SHA-256 as
    recorded; every manifest field regenerated and compared; then (unless `hashes_only`)
    q, k, v (and dout) regenerated from the seed bit for bit and out, lse (and dq, dk, dv)
    recomputed within the prescribed tolerances.

    Returns a dict: ``ok``, ``lines`` (what ``sta verify`` prints), ``hashes`` (file ->
    bool), ``manifest_same``, ``inputs_same``, ``out_max_abs`` and ``lse_max_abs`` (None
    when not computed). A malformed folder raises ``ValueError``."""
    return _call(_sta.verify_golden, os.fspath(path), bool(hashes_only), _threads(threads))


_GOLDEN_OPTIONS = ("video", "tile", "masks", "text_length", "text_pad", "ragged", "layout",
                   "backend")


def write_golden(path: Union[str, os.PathLike], *, preset: Optional[str] = None,
                 seed: int = 0, rounding: str = "none", precision: str = "fp32",
                 force: bool = False, grad: bool = False, shape: Optional[Sequence[int]] = None,
                 threads: Optional[int] = None, **options) -> Dict[str, Any]:
    """Writes a golden folder with the library's writer (the same files and manifest as
    ``sta golden``): ``q, k, v, out, lse`` .npy, with `grad` also ``dout, dq, dk, dv``
    (SPEC 8), and ``manifest.json`` last. A built-in `preset`, or a custom problem:
    ``shape=(B, H, S, D)`` and :func:`attention`'s keywords ``video``, ``tile``, ``masks``,
    ``text_length``, ``text_pad``, ``ragged``, ``layout``, ``backend`` (default
    ``"reference"``); the scale is always the default ``1/sqrt(D)``. `rounding` and
    `precision` as in :func:`attention`. Existing golden files are replaced only with
    `force`. Written head by head (memory for a few ``[S, D]`` planes, whatever the number of
    heads); the files appear together when the last head is done, so an error or a Ctrl-C on
    the way leaves no golden file. Returns the manifest (a dict)."""
    path = os.fspath(path)
    for key in options:
        if key not in _GOLDEN_OPTIONS:
            raise TypeError(f"{key}: not an option of write_golden; expected one of "
                            f"{', '.join(_GOLDEN_OPTIONS)} (golden folders use the default scale)")
    if preset is not None:
        if shape is not None or options:
            raise ValueError("preset: a preset fixes the problem; pass no shape or options")
        if not isinstance(preset, str):
            raise TypeError("preset: expected a preset name (see sta.golden_presets())")
        args = [preset, [], [1, 1, 1], [1, 1, 1], ["full"], 0, 0, False, "tiled", "reference"]
    else:
        if shape is None:
            raise ValueError("shape: missing; expected (B, H, S, D) for a custom problem")
        shape = [int(x) for x in shape]
        if len(shape) != 4:
            raise ValueError(f"shape: {shape}; expected 4 integers (B, H, S, D)")
        if "video" not in options:
            raise ValueError("video: missing; expected the canvas in tokens for a custom problem")
        video = _extent(options["video"], "video")
        tile_ = _extent(options.get("tile", (6, 8, 8)), "tile")
        text_pad = options.get("text_pad")
        if text_pad is None:
            text_pad = shape[2] - video[0] * video[1] * video[2]
        args = ["", shape, list(video), list(tile_), _mask_list(options.get("masks", "full")),
                int(options.get("text_length", 0)), int(text_pad),
                bool(options.get("ragged", False)), options.get("layout", "tiled"),
                options.get("backend", "reference")]
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    text = _call(_sta.write_golden, path, *args, precision, rounding, int(seed), bool(force),
                 bool(grad), _threads(threads), names={"--force": "force=True"})
    return json.loads(text)


# --- this machine ---------------------------------------------------------------------------

def simd_isa() -> str:
    """The SIMD instruction set chosen at run time ("avx512", "avx2", "scalar")."""
    return _sta.simd_isa()


def gemm_kernel_name(precision: str = "fp32") -> str:
    """The GEMM micro-kernel the fast backends use in `precision` on this machine."""
    return _call(_sta.gemm_kernel_name, precision)


def cpu_description() -> str:
    """This CPU in words: vendor, model and the instruction-set extensions the kernels use."""
    return _sta.cpu_description()


def release_buffer_cache() -> None:
    """Frees the large work buffers (packed K and V) the library keeps between calls.

    Blocks of 4 MiB and more are kept when a call ends, up to $STA_BUFFER_CACHE_MB MiB (1024
    unset, 0 keeps none), so the next call of a similar shape touches no fresh page; call
    this when the kernels will not run for a while.
    """
    _sta.release_buffer_cache()
