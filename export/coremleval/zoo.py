"""Real architectures through coremltools and the evaluator: keras.applications image classifiers
(random weights, small inputs, 10 classes), frozen, converted to NeuralNetwork (fp32) and ML Program
(fp16), evaluated with ``coremleval`` and compared with TensorFlow. Used by benchmarks/coreml_zoo.py
and by tests/coreml/test_coreml_zoo.py (a CI-sized subset).

The comparison is on logits (``classifier_activation=None``): random-weight softmax outputs are
nearly uniform, so a tolerance on them says little. Tolerances are relative to the reference's
scale (max |logit|), so they mean the same for 10 or 1,000 classes (``TOLERANCES``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ZooModel:
    name: str          # keras.applications attribute
    size: int          # input height = width
    kwargs: tuple[tuple[str, Any], ...] = ()


ZOO: dict[str, ZooModel] = {m.name: m for m in (
    ZooModel("MobileNetV2", 32, (("alpha", 0.35),)),
    ZooModel("MobileNetV3Small", 32, (("minimalistic", False),)),
    ZooModel("EfficientNetB0", 32),
    ZooModel("DenseNet121", 32),
    ZooModel("ConvNeXtTiny", 32),
    ZooModel("ResNet50", 32),
    ZooModel("Xception", 71),        # its minimum input size
    ZooModel("InceptionV3", 75),     # its minimum input size
    ZooModel("NASNetMobile", 32),
    ZooModel("ResNet50V2", 32),
    ZooModel("EfficientNetV2B0", 32),
)}


@dataclass(frozen=True)
class Tolerance:
    """max |coreml - tf| / max |tf| must stay within
    max(floor, factor * sensitivity * ulp_ratio [* sqrt(layers)]), where *sensitivity* is how far
    TensorFlow's own logits move (relative to max |tf|) when the input gets 1-ulp fp32 noise.

    Why: random-weight deep nets are ill-conditioned. Measured here, 1-ulp input noise moves TF's
    logits by 1.5e-5 (MobileNetV2), 5e-5 (MobileNetV3Small), 1.6e-5 (DenseNet121) and 5e-4
    (EfficientNetB0) of their scale, so no fixed number fits every model: the same arithmetic done
    in another order (the evaluator vs oneDNN) differs by that much per rounding step.
    """

    floor: float          # coremltools' own number for a single op
    ulp_ratio: float      # this precision's rounding step / fp32's
    per_layer: bool       # each layer rounds again: scale by sqrt(number of layers)
    factor: float
    reason: str


TOLERANCES = {
    "neuralnetwork": Tolerance(1e-4, 1.0, True, 1.0,
                               "fp32. floor: coremltools' TF tests' atol 1e-4 (run_compare_tf*, unit-scale "
                               "outputs). Every layer rounds once in its own summation order, independent "
                               "errors adding as sqrt(layers) times one rounding's effect"),
    "mlprogram": Tolerance(5e-2, 2.0 ** 13, False, 2.0,
                           "fp16. floor: coremltools' compare_backend widens rtol to max(100*rtol, 5e-2) "
                           "for fp16. The program casts the input to fp16, a perturbation 2^13 times an "
                           "fp32 ulp: measured fp16 errors track 1x that (MobileNetV3Small 0.405 vs 0.41 "
                           "predicted); factor 2 leaves room for the layers' own fp16 roundings"),
    "mlprogram_fp32": Tolerance(1e-4, 1.0, True, 1.0, "as neuralnetwork"),
}


def allowed(backend: str, sensitivity: float, layers: int) -> float:
    t = TOLERANCES[backend]
    return max(t.floor, t.factor * sensitivity * t.ulp_ratio * (np.sqrt(layers) if t.per_layer else 1.0))


def sensitivity(frozen: Any, images: np.ndarray, ref: np.ndarray, seed: int, trials: int = 3) -> float:
    """Largest relative move of TF's logits under 1-ulp (2^-24 relative) fp32 noise on the input."""
    import tensorflow as tf

    rng = np.random.default_rng(seed + 2)
    scale = float(np.max(np.abs(ref))) or 1.0
    worst = 0.0
    for _ in range(trials):
        noisy = (images * (1 + 2.0 ** -24 * rng.standard_normal(images.shape))).astype(np.float32)
        moved = np.concatenate([_first(frozen(tf.constant(x))) for x in noisy])
        worst = max(worst, float(np.max(np.abs(moved - ref))) / scale)
    return worst


BACKENDS = {"neuralnetwork": "fp32", "mlprogram": "fp16", "mlprogram_fp32": "fp32"}


@dataclass(frozen=True)
class ZooResult:
    model: str
    backend: str
    verdict: str           # pass / numeric-fail / unsupported-op / crash / not-convertible
    max_abs: float | None
    rel: float | None      # max_abs / max |tf|
    allowed: float | None  # the tolerance on rel (see Tolerance)
    sensitivity: float | None
    top1: float | None     # argmax agreement
    convert_s: float
    eval_s: float
    detail: str = ""


def build(spec: ZooModel, seed: int = 0) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    ctor = getattr(keras.applications, spec.name)
    model = ctor(weights=None, input_shape=(spec.size, spec.size, 3), classes=10,
                 classifier_activation=None, **dict(spec.kwargs))
    _calibrate_batch_norm(model, spec.size, seed)
    return model


def _calibrate_batch_norm(model: Any, size: int, seed: int) -> None:
    """Set every BatchNormalization's moving statistics to those of a batch of random images.

    With fresh moving statistics (mean 0, variance 1) a random-weight MobileNetV2 gave logits of
    ~1e-11: activations shrink layer after layer, fp16 flushes them to zero, and a comparison of
    such outputs proves nothing. With calibrated statistics every layer's output is ~unit scale.
    """
    import keras

    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    x = np.random.default_rng(seed + 1).uniform(0, 1, (8, size, size, 3)).astype(np.float32)
    model(x, training=True)
    for bn, m in zip(bns, momenta):
        bn.momentum = m


def frozen_function(model: Any, size: int) -> Any:
    """The model's forward pass as one concrete function with variables as constants, nested calls
    inlined: the form coremltools converts (a Keras 3 model or a nested call it cannot)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec((1, size, size, 3), tf.float32, name="image")])
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def convert(frozen: Any, backend: str, size: int, out_dir: Path) -> Path:
    import coremltools as ct

    kwargs: dict[str, Any] = {"convert_to": backend.split("_")[0]}
    if backend.startswith("mlprogram"):
        kwargs["compute_precision"] = ct.precision.FLOAT32 if backend.endswith("fp32") else ct.precision.FLOAT16
    model = ct.convert([frozen], source="tensorflow", inputs=[ct.TensorType(shape=(1, size, size, 3))],
                       **kwargs)
    path = out_dir / ("model.mlpackage" if backend.startswith("mlprogram") else "model.mlmodel")
    model.save(str(path))
    return path


def run(name: str, backends: tuple[str, ...], out_dir: Path, samples: int = 2, seed: int = 0) -> list[ZooResult]:
    """Build, convert and compare one zoo model over ``backends``; each backend's failure is its own row."""
    from tfship.export import coremleval

    spec = ZOO[name]
    model = build(spec, seed)
    frozen = frozen_function(model, spec.size)
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (samples, 1, spec.size, spec.size, 3)).astype(np.float32)
    import tensorflow as tf

    ref = np.concatenate([_first(frozen(tf.constant(x))) for x in images])
    sens = sensitivity(frozen, images, ref, seed)
    layers = len(model.layers)
    results = []
    for backend in backends:
        t0 = time.perf_counter()
        sub = out_dir / f"{name}_{backend}"
        sub.mkdir(parents=True, exist_ok=True)
        try:
            path = convert(frozen, backend, spec.size, sub)
        except Exception as e:  # noqa: BLE001 - coremltools raises many types; the row records it
            results.append(ZooResult(name, backend, "not-convertible", None, None, None, sens, None,
                                     time.perf_counter() - t0, 0.0, f"{type(e).__name__}: {e}"[:300]))
            continue
        t1 = time.perf_counter()
        try:
            ev = coremleval.load(path)
            out = ev.predict({ev.input_names[0]: images})
            got = np.asarray(out[ev.output_names[0]], np.float64).reshape(ref.shape)
        except coremleval.UnsupportedCoremlOpError as e:
            results.append(ZooResult(name, backend, "unsupported-op", None, None, None, sens, None, t1 - t0,
                                     time.perf_counter() - t1, e.op_type))
            continue
        except Exception as e:  # noqa: BLE001 - an evaluator crash is a result to record, not to hide
            results.append(ZooResult(name, backend, "crash", None, None, None, sens, None, t1 - t0,
                                     time.perf_counter() - t1, f"{type(e).__name__}: {e}"[:300]))
            continue
        results.append(_verdict(name, backend, ref, got, allowed(backend, sens, layers), sens, t1 - t0,
                                time.perf_counter() - t1))
    return results


def _first(out: Any) -> np.ndarray:
    """A frozen function's single output as NumPy (it returns a tensor or a one-element list)."""
    return (out[0] if isinstance(out, (list, tuple)) else out).numpy()


def _verdict(name: str, backend: str, ref: np.ndarray, got: np.ndarray, tol: float, sens: float,
             convert_s: float, eval_s: float) -> ZooResult:
    diff = float(np.max(np.abs(got - ref)))
    scale = float(np.max(np.abs(ref))) or 1.0
    rel = diff / scale
    top1 = float(np.mean(np.argmax(got, axis=-1) == np.argmax(ref, axis=-1)))
    ok = bool(np.all(np.isfinite(got))) and rel <= tol
    return ZooResult(name, backend, "pass" if ok else "numeric-fail", diff, rel, tol, sens, top1, convert_s,
                     eval_s, f"max |tf| {scale:.3g}")
