"""Serving backends: the runtimes a model version can be served with, one module each, as data.

``savedmodel`` runs the SavedModel in TensorFlow (every signature). ``onnx`` and ``tflite`` run the
verified artifact that ``export-all`` made from the version (its predict signature), looked up in the
version's exports manifest (:mod:`.artifacts`). All three report the SavedModel's SignatureDefs, so
REST and gRPC clients see the same model. A new backend is one module and one entry here.
"""

from __future__ import annotations

from tfship.errors import UsageError

# name -> "module:Class" of a tfship.serve.backends.base.Backend; imported only when used.
BACKENDS: dict[str, str] = {
    "savedmodel": "tfship.serve.backends.savedmodel:SavedModelBackend",
    "onnx": "tfship.serve.backends.onnx:OnnxBackend",
    "tflite": "tfship.serve.backends.tflite:TfliteBackend",
}
DEFAULT_BACKEND = "savedmodel"
# The pip extra that installs each backend's runtime.
EXTRAS = {"savedmodel": "serve", "onnx": "export", "tflite": "export"}


def check_backend(name: str) -> str:
    """``name`` if it is a backend; otherwise a UsageError listing them (no import happens here)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}'; valid backends: {', '.join(BACKENDS)}")
    return name


def backend_class(name: str):
    from tfship.export.registry import load_object

    return load_object(BACKENDS[check_backend(name)], EXTRAS[name])
