"""NumPy kernels for the tensor-shaping, reduction and normalization layers both model kinds share.

Like ``kernels``, every function works on trailing axes (or on explicit array axes the caller has
already shifted past the sample axis) and computes floating results in float32, rounding back to
float16 when its input was float16.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tfship.export.coremleval.kernels import compute_dtype

# CoreML pad mode -> np.pad mode
PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "reflection": "reflect",
             "replication": "edge", "symmetric": "symmetric"}


def pad(x: np.ndarray, pairs: Sequence[tuple[int, int]], mode: str, value: float = 0.0) -> np.ndarray:
    """``pairs`` cover the trailing axes; negative amounts crop (CoreML allows both)."""
    pairs = [(0, 0)] * (x.ndim - len(pairs)) + [tuple(int(v) for v in p) for p in pairs]
    crop = tuple(slice(-lo if lo < 0 else 0, (x.shape[i] + hi) if hi < 0 else None)
                 for i, (lo, hi) in enumerate(pairs))
    x = x[crop]
    pos = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    if not any(lo or hi for lo, hi in pos):
        return x
    np_mode = PAD_MODES[mode]
    if np_mode == "constant":
        return np.pad(x, pos, mode="constant", constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x, pos, mode=np_mode)


def strided_slice(x: np.ndarray, first_axis: int, begin: Sequence[int], end: Sequence[int],
                  stride: Sequence[int], begin_mask: Sequence[bool], end_mask: Sequence[bool],
                  squeeze_mask: Sequence[bool]) -> np.ndarray:
    """TF/CoreML strided slice of the axes from ``first_axis`` on (masks: ignore begin/end, drop axis)."""
    index: list[object] = [slice(None)] * first_axis
    squeeze: list[int] = []
    for i in range(x.ndim - first_axis):
        b, e, s = int(begin[i]), int(end[i]), int(stride[i]) or 1
        if i < len(squeeze_mask) and squeeze_mask[i]:
            n = x.shape[first_axis + i]
            index.append(slice(b % n, b % n + 1))
            squeeze.append(first_axis + i)
            continue
        index.append(slice(None if begin_mask[i] else b, None if end_mask[i] else e, s))
    out = x[tuple(index)]
    return np.squeeze(out, axis=tuple(squeeze)) if squeeze else out


def depth_to_space(x: np.ndarray, block: int, pixel_shuffle: bool = False) -> np.ndarray:
    """(..., C*b*b, H, W) -> (..., C, H*b, W*b): TF's DCR channel order, or PyTorch's CRD for
    ``pixel_shuffle``."""
    *lead, c, h, w = x.shape
    co = c // (block * block)
    if pixel_shuffle:
        y = x.reshape(*lead, co, block, block, h, w)
        y = np.moveaxis(y, (-5, -4, -3, -2, -1), (-5, -3, -1, -4, -2))
    else:
        y = x.reshape(*lead, block, block, co, h, w)
        y = np.moveaxis(y, (-5, -4, -3, -2, -1), (-3, -1, -5, -4, -2))
    return y.reshape(*lead, co, h * block, w * block)


def space_to_depth(x: np.ndarray, block: int) -> np.ndarray:
    """(..., C, H*b, W*b) -> (..., C*b*b, H, W), the inverse of ``depth_to_space`` (DCR)."""
    *lead, c, hb, wb = x.shape
    h, w = hb // block, wb // block
    y = x.reshape(*lead, c, h, block, w, block)
    y = np.moveaxis(y, (-5, -4, -3, -2, -1), (-3, -2, -5, -1, -4))
    return y.reshape(*lead, c * block * block, h, w)


def _logsumexp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


Reducer = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]
REDUCERS: dict[str, Reducer] = {
    "sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "l1_norm": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "l2_norm": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "log_sum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "sum_square": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
    "log_sum_exp": _logsumexp,
}


def reduce(name: str, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    dtype = compute_dtype(x) if np.issubdtype(x.dtype, np.floating) else x.dtype
    src = x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x
    return np.asarray(REDUCERS[name](src, axes, keepdims)).astype(dtype)


def arg_reduce(x: np.ndarray, axis: int, keepdims: bool, largest: bool) -> np.ndarray:
    fn = np.argmax if largest else np.argmin
    out = fn(x, axis=axis)
    return (np.expand_dims(out, axis) if keepdims else out).astype(np.int32)


def normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: float, gamma: np.ndarray | None = None,
              beta: np.ndarray | None = None, variance: bool = True) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over ``axes``, then * gamma + beta (both broadcast as given)."""
    dtype = compute_dtype(x)
    f = x.astype(np.float32)
    y = f - f.mean(axis=axes, keepdims=True)
    if variance:
        y = y / np.sqrt((y * y).mean(axis=axes, keepdims=True) + np.float32(epsilon))
    if gamma is not None:
        y = y * gamma.astype(np.float32)
    if beta is not None:
        y = y + beta.astype(np.float32)
    return y.astype(dtype)


def l2_normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    dtype = compute_dtype(x)
    f = x.astype(np.float32)
    return (f / np.sqrt((f * f).sum(axis=axes, keepdims=True) + np.float32(epsilon))).astype(dtype)


def local_response_norm(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """x / (k + alpha/size * sum of x^2 over ``size`` neighbouring channels (axis -3))^beta."""
    dtype = compute_dtype(x)
    f = x.astype(np.float32)
    sq = f * f
    c = f.shape[-3]
    lo, hi = (size - 1) // 2, size // 2
    padded = np.pad(sq, [(0, 0)] * (f.ndim - 3) + [(lo, hi), (0, 0), (0, 0)])
    csum = np.cumsum(padded, axis=-3)
    zero = np.zeros_like(csum[..., :1, :, :])
    csum = np.concatenate([zero, csum], axis=-3)
    window = csum[..., size:size + c, :, :] - csum[..., :c, :, :]
    return (f / (np.float32(k) + np.float32(alpha / size) * window) ** np.float32(beta)).astype(dtype)


# Element-wise functions by MIL name (NeuralNetwork layers map onto the same names).
UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "ceil": np.ceil, "floor": np.floor, "round": np.round, "sign": np.sign,
    "exp2": np.exp2, "erf": lambda v: np.vectorize(__import__("math").erf, otypes=[np.float32])(v),
    "abs": np.abs, "square": np.square, "exp": np.exp, "sqrt": np.sqrt, "log": np.log,
    "rsqrt": lambda v: 1 / np.sqrt(v), "inverse": lambda v: 1 / v,
}


def unary(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # NaN/inf outside a function's domain, as on device
        return UNARY[name](x.astype(np.float32)).astype(compute_dtype(x))

