"""Every NeuralNetwork layer the evaluator claims, built with coremltools' NeuralNetworkBuilder and
checked against TensorFlow / NumPy references (tests/coreml/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

import coreml_reference as ref
from tfship.errors import ModelNotFoundError
from tfship.export import coremleval

ct = pytest.importorskip("coremltools")
from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

# fp32 kernels in a different summation order than TensorFlow's: measured <= 2e-6 on these sizes.
ATOL = 1e-5
RNG = np.random.default_rng(7)


def _r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _save(builder: NeuralNetworkBuilder, path) -> None:
    path.write_bytes(builder.spec.SerializeToString())


def _model(tmp_path, shape, build) -> coremleval.Evaluator:
    b = NeuralNetworkBuilder([("x", datatypes.Array(*shape))], [("y", None)], disable_rank5_shape_mapping=True)
    build(b)
    path = tmp_path / "m.mlmodel"
    _save(b, path)
    return coremleval.load(path)


W_CONV = _r(4, 3, 3, 3)        # (O, I, kH, kW)
B_CONV = _r(4)
W_GROUP = _r(6, 2, 3, 3)       # groups=2 over 4 input channels
W_FC = _r(3, 5)                # (out, in)
B_FC = _r(3)
BN = [np.abs(_r(3)) + 0.5, _r(3), _r(3), np.abs(_r(3)) + 0.1]   # gamma, beta, mean, variance
CONST = _r(1, 2, 6, 6)
ALPHA = np.abs(_r(3))


def _conv(b, border, **kw):
    w, groups = (W_GROUP, 2) if kw.pop("grouped", False) else (W_CONV, 1)
    b.add_convolution("conv", kernel_channels=w.shape[1], output_channels=w.shape[0], height=3, width=3,
                      W=w.transpose(2, 3, 1, 0), b=B_CONV if groups == 1 else None, has_bias=groups == 1,
                      groups=groups, border_mode=border, input_name="x", output_name="y", **kw)


def _act(name: str, params=None):
    return lambda b: b.add_activation("act", name, "x", "y", params=params)


CASES = {
    # name: (input shape, build, reference on one sample of that shape)
    "conv_same_bias": ((1, 3, 6, 6), lambda b: _conv(b, "same", stride_height=1, stride_width=1),
                       lambda x: ref.conv(x, W_CONV, B_CONV, padding="SAME")),
    "conv_valid_stride_dilation_pads": (
        (1, 3, 7, 7), lambda b: _conv(b, "valid", stride_height=2, stride_width=1, dilation_factors=[2, 1],
                                      padding_top=1, padding_bottom=0, padding_left=2, padding_right=1),
        lambda x: ref.conv(x, W_CONV, B_CONV, strides=(2, 1), dilations=(2, 1), padding=(1, 0, 2, 1))),
    "conv_groups": ((1, 4, 6, 6), lambda b: _conv(b, "same", stride_height=2, stride_width=2, grouped=True),
                    lambda x: ref.conv(x, W_GROUP, strides=(2, 2), padding="SAME", groups=2)),
    "maxpool_same": ((1, 3, 7, 7), lambda b: b.add_pooling("p", 3, 3, 2, 2, "MAX", "SAME", "x", "y"),
                     lambda x: ref.pool(x, "max", (3, 3), (2, 2), "SAME")),
    "avgpool_same_exclude_pad": ((1, 3, 7, 7), lambda b: b.add_pooling("p", 3, 3, 2, 2, "AVERAGE", "SAME", "x", "y"),
                                 lambda x: ref.pool(x, "avg", (3, 3), (2, 2), "SAME")),
    "avgpool_valid": ((1, 3, 6, 6), lambda b: b.add_pooling("p", 2, 2, 2, 2, "AVERAGE", "VALID", "x", "y"),
                      lambda x: ref.pool(x, "avg", (2, 2), (2, 2), "VALID")),
    "global_avgpool": ((1, 3, 5, 5), lambda b: b.add_pooling("p", 1, 1, 1, 1, "AVERAGE", "VALID", "x", "y",
                                                             is_global=True),
                       lambda x: x.mean(axis=(2, 3), keepdims=True)),
    "inner_product": ((5, 1, 1), lambda b: b.add_inner_product("fc", W_FC, B_FC, 5, 3, True, "x", "y"),
                      lambda x: (W_FC @ x[:, 0, 0] + B_FC)[:, None, None]),
    "batched_matmul_weights": ((2, 5), lambda b: b.add_batched_mat_mul("mm", ["x"], "y", weight_matrix_rows=5,
                                                                      weight_matrix_columns=3, W=W_FC.T, bias=B_FC),
                               lambda x: x @ W_FC.T + B_FC),
    "batched_matmul_two_inputs": ((2, 5), lambda b: (
        b.add_load_constant_nd("c", "c", W_FC, W_FC.shape),
        b.add_batched_mat_mul("mm", ["x", "c"], "y", transpose_b=True)), lambda x: x @ W_FC.T),
    "relu": ((3, 4), _act("RELU"), ref.ACTIVATIONS["relu"]),
    "sigmoid": ((3, 4), _act("SIGMOID"), ref.ACTIVATIONS["sigmoid"]),
    "tanh": ((3, 4), _act("TANH"), ref.ACTIVATIONS["tanh"]),
    "leaky_relu": ((3, 4), _act("LEAKYRELU", [0.2]), ref.ACTIVATIONS["leaky_relu"]),
    "elu": ((3, 4), _act("ELU", 1.0), ref.ACTIVATIONS["elu"]),
    "softplus": ((3, 4), _act("SOFTPLUS"), ref.ACTIVATIONS["softplus"]),
    "softsign": ((3, 4), _act("SOFTSIGN"), ref.ACTIVATIONS["softsign"]),
    "linear": ((3, 4), _act("LINEAR", [2.0, 0.5]), lambda x: 2.0 * x + 0.5),
    "sigmoid_hard": ((3, 4), _act("SIGMOID_HARD", [0.2, 0.5]), lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "prelu": ((1, 3, 2, 2), _act("PRELU", ALPHA), lambda x: np.where(x >= 0, x, ALPHA.reshape(1, 3, 1, 1) * x)),
    "gelu": ((3, 4), lambda b: b.add_gelu("g", "x", "y"), ref.ACTIVATIONS["gelu"]),
    "clip": ((3, 4), lambda b: b.add_clip("c", "x", "y", -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5)),
    "softmax_legacy_channels": ((1, 3, 2, 2), lambda b: b.add_softmax("s", "x", "y"),
                                lambda x: ref.softmax(x, axis=1)),
    "softmax_nd": ((2, 5), lambda b: b.add_softmax_nd("s", "x", "y", axis=-1), lambda x: ref.softmax(x, -1)),
    "transpose_reshape_static": ((1, 3, 2, 2), lambda b: (
        b.add_transpose("t", [0, 2, 3, 1], "x", "t"), b.add_reshape_static("r", "t", "y", [1, 12])),
        lambda x: x.transpose(0, 2, 3, 1).reshape(1, 12)),
    "flatten_channel_first": ((3, 2, 2), lambda b: b.add_flatten("f", 0, "x", "y"),
                              lambda x: x.reshape(12, 1, 1)),
    "flatten_to_2d": ((2, 3, 2), lambda b: b.add_flatten_to_2d("f", "x", "y", axis=1), lambda x: x.reshape(2, 6)),
    "concat_nd_with_constant": ((1, 3, 6, 6), lambda b: (
        b.add_load_constant_nd("c", "c", CONST, CONST.shape), b.add_concat_nd("cat", ["x", "c"], "y", axis=1)),
        lambda x: np.concatenate([x, CONST], axis=1)),
    "add_multiply_elementwise": ((3, 4), lambda b: (
        b.add_elementwise("a", ["x", "x"], "a", "ADD"), b.add_elementwise("m", ["a", "x"], "y", "MULTIPLY")),
        lambda x: (x + x) * x),
    "broadcastable_ops": ((2, 3), lambda b: (
        b.add_load_constant_nd("c", "c", B_FC + 3, (3,)),
        b.add_add_broadcastable("a", ["x", "c"], "a"), b.add_multiply_broadcastable("m", ["a", "c"], "m"),
        b.add_subtract_broadcastable("s", ["m", "x"], "s"), b.add_divide_broadcastable("y", ["s", "c"], "y")),
        lambda x: ((x + B_FC + 3) * (B_FC + 3) - x) / (B_FC + 3)),
    "batchnorm": ((1, 3, 2, 2), lambda b: b.add_batchnorm("bn", 3, BN[0], BN[1], BN[2], BN[3], "x", "y"),
                  lambda x: ref.batch_norm(x, BN[2], BN[3], BN[0], BN[1], 1e-5)),
    "scale_and_bias": ((3, 2, 2), lambda b: (
        b.add_scale("s", ALPHA, None, False, "x", "s", shape_scale=[3]),
        b.add_bias("y", B_FC, "s", "y", shape_bias=[3])),
        lambda x: x * ALPHA.reshape(3, 1, 1) + B_FC.reshape(3, 1, 1)),
    "reduce_mean_squeeze_expand": ((1, 3, 2, 2), lambda b: (
        b.add_reduce_mean("m", "x", "m", axes=[2, 3], keepdims=True),
        b.add_squeeze("s", "m", "s", axes=[2, 3]), b.add_expand_dims("y", "s", "y", axes=[-1])),
        lambda x: x.mean(axis=(2, 3))[..., None]),
    "unary_sqrt_exp": ((3, 4), lambda b: (
        b.add_unary("abs", "x", "a", "abs"), b.add_unary("sqrt", "a", "s", "sqrt"),
        b.add_unary("y", "s", "y", "exp")), lambda x: np.exp(np.sqrt(np.abs(x)))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_layer_matches_reference(tmp_path, case):
    shape, build, reference = CASES[case]
    ev = _model(tmp_path, shape, build)
    x = _r(3, *shape)
    got = ev.predict({"x": x})["y"]
    want = np.stack([reference(xi) for xi in x])
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5)


def test_image_scaler_rgb_classifier(tmp_path):
    """Image preprocessing (scale + per-channel bias) and the classifier outputs, label order kept."""
    b = NeuralNetworkBuilder([("img", datatypes.Array(3, 4, 4))], [("probs", None)],
                             mode="classifier", disable_rank5_shape_mapping=True)
    b.set_pre_processing_parameters(image_input_names=["img"], red_bias=-1.0, green_bias=-2.0, blue_bias=-3.0,
                                    image_scale=1 / 255.0)
    b.add_reduce_mean("m", "img", "m", axes=[-2, -1], keepdims=False)
    b.add_softmax_nd("probs", "m", "probs", axis=-1)
    b.set_class_labels(["red", "green", "blue"], predicted_feature_name="label", prediction_blob="probs")
    path = tmp_path / "c.mlmodel"
    _save(b, path)
    ev = coremleval.load(path)
    assert ev.class_labels == ("red", "green", "blue")
    pixels = RNG.uniform(0, 255, size=(4, 4, 4, 3)).astype(np.float32)
    out = ev.predict({"img": pixels})
    scaled = pixels / 255.0 - np.array([1.0, 2.0, 3.0], np.float32)
    want = ref.softmax(scaled.mean(axis=(1, 2)), axis=-1)
    np.testing.assert_allclose(out["probs"], want, atol=ATOL)
    assert list(out["label"]) == [["red", "green", "blue"][i] for i in want.argmax(axis=1)]


def test_unknown_layer_names_type_and_layer(tmp_path):
    b = NeuralNetworkBuilder([("x", datatypes.Array(1, 3, 4, 4))], [("y", None)], disable_rank5_shape_mapping=True)
    b.add_argsort("my_sort", "x", "y", axis=1)
    path = tmp_path / "u.mlmodel"
    _save(b, path)
    with pytest.raises(coremleval.UnsupportedCoremlOpError, match=r"'argSort' \(named 'my_sort'\)"):
        coremleval.load(path)


def test_wrong_feed_shape_is_an_error(tmp_path):
    ev = _model(tmp_path, (3, 4), _act("RELU"))
    with pytest.raises(coremleval.CoremlEvalError, match=r"\(N,\)\+\(3, 4\)"):
        ev.predict({"x": _r(2, 4, 3)})


def test_not_a_model_is_an_error(tmp_path):
    junk = tmp_path / "junk.mlmodel"
    junk.write_bytes(b"")
    with pytest.raises(coremleval.CoremlEvalError, match="not a CoreML model"):
        coremleval.load(junk)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        coremleval.load(tmp_path / "missing.mlmodel")
