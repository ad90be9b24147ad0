"""How close each artifact must be to the SavedModel, per format and precision. Data, not code.

Two measures, both meaning the same for 10 or 1,000 classes, for probabilities or logits:

- **relative difference** = max |artifact - reference| / scale, where scale is the range the
  reference's scores span over the verification inputs (max - min over all inputs and classes). An
  absolute bound on probabilities says little for a 100-class model whose probabilities are ~0.01 each
  (issue #11): its range is ~0.01, so the same absolute 1e-5 is 100x looser relative to what
  distinguishes the classes. For logits the scale is the logit range, so a model without a softmax is
  judged on the same footing. (A per-input median spread was tried first: on MobileNetV3Small, whose
  random-weight outputs are near-uniform for most inputs and peaked for a few, it put the largest
  differences, which sit on the peaked inputs, over the near-uniform inputs' spread: fp32 came out at
  4.6e-3 "relative" for an absolute 3.9e-4.)
- **top-1 agreement on decided inputs**: an input counts only if the reference's top two scores differ
  by more than ``TIE_FRACTION`` (1%) of the scale. Random-weight models have near-uniform outputs where
  many inputs are near-ties that any rounding may swap; counting them failed faithful int8 models (67%
  agreement on DenseNet121 in issue #11) while catching nothing. The margin is a fixed fraction of the
  scale, not tied to ``max_rel_diff``: an artifact within ``max_rel_diff`` cannot swap inputs whose gap
  exceeds twice it, so such a margin would make the agreement check say nothing the difference bound
  has not; with 1% it checks the typical input while the difference bound checks the worst one. The
  number of decided inputs is reported; with none, agreement is not judged.
  ``min_top1_agreement`` is a rate: verify fails an artifact when its flips are too many for that rate
  at 99% confidence (``too_many_flips``: the binomial chance of seeing that many or more is below 1%).
  On 300 inputs a bound of 99.9% taken literally allows no flip at all, and one near-tie flip of 285
  failed DenseNet121's fp16 TFLite copy; on MNIST's 10,000 images the test is as strict as the rate.

**The model's own precision twin.** A fixed bound cannot fit both a trained network and a deep
random-weight one: fp16 rounding of every weight moves a random-weight EfficientNetB0's scores by 0.14
of their range (top-1 still agrees on every decided input), the MNIST CNN's by 4e-4. So the fixed bounds
are kept where trained models need them, and when an fp16 or int8 artifact misses one, verify asks
TensorFlow what that precision costs on *this* model: ``twin.py`` runs the reference with the
precision's rounding (its ``twin`` kind), and the artifact is allowed ``TWIN_FACTOR`` times the twin's
relative difference and ``TWIN_FACTOR`` times its top-1 disagreement rate (never less than the fixed
bounds). Measured on EfficientNetB0 (32 px, random weights, 300 noise inputs): fp16 TFLite 0.144 vs its
twin 0.178; fp16 ML Program 0.161 vs 0.167; the artifacts lose a little less than their twins (a twin
rounds at every op, a converter fuses some). Beyond the fixed bounds an artifact must still keep the
top-1 class of ``REPRESENTABLE_TOP1`` of the decided inputs: a copy that ranks differently more often
does not compute the same function, however faithfully it rounds. When the twin falls below that too,
the precision cannot represent the model (EfficientNetB0's int8 twin keeps 24%), and the reason says so.

Numbers measured with ``benchmarks/zoo.py`` (docs/EXPORT.md has the table) and the MNIST CNN
(docs/VERIFY.md); each bound sits a few times above the worst faithful artifact measured, and below
what a perturbed artifact gives (the registry's ``perturb`` hooks: 5% on the largest weight tensor).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# A range below this is treated as this (an all-constant reference would otherwise divide by zero).
MIN_SCALE = 1e-12
# Reference top-1 leads closer than this fraction of the scale are near-ties, left out of top-1 agreement.
TIE_FRACTION = 0.01


@dataclass(frozen=True)
class Tolerance:
    max_rel_diff: float               # max |diff| / reference scale (range of the reference's scores)
    min_top1_agreement: float         # fraction of decided inputs whose top-1 equals the reference's
    max_accuracy_drop: float | None   # fraction (0.003 = 0.3 points) below the SavedModel's accuracy
    why: str
    twin: str | None = None           # twin.py kind that measures this precision's cost on the model itself


FP32 = Tolerance(
    max_rel_diff=1e-3, min_top1_agreement=0.9999, max_accuracy_drop=0.0005,
    why="same fp32 math in another kernel order: measured 2e-6 relative (MNIST CNN), 3e-7 (TF1 and tf.Module "
        "models) and up to 1e-4 on deep random-weight zoo models (MobileNetV2: random weights amplify rounding "
        "layer after layer); 1e-3 leaves room for other CPUs' SIMD paths while a 2% weight change fails")
FP16_WEIGHTS = Tolerance(
    max_rel_diff=3e-2, min_top1_agreement=0.999, max_accuracy_drop=0.001,
    why="fp16-rounded weights, fp32 compute (relative step 4.9e-4 per weight): measured 4e-4 (MNIST CNN), "
        "1e-4 to 1e-3 (TF1, tf.Module); a deep random-weight MobileNetV2 reaches 0.2 and fails: its rounding "
        "errors grow layer after layer, which trained weights do not do (docs/EXPORT.md)",
    twin="fp16-weights")
FP16_COMPUTE = Tolerance(
    max_rel_diff=5e-2, min_top1_agreement=0.999, max_accuracy_drop=0.001,
    why="fp16 weights and fp16 activations end to end (ML Program default; the reference evaluator rounds "
        "after every op): measured 1.5e-3 (MNIST CNN), 4e-4 to 2e-3 (TF1, tf.Module)",
    twin="fp16-compute")
INT8_DYNAMIC = Tolerance(
    max_rel_diff=0.25, min_top1_agreement=0.98, max_accuracy_drop=0.003,
    why="int8 weights, activations quantized per batch: measured 1.5e-2 (MNIST CNN) and 2.8e-2 (TF1 model); "
        "0.25 of the score range still fails a model whose scores are off by a quarter of their range; "
        "agreement 98% on decided inputs: measured 100% (MNIST), 99.3% (TF1 model on noise)",
    twin="int8-dynamic")
INT8 = Tolerance(
    max_rel_diff=0.5, min_top1_agreement=0.98, max_accuracy_drop=0.003,
    why="full-integer with an int8 output (steps of 1/256 of the output range), calibrated on noise unless "
        "--calibration-data: measured 4.3e-2 (MNIST CNN), 4.2e-2 (TF1 model). Agreement on decided inputs: "
        "measured 99.98% (MNIST, calibrated on training images) but 99.0-99.3% for small models calibrated on "
        "noise (tests/zoo), hence 98%; the accuracy bound (0.3 points, issue #3) still judges real data",
    twin="int8")

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("tflite", "fp32"): FP32,
    ("tflite", "fp16"): FP16_WEIGHTS,
    ("tflite", "int8-dynamic"): INT8_DYNAMIC,
    ("tflite", "int8"): INT8,
    ("onnx", "fp32"): FP32,
    ("coreml", "fp32"): FP32,
    ("coreml", "fp16"): FP16_COMPUTE,
}


def tolerance_for(fmt: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(fmt, precision)]
    except KeyError:
        raise KeyError(f"no tolerance for format '{fmt}' at precision '{precision}'; add one to "
                       f"tfship/export/tolerances.py") from None


def reference_scale(reference: np.ndarray) -> float:
    """The range the reference's scores span over these inputs (max - min over all inputs and classes)."""
    if reference.size == 0:
        return 1.0
    return max(float(reference.max()) - float(reference.min()), MIN_SCALE)


# An artifact may lose this many times what its precision twin loses: measured artifacts lose 0.8-1.0x their
# twin (EfficientNetB0 fp16: 0.144 vs 0.178 TFLite, 0.161 vs 0.167 ML Program); 2x leaves room for kernels
# that round in another order, while a 5% weight error or a wrong layout is not a rounding of the model.
TWIN_FACTOR = 2.0
# The least top-1 agreement (decided inputs) an artifact may keep when judged against its twin: 90% is far
# below what faithful copies of trained models keep (99% and more, docs/VERIFY.md) and far above chance;
# a copy that changes one decided answer in ten is not one to ship, whatever the precision.
REPRESENTABLE_TOP1 = 0.9


def widened(tol: Tolerance, twin_rel_diff: float, twin_agreement: float,
            twin_accuracy_drop: float | None) -> Tolerance:
    """``tol`` with each bound at least ``TWIN_FACTOR`` times what the precision twin loses."""
    drop = tol.max_accuracy_drop
    if drop is not None and twin_accuracy_drop is not None:
        drop = max(drop, TWIN_FACTOR * twin_accuracy_drop)
    return replace(tol, max_rel_diff=max(tol.max_rel_diff, TWIN_FACTOR * twin_rel_diff),
                   min_top1_agreement=max(0.0, min(tol.min_top1_agreement,
                                                   1.0 - TWIN_FACTOR * (1.0 - twin_agreement))),
                   max_accuracy_drop=drop)


# Agreement fails when P(flips >= observed | rate allowed) is below this.
FLIP_CONFIDENCE = 0.01


def too_many_flips(flips: int, n: int, min_agreement: float) -> bool:
    """True when ``flips`` of ``n`` is significantly (1%) more than a disagreement rate of 1 - min_agreement."""
    if flips == 0 or n == 0:
        return False
    p = 1.0 - min_agreement
    if p <= 0:
        return True
    if p >= 1:
        return False   # any agreement is allowed (a widened bound can reach this)
    term, below = (1 - p) ** n, 0.0   # P(X = 0), then P(X = i) for i < flips
    for i in range(flips):
        below += term
        term *= (n - i) / (i + 1) * p / (1 - p)
    return 1.0 - below < FLIP_CONFIDENCE


def decided(reference: np.ndarray, margin: float) -> np.ndarray:
    """Inputs whose reference top-1 leads the runner-up by more than ``margin`` (not near-ties)."""
    if reference.shape[1] < 2:
        return np.ones(len(reference), dtype=bool)
    top2 = np.sort(reference, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > margin
