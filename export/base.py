"""The types every exporter and runner shares. No heavy imports here.

An exporter names its variants (files) from the options alone (``variants``), checks its options
before TensorFlow is imported (``check``), and writes one variant at a time (``export_variant``), so
one variant's failure never stops the others. ``export`` runs them all and raises the first failure.
Every runner: construct once from an artifact, then ``run(inputs) -> outputs`` with named arrays.

``SourceModel`` is the one backbone of a run: the SavedModel is loaded once (``loaded_signature``)
and its predict signature frozen once (``frozen``), on first use, and shared by every exporter, the
sanity check and verify.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfship.savedmodel import ModelVersion


@dataclass(frozen=True)
class TensorInfo:
    """A signature tensor: name, NumPy dtype name ("float32", "int8", "string"), shape (None = any)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ImageLayout:
    """How the flat or NHWC predict input maps to an image: height, width, channels."""

    height: int
    width: int
    channels: int


class _Loaded:
    """The TensorFlow objects behind a SourceModel, created on first use and then shared."""

    def __init__(self) -> None:
        self.loaded: Any = None
        self.signature: Any = None
        self.frozen: Any = None


@dataclass(frozen=True)
class SourceModel:
    """What exporters need to know about a SavedModel, read from its signatures and assets."""

    model: ModelVersion
    signature_key: str          # the predict signature exported (e.g. "predict_images")
    input: TensorInfo           # float input, batch dimension first
    output: TensorInfo          # float scores (N, num_classes)
    image: ImageLayout          # how ``input`` is an image
    labels: tuple[str, ...]     # from the labels asset, else "0".."K-1"
    labels_from_asset: bool
    fingerprint: str            # SavedModel fingerprint (saved_model_checksum) or content hash
    labels_origin: str = ""     # where the labels came from (asset file, classify signature, or indices)
    _tf: _Loaded = field(default_factory=_Loaded, compare=False, repr=False)

    def loaded_signature(self) -> Any:
        """The predict signature of the SavedModel, loaded once per SourceModel."""
        if self._tf.signature is None:
            import tensorflow as tf

            self._tf.loaded = tf.saved_model.load(str(self.path))
            self._tf.signature = self._tf.loaded.signatures[self.signature_key]
        return self._tf.signature

    def frozen(self) -> Any:
        """The predict signature as one frozen graph (``tfship.export.graph.FrozenPredict``), built once."""
        if self._tf.frozen is None:
            import tensorflow as tf

            from tfship.export.graph import freeze

            spec = tf.TensorSpec(list(self.input.shape), tf.as_dtype(self.input.dtype), name=self.input.name)
            self._tf.frozen = freeze(self.loaded_signature(), spec, self.input.name, self.output.name)
        return self._tf.frozen

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def path(self) -> Path:
        return self.model.path


@dataclass(frozen=True)
class ExportOptions:
    """Options every exporter receives; each reads the fields that concern it."""

    opset: int = 17
    # CoreML file stem = the Swift class Xcode generates. export-all resolves None to a name made from the
    # model folder (tfship.export.coreml.class_name_for); a direct CoremlExporter call without one gets
    # the iOS demo app's class name.
    coreml_name: str | None = None
    # ML Program (.mlpackage) compute precision; the .mlmodel (NeuralNetwork) is always fp32.
    coreml_precision: str = "fp16"
    author: str = "tfship"
    license: str = "Apache-2.0"
    version_string: str = ""
    # float32 inputs shaped like ``source.input`` for int8 calibration (training images).
    calibration: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Artifact:
    """One file (or package folder) an exporter wrote, relative to the export folder."""

    path: str                   # relative to the export folder, e.g. "model_int8.tflite"
    format: str                 # registry name of the runner that loads it: tflite, onnx, coreml
    precision: str              # fp32, fp16, int8-dynamic, int8
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    details: dict[str, Any] = field(default_factory=dict)  # format-specific facts for the manifest


@dataclass(frozen=True)
class Variant:
    """One file an exporter can write, known from the options alone (before TensorFlow is imported)."""

    file: str
    precision: str
    kind: str = ""              # exporter-specific (e.g. CoreML "neuralnetwork" / "mlprogram")


class Exporter(abc.ABC):
    """One format. Subclasses import their converter library inside ``export_variant`` only."""

    name: str = ""
    description: str = ""

    def check(self, options: ExportOptions) -> None:
        """Raise UsageError for options this format cannot take. No TensorFlow, no converter import."""

    def check_source(self, source: SourceModel, options: ExportOptions) -> None:
        """Raise UsageError when this format cannot represent ``source`` at all (names why)."""

    @abc.abstractmethod
    def variants(self, options: ExportOptions) -> tuple[Variant, ...]:
        """The files this format writes for these options, in export order."""

    @abc.abstractmethod
    def export_variant(self, source: SourceModel, variant: Variant, out_dir: Path,
                       options: ExportOptions) -> Artifact:
        """Write one variant into ``out_dir`` (a fresh temporary folder) and describe it."""

    def export(self, source: SourceModel, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        """Every variant; the first failure is raised (export-all instead records each on its own)."""
        self.check(options)
        self.check_source(source, options)
        return [self.export_variant(source, v, out_dir, options) for v in self.variants(options)]


class Runner(abc.ABC):
    """Loads one artifact once; ``run`` takes and returns arrays named as in the SavedModel signature.

    Inputs are float32 shaped like ``source.input`` (e.g. (N, 784) in [0, 1]); the output dict maps
    ``source.output.name`` to float32 scores (N, num_classes) in the order of ``source.labels``.
    A runner converts to and from its format's own interface (int8 quantization, CoreML images).
    """

    format: str = ""

    def __init__(self, path: Path, source: SourceModel) -> None:
        self.path = Path(path)
        self.source = source

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        name = self.source.input.name
        if set(inputs) != {name}:
            raise ValueError(f"{self.format} runner for '{self.path}' expects one input named "
                             f"'{name}', got {sorted(inputs)}")
        x = np.asarray(inputs[name], dtype=np.float32)
        expected = tuple(d for d in self.source.input.shape[1:])
        if x.ndim != len(self.source.input.shape) or any(
                e is not None and e != a for e, a in zip(expected, x.shape[1:])):
            raise ValueError(f"{self.format} runner for '{self.path}': input '{name}' has shape "
                             f"{x.shape}, expected {self.source.input.shape}")
        scores = self.run_impl(x)
        return {self.source.output.name: np.asarray(scores, dtype=np.float32)}

    @abc.abstractmethod
    def run_impl(self, x: np.ndarray) -> np.ndarray:
        """Scores (N, num_classes) for a validated float32 batch ``x``."""
