"""Precision twins (export/twin.py) and how verify uses them (tolerances.widened).

Each twin is checked against the same rounding done by hand in NumPy on a two-layer model, and verify
is run end to end on an ill-conditioned model: its scores are small differences of large products,
the way a deep random-weight network's are, so an fp16 copy misses the fixed fp16 bound while being
exactly as faithful as fp16 allows; an int8 copy cannot keep its ranking at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from tfship.export.tolerances import FP16_WEIGHTS, REPRESENTABLE_TOP1, TWIN_FACTOR

SIDE = 4


def _save(base, w1: np.ndarray, w2: np.ndarray, b2: np.ndarray):
    import tensorflow as tf

    class TwoLayers(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1, self.w2, self.b2 = tf.Variable(w1), tf.Variable(w2), tf.Variable(b2)

        @tf.function(input_signature=[tf.TensorSpec([None, SIDE * SIDE], tf.float32, name="images")])
        def predict(self, images):
            hidden = tf.nn.relu(tf.matmul(images, self.w1))
            return {"scores": tf.matmul(hidden, self.w2) + self.b2}

    module = TwoLayers()
    tf.saved_model.save(module, str(base / "1"), signatures={"predict_images": module.predict})
    return base


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A random two-layer model, its weights, and its frozen predict graph."""
    from tfship.export.source import load_source
    from tfship.savedmodel import resolve_model

    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((SIDE * SIDE, 64)).astype(np.float32)   # 1,024 values: TFLite quantizes it
    w2 = rng.standard_normal((64, 5)).astype(np.float32)             # 320: TFLite leaves it in float
    b2 = rng.standard_normal(5).astype(np.float32)
    base = _save(tmp_path_factory.mktemp("twin") / "small", w1, w2, b2)
    source = load_source(resolve_model(base))
    x = rng.random((64, SIDE * SIDE), dtype=np.float32)
    return source.frozen(), (w1, w2, b2), x


def _fp16(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float16).astype(np.float32)


def _int8_weights(w: np.ndarray) -> np.ndarray:
    step = np.abs(w).max(axis=0, keepdims=True) / 127   # per output channel (column), symmetric
    return np.round(w / step) * step


def _int8_per_row(a: np.ndarray) -> np.ndarray:
    low, high = np.minimum(a.min(axis=1, keepdims=True), 0), np.maximum(a.max(axis=1, keepdims=True), 0)
    step = (high - low) / 255
    return np.round((a - low) / step) * step + low


def test_fp16_weights_twin_is_the_model_with_fp16_rounded_weights(small):
    from tfship.export.twin import Twin

    frozen, (w1, w2, b2), x = small
    expected = np.maximum(x @ _fp16(w1), 0) @ _fp16(w2) + _fp16(b2)
    got = Twin(frozen, "fp16-weights")(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(got - frozen(x)).max() > 1e-5   # the rounding shows


def test_fp16_compute_twin_rounds_the_input_and_every_op(small):
    from tfship.export.twin import Twin

    frozen, (w1, w2, b2), x = small
    hidden = _fp16(np.maximum(_fp16(_fp16(x) @ _fp16(w1)), 0))
    expected = _fp16(_fp16(hidden @ _fp16(w2)) + _fp16(b2))
    got = Twin(frozen, "fp16-compute")(x)
    assert np.array_equal(got, _fp16(got))   # every score is an fp16 number
    # fp32 sums in another order may land on the neighbouring fp16 value: two fp16 steps
    np.testing.assert_allclose(got, expected, rtol=2 * 2.0 ** -10, atol=1e-3)


def test_int8_dynamic_twin_rounds_large_weights_per_channel_and_their_inputs_per_image(small):
    from tfship.export.twin import DYNAMIC_MIN_ELEMENTS, Twin

    frozen, (w1, w2, b2), x = small
    assert w1.size >= DYNAMIC_MIN_ELEMENTS > w2.size
    hidden = np.maximum(_int8_per_row(x) @ _int8_weights(w1), 0)
    expected = hidden @ w2 + b2
    np.testing.assert_allclose(Twin(frozen, "int8-dynamic")(x), expected, rtol=1e-4, atol=1e-4)


def test_int8_twin_output_has_at_most_256_levels_over_the_calibration_range(small):
    from tfship.export.twin import Twin

    frozen, _, x = small
    calibration = np.random.default_rng(9).random((200, SIDE * SIDE), dtype=np.float32)
    reference = frozen(calibration)
    got = Twin(frozen, "int8", calibration)(x)
    assert len(np.unique(got)) <= 256
    step = (max(reference.max(), 0) - min(reference.min(), 0)) / 255
    assert np.abs(got - frozen(x)).max() < 40 * step       # rounded at three ops, not broken
    with pytest.raises(ValueError, match="calibration"):
        Twin(frozen, "int8")
    with pytest.raises(ValueError, match="no precision twin 'int4'"):
        Twin(frozen, "int4")


@pytest.fixture(scope="module")
def ill_conditioned(tmp_path_factory):
    """Scores = x W1 W2 with W1 W2 small but W2 large in W1's null space: rounding W1 or W2 breaks the
    cancellation, as rounding does in a deep random-weight network. TFLite only."""
    from tfship.export.pipeline import ExportConfig, export_all

    rng = np.random.default_rng(0)
    n = SIDE * SIDE
    w1 = np.abs(rng.standard_normal((n, 64)))    # x >= 0 and W1 >= 0: the relu passes x W1 unchanged
    inverse = np.linalg.pinv(w1)
    w2 = inverse @ rng.standard_normal((n, 10)) + (np.eye(64) - inverse @ w1) @ rng.standard_normal((64, 10)) * 20
    base = _save(tmp_path_factory.mktemp("ill") / "ill", w1.astype(np.float32), w2.astype(np.float32),
                 np.zeros(10, np.float32))
    return export_all(ExportConfig(model=base, formats=("tflite",)), progress=lambda *_: None)


def test_verify_widens_to_the_twin_and_refuses_a_precision_that_cannot_represent_the_model(ill_conditioned):
    from tfship.export import manifest
    from tfship.export.verify import VerifyConfig, verify

    report = verify(VerifyConfig(exports=ill_conditioned.out, samples=300, latency=False),
                    progress=lambda *_: None, source=ill_conditioned.source)
    by_path = {a["path"]: a for a in report["artifacts"]}
    assert by_path["model.tflite"]["passed"] and by_path["model.tflite"]["twin"] is None

    fp16 = by_path["model_fp16.tflite"]
    assert fp16["rel_diff"] > FP16_WEIGHTS.max_rel_diff, fp16      # the fixed bound alone would fail it
    assert fp16["passed"], fp16["failures"]
    assert fp16["twin"]["kind"] == "fp16-weights" and fp16["twin"]["top1_agreement"] >= REPRESENTABLE_TOP1
    assert fp16["tolerance"]["max_rel_diff"] == pytest.approx(TWIN_FACTOR * fp16["twin"]["rel_diff"])
    assert fp16["rel_diff"] <= fp16["tolerance"]["max_rel_diff"]

    int8 = by_path["model_int8.tflite"]
    assert not int8["passed"] and int8["twin"]["top1_agreement"] < REPRESENTABLE_TOP1
    assert int8["failures"][0].startswith("int8 cannot represent this model: this artifact keeps the top-1 class")
    assert "TensorFlow's own int8 rounding of it keeps" in int8["failures"][0]
    entry = next(a for a in manifest.read(ill_conditioned.out)["artifacts"] if a["path"] == "model_int8.tflite")
    assert entry["status"] == "failed_verification" and "cannot represent" in entry["reason"]
    assert "within 2x what this model's fp16-weights twin loses" in (ill_conditioned.out / "parity.md").read_text()


def test_a_twin_that_cannot_run_leaves_the_fixed_bounds_and_says_why(ill_conditioned, monkeypatch, tmp_path):
    """Fault injection: a graph the twin cannot rewrite must not crash verify or pass the artifact."""
    import shutil

    from tfship.export import twin
    from tfship.export.verify import VerifyConfig, verify

    def cannot(*_args, **_kwargs):
        raise RuntimeError("an op the rewrite does not know")

    monkeypatch.setattr(twin.Twin, "__init__", cannot)
    exports = tmp_path / "exports"
    shutil.copytree(ill_conditioned.out, exports)
    report = verify(VerifyConfig(exports=exports, samples=300, latency=False, only=("model_fp16.tflite",)),
                    progress=lambda *_: None, source=ill_conditioned.source)
    (fp16,) = report["artifacts"]
    assert not fp16["passed"] and fp16["twin"] is None
    assert fp16["failures"][0].startswith("max |diff|")
    assert fp16["failures"][-1] == ("the fixed bounds stand: the fp16-weights twin that measures this precision's "
                                    "cost on the model could not run (RuntimeError: an op the rewrite does not know)")
