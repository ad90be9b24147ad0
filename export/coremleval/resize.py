"""Image resizing over the last two axes: grids of sample points and the interpolations.

Grid modes are MIL's ``sampling_mode`` names (coremltools' ``iOS15/image_resizing.py`` docstrings
define them with ``Xin`` input and ``Xout`` output points); NeuralNetwork modes map onto them:

- ``STRICT_ALIGN_CORNERS``: i * (Xin-1)/(Xout-1) (0 when Xout == 1); TF ``align_corners=True``
- ``ALIGN_CORNERS``: the same, but (Xin-1)/2 when Xout == 1
- ``DEFAULT``: i * Xin/Xout; TF's legacy ``align_corners=False, half_pixel_centers=False``
- ``OFFSET_CORNERS``: 0.5*d + i*d with d = max(1, Xin-1)/Xout
- ``UNALIGN_CORNERS``: (i + 0.5) * Xin/Xout - 0.5; TF ``half_pixel_centers=True``

Every grid point is clamped to [0, Xin-1].
"""

from __future__ import annotations

import numpy as np

from tfship.export.coremleval.kernels import compute_dtype

# NeuralNetwork SamplingMode.Method / UpsampleLayerParams.LinearUpsampleMode -> grid mode
NN_SAMPLING = {0: "STRICT_ALIGN_CORNERS", 1: "ALIGN_CORNERS", 2: "DEFAULT", 3: "OFFSET_CORNERS"}
NN_UPSAMPLE_LINEAR = {0: "DEFAULT", 1: "STRICT_ALIGN_CORNERS", 2: "UNALIGN_CORNERS"}


def grid(xin: int, xout: int, mode: str, scale: float | None = None) -> np.ndarray:
    """float32 sample points in input coordinates (float32 arithmetic, as TensorFlow's kernels do:
    in float64 one of 750 points of coremltools' resize_bilinear test moved by 1e-4). ``scale``
    (out/in) replaces Xout/Xin where an op is given a scale factor rather than a size."""
    i = np.arange(xout, dtype=np.float32)
    ratio = np.float32(1.0) / np.float32(scale) if scale else np.float32(xin) / np.float32(xout)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if xout == 1:
            g = np.full(1, (xin - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0, np.float32)
        else:
            g = i * (np.float32(xin - 1) / np.float32(xout - 1))
    elif mode == "DEFAULT":
        g = i * ratio
    elif mode == "OFFSET_CORNERS":
        d = np.float32(max(1, xin - 1)) / np.float32(xout)
        g = np.float32(0.5) * d + i * d
    elif mode == "UNALIGN_CORNERS":
        g = (i + np.float32(0.5)) * ratio - np.float32(0.5)
    else:
        raise ValueError(f"unknown sampling mode '{mode}'")
    return np.clip(g, 0, xin - 1)


def _lerp(x: np.ndarray, points: np.ndarray, axis: int) -> np.ndarray:
    lo = np.floor(points).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    frac = (points - lo).astype(np.float32)  # points is float32 already
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def bilinear(x: np.ndarray, out_h: int, out_w: int, mode: str, scales: tuple[float, float] | None = None) -> np.ndarray:
    dtype = compute_dtype(x)
    f = x.astype(np.float32)
    sh, sw = scales or (None, None)
    f = _lerp(f, grid(f.shape[-2], out_h, mode, sh), f.ndim - 2)
    f = _lerp(f, grid(f.shape[-1], out_w, mode, sw), f.ndim - 1)
    return f.astype(dtype)


def nearest_indices(xin: int, xout: int, half_pixel: bool, scale: float | None = None) -> np.ndarray:
    """Source index per output index: floor(i / scale), or floor((i + 0.5) / scale) with half-pixel
    centres (TF ``ResizeNearestNeighbor(half_pixel_centers=True)``), clamped to the input."""
    ratio = np.float32(1.0) / np.float32(scale) if scale else np.float32(xin) / np.float32(xout)
    i = np.arange(xout, dtype=np.float32)
    idx = np.floor((i + np.float32(0.5)) * ratio) if half_pixel else np.floor(i * ratio)
    return np.clip(idx, 0, xin - 1).astype(np.int64)


def nearest(x: np.ndarray, out_h: int, out_w: int, half_pixel: bool,
            scales: tuple[float, float] | None = None) -> np.ndarray:
    sh, sw = scales or (None, None)
    y = np.take(x, nearest_indices(x.shape[-2], out_h, half_pixel, sh), axis=x.ndim - 2)
    return np.take(y, nearest_indices(x.shape[-1], out_w, half_pixel, sw), axis=x.ndim - 1)
