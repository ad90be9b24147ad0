"""Independent references for the evaluator tests: TensorFlow's kernels (NHWC) behind NCHW helpers."""

from __future__ import annotations

import numpy as np


def _tf():
    import tensorflow as tf

    return tf


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, strides=(1, 1), dilations=(1, 1),
         padding="VALID", groups: int = 1) -> np.ndarray:
    """x (N, C, H, W), w (O, C/groups, kH, kW); padding "SAME", "VALID" or (top, bottom, left, right)."""
    tf = _tf()
    if not isinstance(padding, str):
        t, bo, le, r = padding
        padding = [[0, 0], [t, bo], [le, r], [0, 0]]
    xs = np.split(x, groups, axis=1)
    ws = np.split(w, groups, axis=0)
    outs = [tf.nn.conv2d(xg.transpose(0, 2, 3, 1), wg.transpose(2, 3, 1, 0), strides=list(strides),
                         padding=padding, dilations=list(dilations)).numpy() for xg, wg in zip(xs, ws)]
    y = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool(x: np.ndarray, kind: str, kernel, strides, padding="VALID") -> np.ndarray:
    """TF pooling on NCHW; explicit (top, bottom, left, right) padding pads with -inf (max) first."""
    tf = _tf()
    nhwc = x.transpose(0, 2, 3, 1)
    if not isinstance(padding, str):
        t, b, le, r = padding
        nhwc = np.pad(nhwc, [(0, 0), (t, b), (le, r), (0, 0)], constant_values=-np.inf)
        padding = "VALID"
    fn = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return fn(nhwc, list(kernel), list(strides), padding).numpy().transpose(0, 3, 1, 2)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return _tf().nn.softmax(x, axis=axis).numpy()


def batch_norm(x, mean, var, gamma, beta, eps, axis=1):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: v.reshape(shape)  # noqa: E731
    return _tf().nn.batch_normalization(x, r(mean), r(var), r(beta), r(gamma), eps).numpy()


ACTIVATIONS = {
    "relu": lambda x: _tf().nn.relu(x).numpy(),
    "sigmoid": lambda x: _tf().math.sigmoid(x).numpy(),
    "tanh": lambda x: np.tanh(x),
    "leaky_relu": lambda x: _tf().nn.leaky_relu(x, alpha=0.2).numpy(),
    "elu": lambda x: _tf().nn.elu(x).numpy(),
    "softplus": lambda x: _tf().math.softplus(x).numpy(),
    "softsign": lambda x: _tf().nn.softsign(x).numpy(),
    "relu6": lambda x: _tf().nn.relu6(x).numpy(),
    "silu": lambda x: _tf().nn.silu(x).numpy(),
    "gelu": lambda x: _tf().nn.gelu(x, approximate=False).numpy(),
}
