"""A real architecture through coremltools and the evaluator (the CI-sized part of
benchmarks/coreml_zoo.py, whose full table is in docs/COREML.md): keras.applications MobileNetV2
(random weights, calibrated batch-norm statistics, 32x32, 10 classes) converted to NeuralNetwork
fp32 and ML Program fp16 from its frozen function, evaluated by ``coremleval`` and compared with
TensorFlow on logits within ``zoo.TOLERANCES``. It uses ZeroPadding2D (NeuralNetwork ``padding``),
depthwise convolutions, ReLU6 and global pooling, which the MNIST models never produce."""

from __future__ import annotations

import pytest

pytest.importorskip("coremltools")

from tfship.export.coremleval import zoo  # noqa: E402


@pytest.fixture(scope="module")
def mobilenet_rows(tmp_path_factory) -> dict[str, zoo.ZooResult]:
    rows = zoo.run("MobileNetV2", ("neuralnetwork", "mlprogram"), tmp_path_factory.mktemp("zoo"), samples=2)
    return {r.backend: r for r in rows}


@pytest.mark.parametrize("backend", ["neuralnetwork", "mlprogram"])
def test_mobilenetv2_matches_tensorflow(mobilenet_rows, backend):
    r = mobilenet_rows[backend]
    assert r.verdict == "pass", f"{r.verdict}: max |diff| {r.max_abs} ({r.rel} of max |logit|) {r.detail}"
    assert r.top1 == 1.0


def test_calibrated_logits_are_not_degenerate(mobilenet_rows):
    # Without calibrated batch-norm statistics MobileNetV2's logits were ~1e-11: fp16 flushed them to
    # zero and any comparison was meaningless.
    scale = float(mobilenet_rows["neuralnetwork"].detail.split()[-1])
    assert scale > 0.1
