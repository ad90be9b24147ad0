"""The exported CNN, run by CoremlRunner (the NumPy evaluator here), agrees with TensorFlow; a
perturbed weight in either CoreML kind is caught."""

from __future__ import annotations

import numpy as np
import pytest
from coreml_helpers import contract_source

from tfship.export import coremleval
from tfship.export.runners.coreml import CoremlRunner, native_predict_available

# fp32 CoreML (.mlmodel and fp32 .mlpackage): the same fp32 math in another summation order;
# measured 4e-7 max |diff| on 512 test images (7e-7 over all 10,000).
FP32_TOL = 1e-5
# fp16 ML Program: weights and activations rounded to fp16 (11 significant bits, relative step ~1e-3)
# after every op; measured 1.0e-3 on 512 images and 1.3e-3 over all 10,000 for a 1-epoch CNN.
# 5e-3 leaves ~4x margin; a doubled weight moves the scores by > 0.05.
FP16_TOL = 5e-3
# fp16 may flip a near-tie; measured 100% agreement on 10,000 images.
FP16_MIN_TOP1 = 0.998


def _scores(path, source, x) -> np.ndarray:
    return CoremlRunner(path, source).run({source.input.name: x})[source.output.name]


def test_mlmodel_matches_tensorflow(coreml_exports, cnn_source, mnist_images, tf_scores):
    out, _ = coreml_exports
    diff = np.abs(_scores(out / "MNISTClassifier.mlmodel", cnn_source, mnist_images) - tf_scores)
    assert diff.max() <= FP32_TOL, f"max |diff| {diff.max():.3g} at image {diff.max(axis=1).argmax()}"


def test_fp32_mlpackage_matches_tensorflow(coreml_fp32_exports, cnn_source, mnist_images, tf_scores):
    out, arts = coreml_fp32_exports
    assert {a.path: a.precision for a in arts}["MNISTClassifier.mlpackage"] == "fp32"
    diff = np.abs(_scores(out / "MNISTClassifier.mlpackage", cnn_source, mnist_images) - tf_scores)
    assert diff.max() <= FP32_TOL, f"max |diff| {diff.max():.3g} at image {diff.max(axis=1).argmax()}"


def test_fp16_mlpackage_within_fp16_tolerance(coreml_exports, cnn_source, mnist_images, tf_scores):
    out, _ = coreml_exports
    got = _scores(out / "MNISTClassifier.mlpackage", cnn_source, mnist_images)
    diff = np.abs(got - tf_scores)
    assert diff.max() <= FP16_TOL, f"max |diff| {diff.max():.3g} at image {diff.max(axis=1).argmax()}"
    assert (got.argmax(1) == tf_scores.argmax(1)).mean() >= FP16_MIN_TOP1
    # The fp16 emulation is real: an fp32 evaluation of the same program would sit near 1e-7.
    assert diff.max() > FP32_TOL


@pytest.mark.parametrize("artifact,tolerance", [("MNISTClassifier.mlmodel", FP32_TOL),
                                                ("MNISTClassifier.mlpackage", FP16_TOL)])
def test_perturbed_weight_is_detected(coreml_exports, cnn_source, mnist_images, tf_scores, tmp_path,
                                      artifact, tolerance):
    out, _ = coreml_exports
    changed = coremleval.perturb_weight(out / artifact, tmp_path / artifact)
    assert changed.new != changed.old
    diff = np.abs(_scores(tmp_path / artifact, cnn_source, mnist_images) - tf_scores)
    assert diff.max() > 10 * tolerance, f"perturbing {changed.tensor}[{changed.index}] moved scores only {diff.max():.3g}"
    # The original is untouched.
    assert np.abs(_scores(out / artifact, cnn_source, mnist_images[:16]) - tf_scores[:16]).max() <= tolerance


def test_runner_orders_probabilities_as_source_labels(coreml_exports, cnn_source, mnist_images):
    """A SavedModel whose labels come in another order gets its columns in that order."""
    out, _ = coreml_exports
    path = out / "MNISTClassifier.mlmodel"
    reordered = contract_source(cnn_source.model, labels=tuple(reversed(cnn_source.labels)))
    plain = _scores(path, cnn_source, mnist_images[:8])
    np.testing.assert_array_equal(_scores(path, reordered, mnist_images[:8]), plain[:, ::-1])


def test_runner_reports_the_evaluator_label(coreml_exports, mnist_images):
    out, _ = coreml_exports
    ev = coremleval.load(out / "MNISTClassifier.mlpackage")
    result = ev.predict({"image": mnist_images[:8].reshape(-1, 28, 28) * 255})
    assert list(result["classLabel"]) == [str(i) for i in result["classLabelProbs"].argmax(axis=1)]


@pytest.mark.skipif(not native_predict_available(),
                    reason="CoreML's own predict needs macOS with coremltools' libcoremlpython (the Linux "
                           "wheel lacks it); here the NumPy evaluator's agreement with TensorFlow is tested instead")
@pytest.mark.parametrize("artifact,tolerance", [("MNISTClassifier.mlmodel", FP32_TOL),
                                                ("MNISTClassifier.mlpackage", FP16_TOL)])
def test_native_predict_agrees_with_evaluator(coreml_exports, cnn_source, mnist_images, artifact, tolerance):
    out, _ = coreml_exports
    x = mnist_images[:64]
    native = CoremlRunner(out / artifact, cnn_source, native=True).run({cnn_source.input.name: x})
    numpy_ = CoremlRunner(out / artifact, cnn_source, native=False).run({cnn_source.input.name: x})
    # Core ML may run the fp32 model on the GPU/ANE in fp16: allow fp16's tolerance for both kinds.
    assert np.abs(native[cnn_source.output.name] - numpy_[cnn_source.output.name]).max() <= max(tolerance, FP16_TOL)
