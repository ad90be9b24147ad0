"""The types every exporter and runner shares. No heavy imports here.

Every exporter has one signature: ``export(source, out_dir, options) -> list[Artifact]``.
Every runner: construct once from an artifact, then ``run(inputs) -> outputs`` with named arrays.
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
    coreml_name: str = "MNISTClassifier"
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


class Exporter(abc.ABC):
    """One format. Subclasses import their converter library inside ``export`` only."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def export(self, source: SourceModel, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        """Write this format's artifacts into ``out_dir`` (a fresh temporary folder) and describe them."""


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
