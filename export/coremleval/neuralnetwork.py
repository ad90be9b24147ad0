"""Evaluate a NeuralNetwork (``.mlmodel``, spec v1-v5) model or classifier with NumPy, in float32.

Layers run in the order of ``spec.neuralNetwork[Classifier|Regressor].layers`` (the spec requires
topological order). Legacy layers (convolution, pooling, softmax, innerProduct on (C,1,1) blobs) act
on the trailing (C, H, W) axes; N-D layers (``*ND``, ``batchedMatmul``, ``reshapeStatic``,
``transpose``, ``*Broadcastable``) take axes in the tensor's own rank. An image input is the rank-4
blob (1, C, H, W) after the model's ``scaler`` preprocessing, as coremltools' MIL backend assumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfship.export.coremleval import kernels, nn_math, nn_tensor
from tfship.export.coremleval.evaluator import (
    CoremlEvalError, Evaluator, UnsupportedCoremlOpError, Value, broadcastable, flat_probabilities)

_NN_KINDS = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")
# ActivationParams oneof name -> kernels.ACTIVATIONS name.
_ACTIVATIONS = {"ReLU": "relu", "leakyReLU": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid",
                "linear": "linear", "sigmoidHard": "sigmoid_hard", "ELU": "elu", "softsign": "softsign",
                "softplus": "softplus", "scaledTanh": "scaled_tanh", "thresholdedReLU": "thresholded_relu"}
_GELU = {0: "gelu_exact", 1: "gelu_tanh", 2: "gelu_sigmoid"}


def weights(w: Any, where: str) -> np.ndarray:
    """A WeightParams as a flat float32 array (fp32 or fp16 storage; quantized storage is refused)."""
    if len(w.floatValue):
        return np.asarray(w.floatValue, dtype=np.float32)
    if w.float16Value:
        return np.frombuffer(w.float16Value, dtype=np.float16).astype(np.float32)
    if w.rawValue or w.int8RawValue:
        raise CoremlEvalError(f"{where}: quantized weights are not supported by the CoreML evaluator")
    return np.zeros(0, np.float32)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    def run(self: NeuralNetworkEvaluator, layer: Any, xs: list[Value]) -> Value:
        arrays, batched = broadcastable(xs)
        out = arrays[0]
        for a in arrays[1:]:
            out = fn(out, a)
        return Value(np.asarray(out, np.float32), batched)
    return run


def _param_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Legacy scale/bias shapes: [C] means per channel of a (C, H, W) blob."""
    if len(shape) == 1 and shape[0] > 1:
        return (shape[0], 1, 1)
    return shape or (-1,)


class NeuralNetworkEvaluator(Evaluator):
    """Evaluates ``.mlmodel`` NeuralNetwork specs; see the package docstring for the API."""

    def __init__(self, spec: Any, path: Path) -> None:
        super().__init__(spec, path)
        kind = spec.WhichOneof("Type")
        if kind not in _NN_KINDS:
            raise CoremlEvalError(f"'{path}' is a '{kind}' model, not a NeuralNetwork")
        self.nn = getattr(spec, kind)
        if kind == "neuralNetworkClassifier":
            which = self.nn.WhichOneof("ClassLabels")
            labels = getattr(self.nn, which).vector if which else []
            self.class_labels = tuple(str(v) for v in labels)
        for layer in self.nn.layers:
            if layer.WhichOneof("layer") not in _LAYERS:
                raise UnsupportedCoremlOpError("NeuralNetwork layer", layer.WhichOneof("layer"), layer.name, path)
        self._scalers = {p.featureName: p for p in self.nn.preprocessing}
        # Without labelProbabilityLayerName a classifier's probabilities are the last layer's output.
        self._last = self.nn.layers[-1].output[0] if self.nn.layers else None
        self._weight_cache: dict[tuple[str, str], np.ndarray] = {}

    def _w(self, params: Any, field: str, layer: Any) -> np.ndarray:
        """Decoded weights, once per load: decoding millions of proto floats takes ~0.1 s a call."""
        key = (layer.name, field)
        if key not in self._weight_cache:
            self._weight_cache[key] = weights(getattr(params, field), layer.name)
        return self._weight_cache[key]

    def _run(self, feeds: dict[str, Value]) -> dict[str, Value]:
        # NeuralNetwork layers compute in float32 whatever type an input declares.
        env = {name: self._preprocess(name, v.with_array(v.array.astype(np.float32, copy=False)))
               for name, v in feeds.items()}
        for layer in self.nn.layers:
            kind = layer.WhichOneof("layer")
            try:
                xs = [env[n] for n in layer.input]
            except KeyError as e:
                raise CoremlEvalError(f"'{self.path}': layer '{layer.name}' reads '{e.args[0]}', "
                                      "which no earlier layer produced") from e
            out = _LAYERS[kind](self, layer, xs)
            for name, value in zip(layer.output, out if isinstance(out, list) else [out]):
                env[name] = value
        return env

    def _preprocess(self, name: str, v: Value) -> Value:
        pre = self._scalers.get(name)
        if pre is None:
            return v
        which = pre.WhichOneof("preprocessor")
        if which != "scaler":
            raise UnsupportedCoremlOpError("NeuralNetwork preprocessing", which or "?", name, self.path)
        s = pre.scaler
        scale = s.channelScale if s.channelScale != 0 else 1.0  # proto3 default 0 means "not set" = 1
        img = self._images[name]
        if img.channels == 1:
            bias = np.float32(s.grayBias)
        else:
            rgb = [s.redBias, s.greenBias, s.blueBias]
            bias = np.asarray(rgb[::-1] if img.color_space == "BGR" else rgb, np.float32).reshape(3, 1, 1)
        return v.with_array(v.array * np.float32(scale) + bias)

    def _class_probabilities(self, raw: dict[str, Value]) -> np.ndarray:
        name = self.nn.labelProbabilityLayerName or self._last
        return flat_probabilities(raw[name], len(self.class_labels or ()), f"'{self.path}' blob '{name}'")

    # -- layers -------------------------------------------------------------------------------
    def _convolution(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.convolution
        kh, kw = (list(p.kernelSize) or [3, 3])
        stride = list(p.stride) or [1, 1]
        dil = list(p.dilationFactor) or [1, 1]
        groups = p.nGroups or 1
        x = xs[0]
        h, wd = x.array.shape[-2:]
        if p.isDeconvolution:
            same = p.WhichOneof("ConvolutionPaddingType") == "same"
            pads = (0, 0, 0, 0) if same else self._pads(p, h, wd, (kh, kw), stride, dil)
            return nn_math.deconvolution(self, layer, xs, pads, same)
        b = self._w(p, "bias", layer) if p.hasBias else None
        pads = self._pads(p, h, wd, (kh, kw), stride, dil)
        if len(xs) == 1:
            w = self._w(p, "weights", layer).reshape(p.outputChannels, p.kernelChannels, kh, kw)
            return x.with_array(kernels.conv2d(x.array, w, b, stride, dil, pads, groups))
        # Weights as a second input (run time): (C_out, C_in/groups, kH, kW), possibly per sample.
        wv = xs[1]
        if not wv.batched:
            return x.with_array(kernels.conv2d(x.array, wv.array, b, stride, dil, pads, groups))
        xa = x.array if x.batched else np.broadcast_to(x.array, wv.array.shape[:1] + x.array.shape)
        return Value(np.stack([kernels.conv2d(xi, wi, b, stride, dil, pads, groups)
                               for xi, wi in zip(xa, wv.array)]), True)

    @staticmethod
    def _pads(p: Any, h: int, w: int, kernel, stride, dil) -> tuple[int, int, int, int]:
        which = p.WhichOneof("ConvolutionPaddingType") if hasattr(p, "isDeconvolution") \
            else p.WhichOneof("PoolingPaddingType")
        if which == "same":
            top, bottom = kernels.same_padding(h, kernel[0], stride[0], dil[0])
            left, right = kernels.same_padding(w, kernel[1], stride[1], dil[1])
            if p.same.asymmetryMode == 1:  # TOP_LEFT_HEAVY
                top, bottom, left, right = bottom, top, right, left
            return top, bottom, left, right
        amounts = getattr(p, which).paddingAmounts.borderAmounts if which else []
        if len(amounts) == 2:
            return (amounts[0].startEdgeSize, amounts[0].endEdgeSize,
                    amounts[1].startEdgeSize, amounts[1].endEdgeSize)
        return 0, 0, 0, 0

    def _pooling(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.pooling
        x = xs[0]
        kind = {0: "max", 1: "average"}.get(p.type)
        if kind is None:
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "pooling (L2)", layer.name, self.path)
        h, w = x.array.shape[-2:]
        if p.globalPooling:
            return x.with_array(kernels.pool2d(x.array, kind, (h, w), (1, 1), (0, 0, 0, 0)))
        kernel = list(p.kernelSize) or [3, 3]
        stride = list(p.stride) or [1, 1]
        if p.WhichOneof("PoolingPaddingType") == "includeLastPixel":
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "pooling (includeLastPixel padding)",
                                           layer.name, self.path)
        pads = self._pads(p, h, w, kernel, stride, (1, 1))
        return x.with_array(kernels.pool2d(x.array, kind, kernel, stride, pads, p.avgPoolExcludePadding))

    def _inner_product(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.innerProduct
        w = self._w(p, "weights", layer).reshape(p.outputChannels, p.inputChannels)
        x = xs[0]
        a = x.array
        channel_first = x.rank >= 3 and a.shape[-2:] == (1, 1)
        flat = a[..., 0, 0] if channel_first else a
        y = kernels.matmul(flat, w.T)
        if p.hasBias:
            y = y + self._w(p, "bias", layer)
        return x.with_array((y[..., None, None] if channel_first else y).astype(np.float32))

    def _batched_matmul(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.batchedMatmul
        a = xs[0].array
        if len(xs) == 1:
            # One-input form: weights [first, second] stored column-major, i.e. as (second, first).
            # transposeA/B do not apply here: coremltools' MIL->NN matmul sets them and has already
            # transposed the input (a transpose layer) and the weights (backend/nn/op_mapping.py).
            w = self._w(p, "weights", layer).reshape(p.weightMatrixSecondDimension, p.weightMatrixFirstDimension).T
            y = kernels.matmul(a, w)
            if p.hasBias:
                y = y + self._w(p, "bias", layer)
            return xs[0].with_array(y.astype(np.float32))
        (a2, b2), batched = broadcastable(xs[:2])
        if p.transposeA:
            a2 = np.swapaxes(a2, -1, -2)
        if p.transposeB:
            b2 = np.swapaxes(b2, -1, -2)
        return Value(kernels.matmul(a2, b2), batched)

    def _activation(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.activation
        which = p.WhichOneof("NonlinearityType")
        x = xs[0]
        if which == "PReLU":
            alpha = self._w(p.PReLU, "alpha", layer)
            alpha = alpha.reshape(-1, 1, 1) if alpha.size > 1 else alpha
            return x.with_array(np.where(x.array >= 0, x.array, alpha * x.array).astype(np.float32))
        name = _ACTIVATIONS.get(which)
        if name is None:
            raise UnsupportedCoremlOpError("NeuralNetwork activation", which or "?", layer.name, self.path)
        params = getattr(p, which)
        alpha = getattr(params, "alpha", 0.0)
        beta = getattr(params, "beta", 0.0)
        return x.with_array(kernels.activation(name, x.array, alpha, beta))

    def _gelu(self, layer: Any, xs: list[Value]) -> Value:
        return xs[0].with_array(kernels.activation(_GELU[layer.gelu.mode], xs[0].array))

    def _clip(self, layer: Any, xs: list[Value]) -> Value:
        return xs[0].with_array(np.clip(xs[0].array, layer.clip.minVal, layer.clip.maxVal))

    def _softmax(self, layer: Any, xs: list[Value]) -> Value:
        # Legacy softmax normalises over C of a (C, H, W) blob; a rank-1/2 blob's last axis is C.
        x = xs[0]
        axis = -3 if x.rank >= 3 else -1
        return x.with_array(kernels.softmax(x.array, x.axis(axis)))

    def _softmax_nd(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        return x.with_array(kernels.softmax(x.array, x.axis(layer.softmaxND.axis)))

    def _reshape_static(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        lead = x.array.shape[:1] if x.batched else ()
        return x.with_array(x.array.reshape(lead + tuple(layer.reshapeStatic.targetShape)))

    def _reshape(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.reshape
        x = xs[0]
        if p.mode != 0:
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "reshape (CHANNEL_LAST)", layer.name, self.path)
        target = tuple(p.targetShape)
        lead = x.array.shape[:1] if x.batched else ()
        # Legacy reshape keeps the batch axis of a rank-4 blob and takes (C, H, W) or (Seq, C, H, W).
        keep = x.array.shape[int(x.batched):int(x.batched) + 1] if x.rank == 4 and len(target) == 3 else ()
        return x.with_array(x.array.reshape(lead + keep + target))

    def _flatten(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        if layer.flatten.mode != 0:
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "flatten (CHANNEL_LAST)", layer.name, self.path)
        a = x.array
        keep = x.array.ndim - 3  # flatten (C, H, W) into (C*H*W, 1, 1), keep leading axes
        return x.with_array(a.reshape(a.shape[:keep] + (-1, 1, 1)))

    def _flatten_to_2d(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        axis = layer.flattenTo2D.axis
        axis = axis + x.rank if axis < 0 else axis
        s = x.array.shape[int(x.batched):]
        lead = x.array.shape[:1] if x.batched else ()
        return x.with_array(x.array.reshape(lead + (int(np.prod(s[:axis])), int(np.prod(s[axis:])))))

    def _transpose(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        axes = [x.axis(a) for a in layer.transpose.axes]
        return x.with_array(np.transpose(x.array, ([0] if x.batched else []) + axes))

    def _squeeze(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        p = layer.squeeze
        if p.squeezeAll:
            axes = tuple(i for i in range(int(x.batched), x.array.ndim) if x.array.shape[i] == 1)
        else:
            axes = tuple(x.axis(a) for a in p.axes)
        return x.with_array(np.squeeze(x.array, axis=axes))

    def _expand_dims(self, layer: Any, xs: list[Value]) -> Value:
        x = xs[0]
        out_rank = x.rank + len(layer.expandDims.axes)
        axes = sorted((a + out_rank if a < 0 else a) + int(x.batched) for a in layer.expandDims.axes)
        return x.with_array(np.expand_dims(x.array, tuple(axes)))

    def _concat(self, layer: Any, xs: list[Value]) -> Value:
        if layer.concat.sequenceConcat:
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "concat (sequence)", layer.name, self.path)
        return self._join(xs, -3 if xs[0].rank >= 3 else -1)

    def _concat_nd(self, layer: Any, xs: list[Value]) -> Value:
        return self._join(xs, layer.concatND.axis)

    @staticmethod
    def _join(xs: list[Value], axis: int) -> Value:
        batched = any(v.batched for v in xs)
        n = next(v.array.shape[0] for v in xs if v.batched) if batched else 0
        arrays = [v.array if v.batched or not batched else np.broadcast_to(v.array, (n,) + v.array.shape)
                  for v in xs]
        ref = Value(arrays[0], batched)
        return Value(np.concatenate(arrays, axis=ref.axis(axis)), batched)

    def _add(self, layer: Any, xs: list[Value]) -> Value:
        out = _binary(np.add)(self, layer, xs)
        return out.with_array(out.array + np.float32(layer.add.alpha)) if len(xs) == 1 else out

    def _multiply(self, layer: Any, xs: list[Value]) -> Value:
        if len(xs) == 1:
            return xs[0].with_array(xs[0].array * np.float32(layer.multiply.alpha))
        return _binary(np.multiply)(self, layer, xs)

    def _batchnorm(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.batchnorm
        if p.computeMeanVar or p.instanceNormalization:
            raise UnsupportedCoremlOpError("NeuralNetwork layer", "batchnorm (computeMeanVar)", layer.name, self.path)
        w = {k: self._w(p, k, layer) for k in ("gamma", "beta", "mean", "variance")}
        x = xs[0]
        axis = -3 if x.rank >= 3 else -1
        return x.with_array(kernels.batch_norm(x.array, w["mean"], w["variance"], w["gamma"], w["beta"],
                                               p.epsilon, axis))

    def _scale(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.scale
        y = xs[0].array * self._w(p, "scale", layer).reshape(_param_shape(tuple(p.shapeScale)))
        if p.hasBias:
            y = y + self._w(p, "bias", layer).reshape(_param_shape(tuple(p.shapeBias)))
        return xs[0].with_array(y.astype(np.float32))

    def _bias(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.bias
        return xs[0].with_array(xs[0].array + self._w(p, "bias", layer).reshape(_param_shape(tuple(p.shape))))

    def _load_constant(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.loadConstantND if layer.WhichOneof("layer") == "loadConstantND" else layer.loadConstant
        return Value(self._w(p, "data", layer).reshape(tuple(p.shape)), False)

    def _unary(self, layer: Any, xs: list[Value]) -> Value:
        p = layer.unary
        x = xs[0].array * np.float32(p.scale or 1.0) + np.float32(p.shift)
        ops = {0: np.sqrt, 1: lambda v: 1 / np.sqrt(v + p.epsilon), 2: lambda v: 1 / (v + p.epsilon),
               3: lambda v: np.power(v, p.alpha), 4: np.exp, 5: lambda v: np.log(v + p.epsilon), 6: np.abs,
               7: lambda v: np.maximum(v, p.alpha)}
        return xs[0].with_array(ops[p.type](x).astype(np.float32))


_LAYERS: dict[str, Callable[[NeuralNetworkEvaluator, Any, list[Value]], Value]] = {
    "convolution": NeuralNetworkEvaluator._convolution,
    "pooling": NeuralNetworkEvaluator._pooling,
    "innerProduct": NeuralNetworkEvaluator._inner_product,
    "batchedMatmul": NeuralNetworkEvaluator._batched_matmul,
    "activation": NeuralNetworkEvaluator._activation,
    "gelu": NeuralNetworkEvaluator._gelu,
    "clip": NeuralNetworkEvaluator._clip,
    "softmax": NeuralNetworkEvaluator._softmax,
    "softmaxND": NeuralNetworkEvaluator._softmax_nd,
    "reshapeStatic": NeuralNetworkEvaluator._reshape_static,
    "reshape": NeuralNetworkEvaluator._reshape,
    "flatten": NeuralNetworkEvaluator._flatten,
    "flattenTo2D": NeuralNetworkEvaluator._flatten_to_2d,
    "transpose": NeuralNetworkEvaluator._transpose,
    "squeeze": NeuralNetworkEvaluator._squeeze,
    "expandDims": NeuralNetworkEvaluator._expand_dims,
    "concat": NeuralNetworkEvaluator._concat,
    "concatND": NeuralNetworkEvaluator._concat_nd,
    "add": NeuralNetworkEvaluator._add,
    "multiply": NeuralNetworkEvaluator._multiply,
    "addBroadcastable": _binary(np.add),
    "multiplyBroadcastable": _binary(np.multiply),
    "subtractBroadcastable": _binary(np.subtract),
    "divideBroadcastable": _binary(np.divide),
    "batchnorm": NeuralNetworkEvaluator._batchnorm,
    "scale": NeuralNetworkEvaluator._scale,
    "bias": NeuralNetworkEvaluator._bias,
    "loadConstant": NeuralNetworkEvaluator._load_constant,
    "loadConstantND": NeuralNetworkEvaluator._load_constant,
    "unary": NeuralNetworkEvaluator._unary,
}
_LAYERS.update(nn_tensor.LAYERS)
_LAYERS.update(nn_math.LAYERS)
