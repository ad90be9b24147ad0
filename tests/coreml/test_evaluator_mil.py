"""Every ML Program op the evaluator claims, built with coremltools' MIL Builder (no graph passes, so
the ops run as written) and checked against TensorFlow / NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

import coreml_reference as ref
from tfship.export import coremleval

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil.mil import Builder as mb  # noqa: E402

# fp32 kernels in a different summation order than TensorFlow's: measured <= 2e-6 on these sizes.
ATOL = 1e-5
RNG = np.random.default_rng(11)


def _r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _package(tmp_path, shape, body, precision="fp32") -> coremleval.Evaluator:
    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.iOS15)
    def prog(x):
        return body(x)

    model = ct.convert(prog, convert_to="mlprogram", pass_pipeline=ct.PassPipeline.EMPTY,
                       compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS15)
    path = tmp_path / "m.mlpackage"
    model.save(str(path))
    return coremleval.load(path)


W_CONV = _r(4, 3, 3, 3)
B_CONV = _r(4)
W_GROUP = _r(6, 2, 3, 3)
W_FC = _r(3, 5)
B_FC = _r(3)
Y_MM = _r(2, 5, 4)
BN = [np.abs(_r(3)) + 0.5, _r(3), _r(3), np.abs(_r(3)) + 0.1]   # gamma, beta, mean, variance
CONST = _r(1, 2, 6, 6)
ALPHA = np.abs(_r(3))


def _act(op, **kw):
    return lambda x: getattr(mb, op)(x=x, **kw)


CASES = {
    # name: (input shape, program body, reference on one sample of that shape)
    "conv_same_bias": ((1, 3, 6, 6), lambda x: mb.conv(x=x, weight=W_CONV, bias=B_CONV, pad_type="same"),
                       lambda x: ref.conv(x, W_CONV, B_CONV, padding="SAME")),
    "conv_valid_stride_dilation": ((1, 3, 9, 9), lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 1],
                                                                   dilations=[2, 1], pad_type="valid"),
                                   lambda x: ref.conv(x, W_CONV, strides=(2, 1), dilations=(2, 1))),
    "conv_custom_pad_groups": ((1, 4, 7, 7), lambda x: mb.conv(x=x, weight=W_GROUP, groups=2, pad_type="custom",
                                                               pad=[1, 0, 2, 1], strides=[2, 2]),
                               lambda x: ref.conv(x, W_GROUP, strides=(2, 2), padding=(1, 0, 2, 1), groups=2)),
    "max_pool_same": ((1, 3, 7, 7), lambda x: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same"),
                      lambda x: ref.pool(x, "max", (3, 3), (2, 2), "SAME")),
    "max_pool_ceil_mode": ((1, 3, 7, 7), lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2],
                                                               pad_type="valid", ceil_mode=True),
                           lambda x: ref.pool(x, "max", (2, 2), (2, 2), (0, 1, 0, 1))),
    "avg_pool_same_exclude_pad": ((1, 3, 7, 7), lambda x: mb.avg_pool(
        x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same", exclude_padding_from_average=True),
        lambda x: ref.pool(x, "avg", (3, 3), (2, 2), "SAME")),
    "avg_pool_custom_include_pad": ((1, 3, 6, 6), lambda x: mb.avg_pool(
        x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="custom", pad=[1, 1, 1, 1]),
        lambda x: ref.pool(np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)]), "avg", (2, 2), (2, 2), "VALID")),
    "linear": ((2, 5), lambda x: mb.linear(x=x, weight=W_FC, bias=B_FC), lambda x: x @ W_FC.T + B_FC),
    "matmul_transpose_y": ((2, 3, 4), lambda x: mb.matmul(x=x, y=Y_MM, transpose_y=True),
                           lambda x: np.matmul(x, Y_MM.transpose(0, 2, 1))),
    "relu": ((3, 4), _act("relu"), ref.ACTIVATIONS["relu"]),
    "relu6": ((3, 4), lambda x: mb.relu6(x=mb.mul(x=x, y=5.0)), lambda x: ref.ACTIVATIONS["relu6"](5 * x)),
    "sigmoid": ((3, 4), _act("sigmoid"), ref.ACTIVATIONS["sigmoid"]),
    "tanh": ((3, 4), _act("tanh"), ref.ACTIVATIONS["tanh"]),
    "leaky_relu": ((3, 4), _act("leaky_relu", alpha=0.2), ref.ACTIVATIONS["leaky_relu"]),
    "elu": ((3, 4), _act("elu", alpha=1.0), ref.ACTIVATIONS["elu"]),
    "softplus": ((3, 4), _act("softplus"), ref.ACTIVATIONS["softplus"]),
    "softsign": ((3, 4), _act("softsign"), ref.ACTIVATIONS["softsign"]),
    "silu": ((3, 4), _act("silu"), ref.ACTIVATIONS["silu"]),
    "gelu_exact": ((3, 4), _act("gelu", mode="EXACT"), ref.ACTIVATIONS["gelu"]),
    "clip": ((3, 4), _act("clip", alpha=-0.5, beta=0.5), lambda x: np.clip(x, -0.5, 0.5)),
    "prelu": ((1, 3, 2, 2), _act("prelu", alpha=ALPHA), lambda x: np.where(x >= 0, x, ALPHA.reshape(1, 3, 1, 1) * x)),
    "softmax_axis1": ((1, 3, 2, 2), _act("softmax", axis=1), lambda x: ref.softmax(x, 1)),
    "transpose_reshape": ((1, 3, 2, 2), lambda x: mb.reshape(x=mb.transpose(x=x, perm=[0, 2, 3, 1]), shape=[1, -1]),
                          lambda x: x.transpose(0, 2, 3, 1).reshape(1, 12)),
    "concat_with_constant": ((1, 3, 6, 6), lambda x: mb.concat(values=[x, CONST], axis=1),
                             lambda x: np.concatenate([x, CONST], axis=1)),
    "binary_broadcasting": ((2, 3), lambda x: mb.real_div(x=mb.sub(x=mb.mul(x=mb.add(x=x, y=B_FC), y=x), y=B_FC),
                                                          y=np.float32(2.0)),
                            lambda x: ((x + B_FC) * x - B_FC) / 2),
    "maximum_minimum": ((2, 3), lambda x: mb.minimum(x=mb.maximum(x=x, y=B_FC), y=np.float32(0.5)),
                        lambda x: np.minimum(np.maximum(x, B_FC), 0.5)),
    "batch_norm": ((1, 3, 2, 2), lambda x: mb.batch_norm(x=x, mean=BN[2], variance=BN[3], gamma=BN[0], beta=BN[1],
                                                         epsilon=1e-3),
                   lambda x: ref.batch_norm(x, BN[2], BN[3], BN[0], BN[1], 1e-3)),
    "cast_fp16_roundtrip": ((3, 4), lambda x: mb.cast(x=mb.cast(x=x, dtype="fp16"), dtype="fp32"),
                            lambda x: x.astype(np.float16).astype(np.float32)),
    "reduce_mean_max": ((1, 3, 4, 4), lambda x: mb.add(x=mb.reduce_mean(x=x, axes=[2, 3], keep_dims=True),
                                                       y=mb.reduce_max(x=x, axes=[-1], keep_dims=True)),
                        lambda x: x.mean(axis=(2, 3), keepdims=True) + x.max(axis=-1, keepdims=True)),
    "expand_squeeze": ((1, 3, 1), lambda x: mb.expand_dims(x=mb.squeeze(x=x, axes=[0, 2]), axes=[0]),
                       lambda x: x.reshape(1, 3)),
    "pad_constant": ((1, 2, 3, 3), lambda x: mb.pad(x=x, pad=[1, 0, 0, 2], mode="constant", constant_val=0.5),
                     lambda x: np.pad(x, [(0, 0), (0, 0), (1, 0), (0, 2)], constant_values=0.5)),
    "unary_chain": ((3, 4), lambda x: mb.exp(x=mb.sqrt(x=mb.abs(x=x))), lambda x: np.exp(np.sqrt(np.abs(x)))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_op_matches_reference(tmp_path, case):
    shape, body, reference = CASES[case]
    ev = _package(tmp_path, shape, body)
    x = _r(3, *shape)
    (name,) = ev.output_names
    got = ev.predict({ev.input_names[0]: x})[name]
    want = np.stack([reference(xi) for xi in x])
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5)


def test_fp16_program_rounds_like_fp16(tmp_path):
    """Values the program holds as fp16 are rounded to fp16 after every op, as on a device."""
    w = _r(3, 5)
    ev = _package(tmp_path, (2, 5), lambda x: mb.cast(x=mb.relu(x=mb.linear(x=mb.cast(x=x, dtype="fp16"),
                                                                             weight=w.astype(np.float16))),
                                                      dtype="fp32"))
    x = _r(4, 2, 5)
    got = ev.predict({ev.input_names[0]: x})[ev.output_names[0]]
    h = lambda a: a.astype(np.float16).astype(np.float32)  # noqa: E731
    want = np.maximum(h(h(x) @ h(w).T), 0)
    np.testing.assert_array_equal(got, want)
    assert np.abs(got - np.maximum(x @ w.T, 0)).max() > 0  # the fp16 rounding is really there


def test_unknown_op_names_type_and_op(tmp_path):
    def body(x):
        mb.cumsum(x=x, axis=1, name="my_cumsum")
        return mb.relu(x=x)

    with pytest.raises(coremleval.UnsupportedCoremlOpError, match=r"'cumsum' \(named 'my_cumsum'\)"):
        _package(tmp_path, (2, 3), body)
