"""NumPy kernels shared by the NeuralNetwork and ML Program evaluators.

Layout is CoreML's: images are channel-first, ``(..., C, H, W)``; every kernel works on the trailing
axes so the evaluators can carry an extra leading sample axis (see ``tfship.export.coremleval``).
Arithmetic is float32 unless the caller passes float16 arrays, in which case the kernel computes in
float32 and rounds the result to float16 (how the fp16 emulation of ML Programs is done).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def compute_dtype(*arrays: np.ndarray) -> np.dtype:
    """float16 when every floating input is float16 (fp16 program), else float32."""
    floats = [a.dtype for a in arrays if np.issubdtype(a.dtype, np.floating)]
    return np.dtype(np.float16) if floats and all(d == np.float16 for d in floats) else np.dtype(np.float32)


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding (extra pixel at the bottom/right, CoreML's BOTTOM_RIGHT_HEAVY)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_hw(x: np.ndarray, pads: Sequence[int], value: float) -> np.ndarray:
    top, bottom, left, right = pads
    if not any(pads):
        return x
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, width, mode="constant", constant_values=value)


def _windows(x: np.ndarray, kernel: Sequence[int], strides: Sequence[int],
             dilations: Sequence[int]) -> np.ndarray:
    """Sliding windows over the last two axes: (..., Ho, Wo, kH, kW)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    eff = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    win = sliding_window_view(x, eff, axis=(-2, -1))
    return win[..., ::sh, ::sw, ::dh, ::dw]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, strides: Sequence[int],
           dilations: Sequence[int], pads: Sequence[int], groups: int = 1) -> np.ndarray:
    """2-D convolution. x (..., C, H, W); weight (C_out, C/groups, kH, kW); pads (top, bottom, left, right)."""
    out_dtype = compute_dtype(x, weight)
    lead = x.shape[:-3]
    c, h, w = x.shape[-3:]
    xb = _pad_hw(x.reshape((-1, c, h, w)).astype(np.float32), pads, 0.0)
    wf = weight.astype(np.float32)
    c_out, c_in_g, kh, kw = wf.shape
    if c_in_g * groups != c:
        raise ValueError(f"convolution weight expects {c_in_g * groups} input channels, input has {c}")
    # Channels-last before the window view, so each im2col row is gathered from nearby memory.
    nhwc = np.ascontiguousarray(xb.transpose(0, 2, 3, 1))
    (sh, sw), (dh, dw) = strides, dilations
    win = sliding_window_view(nhwc, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, ::sh, ::sw, :, ::dh, ::dw]                      # (B, Ho, Wo, C, kH, kW)
    b, ho, wo = win.shape[:3]
    outs = []
    cog = c_out // groups
    for g in range(groups):
        # One GEMM per group: (B*Ho*Wo, Cg*kH*kW) @ (Cg*kH*kW, C_out/g).
        cols = win[:, :, :, g * c_in_g:(g + 1) * c_in_g].reshape(b * ho * wo, c_in_g * kh * kw)
        kern = wf[g * cog:(g + 1) * cog].reshape(cog, -1).T
        outs.append((cols @ kern).reshape(b, ho, wo, cog))
    y = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)
    if bias is not None:
        y = y + bias.astype(np.float32).reshape(-1, 1, 1)
    return y.reshape(lead + y.shape[1:]).astype(out_dtype)


def pool2d(x: np.ndarray, kind: str, kernel: Sequence[int], strides: Sequence[int],
           pads: Sequence[int], exclude_padding: bool = True) -> np.ndarray:
    """Max or average pooling over the last two axes; pads (top, bottom, left, right)."""
    out_dtype = compute_dtype(x)
    xf = x.astype(np.float32)
    h, w = x.shape[-2:]
    tiles = tuple(kernel) == tuple(strides) and not any(pads) and h % kernel[0] == 0 and w % kernel[1] == 0
    if tiles and kind in ("max", "average"):
        # Non-overlapping windows (the usual 2x2/2 pooling): a reshape instead of a strided window view, ~5x faster.
        blocks = xf.reshape(x.shape[:-2] + (h // kernel[0], kernel[0], w // kernel[1], kernel[1]))
        reduce = np.max if kind == "max" else np.mean
        return reduce(blocks, axis=(-3, -1)).astype(out_dtype)
    if kind == "max":
        win = _windows(_pad_hw(xf, pads, -np.inf), kernel, strides, (1, 1))
        return win.max(axis=(-2, -1)).astype(out_dtype)
    if kind != "average":
        raise ValueError(f"unknown pooling kind '{kind}'")
    total = _windows(_pad_hw(xf, pads, 0.0), kernel, strides, (1, 1)).sum(axis=(-2, -1))
    if exclude_padding:
        ones = np.ones(x.shape[-2:], np.float32)
        count = _windows(_pad_hw(ones, pads, 0.0), kernel, strides, (1, 1)).sum(axis=(-2, -1))
    else:
        count = float(kernel[0] * kernel[1])
    return (total / count).astype(out_dtype)


def pool_output_pads(size: int, kernel: int, stride: int, ceil_mode: bool) -> int:
    """Extra bottom/right padding so ``ceil_mode`` pooling yields ceil((size-k)/s)+1 outputs."""
    if not ceil_mode:
        return 0
    out = math.ceil((size - kernel) / stride) + 1
    return max((out - 1) * stride + kernel - size, 0)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float32; a 2-D ``b`` runs as one GEMM over all leading axes (NumPy would loop)."""
    af, bf = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    if bf.ndim == 2 and af.ndim > 2:
        return (af.reshape(-1, af.shape[-1]) @ bf).reshape(af.shape[:-1] + bf.shape[1:])
    return af @ bf


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    out_dtype = compute_dtype(x)
    xf = x.astype(np.float32)
    e = np.exp(xf - xf.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(out_dtype)


def batch_norm(x: np.ndarray, mean: np.ndarray, variance: np.ndarray, gamma: np.ndarray | None,
               beta: np.ndarray | None, epsilon: float, channel_axis: int) -> np.ndarray:
    """Inference batch norm; parameters are per channel along ``channel_axis`` (negative)."""
    out_dtype = compute_dtype(x)
    shape = [1] * (-channel_axis)
    shape[0] = -1
    scale = 1.0 / np.sqrt(variance.astype(np.float32).reshape(shape) + np.float32(epsilon))
    y = (x.astype(np.float32) - mean.astype(np.float32).reshape(shape)) * scale
    if gamma is not None:
        y = y * gamma.astype(np.float32).reshape(shape)
    if beta is not None:
        y = y + beta.astype(np.float32).reshape(shape)
    return y.astype(out_dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    import math as m
    return np.vectorize(m.erf, otypes=[np.float32])(x)


def activation(name: str, x: np.ndarray, alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """Element-wise activations by CoreML name (both spellings: NN ``ReLU``/``leakyReLU``, MIL ``relu``)."""
    out_dtype = compute_dtype(x)
    f = x.astype(np.float32)
    fn = ACTIVATIONS.get(name)
    if fn is None:
        raise KeyError(name)
    return fn(f, np.float32(alpha), np.float32(beta)).astype(out_dtype)


def _sigmoid(f: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-f))


ACTIVATIONS: dict[str, Callable[[np.ndarray, np.float32, np.float32], np.ndarray]] = {
    "relu": lambda f, a, b: np.maximum(f, 0),
    "relu6": lambda f, a, b: np.clip(f, 0, 6),
    "sigmoid": lambda f, a, b: _sigmoid(f),
    "tanh": lambda f, a, b: np.tanh(f),
    "leaky_relu": lambda f, a, b: np.where(f >= 0, f, a * f),
    "elu": lambda f, a, b: np.where(f > 0, f, a * (np.exp(f) - 1)),
    "softplus": lambda f, a, b: np.logaddexp(f, 0),
    "softsign": lambda f, a, b: f / (1 + np.abs(f)),
    "linear": lambda f, a, b: a * f + b,
    "sigmoid_hard": lambda f, a, b: np.clip(a * f + b, 0, 1),
    "scaled_tanh": lambda f, a, b: a * np.tanh(b * f),
    "thresholded_relu": lambda f, a, b: np.where(f > a, f, 0),
    "silu": lambda f, a, b: f * _sigmoid(f),
    "gelu_exact": lambda f, a, b: 0.5 * f * (1 + _erf(f / np.sqrt(np.float32(2)))),
    "gelu_tanh": lambda f, a, b: 0.5 * f * (1 + np.tanh(np.sqrt(np.float32(2 / np.pi)) * (f + 0.044715 * f ** 3))),
    "gelu_sigmoid": lambda f, a, b: f * _sigmoid(np.float32(1.702) * f),
}


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, strides: Sequence[int],
                     dilations: Sequence[int], crop: Sequence[int] | None, out_hw: Sequence[int] | None,
                     groups: int = 1) -> np.ndarray:
    """Transposed 2-D convolution. weight (C_in, C_out/groups, kH, kW). The full output,
    (H-1)*s + (k-1)*d + 1 per axis, is cropped by ``crop`` (top, bottom, left, right) or, given
    ``out_hw``, to that size with TF's "same" split of the excess (the extra row/column at the end)."""
    out_dtype = compute_dtype(x, weight)
    c_in, cog, kh, kw = weight.shape
    (sh, sw), (dh, dw) = strides, dilations
    h, w = x.shape[-2:]
    up = np.zeros(x.shape[:-2] + ((h - 1) * sh + 1, (w - 1) * sw + 1), np.float32)
    up[..., ::sh, ::sw] = x
    cig = c_in // groups
    wf = weight.astype(np.float32).reshape(groups, cig, cog, kh, kw).transpose(0, 2, 1, 3, 4)
    wf = wf.reshape(groups * cog, cig, kh, kw)[..., ::-1, ::-1]
    eh, ew = (kh - 1) * dh, (kw - 1) * dw
    y = conv2d(up, np.ascontiguousarray(wf), bias, (1, 1), (dh, dw), (eh, eh, ew, ew), groups).astype(np.float32)
    fh, fw = y.shape[-2:]
    if out_hw is not None:
        th, tw = (fh - out_hw[0]) // 2, (fw - out_hw[1]) // 2
        y = y[..., max(th, 0):max(th, 0) + out_hw[0], max(tw, 0):max(tw, 0) + out_hw[1]]
        pad_h, pad_w = out_hw[0] - y.shape[-2], out_hw[1] - y.shape[-1]
        if pad_h > 0 or pad_w > 0:  # an output_shape larger than the full output: zeros at the end
            y = np.pad(y, [(0, 0)] * (y.ndim - 2) + [(0, pad_h), (0, pad_w)])
    elif crop is not None:
        t, b, lft, r = crop
        y = y[..., t:fh - b, lft:fw - r]
    return y.astype(out_dtype)
