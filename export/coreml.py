"""CoreML export: an image classifier as ``<name>.mlmodel`` (NeuralNetwork, iOS 13+, fp32) and
``<name>.mlpackage`` (ML Program, iOS 15+, fp16 by default).

Both take one image input, ``image`` (H x W, grayscale for 1 channel, RGB for 3; pixel values 0..255
scaled by 1/255 inside the model), and are classifiers whose outputs are ``classLabel`` (String) and
``classLabelProbs`` (String -> Double). Xcode names the generated Swift class after the file: the
file stem is ``--coreml-name``, else made from the model folder (``class_name_for``: ``runs/mobilenet_v2``
-> ``MobilenetV2``), e.g. ``MobilenetV2Input(image:)``, ``.classLabel``, ``.classLabelProbs``.

coremltools cannot take a Keras 3 model or a multi-signature SavedModel (docs/COREML.md), so the
exporter imports the source's frozen predict graph (``SourceModel.frozen``: no variables, no nested
calls) behind an NHWC image input and converts that concrete function.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tfship.errors import UsageError, require
from tfship.export.base import Artifact, ExportOptions, Exporter, SourceModel, TensorInfo, Variant
from tfship.export.errors import ExportError

# The feature names the iOS app and its tests rely on.
IMAGE_INPUT = "image"
CLASS_LABEL = "classLabel"
CLASS_PROBS = "classLabelProbs"

NEURALNETWORK_EXT = ".mlmodel"
MLPROGRAM_EXT = ".mlpackage"
PRECISIONS = ("fp16", "fp32")
NEURALNETWORK_TARGET = "iOS13"   # spec v4: the oldest target with the N-D layers the converter emits
MLPROGRAM_TARGET = "iOS15"       # spec v6: the first ML Program target
_SWIFT_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Capitalized names Swift reserves (a class may not take them).
_SWIFT_RESERVED = frozenset({"Self", "Type", "Any", "Protocol"})
# The class the iOS demo app expects (ios_demo/, export/ios_install.py): what a direct CoremlExporter
# call without a name writes. export-all always resolves a name first (class_name_for).
DEFAULT_CLASS_NAME = "MNISTClassifier"


def class_name_for(folder_name: str) -> str:
    """A Swift class name from a model folder's name: ``mobilenet_v2`` -> ``MobilenetV2``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", folder_name) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    if name[0].isdigit():
        name = "Model" + name
    return name + "Model" if name in _SWIFT_RESERVED else name


def check_options(options: ExportOptions) -> None:
    """Every argument checked before TensorFlow or coremltools is imported."""
    if options.coreml_precision not in PRECISIONS:
        raise UsageError(f"CoreML precision '{options.coreml_precision}' is not one of {', '.join(PRECISIONS)}")
    name = options.coreml_name
    if name is not None and (not _SWIFT_IDENTIFIER.match(name) or name in _SWIFT_RESERVED):
        raise UsageError(f"--coreml-name '{name}' must be a Swift identifier (letters, digits, "
                         "'_', not starting with a digit): Xcode names the generated class after the file")


def check(source: SourceModel, options: ExportOptions) -> None:
    """Can this source be a CoreML image classifier? (After the signature is read, before converting.)"""
    check_options(options)
    img = source.image
    if img.channels not in (1, 3):
        raise UsageError(f"CoreML image inputs are grayscale (1 channel) or RGB (3 channels); the signature "
                         f"'{source.signature_key}' of '{source.path}' has {img.channels} channels")
    shape = source.input.shape[1:]
    pixels = img.height * img.width * img.channels
    known = [d for d in shape if d is not None]
    if len(known) != len(shape) or int(_prod(known)) != pixels:
        raise UsageError(f"input '{source.input.name}' {source.input.shape} of '{source.path}' does not hold "
                         f"one {img.height}x{img.width}x{img.channels} image per row")
    k = source.output.shape[-1]
    if k is not None and k != len(source.labels):
        raise UsageError(f"output '{source.output.name}' has {k} classes but {len(source.labels)} labels were found")


def _prod(xs: list[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _image_function(tf: Any, source: SourceModel) -> Any:
    """The frozen predict graph behind an NHWC float image input (1, H, W, C), reshaped to the signature's."""
    img = source.image
    model_shape = [-1] + [int(d) for d in source.input.shape[1:]]
    spec = tf.TensorSpec([1, img.height, img.width, img.channels], tf.float32, name=IMAGE_INPUT)
    frozen = source.frozen()
    return frozen.wrap(spec, adapt=lambda image: tf.reshape(image, model_shape), graph_def=frozen.without_erfc())


def _convert(ct: Any, fn: Any, source: SourceModel, kind: str, precision: str) -> Any:
    img = source.image
    color = ct.colorlayout.GRAYSCALE if img.channels == 1 else ct.colorlayout.RGB
    # The NeuralNetwork backend wants a scalar bias for grayscale and a 3-list for RGB (a scalar fails
    # with "cannot unpack non-iterable float"); scale alone maps 0..255 to [0, 1].
    bias: float | list[float] = 0.0 if img.channels == 1 else [0.0, 0.0, 0.0]
    image = ct.ImageType(name=IMAGE_INPUT, shape=(1, img.height, img.width, img.channels),
                         scale=1 / 255.0, bias=bias, color_layout=color)
    kwargs: dict[str, Any] = {}
    if kind == "mlprogram":
        kwargs["compute_precision"] = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
        kwargs["minimum_deployment_target"] = getattr(ct.target, MLPROGRAM_TARGET)
    else:
        kwargs["minimum_deployment_target"] = getattr(ct.target, NEURALNETWORK_TARGET)
    try:
        return ct.convert([fn], source="tensorflow", convert_to=kind, inputs=[image],
                          classifier_config=ct.ClassifierConfig(list(source.labels),
                                                                predicted_feature_name=CLASS_LABEL),
                          **kwargs)
    except Exception as e:  # coremltools raises bare ValueError/NotImplementedError/RuntimeError
        ext = MLPROGRAM_EXT if kind == "mlprogram" else NEURALNETWORK_EXT
        raise ExportError(
            f"CoreML ({kind}, {ext})",
            f"coremltools could not convert signature '{source.signature_key}' of '{source.path}': "
            f"{type(e).__name__}: {_first_line(e)}",
            "check the model uses only ops coremltools supports, run with --debug for the converter's "
            "traceback, or leave CoreML out with --formats tflite,onnx") from e


def _first_line(e: Exception, limit: int = 300) -> str:
    """coremltools puts whole TF NodeDefs in its messages; the CLI prints one line (--debug has it all)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _rename_outputs(ct: Any, model: Any, kind: str) -> Any:
    """The classifier's probability output is named after the TF tensor ('Identity'); give it the contract name."""
    spec = model.get_spec()
    desc = spec.description
    if desc.predictedProbabilitiesName != CLASS_PROBS:
        ct.utils.rename_feature(spec, desc.predictedProbabilitiesName, CLASS_PROBS)
    if desc.predictedFeatureName != CLASS_LABEL:
        ct.utils.rename_feature(spec, desc.predictedFeatureName, CLASS_LABEL)
    weights_dir = model.weights_dir if kind == "mlprogram" else None
    return ct.models.MLModel(spec, weights_dir=weights_dir, skip_model_load=True)


def _describe(model: Any, source: SourceModel, options: ExportOptions, precision: str, versions: dict[str, str]) -> None:
    img = source.image
    color = "grayscale" if img.channels == 1 else "RGB"
    shown = ", ".join(source.labels[:10]) + (", ..." if len(source.labels) > 10 else "")
    model.author = options.author
    model.license = options.license
    # An empty --version string falls back to the SavedModel version, so Xcode always shows one.
    model.version = options.version_string or str(source.model.version)
    model.short_description = (
        f"Classifies a {img.height}x{img.width} {color} image into {len(source.labels)} classes ({shown}). "
        f"Exported by tfship from SavedModel '{source.path}' (version {source.model.version}, "
        f"signature '{source.signature_key}').")
    model.input_description[IMAGE_INPUT] = (
        f"{img.height}x{img.width} {color} image; pixel values 0..255 are scaled to [0, 1] inside the model")
    model.output_description[CLASS_LABEL] = "The most likely label"
    model.output_description[CLASS_PROBS] = "The probability of each label"
    meta = {
        "tfship.source_path": str(source.path),
        "tfship.source_version": str(source.model.version),
        "tfship.source_fingerprint": source.fingerprint,
        "tfship.signature": source.signature_key,
        "tfship.labels": json.dumps(list(source.labels)),
        "tfship.labels_from_asset": str(source.labels_from_asset).lower(),
        "tfship.compute_precision": precision,
        "tfship.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **{f"{k}.version": v for k, v in versions.items()},
    }
    for k, v in meta.items():
        model.user_defined_metadata[k] = v


def _feature_details(spec: Any) -> dict[str, Any]:
    def one(f: Any) -> dict[str, Any]:
        kind = f.type.WhichOneof("Type")
        out: dict[str, Any] = {"name": f.name, "type": kind, "description": f.shortDescription}
        if kind == "imageType":
            out.update(width=f.type.imageType.width, height=f.type.imageType.height,
                       color_space={10: "GRAYSCALE", 20: "RGB", 30: "BGR"}.get(f.type.imageType.colorSpace))
        return out
    return {"inputs": [one(f) for f in spec.description.input],
            "outputs": [one(f) for f in spec.description.output]}


def _versions(tf: Any, ct: Any) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        tfship_version = version("tfship")
    except PackageNotFoundError:
        tfship_version = "unknown"
    return {"tfship": tfship_version, "tensorflow": tf.__version__, "coremltools": ct.__version__}


class CoremlExporter(Exporter):
    """``<name>.mlmodel`` (NeuralNetwork, fp32) and ``<name>.mlpackage`` (ML Program, fp16/fp32)."""

    name = "coreml"
    description = "CoreML image classifier: .mlmodel (iOS 13+, fp32) and .mlpackage (iOS 15+, fp16 or fp32)"

    def check(self, options: ExportOptions) -> None:
        check_options(options)

    def check_source(self, source: SourceModel, options: ExportOptions) -> None:
        check(source, options)

    def variants(self, options: ExportOptions) -> tuple[Variant, ...]:
        name = options.coreml_name or DEFAULT_CLASS_NAME
        return (Variant(name + NEURALNETWORK_EXT, "fp32", "neuralnetwork"),
                Variant(name + MLPROGRAM_EXT, options.coreml_precision, "mlprogram"))

    def export_variant(self, source: SourceModel, variant: Variant, out_dir: Path,
                       options: ExportOptions) -> Artifact:
        self.check_source(source, options)
        tf = require("tensorflow", "tensorflow", "export", "CoreML export")
        ct = require("coremltools", "coremltools", "export", "CoreML export")
        fn = _image_function(tf, source)
        kind, precision = variant.kind, variant.precision
        target = MLPROGRAM_TARGET if kind == "mlprogram" else NEURALNETWORK_TARGET
        model = _rename_outputs(ct, _convert(ct, fn, source, kind, precision), kind)
        _describe(model, source, options, precision, _versions(tf, ct))
        path = Path(out_dir) / variant.file
        try:
            model.save(str(path))
        except Exception as e:  # coremltools' save raises plain exceptions
            raise ExportError("CoreML", f"writing '{path}' failed: {e}",
                              "check the output folder is writable and has space") from e
        return self._artifact(path, model.get_spec(), source, options, precision, target)

    @staticmethod
    def _artifact(path: Path, spec: Any, source: SourceModel, options: ExportOptions, precision: str,
                  target: str) -> Artifact:
        img = source.image
        details = {
            "spec_version": int(spec.specificationVersion),
            "minimum_deployment_target": target,
            "model_type": spec.WhichOneof("Type"),
            "swift_class": path.stem,
            "class_labels": list(source.labels),
            **_feature_details(spec),
        }
        return Artifact(
            path=path.name, format="coreml", precision=precision,
            # CoreML images are 8-bit pixel buffers; the model scales them to [0, 1] itself.
            inputs=(TensorInfo(IMAGE_INPUT, "uint8", (None, img.height, img.width, img.channels)),),
            outputs=(TensorInfo(CLASS_LABEL, "string", (None,)),
                     TensorInfo(CLASS_PROBS, "float64", (None, len(source.labels)))),
            details=details)


def perturb(path: Path, out: Path, factor: float = 1.05) -> str:
    """Registry hook: a copy of a CoreML model with the largest weight of its last layer moved by ten times
    its size (coremleval.perturb_weight; ``factor`` is not used: smaller changes of one weight hide in
    fp16 rounding)."""
    from tfship.export.coremleval import perturb_weight

    return perturb_weight(path, out).tensor
