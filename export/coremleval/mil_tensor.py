"""ML Program ops that move, cut, pad, resize or reshape tensors. Registered into the evaluator's op
table by ``OPS``; each takes (evaluator, op, env) and returns a ``Value`` or a list of them.

Amounts (pad widths, shapes, slice bounds) may be computed at run time (dynamic shapes): they are
then ``Value``s with a sample axis, identical for every sample, and the first sample's is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tfship.export.coremleval import resize, tensor_kernels as tk
from tfship.export.coremleval.evaluator import UnsupportedCoremlOpError, Value, broadcastable


def ints(v: Value) -> list[int]:
    """A shape/amount tensor, constant or computed at run time, as Python ints."""
    a = v.array[0] if v.batched else v.array
    return [int(t) for t in np.asarray(a).reshape(-1)]


def _bools(v: Value, n: int) -> list[bool]:
    a = v.array[0] if v.batched else v.array
    flat = [bool(t) for t in np.asarray(a).reshape(-1)]
    return flat if flat else [False] * n


def _spec_shape(x: Value) -> tuple[int, ...]:
    return x.array.shape[int(x.batched):]


def _lead(x: Value) -> tuple[int, ...]:
    return x.array.shape[:1] if x.batched else ()


def pad(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    mode = str(ev._p(op, "mode", env, "constant"))
    if mode not in tk.PAD_MODES:
        raise UnsupportedCoremlOpError("ML Program op", f"pad ({mode})", ev._op_name(op), ev.path)
    p = ints(ev._arg(op, "pad", env))
    pairs = [(p[i], p[i + 1]) for i in range(0, len(p), 2)]
    value = float(ev._p(op, "constant_val", env, 0.0)) if mode == "constant" else 0.0
    return x.with_array(tk.pad(x.array, pairs, mode, value))


def reshape(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    own = _spec_shape(x)
    shape = [own[i] if s == 0 else s for i, s in enumerate(ints(ev._arg(op, "shape", env)))]
    return x.with_array(x.array.reshape(_lead(x) + tuple(shape)))


def shape(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    return Value(np.asarray(_spec_shape(ev._arg(op, "x", env)), np.int32), False)


def slice_by_index(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    n = x.rank
    begin = ints(ev._arg(op, "begin", env))
    end = ints(ev._arg(op, "end", env))
    stride = ints(ev._arg(op, "stride", env)) if "stride" in op.inputs else [1] * n
    masks = [_bools(ev._arg(op, k, env), n) if k in op.inputs else [False] * n
             for k in ("begin_mask", "end_mask", "squeeze_mask")]
    return x.with_array(tk.strided_slice(x.array, int(x.batched), begin, end, stride, *masks))


def slice_by_size(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    begin = ints(ev._arg(op, "begin", env))
    size = ints(ev._arg(op, "size", env))
    own = _spec_shape(x)
    index = [slice(None)] * int(x.batched)
    for b, s, n in zip(begin, size, own):
        b = b % n if n else b
        index.append(slice(b, n if s == -1 else b + s))
    return x.with_array(x.array[tuple(index)])


def _scale(ev: Any, op: Any, env: dict[str, Value], key: str) -> float:
    return float(ev._p(op, key, env, 1))


def upsample_nearest_neighbor(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    sh, sw = _scale(ev, op, env, "scale_factor_height"), _scale(ev, op, env, "scale_factor_width")
    h, w = x.array.shape[-2:]
    return x.with_array(resize.nearest(x.array, int(np.floor(h * sh)), int(np.floor(w * sw)), False, (sh, sw)))


def upsample_bilinear(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    sh, sw = _scale(ev, op, env, "scale_factor_height"), _scale(ev, op, env, "scale_factor_width")
    align = bool(ev._p(op, "align_corners", env, True))
    half = bool(ev._p(op, "half_pixel_centers", env, not align))
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    h, w = x.array.shape[-2:]
    # The scale is recomputed from the output size (coremltools: recompute_scale_factor=True).
    return x.with_array(resize.bilinear(x.array, int(np.floor(h * sh)), int(np.floor(w * sw)), mode))


def resize_nearest_neighbor(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    out_h, out_w = int(ev._p(op, "target_size_height", env)), int(ev._p(op, "target_size_width", env))
    return x.with_array(resize.nearest(x.array, out_h, out_w, True))


def resize_bilinear(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    out_h, out_w = int(ev._p(op, "target_size_height", env, 1)), int(ev._p(op, "target_size_width", env, 1))
    mode = str(ev._p(op, "sampling_mode", env, "DEFAULT"))
    return x.with_array(resize.bilinear(x.array, out_h, out_w, mode))


def resize_op(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    """iOS 17 ``resize``: the last ``resized_dims`` axes take their sizes from the run-time ``shape``."""
    x = ev._arg(op, "x", env)
    target = ints(ev._arg(op, "shape", env))
    dims = int(ev._p(op, "resized_dims", env))
    if dims != 2:
        raise UnsupportedCoremlOpError("ML Program op", f"resize ({dims} resized dims)", ev._op_name(op), ev.path)
    h, w = x.array.shape[-2:]
    out_h, out_w = target[-2] or h, target[-1] or w
    mode = str(ev._p(op, "sampling_mode", env, "DEFAULT"))
    if str(ev._p(op, "interpolation_mode", env, "LINEAR")) == "NEAREST_NEIGHBOR":
        # coremltools emits it for TF's half-pixel nearest resize, as resize_nearest_neighbor.
        return x.with_array(resize.nearest(x.array, out_h, out_w, True))
    return x.with_array(resize.bilinear(x.array, out_h, out_w, mode))


def crop(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    t, b = ints(ev._arg(op, "crop_height", env))
    lft, r = ints(ev._arg(op, "crop_width", env))
    h, w = x.array.shape[-2:]
    return x.with_array(x.array[..., t:h - b, lft:w - r])


def depth_to_space(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(tk.depth_to_space(x.array, int(ev._p(op, "block_size", env))))


def space_to_depth(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(tk.space_to_depth(x.array, int(ev._p(op, "block_size", env))))


def pixel_shuffle(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(tk.depth_to_space(x.array, int(ev._p(op, "upscale_factor", env)), pixel_shuffle=True))


def stack(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    values = ev._args(op, "values", env)
    arrays, batched = broadcastable(values)
    n = next((a.shape[0] for a, v in zip(arrays, values) if v.batched), 0)
    arrays = [a if v.batched or not batched else np.broadcast_to(a, (n,) + a.shape) for a, v in zip(arrays, values)]
    rank = values[0].rank + 1
    axis = int(ev._p(op, "axis", env))
    return Value(np.stack(arrays, axis=(axis + rank if axis < 0 else axis) + int(batched)), batched)


def split(ev: Any, op: Any, env: dict[str, Value]) -> list[Value]:
    x = ev._arg(op, "x", env)
    axis = x.axis(int(ev._p(op, "axis", env)))
    if "split_sizes" in op.inputs:
        parts = np.split(x.array, np.cumsum(ints(ev._arg(op, "split_sizes", env)))[:-1], axis=axis)
    else:
        parts = np.split(x.array, int(ev._p(op, "num_splits", env, len(op.outputs))), axis=axis)
    return [x.with_array(a) for a in parts]


def tile(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    reps = ints(ev._arg(op, "reps", env))
    return x.with_array(np.tile(x.array, ([1] if x.batched else []) + reps))


def fill(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    value = ev._arg(op, "value", env, 0.0).array
    return Value(np.full(tuple(ints(ev._arg(op, "shape", env))), value, dtype=value.dtype), False)


def select(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    (c, a, b), batched = broadcastable([ev._arg(op, k, env) for k in ("cond", "a", "b")])
    return Value(np.where(c.astype(bool), a, b).astype(np.result_type(a.dtype, b.dtype)), batched)


OPS: dict[str, Callable[..., Any]] = {
    "pad": pad, "reshape": reshape, "shape": shape, "slice_by_index": slice_by_index,
    "slice_by_size": slice_by_size, "upsample_nearest_neighbor": upsample_nearest_neighbor,
    "upsample_bilinear": upsample_bilinear, "resize_nearest_neighbor": resize_nearest_neighbor,
    "resize_bilinear": resize_bilinear, "resize": resize_op, "crop": crop, "depth_to_space": depth_to_space,
    "space_to_depth": space_to_depth, "pixel_shuffle": pixel_shuffle, "stack": stack, "split": split,
    "tile": tile, "fill": fill, "select": select,
}
