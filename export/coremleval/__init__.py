"""A NumPy reference evaluator for CoreML models, so CoreML exports can be verified off macOS.

coremltools' ``MLModel.predict`` runs only on macOS (the Linux wheel has no ``libcoremlpython``).
This package executes the model spec itself: ``.mlmodel`` NeuralNetwork(-Classifier) specs and
``.mlpackage`` ML Programs (fp16 compute emulated), for the layers and ops listed in docs/COREML.md.
Anything else raises ``UnsupportedCoremlOpError`` naming the op and layer, never a silent skip.

API::

    from tfship.export import coremleval
    ev = coremleval.load("exports/MNISTClassifier.mlmodel")     # or the .mlpackage folder
    ev.input_names      # ("image",)
    ev.output_names     # ("classLabel", "classLabelProbs")
    ev.class_labels     # ("0", ..., "9"), None for a non-classifier
    out = ev.predict({"image": pixels})
    # pixels: float array of raw pixel values 0..255, (N, H, W) grayscale or (N, H, W, 3) RGB
    out["classLabel"]       # (N,) str, the top label
    out["classLabelProbs"]  # (N, K) float64, in ``class_labels`` order
    ev = coremleval.from_spec(mlmodel.get_spec(), package_path)   # a spec already in memory

A multi-array input is fed shaped (N,) + its spec shape; a non-classifier output comes back with
(N,) + its spec shape. ``perturb_weight(path, out_path)`` writes a copy of a model with one weight
changed (for tests proving a parity check catches a wrong weight).

Loading needs only ``coremltools.proto`` (the protobuf classes); no converter, no TensorFlow.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfship.errors import ModelNotFoundError, require
from tfship.export.coremleval.evaluator import (
    CoremlEvalError, Evaluator, UnsupportedCoremlOpError)

__all__ = ["CoremlEvalError", "Evaluator", "PerturbedWeight", "UnsupportedCoremlOpError", "from_spec", "load",
           "load_spec", "perturb_weight"]


def _spec_file(path: Path) -> Path:
    if path.is_dir():
        from tfship.export.coremleval.blobs import model_dir

        if not (path / "Manifest.json").is_file():
            raise ModelNotFoundError(f"'{path}' is a folder but not an .mlpackage (no Manifest.json)")
        return model_dir(path) / "model.mlmodel"
    return path


def load_spec(path: str | Path) -> Any:
    """The ``Model`` protobuf of a ``.mlmodel`` file or ``.mlpackage`` folder."""
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"CoreML model '{p}' does not exist")
    proto = require("coremltools.proto.Model_pb2", "coremltools", "export", "Reading CoreML models")
    spec = proto.Model()
    try:
        spec.ParseFromString(_spec_file(p).read_bytes())
    except Exception as e:  # protobuf raises its own DecodeError type
        raise CoremlEvalError(f"'{p}' is not a readable CoreML model: {e}") from e
    return spec


def load(path: str | Path) -> Evaluator:
    """An evaluator for the model at ``path`` (an ``.mlmodel`` file or an ``.mlpackage`` folder)."""
    p = Path(path)
    return from_spec(load_spec(p), p)


def from_spec(spec: Any, path: str | Path) -> Evaluator:
    """An evaluator for a ``Model`` protobuf already in memory; ``path`` is where an ML Program's
    package folder (with its weights) lives, and names the model in errors."""
    p = Path(path)
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        from tfship.export.coremleval.mlprogram import MlProgramEvaluator

        return MlProgramEvaluator(spec, p)
    if kind in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        from tfship.export.coremleval.neuralnetwork import NeuralNetworkEvaluator

        return NeuralNetworkEvaluator(spec, p)
    if kind is None:
        raise CoremlEvalError(f"'{p}' is not a CoreML model: its spec names no model type")
    raise UnsupportedCoremlOpError("model type", kind, p.name, p)


@dataclass(frozen=True)
class PerturbedWeight:
    """Which weight ``perturb_weight`` changed, and how."""

    path: Path
    tensor: str      # layer or const name
    index: int       # flat index into the tensor
    old: float
    new: float


def perturb_weight(path: str | Path, out_path: str | Path, delta: float | None = None) -> PerturbedWeight:
    """Copy the model at ``path`` to ``out_path`` with one weight changed.

    The weight is the largest-magnitude element of the last weight matrix or kernel (rank >= 2: the
    classifier layer in a typical model), so the change reaches the output for almost every input.
    ``delta`` defaults to 10x that magnitude: merely doubling it moved an fp16 CNN's scores by only
    ~1e-2, the size of the fp16 tolerance, which proves nothing.
    """
    src, dst = Path(path), Path(out_path)
    spec = load_spec(src)
    if spec.WhichOneof("Type") == "mlProgram":
        shutil.copytree(src, dst)
        return _perturb_blob(spec, dst, delta)
    return _perturb_nn(spec, dst, delta)


def _perturb_nn(spec: Any, dst: Path, delta: float | None) -> PerturbedWeight:
    from tfship.export.coremleval.neuralnetwork import weights

    nn = getattr(spec, spec.WhichOneof("Type"))
    for layer in reversed(nn.layers):
        params = getattr(layer, layer.WhichOneof("layer"))
        w = getattr(params, "weights", None)
        if w is None:
            continue
        flat = weights(w, layer.name)
        if flat.size == 0:
            continue
        i = int(np.argmax(np.abs(flat)))
        old = float(flat[i])
        new = old + (delta if delta is not None else 10 * (abs(old) or 0.1))
        flat[i] = new
        if len(w.floatValue):
            w.floatValue[i] = new
        else:
            w.float16Value = flat.astype(np.float16).tobytes()
        dst.write_bytes(spec.SerializeToString())
        return PerturbedWeight(dst, layer.name, i, old, new)
    raise CoremlEvalError(f"no layer with weights to perturb in the model written to '{dst}'")


def _perturb_blob(spec: Any, dst: Path, delta: float | None) -> PerturbedWeight:
    from tfship.export.coremleval.blobs import BLOB_DTYPES, blob_metadata, model_dir, read_blob

    fn = spec.mlProgram.functions["main"]
    block = fn.block_specializations[fn.opset]
    for op in reversed(block.operations):
        val = op.attributes.get("val") if op.type == "const" else None
        if val is None or val.WhichOneof("value") != "blobFileValue" or len(val.type.tensorType.dimensions) < 2:
            continue  # biases are skipped: one bias element moves the output too little to prove anything
        weight_file = model_dir(dst) / val.blobFileValue.fileName.replace("@model_path/", "")
        offset = val.blobFileValue.offset
        flat = read_blob(weight_file, offset)
        if not np.issubdtype(flat.dtype, np.floating):
            continue
        dtype_code, _, data_offset = blob_metadata(weight_file, offset)
        i = int(np.argmax(np.abs(flat.astype(np.float32))))
        old = float(flat[i])
        new = old + (delta if delta is not None else 10 * (abs(old) or 0.1))
        item = np.asarray([new], dtype=BLOB_DTYPES[dtype_code])
        with open(weight_file, "r+b") as f:
            f.seek(data_offset + i * item.itemsize)
            f.write(item.tobytes())
        return PerturbedWeight(dst, op.outputs[0].name, i, old, float(item[0]))
    raise CoremlEvalError(f"no floating-point weight blob to perturb in '{dst}'")

