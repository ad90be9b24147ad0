"""NeuralNetwork layers that move, cut, pad, resize or reshape tensors (the N-D layers coremltools
emits for padding, slicing, upsampling, dynamic shapes). Registered into the evaluator's layer
table by ``LAYERS``; each takes (evaluator, layer, inputs) and returns a ``Value`` or a list of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tfship.export.coremleval import resize, tensor_kernels as tk
from tfship.export.coremleval.evaluator import UnsupportedCoremlOpError, Value, broadcastable


def _unsupported(ev: Any, layer: Any, what: str) -> UnsupportedCoremlOpError:
    return UnsupportedCoremlOpError("NeuralNetwork layer", what, layer.name, ev.path)


def _spec_shape(x: Value) -> tuple[int, ...]:
    return x.array.shape[int(x.batched):]


def _lead(x: Value) -> tuple[int, ...]:
    return x.array.shape[:1] if x.batched else ()


def _const_ints(v: Value) -> list[int]:
    """A run-time shape/amount tensor (the same for every sample) as Python ints."""
    a = v.array[0] if v.batched else v.array
    return [int(round(float(t))) for t in np.asarray(a).reshape(-1)]


def padding(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.padding
    mode = p.WhichOneof("PaddingType") or "constant"
    amounts = p.paddingAmounts.borderAmounts
    pairs = [(b.startEdgeSize, b.endEdgeSize) for b in amounts] or [(0, 0), (0, 0)]
    value = p.constant.value if mode == "constant" else 0.0
    return xs[0].with_array(tk.pad(xs[0].array, pairs, mode, value))


def constant_pad(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.constantPad
    if p.padToGivenOutputSizeMode:
        raise _unsupported(ev, layer, "constantPad (padToGivenOutputSizeMode)")
    amounts = list(p.padAmounts) if len(xs) == 1 else _const_ints(xs[1])
    pairs = [(amounts[i], amounts[i + 1]) for i in range(0, len(amounts), 2)]
    return xs[0].with_array(tk.pad(xs[0].array, pairs, "constant", p.value))


def crop(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.crop
    x = xs[0]
    h, w = x.array.shape[-2:]
    if len(xs) == 2:
        oh, ow = xs[1].array.shape[-2:]
        top, left = p.offset
        return x.with_array(x.array[..., top:top + oh, left:left + ow])
    (t, b), (lft, r) = [(a.startEdgeSize, a.endEdgeSize) for a in p.cropAmounts.borderAmounts]
    return x.with_array(x.array[..., t:h - b, lft:w - r])


def upsample(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.upsample
    x = xs[0]
    h, w = x.array.shape[-2:]
    frac = list(p.fractionalScalingFactor)
    scales = [float(s) for s in (frac or list(p.scalingFactor) or [1, 1])]
    out_h, out_w = int(np.floor(h * scales[0])), int(np.floor(w * scales[1]))
    if p.mode == 0:  # NN
        return x.with_array(resize.nearest(x.array, out_h, out_w, False, (scales[0], scales[1])))
    mode = resize.NN_UPSAMPLE_LINEAR[p.linearUpsampleMode]
    return x.with_array(resize.bilinear(x.array, out_h, out_w, mode, (scales[0], scales[1])))


def resize_bilinear(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.resizeBilinear
    out_h, out_w = list(p.targetSize) or [1, 1]
    mode = resize.NN_SAMPLING[p.mode.samplingMethod]
    return xs[0].with_array(resize.bilinear(xs[0].array, out_h, out_w, mode))


def get_shape(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return Value(np.asarray(_spec_shape(xs[0]), np.float32), False)


def copy(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return xs[0]


def _reshape_to(x: Value, target: list[int]) -> Value:
    return x.with_array(x.array.reshape(_lead(x) + tuple(target)))


def reshape_dynamic(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return _reshape_to(xs[0], _const_ints(xs[1]))


def reshape_like(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return _reshape_to(xs[0], list(_spec_shape(xs[1])))


def rank_preserving_reshape(ev: Any, layer: Any, xs: list[Value]) -> Value:
    own = _spec_shape(xs[0])
    target = [own[i] if s == 0 else s for i, s in enumerate(layer.rankPreservingReshape.targetShape)]
    return _reshape_to(xs[0], target)


def slice_static(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.sliceStatic
    x = xs[0]
    n = x.rank
    strides = list(p.strides) or [1] * n
    squeeze = list(p.squeezeMasks) or [False] * n
    return x.with_array(tk.strided_slice(x.array, int(x.batched), p.beginIds, p.endIds, strides,
                                         p.beginMasks, p.endMasks, squeeze))


def slice_dynamic(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.sliceDynamic
    x = xs[0]
    n = x.rank
    begin = _const_ints(xs[1])
    end = _const_ints(xs[2]) if len(xs) > 2 else list(p.endIds)
    strides = _const_ints(xs[3]) if len(xs) > 3 else (list(p.strides) or [1] * n)
    squeeze = list(p.squeezeMasks) or [False] * n
    return x.with_array(tk.strided_slice(x.array, int(x.batched), begin, end, strides,
                                         p.beginMasks, p.endMasks, squeeze))


def slice_legacy(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.slice
    x = xs[0]
    axis = x.array.ndim + (-3, -2, -1)[p.axis]
    index = [slice(None)] * x.array.ndim
    index[axis] = slice(p.startIndex, p.endIndex, p.stride or 1)
    return x.with_array(x.array[tuple(index)])


def reorganize_data(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.reorganizeData
    x = xs[0]
    if p.mode == 0:
        return x.with_array(tk.space_to_depth(x.array, p.blockSize))
    return x.with_array(tk.depth_to_space(x.array, p.blockSize, pixel_shuffle=p.mode == 2))


def stack(ev: Any, layer: Any, xs: list[Value]) -> Value:
    arrays, batched = broadcastable(xs)
    n = next((a.shape[0] for a, v in zip(arrays, xs) if v.batched), 0)
    arrays = [a if v.batched or not batched else np.broadcast_to(a, (n,) + a.shape) for a, v in zip(arrays, xs)]
    rank = xs[0].rank + 1
    axis = layer.stack.axis
    axis = (axis + rank if axis < 0 else axis) + int(batched)
    return Value(np.stack(arrays, axis=axis), batched)


def split_nd(ev: Any, layer: Any, xs: list[Value]) -> list[Value]:
    p = layer.splitND
    x = xs[0]
    axis = x.axis(p.axis)
    sizes = list(p.splitSizes)
    if sizes:
        cuts = np.cumsum(sizes)[:-1]
        parts = np.split(x.array, cuts, axis=axis)
    else:
        parts = np.split(x.array, p.numSplits or len(layer.output), axis=axis)
    return [x.with_array(a) for a in parts]


def split(ev: Any, layer: Any, xs: list[Value]) -> list[Value]:
    x = xs[0]
    parts = np.split(x.array, layer.split.nOutputs or len(layer.output), axis=x.array.ndim - 3)
    return [x.with_array(a) for a in parts]


def tile(ev: Any, layer: Any, xs: list[Value]) -> Value:
    x = xs[0]
    reps = list(layer.tile.reps) if len(xs) == 1 else _const_ints(xs[1])
    if len(reps) < x.rank:
        reps = [1] * (x.rank - len(reps)) + reps
    return x.with_array(np.tile(x.array, ([1] if x.batched else []) + reps))


def broadcast_to_static(ev: Any, layer: Any, xs: list[Value]) -> Value:
    x = xs[0]
    target = tuple(layer.broadcastToStatic.targetShape)
    return x.with_array(np.broadcast_to(x.array, _lead(x) + target).copy())


def fill_static(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.fillStatic
    return Value(np.full(tuple(p.targetShape), p.value, np.float32), False)


def fill_like(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return Value(np.full(_spec_shape(xs[0]), layer.fillLike.value, np.float32), False)


def fill_dynamic(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return Value(np.full(tuple(_const_ints(xs[0])), layer.fillDynamic.value, np.float32), False)


LAYERS: dict[str, Callable[..., Any]] = {
    "padding": padding, "constantPad": constant_pad, "crop": crop, "upsample": upsample,
    "resizeBilinear": resize_bilinear, "getShape": get_shape, "copy": copy,
    "reshapeDynamic": reshape_dynamic, "reshapeLike": reshape_like,
    "rankPreservingReshape": rank_preserving_reshape, "sliceStatic": slice_static,
    "sliceDynamic": slice_dynamic, "slice": slice_legacy, "reorganizeData": reorganize_data,
    "stack": stack, "splitND": split_nd, "split": split, "tile": tile,
    "broadcastToStatic": broadcast_to_static, "fillStatic": fill_static, "fillLike": fill_like,
    "fillDynamic": fill_dynamic,
}
