"""Evaluate an ML Program (``.mlpackage``, spec v6+) with NumPy, emulating its fp16 compute.

The ops of ``spec.mlProgram.functions["main"]`` run in order. Constants are decoded once at load:
immediate values from the proto, blobs from ``weights/weight.bin`` (read by ``read_blob``; format in
docs/COREML.md). fp16: a value the program holds as fp16 is a float16 array here; each op computes in
float32 from those rounded values and rounds its result back to float16, as a device computing in
fp16 with fp32 accumulation does (Apple's GPU and Neural Engine; the exact rounding differs per chip).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfship.export.coremleval import kernels, mil_math, mil_tensor
from tfship.export.coremleval.blobs import model_dir, read_blob
from tfship.export.coremleval.evaluator import (
    CoremlEvalError, Evaluator, UnsupportedCoremlOpError, Value, broadcastable, flat_probabilities)

# MIL.proto DataType -> NumPy.
MIL_DTYPES = {1: np.bool_, 10: np.float16, 11: np.float32, 12: np.float64, 21: np.int8, 22: np.int16,
              23: np.int32, 24: np.int64, 31: np.uint8, 32: np.uint16, 33: np.uint32, 34: np.uint64}
CAST_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int32": np.int32,
               "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_, "int64": np.int64}


def _tensor_shape(t: Any) -> tuple[int, ...]:
    return tuple(int(d.constant.size) for d in t.dimensions)


def decode_value(v: Any, weights_dir: Path | None) -> Any:
    """A MIL ``Value`` as a NumPy array (tensors), or a list of arrays (lists, tuples)."""
    kind = v.WhichOneof("value")
    if kind == "blobFileValue":
        if weights_dir is None:
            raise CoremlEvalError("a constant lives in a weight file but the model has no package folder")
        name = v.blobFileValue.fileName.replace("@model_path/", "")
        arr = read_blob(weights_dir / name, v.blobFileValue.offset)
        return arr.reshape(_tensor_shape(v.type.tensorType))
    iv = v.immediateValue
    which = iv.WhichOneof("value")
    if which in ("list", "tuple"):
        return [decode_value(x, weights_dir) for x in getattr(iv, which).values]
    if which != "tensor":
        raise CoremlEvalError(f"immediate value of kind '{which}' is not supported")
    t = v.type.tensorType
    tv = iv.tensor
    field = tv.WhichOneof("value")
    dtype = MIL_DTYPES.get(t.dataType)
    if t.dataType == 2:  # STRING
        arr = np.asarray(list(tv.strings.values), dtype=object)
    elif field == "bytes":
        arr = np.frombuffer(tv.bytes.values, dtype=dtype).copy()
    else:
        arr = np.asarray(list(getattr(tv, field).values) if field else [], dtype=dtype)
    shape = _tensor_shape(t)
    return arr.reshape(shape) if shape or arr.size == 1 else arr


def _scalar(x: Any) -> Any:
    a = np.asarray(x)
    if a.size != 1:
        return a
    v = a.reshape(-1)[0]
    return v.item() if isinstance(v, np.generic) else v


class MlProgramEvaluator(Evaluator):
    """Evaluates ``.mlpackage`` ML Programs; see the package docstring for the API."""

    def __init__(self, spec: Any, path: Path) -> None:
        super().__init__(spec, path)
        if spec.WhichOneof("Type") != "mlProgram":
            raise CoremlEvalError(f"'{path}' is a '{spec.WhichOneof('Type')}' model, not an ML Program")
        if "main" not in spec.mlProgram.functions:
            raise CoremlEvalError(f"'{path}' has no function 'main'")
        fn = spec.mlProgram.functions["main"]
        self.block = fn.block_specializations[fn.opset]
        self.weights_dir = model_dir(path) if path.is_dir() else None
        self.consts: dict[str, Value] = {}
        self._f32_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for op in self.block.operations:
            if op.type not in _OPS:
                raise UnsupportedCoremlOpError("ML Program op", op.type, self._op_name(op), path)
            if op.blocks:
                raise UnsupportedCoremlOpError("ML Program op with nested blocks", op.type, self._op_name(op), path)
            if op.type == "const":
                self.consts[op.outputs[0].name] = Value(decode_value(op.attributes["val"], self.weights_dir), False)
            if op.type == "classify":
                self.class_labels = tuple(str(c) for c in self._arg(op, "classes", self.consts).array)
        names = [f.name for f in spec.description.output]
        outs = list(self.block.outputs)
        # Feature names and block output names coincide; fall back to position if a tool renamed one only.
        self.output_vars = {n: (n if n in outs else outs[i]) for i, n in enumerate(names) if i < len(outs)}

    def _f32(self, a: np.ndarray) -> np.ndarray:
        """float32 copy of an fp16 constant, made once: re-casting a 3136x1024 weight per batch
        doubled the fp16 program's run time. Exact: every fp16 value is a float32 value."""
        if a.dtype != np.float16:
            return a
        hit = self._f32_cache.get(id(a))
        if hit is not None and hit[0] is a:
            return hit[1]
        if not any(a is c.array for c in self.consts.values()):
            return a.astype(np.float32)
        self._f32_cache[id(a)] = (a, a.astype(np.float32))
        return self._f32_cache[id(a)][1]

    @staticmethod
    def _op_name(op: Any) -> str:
        if "name" in op.attributes:
            return str(decode_value(op.attributes["name"], None).reshape(-1)[0])
        return op.outputs[0].name if op.outputs else "?"

    def _arg(self, op: Any, key: str, env: dict[str, Value], default: Any = None) -> Value:
        if key not in op.inputs:
            if default is None:
                raise CoremlEvalError(f"'{self.path}': op '{self._op_name(op)}' ({op.type}) lacks input '{key}'")
            return Value(np.asarray(default), False)
        return self._binding(op.inputs[key].arguments[0], env)

    def _args(self, op: Any, key: str, env: dict[str, Value]) -> list[Value]:
        return [self._binding(a, env) for a in op.inputs[key].arguments]

    def _binding(self, a: Any, env: dict[str, Value]) -> Value:
        if a.WhichOneof("binding") == "name":
            return env[a.name]
        decoded = decode_value(a.value, self.weights_dir)
        if isinstance(decoded, list):
            return Value(np.asarray([_scalar(d) for d in decoded], dtype=object), False)
        return Value(np.asarray(decoded), False)

    def _p(self, op: Any, key: str, env: dict[str, Value], default: Any = None) -> Any:
        """A parameter input as a Python scalar or array."""
        return _scalar(self._arg(op, key, env, default).array)

    def _run(self, feeds: dict[str, Value]) -> dict[str, Value]:
        env: dict[str, Value] = dict(self.consts)
        env.update(feeds)
        for op in self.block.operations:
            if op.type == "const":
                continue
            result = _OPS[op.type](self, op, env)
            results = result if isinstance(result, list) else [result]
            for out, value in zip(op.outputs, results):
                env[out.name] = value
        return {name: env[var] for name, var in self.output_vars.items() if var in env}

    def _class_probabilities(self, raw: dict[str, Value]) -> np.ndarray:
        return flat_probabilities(raw[self.probs_name], len(self.class_labels or ()),
                                  f"'{self.path}' output '{self.probs_name}'")

    # -- ops ----------------------------------------------------------------------------------
    def _classify(self, op: Any, env: dict[str, Value]) -> list[Value]:
        probs = self._arg(op, "probabilities", env)
        labels = np.asarray(self.class_labels, dtype=object)
        flat = flat_probabilities(probs, len(labels), f"'{self.path}' op '{self._op_name(op)}'")
        return [Value(labels[np.argmax(flat, axis=1)], True), probs]

    def _cast(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        dtype = str(self._p(op, "dtype", env))
        if dtype not in CAST_DTYPES:
            raise UnsupportedCoremlOpError("ML Program cast to", dtype, self._op_name(op), self.path)
        return x.with_array(x.array.astype(CAST_DTYPES[dtype]))

    def _identity(self, op: Any, env: dict[str, Value]) -> Value:
        return self._arg(op, "x", env)

    def _conv(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        wv = self._arg(op, "weight", env)   # a constant, or computed at run time (one per sample)
        spatial = wv.array.ndim - int(wv.batched) - 2
        if spatial not in (1, 2):
            raise UnsupportedCoremlOpError("ML Program op", f"conv ({spatial}-D)", self._op_name(op), self.path)
        bias = self._arg(op, "bias", env).array if "bias" in op.inputs else None
        strides = [int(v) for v in np.atleast_1d(self._p(op, "strides", env, [1] * spatial))]
        dil = [int(v) for v in np.atleast_1d(self._p(op, "dilations", env, [1] * spatial))]
        groups = int(self._p(op, "groups", env, 1))
        xa, w = x.array, wv.array
        if spatial == 1:  # a 1-D convolution is a 2-D one over a height of 1
            xa, w, strides, dil = xa[..., None, :], w[..., None, :], [1] + strides, [1] + dil
        dtype = kernels.compute_dtype(xa, w)
        pads = self._pads(op, env, xa.shape[-2:], w.shape[-2:], strides, dil)
        if wv.batched:
            xs = xa if x.batched else np.broadcast_to(xa, w.shape[:1] + xa.shape)
            y = np.stack([kernels.conv2d(xi, wi, bias, strides, dil, pads, groups) for xi, wi in zip(xs, w)])
            x = Value(xa, True)
        else:
            y = kernels.conv2d(xa, self._f32(w), bias, strides, dil, pads, groups)
        y = y[..., 0, :] if spatial == 1 else y
        return x.with_array(y.astype(dtype, copy=False))

    def _pads(self, op: Any, env: dict[str, Value], hw, kernel, strides, dil) -> tuple[int, int, int, int]:
        pad_type = str(self._p(op, "pad_type", env, "valid"))
        if pad_type in ("same", "same_lower"):
            top, bottom = kernels.same_padding(hw[0], kernel[0], strides[0], dil[0])
            left, right = kernels.same_padding(hw[1], kernel[1], strides[1], dil[1])
            if pad_type == "same_lower":
                top, bottom, left, right = bottom, top, right, left
            return top, bottom, left, right
        if pad_type == "custom":
            p = [int(v) for v in np.atleast_1d(self._p(op, "pad", env))]
            return (0, 0, p[0], p[1]) if len(p) == 2 else (p[0], p[1], p[2], p[3])
        if pad_type == "valid":
            return 0, 0, 0, 0
        raise UnsupportedCoremlOpError("ML Program pad_type", pad_type, self._op_name(op), self.path)

    def _linear(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        w = self._arg(op, "weight", env).array
        dtype = kernels.compute_dtype(x.array, w)
        y = kernels.matmul(x.array, self._f32(w).T)
        if "bias" in op.inputs:
            y = y + self._arg(op, "bias", env).array.astype(np.float32)
        return x.with_array(y.astype(dtype))

    def _matmul(self, op: Any, env: dict[str, Value]) -> Value:
        xs = [self._arg(op, "x", env), self._arg(op, "y", env)]
        (a, b), batched = broadcastable(xs)
        dtype = kernels.compute_dtype(a, b)
        a, b = self._f32(a), self._f32(b)
        if bool(self._p(op, "transpose_x", env, False)):
            a = np.swapaxes(a, -1, -2)
        if bool(self._p(op, "transpose_y", env, False)):
            b = np.swapaxes(b, -1, -2)
        return Value(kernels.matmul(a, b).astype(dtype), batched)

    def _softmax(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        return x.with_array(kernels.softmax(x.array, x.axis(int(self._p(op, "axis", env, -1)))))

    def _transpose(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        perm = [x.axis(int(a)) for a in np.atleast_1d(self._p(op, "perm", env))]
        return x.with_array(np.transpose(x.array, ([0] if x.batched else []) + perm))

    def _expand_dims(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        axes = [int(a) for a in np.atleast_1d(self._p(op, "axes", env))]
        out_rank = x.rank + len(axes)
        return x.with_array(np.expand_dims(x.array, tuple(sorted(
            (a + out_rank if a < 0 else a) + int(x.batched) for a in axes))))

    def _squeeze(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        if "axes" in op.inputs:
            axes = tuple(x.axis(int(a)) for a in np.atleast_1d(self._p(op, "axes", env)))
        else:
            axes = tuple(i for i in range(int(x.batched), x.array.ndim) if x.array.shape[i] == 1)
        return x.with_array(np.squeeze(x.array, axis=axes))

    def _concat(self, op: Any, env: dict[str, Value]) -> Value:
        values = self._args(op, "values", env)
        if bool(self._p(op, "interleave", env, False)):
            raise UnsupportedCoremlOpError("ML Program op", "concat (interleave)", self._op_name(op), self.path)
        batched = any(v.batched for v in values)
        n = next((v.array.shape[0] for v in values if v.batched), 0)
        arrays = [v.array if v.batched or not batched else np.broadcast_to(v.array, (n,) + v.array.shape)
                  for v in values]
        ref = Value(arrays[0], batched)
        return Value(np.concatenate(arrays, axis=ref.axis(int(self._p(op, "axis", env)))), batched)

    def _batch_norm(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        get = lambda k: self._arg(op, k, env).array if k in op.inputs else None  # noqa: E731
        channel = x.axis(1) - x.array.ndim  # channel axis is 1 in the spec's rank, as a negative axis
        return x.with_array(kernels.batch_norm(x.array, get("mean"), get("variance"), get("gamma"),
                                               get("beta"), float(self._p(op, "epsilon", env, 1e-5)), channel))

    def _clip(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        return x.with_array(np.clip(x.array, self._p(op, "alpha", env), self._p(op, "beta", env)).astype(x.array.dtype))

    def _prelu(self, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        alpha = self._arg(op, "alpha", env).array.astype(np.float32).reshape((-1,) + (1,) * (x.rank - 2))
        f = x.array.astype(np.float32)
        return x.with_array(np.where(f >= 0, f, alpha * f).astype(kernels.compute_dtype(x.array)))


def _pool_op(kind: str):
    def run(self: MlProgramEvaluator, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        kernel = [int(k) for k in np.atleast_1d(self._p(op, "kernel_sizes", env))]
        if len(kernel) != 2:
            raise UnsupportedCoremlOpError("ML Program op", f"{op.type} ({len(kernel)}-D)",
                                           self._op_name(op), self.path)
        strides = [int(s) for s in np.atleast_1d(self._p(op, "strides", env, [1, 1]))]
        top, bottom, left, right = self._pads(op, env, x.array.shape[-2:], kernel, strides, (1, 1))
        if bool(self._p(op, "ceil_mode", env, False)):
            bottom += kernels.pool_output_pads(x.array.shape[-2] + top + bottom, kernel[0], strides[0], True)
            right += kernels.pool_output_pads(x.array.shape[-1] + left + right, kernel[1], strides[1], True)
        exclude = bool(self._p(op, "exclude_padding_from_average", env, False))
        return x.with_array(kernels.pool2d(x.array, kind, kernel, strides, (top, bottom, left, right), exclude))
    return run


def _binary_op(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def run(self: MlProgramEvaluator, op: Any, env: dict[str, Value]) -> Value:
        (a, b), batched = broadcastable([self._arg(op, "x", env), self._arg(op, "y", env)])
        dtype = np.result_type(a.dtype, b.dtype)
        if np.issubdtype(dtype, np.floating):
            return Value(fn(a.astype(np.float32), b.astype(np.float32)).astype(dtype), batched)
        return Value(fn(a, b), batched)
    return run


def _activation_op(name: str, alpha: str | None = None, beta: str | None = None):
    def run(self: MlProgramEvaluator, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        if op.type == "gelu":
            act = {"EXACT": "gelu_exact", "TANH_APPROXIMATION": "gelu_tanh",
                   "SIGMOID_APPROXIMATION": "gelu_sigmoid"}[str(self._p(op, "mode", env, "EXACT"))]
        else:
            act = name
        a = float(self._p(op, alpha, env)) if alpha else 0.0
        b = float(self._p(op, beta, env)) if beta else 0.0
        return x.with_array(kernels.activation(act, x.array, a, b))
    return run


def _unary_op(fn: Callable[[np.ndarray], np.ndarray]):
    def run(self: MlProgramEvaluator, op: Any, env: dict[str, Value]) -> Value:
        x = self._arg(op, "x", env)
        eps = float(self._p(op, "epsilon", env, 0.0)) if "epsilon" in op.inputs else 0.0
        return x.with_array(fn(x.array.astype(np.float32) + eps).astype(kernels.compute_dtype(x.array)))
    return run


_M = MlProgramEvaluator
_OPS: dict[str, Callable[[MlProgramEvaluator, Any, dict[str, Value]], Any]] = {
    "const": lambda self, op, env: None,
    "classify": _M._classify, "cast": _M._cast, "identity": _M._identity,
    "conv": _M._conv, "max_pool": _pool_op("max"), "avg_pool": _pool_op("average"),
    "linear": _M._linear, "matmul": _M._matmul, "softmax": _M._softmax,
    "transpose": _M._transpose, "expand_dims": _M._expand_dims,
    "squeeze": _M._squeeze, "concat": _M._concat, "batch_norm": _M._batch_norm,
    "add": _binary_op(np.add), "sub": _binary_op(np.subtract), "mul": _binary_op(np.multiply),
    "real_div": _binary_op(np.divide), "maximum": _binary_op(np.maximum),
    "minimum": _binary_op(np.minimum), "pow": _binary_op(np.power),
    "relu": _activation_op("relu"), "relu6": _activation_op("relu6"),
    "sigmoid": _activation_op("sigmoid"), "tanh": _activation_op("tanh"),
    "silu": _activation_op("silu"), "softplus": _activation_op("softplus"),
    "softsign": _activation_op("softsign"), "gelu": _activation_op("gelu_exact"),
    "leaky_relu": _activation_op("leaky_relu", "alpha"), "elu": _activation_op("elu", "alpha"),
    "linear_activation": _activation_op("linear", "alpha", "beta"),
    "sigmoid_hard": _activation_op("sigmoid_hard", "alpha", "beta"),
    "scaled_tanh": _activation_op("scaled_tanh", "alpha", "beta"),
    "thresholded_relu": _activation_op("thresholded_relu", "alpha"),
    "clip": _M._clip, "prelu": _M._prelu,
    "sqrt": _unary_op(np.sqrt), "rsqrt": _unary_op(lambda v: 1 / np.sqrt(v)),
    "inverse": _unary_op(lambda v: 1 / v), "exp": _unary_op(np.exp), "log": _unary_op(np.log),
    "abs": _unary_op(np.abs), "square": _unary_op(np.square),
}
_OPS.update(mil_tensor.OPS)
_OPS.update(mil_math.OPS)
