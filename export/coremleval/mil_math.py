"""ML Program ops that compute: normalizations, comparisons and logic, the remaining reductions and
element-wise functions. Registered into the evaluator's op table by ``OPS``. Floating results are
computed in float32 and rounded to float16 when the inputs are float16 (see ``kernels``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tfship.export.coremleval import kernels, tensor_kernels as tk
from tfship.export.coremleval.evaluator import UnsupportedCoremlOpError, Value, broadcastable
from tfship.export.coremleval.kernels import compute_dtype
from tfship.export.coremleval.mil_tensor import ints


def _opt(ev: Any, op: Any, env: dict[str, Value], key: str) -> np.ndarray | None:
    return ev._arg(op, key, env).array if key in op.inputs else None


def _axes(ev: Any, op: Any, env: dict[str, Value], x: Value) -> tuple[int, ...]:
    """The array axes of an op's ``axes`` input; every spec axis when it has none."""
    if "axes" in op.inputs:
        return tuple(x.axis(int(a)) for a in np.atleast_1d(ev._p(op, "axes", env)))
    return tuple(range(int(x.batched), x.array.ndim))


def layer_norm(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    axes = _axes(ev, op, env, x)
    eps = float(ev._p(op, "epsilon", env, 1e-5))
    return x.with_array(tk.normalize(x.array, axes, eps, _opt(ev, op, env, "gamma"), _opt(ev, op, env, "beta")))


def instance_norm(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    axes = tuple(range(x.axis(2), x.array.ndim))   # [n, C, *D]: normalise over *D per channel
    per_channel = (-1,) + (1,) * (x.rank - 2)
    gamma, beta = _opt(ev, op, env, "gamma"), _opt(ev, op, env, "beta")
    gamma = gamma.reshape(per_channel) if gamma is not None else None
    beta = beta.reshape(per_channel) if beta is not None else None
    return x.with_array(tk.normalize(x.array, axes, float(ev._p(op, "epsilon", env, 1e-5)), gamma, beta))


def l2_norm(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    axes = tuple(range(x.array.ndim - min(3, x.rank), x.array.ndim))
    return x.with_array(tk.l2_normalize(x.array, axes, float(ev._p(op, "epsilon", env, 1e-6))))


def local_response_norm(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(tk.local_response_norm(
        x.array, int(ev._p(op, "size", env)), float(ev._p(op, "alpha", env, 1e-4)),
        float(ev._p(op, "beta", env, 0.75)), float(ev._p(op, "k", env, 1.0))))


def _compare(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def run(ev: Any, op: Any, env: dict[str, Value]) -> Value:
        (a, b), batched = broadcastable([ev._arg(op, "x", env), ev._arg(op, "y", env)])
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(b.dtype, np.floating):
            a, b = a.astype(np.float32), b.astype(np.float32)
        return Value(fn(a, b), batched)
    return run


def logical_not(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(np.logical_not(x.array.astype(bool)))


def _binary_float(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def run(ev: Any, op: Any, env: dict[str, Value]) -> Value:
        (a, b), batched = broadcastable([ev._arg(op, "x", env), ev._arg(op, "y", env)])
        dtype = np.result_type(a.dtype, b.dtype)
        if not np.issubdtype(dtype, np.floating):
            return Value(fn(a, b).astype(dtype), batched)
        with np.errstate(all="ignore"):
            return Value(fn(a.astype(np.float32), b.astype(np.float32)).astype(dtype), batched)
    return run


def _reduce(kind: str):
    def run(ev: Any, op: Any, env: dict[str, Value]) -> Value:
        x = ev._arg(op, "x", env)
        return x.with_array(tk.reduce(kind, x.array, _axes(ev, op, env, x), bool(ev._p(op, "keep_dims", env, False))))
    return run


def _arg_reduce(largest: bool):
    def run(ev: Any, op: Any, env: dict[str, Value]) -> Value:
        x = ev._arg(op, "x", env)
        axis = x.axis(int(ev._p(op, "axis", env, -1)))
        return x.with_array(tk.arg_reduce(x.array, axis, bool(ev._p(op, "keep_dims", env, False)), largest))
    return run


def _unary(name: str):
    def run(ev: Any, op: Any, env: dict[str, Value]) -> Value:
        x = ev._arg(op, "x", env)
        return x.with_array(tk.unary(name, x.array))
    return run


def threshold(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    return x.with_array(np.maximum(x.array, np.asarray(ev._p(op, "alpha", env)).astype(x.array.dtype)))


def clamped_relu(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    alpha, beta = float(ev._p(op, "alpha", env, 0.0)), float(ev._p(op, "beta", env, 6.0))
    f = x.array.astype(np.float32)
    return x.with_array(np.minimum(np.where(f >= 0, f, alpha * f), beta).astype(compute_dtype(x.array)))


def conv_transpose(ev: Any, op: Any, env: dict[str, Value]) -> Value:
    x = ev._arg(op, "x", env)
    w = ev._arg(op, "weight", env).array           # (C_in, C_out/groups, *k)
    spatial = w.ndim - 2
    if spatial not in (1, 2):
        raise UnsupportedCoremlOpError("ML Program op", f"conv_transpose ({spatial}-D)", ev._op_name(op), ev.path)
    strides = [int(v) for v in np.atleast_1d(ev._p(op, "strides", env, [1] * spatial))]
    dil = [int(v) for v in np.atleast_1d(ev._p(op, "dilations", env, [1] * spatial))]
    xa = x.array
    if spatial == 1:
        xa, w, strides, dil = xa[..., None, :], w[..., None, :], [1] + strides, [1] + dil
    pad_type = str(ev._p(op, "pad_type", env, "valid"))
    crop, out_hw = (0, 0, 0, 0), None
    if "output_shape" in op.inputs:
        shape = ints(ev._arg(op, "output_shape", env))
        out_hw = (1, shape[-1]) if spatial == 1 else tuple(shape[-2:])
    elif pad_type == "same":
        out_hw = (xa.shape[-2] * strides[0], xa.shape[-1] * strides[1])
    elif pad_type == "custom":
        p = ints(ev._arg(op, "pad", env))
        crop = (0, 0, p[0], p[1]) if spatial == 1 else tuple(p[:4])
    y = kernels.conv_transpose2d(xa, w, _opt(ev, op, env, "bias"), strides, dil, crop, out_hw,
                                 int(ev._p(op, "groups", env, 1)))
    return x.with_array(y[..., 0, :] if spatial == 1 else y)


OPS: dict[str, Callable[..., Any]] = {
    "conv_transpose": conv_transpose,
    "layer_norm": layer_norm, "instance_norm": instance_norm, "l2_norm": l2_norm,
    "local_response_norm": local_response_norm,
    "greater": _compare(np.greater), "greater_equal": _compare(np.greater_equal),
    "less": _compare(np.less), "less_equal": _compare(np.less_equal),
    "equal": _compare(np.equal), "not_equal": _compare(np.not_equal),
    "logical_and": _compare(np.logical_and), "logical_or": _compare(np.logical_or),
    "logical_xor": _compare(np.logical_xor), "logical_not": logical_not,
    "floor_div": _binary_float(lambda a, b: np.floor_divide(a, b)), "mod": _binary_float(np.mod),
    **{f"reduce_{k}": _reduce(k) for k in ("mean", "max", "min", "sum", "prod", "l1_norm", "l2_norm", "log_sum", "log_sum_exp",
                                           "sum_square")},
    "reduce_argmax": _arg_reduce(True), "reduce_argmin": _arg_reduce(False),
    **{k: _unary(k) for k in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
                              "atanh", "ceil", "floor", "round", "sign", "erf", "exp2")},
    "threshold": threshold, "clamped_relu": clamped_relu,
}
