"""How close each artifact must be to the SavedModel, per format and precision. Data, not code.

Measured on the exported CNN over the 10,000 MNIST test images (docs/VERIFY.md has the numbers);
each bound sits a few times above what was measured, so a real defect (a perturbed weight, swapped
outputs, a wrong quantization scale) fails while run-to-run noise passes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    max_abs_diff: float | None        # on softmax scores; None: not meaningful for this precision
    min_top1_agreement: float         # fraction of images whose top-1 class equals the SavedModel's
    max_accuracy_drop: float | None   # fraction (0.003 = 0.3 points) below the SavedModel's accuracy
    why: str


FP32 = Tolerance(
    max_abs_diff=1e-5, min_top1_agreement=0.9999, max_accuracy_drop=0.0005,
    why="same fp32 math in another kernel order: measured <= 2e-6 (TFLite), <= 4e-7 (ONNX); 1e-5 leaves "
        "room for other CPUs' SIMD paths while a 1% weight change (~1e-3) fails; one near-tie flip allowed")
TFLITE_FP16 = Tolerance(
    max_abs_diff=2e-3, min_top1_agreement=0.999, max_accuracy_drop=0.001,
    why="fp16-rounded weights, fp32 compute: measured ~2e-4 max |diff|; 10x margin, <= 10 flips in 10k")
COREML_FP16 = Tolerance(
    max_abs_diff=5e-3, min_top1_agreement=0.999, max_accuracy_drop=0.001,
    why="fp16 weights and fp16 activations end to end (ML Program default, reference evaluator rounds "
        "after every op): measured 1.3e-3 to 1.5e-3 max |diff|; ~3x margin")
INT8_DYNAMIC = Tolerance(
    max_abs_diff=5e-2, min_top1_agreement=0.995, max_accuracy_drop=0.003,
    why="int8 weights, activations quantized per batch: measured ~5e-3 max |diff| and 99.95% agreement")
INT8 = Tolerance(
    max_abs_diff=1e-1, min_top1_agreement=0.995, max_accuracy_drop=0.003,
    why="full-integer with an int8 softmax output (step 1/256 = 3.9e-3): measured ~2.5e-2 max |diff|; "
        "the bounds are the issue's (99.5% agreement, <= 0.3 points accuracy lost)")

TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("tflite", "fp32"): FP32,
    ("tflite", "fp16"): TFLITE_FP16,
    ("tflite", "int8-dynamic"): INT8_DYNAMIC,
    ("tflite", "int8"): INT8,
    ("onnx", "fp32"): FP32,
    ("coreml", "fp32"): FP32,
    ("coreml", "fp16"): COREML_FP16,
}


def tolerance_for(fmt: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(fmt, precision)]
    except KeyError:
        raise KeyError(f"no tolerance for format '{fmt}' at precision '{precision}'; add one to "
                       f"tfship/export/tolerances.py") from None
