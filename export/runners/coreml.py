"""Run a CoreML classifier (``.mlmodel`` or ``.mlpackage``) on SavedModel-shaped float inputs.

On macOS with coremltools' native library, this is CoreML's own ``MLModel.predict``; everywhere
else it is tfship's NumPy reference evaluator (``tfship.export.coremleval``), because the Linux
wheel of coremltools cannot predict. ``CoremlRunner.backend`` says which one ran.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from tfship.errors import SignatureError, require
from tfship.export.base import Runner, SourceModel


def native_predict_available() -> bool:
    """True where CoreML itself can run a model: macOS with coremltools' ``libcoremlpython``."""
    return sys.platform == "darwin" and importlib.util.find_spec("coremltools.libcoremlpython") is not None


class CoremlRunner(Runner):
    """Feeds ``x`` (N, ...) in [0, 1] as 0..255 images; returns probabilities in ``source.labels`` order."""

    format = "coreml"

    def __init__(self, path: Path, source: SourceModel, native: bool | None = None) -> None:
        super().__init__(path, source)
        self.native = native_predict_available() if native is None else native
        self.backend = "coreml" if self.native else "coremleval"
        if self.native:
            import coremltools as ct

            self._model = ct.models.MLModel(str(self.path))
            spec = self._model.get_spec()
            labels = self._spec_labels(spec)
        else:
            from tfship.export import coremleval

            self._evaluator = coremleval.load(self.path)
            spec = self._evaluator.spec
            labels = self._evaluator.class_labels
        desc = spec.description
        if len(desc.input) != 1 or desc.input[0].type.WhichOneof("Type") != "imageType":
            raise SignatureError(f"CoreML model '{self.path}' must have exactly one image input, "
                                 f"has {[f.name for f in desc.input]}")
        self.input_name = desc.input[0].name
        self.probs_name = desc.predictedProbabilitiesName
        if not labels or not self.probs_name:
            raise SignatureError(f"CoreML model '{self.path}' is not a classifier with a probability output")
        missing = [lab for lab in source.labels if lab not in labels]
        if missing or len(labels) != len(source.labels):
            raise SignatureError(f"CoreML model '{self.path}' has labels {list(labels)[:12]}, the SavedModel "
                                 f"'{source.path}' has {list(source.labels)[:12]}")
        self.labels = tuple(labels)
        self._order = np.asarray([self.labels.index(lab) for lab in source.labels])

    @staticmethod
    def _spec_labels(spec) -> tuple[str, ...]:
        kind = spec.WhichOneof("Type")
        if kind == "mlProgram":
            from tfship.export.coremleval.mlprogram import decode_value

            main = spec.mlProgram.functions["main"]
            block = main.block_specializations[main.opset]
            for op in block.operations:
                if op.type == "classify":
                    return tuple(str(np.asarray(v).reshape(-1)[0])
                                 for v in decode_value(op.inputs["classes"].arguments[0].value, None))
            return ()
        nn = getattr(spec, kind)
        which = nn.WhichOneof("ClassLabels")
        return tuple(str(v) for v in getattr(nn, which).vector) if which else ()

    def pixels(self, x: np.ndarray) -> np.ndarray:
        """(N, ...) floats in [0, 1] -> (N, H, W) or (N, H, W, 3) pixel values 0..255."""
        img = self.source.image
        shape = (len(x), img.height, img.width) + ((3,) if img.channels == 3 else ())
        return (x.reshape(shape) * np.float32(255.0)).astype(np.float32)

    def run_impl(self, x: np.ndarray) -> np.ndarray:
        pixels = self.pixels(x)
        if self.native:
            probs = self._native_predict(pixels)
        else:
            probs = self._evaluator.predict({self.input_name: pixels})[self.probs_name]
        return np.asarray(probs, dtype=np.float32)[:, self._order]

    def _native_predict(self, pixels: np.ndarray) -> np.ndarray:
        # coremltools' predict takes image features as PIL images.
        Image = require("PIL.Image", "pillow", "export", "Running CoreML image models with CoreML's predict")

        mode = "L" if pixels.ndim == 3 else "RGB"
        rows = []
        for p in pixels:
            image = Image.fromarray(np.clip(np.rint(p), 0, 255).astype(np.uint8), mode=mode)
            probs = self._model.predict({self.input_name: image})[self.probs_name]
            rows.append([probs[lab] for lab in self.labels])
        return np.asarray(rows, dtype=np.float64)
