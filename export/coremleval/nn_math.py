"""NeuralNetwork layers that compute: N-D reductions, element-wise functions and comparisons,
min/max, and the normalizations (mvn, l2normalize, lrn, layerNormalization). Registered into the
evaluator's layer table by ``LAYERS``; NeuralNetwork computes in float32 (comparisons give 0/1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tfship.export.coremleval import kernels, tensor_kernels as tk
from tfship.export.coremleval.evaluator import Value, broadcastable

_REDUCE_LAYERS = {"reduceSum": "sum", "reduceMean": "mean", "reduceProd": "prod", "reduceMin": "min",
                  "reduceMax": "max", "reduceL1": "l1_norm", "reduceL2": "l2_norm", "reduceLogSum": "log_sum",
                  "reduceSumSquare": "sum_square", "reduceLogSumExp": "log_sum_exp"}
# legacy ReduceLayerParams.ReduceOperation -> reducer, ReduceAxis -> trailing axes
_LEGACY_REDUCE = {0: "sum", 1: "mean", 2: "prod", 3: "log_sum", 4: "sum_square", 5: "l1_norm", 6: "l2_norm",
                  7: "max", 8: "min"}
_LEGACY_AXES = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}


def _reduce_nd(kind: str) -> Callable[[Any, Any, list[Value]], Value]:
    def run(ev: Any, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        p = getattr(layer, layer.WhichOneof("layer"))
        if p.reduceAll:
            axes = tuple(range(int(x.batched), x.array.ndim))
        else:
            axes = tuple(x.axis(a) for a in p.axes)
        return x.with_array(tk.reduce(kind, x.array, axes, p.keepDims))
    return run


def reduce_legacy(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.reduce
    x = xs[0]
    axes = tuple(x.array.ndim + a for a in _LEGACY_AXES[p.axis])
    if p.mode == 9:  # ARGMAX
        return x.with_array(np.argmax(x.array, axis=axes[0]).astype(np.float32)[..., None])
    return x.with_array(tk.reduce(_LEGACY_REDUCE[p.mode], x.array, axes, True))


def _arg(largest: bool) -> Callable[[Any, Any, list[Value]], Value]:
    def run(ev: Any, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        p = getattr(layer, layer.WhichOneof("layer"))
        out = tk.arg_reduce(x.array, x.axis(p.axis), not p.removeDim, largest)
        return x.with_array(out.astype(np.float32))
    return run


def _elementwise(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], alpha_field: bool = False):
    """A broadcasting N-ary layer; with one input, the second operand is ``params.alpha``."""
    def run(ev: Any, layer: Any, xs: list[Value]) -> Value:
        if len(xs) == 1:
            alpha = getattr(getattr(layer, layer.WhichOneof("layer")), "alpha", 0.0) if alpha_field else 0.0
            xs = xs + [Value(np.asarray(alpha, np.float32), False)]
        arrays, batched = broadcastable(xs)
        out = arrays[0]
        with np.errstate(all="ignore"):
            for a in arrays[1:]:
                out = fn(out, a)
        return Value(np.asarray(out).astype(np.float32), batched)
    return run


def _unary_layer(name: str) -> Callable[[Any, Any, list[Value]], Value]:
    def run(ev: Any, layer: Any, xs: list[Value]) -> Value:
        return xs[0].with_array(tk.unary(name, xs[0].array))
    return run


def logical_not(ev: Any, layer: Any, xs: list[Value]) -> Value:
    return xs[0].with_array((xs[0].array == 0).astype(np.float32))


def average(ev: Any, layer: Any, xs: list[Value]) -> Value:
    arrays, batched = broadcastable(xs)
    return Value((sum(arrays) / np.float32(len(arrays))).astype(np.float32), batched)


def mvn(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.mvn
    x = xs[0]
    axes = (-3, -2, -1) if p.acrossChannels else (-2, -1)
    axes = tuple(x.array.ndim + a for a in axes)
    return x.with_array(tk.normalize(x.array, axes, p.epsilon, variance=p.normalizeVariance))


def l2normalize(ev: Any, layer: Any, xs: list[Value]) -> Value:
    x = xs[0]
    axes = tuple(range(x.array.ndim - min(3, x.rank), x.array.ndim))
    return x.with_array(tk.l2_normalize(x.array, axes, layer.l2normalize.epsilon))


def lrn(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.lrn
    return xs[0].with_array(tk.local_response_norm(xs[0].array, p.localSize, p.alpha, p.beta, p.k or 1.0))


def layer_normalization(ev: Any, layer: Any, xs: list[Value]) -> Value:
    p = layer.layerNormalization
    x = xs[0]
    shape = tuple(p.normalizedShape)
    axes = tuple(range(x.array.ndim - len(shape), x.array.ndim))
    gamma = ev._w(p, "gamma", layer).reshape(shape)
    beta = ev._w(p, "beta", layer).reshape(shape)
    return x.with_array(tk.normalize(x.array, axes, p.eps, gamma, beta))


def deconvolution(ev: Any, layer: Any, xs: list[Value], pads: tuple[int, int, int, int], same: bool) -> Value:
    """``convolution`` with ``isDeconvolution``: weights (C_in, C_out/groups, kH, kW); explicit
    paddingAmounts crop the full output, "same" gives H*stride, ``outputShape`` a given size."""
    p = layer.convolution
    kh, kw = list(p.kernelSize) or [3, 3]
    groups = p.nGroups or 1
    w = ev._w(p, "weights", layer).reshape(p.kernelChannels, p.outputChannels // groups, kh, kw)
    b = ev._w(p, "bias", layer) if p.hasBias else None
    x = xs[0]
    stride = list(p.stride) or [1, 1]
    out_hw = tuple(p.outputShape) if len(p.outputShape) == 2 else None
    if out_hw is None and same:
        out_hw = (x.array.shape[-2] * stride[0], x.array.shape[-1] * stride[1])
    return x.with_array(kernels.conv_transpose2d(x.array, w, b, stride, list(p.dilationFactor) or [1, 1],
                                                 pads, out_hw, groups))


LAYERS: dict[str, Callable[..., Any]] = {
    **{name: _reduce_nd(kind) for name, kind in _REDUCE_LAYERS.items()},
    "reduce": reduce_legacy, "argMax": _arg(True), "argMin": _arg(False),
    "min": _elementwise(np.minimum), "max": _elementwise(np.maximum),
    "minBroadcastable": _elementwise(np.minimum), "maxBroadcastable": _elementwise(np.maximum),
    "powBroadcastable": _elementwise(np.power),
    "floorDivBroadcastable": _elementwise(lambda a, b: np.floor(a / b)),
    "modBroadcastable": _elementwise(np.mod),
    "greaterThan": _elementwise(np.greater, True), "greaterEqual": _elementwise(np.greater_equal, True),
    "lessThan": _elementwise(np.less, True), "lessEqual": _elementwise(np.less_equal, True),
    "equal": _elementwise(np.equal, True), "notEqual": _elementwise(np.not_equal, True),
    "logicalAnd": _elementwise(lambda a, b: (a != 0) & (b != 0)),
    "logicalOr": _elementwise(lambda a, b: (a != 0) | (b != 0)),
    "logicalXor": _elementwise(lambda a, b: (a != 0) ^ (b != 0)), "logicalNot": logical_not,
    **{name: _unary_layer(name) for name in ("ceil", "floor", "sign", "round", "exp2", "sin", "cos", "tan",
                                             "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                                             "acosh", "atanh", "erf")},
    "average": average, "mvn": mvn, "l2normalize": l2normalize, "lrn": lrn,
    "layerNormalization": layer_normalization,
}
