"""The part of the evaluator both model kinds share: features, image feeds, classifier outputs.

Inside an evaluator every value carries an extra leading *sample* axis: the spec describes one
prediction (CoreML predicts a batch one sample at a time), so a batch of S samples is evaluated as
one array of shape (S,) + the spec's shape. Constants have no sample axis; ``Value.batched`` says
which kind a value is, and ``Value.axis`` turns a spec axis into an array axis.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfship.errors import TfshipError

# Samples per internal chunk: bounds the im2col buffers (a 5x5 conv over 14x14x32 is ~600 KB a sample).
CHUNK = 128


class CoremlEvalError(TfshipError):
    """A CoreML model or the arrays fed to it cannot be evaluated as given."""


class UnsupportedCoremlOpError(CoremlEvalError):
    """The model uses a layer or op the NumPy evaluator does not implement."""

    def __init__(self, kind: str, op_type: str, op_name: str, path: Path) -> None:
        super().__init__(f"CoreML evaluator: {kind} '{op_type}' (named '{op_name}') in '{path}' is not "
                         "implemented; the model cannot be verified on this machine (CoreML's own "
                         "predict runs only on macOS)")
        self.op_type = op_type
        self.op_name = op_name


@dataclass(frozen=True)
class Value:
    """An array and whether its first axis is the sample axis."""

    array: np.ndarray
    batched: bool

    @property
    def rank(self) -> int:
        """Rank in the spec's terms (without the sample axis)."""
        return self.array.ndim - int(self.batched)

    def axis(self, axis: int) -> int:
        """The array axis of the spec axis ``axis`` (negative counts from the end)."""
        a = axis + self.rank if axis < 0 else axis
        if not 0 <= a < self.rank:
            raise CoremlEvalError(f"axis {axis} out of range for a rank-{self.rank} tensor")
        return a + int(self.batched)

    def with_array(self, array: np.ndarray) -> Value:
        return Value(array, self.batched)


@dataclass(frozen=True)
class ImageFeature:
    """An image input: CoreML hands the model (1, C, H, W) pixel values 0..255."""

    name: str
    height: int
    width: int
    color_space: str   # GRAYSCALE, RGB or BGR

    @property
    def channels(self) -> int:
        return 1 if self.color_space == "GRAYSCALE" else 3


# ArrayFeatureType.ArrayDataType -> NumPy (an ML Program computes in the type its input declares).
_ARRAY_DTYPES = {65568: np.float32, 65600: np.float64, 131104: np.int32, 131080: np.int8, 65552: np.float16}


@dataclass(frozen=True)
class ArrayFeature:
    """A multi-array input: its default shape, and the shapes a flexible input also accepts."""

    shape: tuple[int, ...]
    dtype: type
    ranges: tuple[tuple[int, int], ...] | None   # per axis (lower, upper); upper -1 = unbounded
    enumerated: tuple[tuple[int, ...], ...]

    def accepts(self, shape: tuple[int, ...]) -> bool:
        if shape == self.shape or shape in self.enumerated:
            return True
        if self.ranges is None or len(shape) != len(self.ranges):
            return False
        return all(lo <= n and (hi < 0 or n <= hi) for n, (lo, hi) in zip(shape, self.ranges))

    def describe(self) -> str:
        if self.ranges is not None:
            return "(" + ", ".join(f"{lo}..{hi if hi >= 0 else '*'}" for lo, hi in self.ranges) + ")"
        return str(self.shape) + (f" (or one of {list(self.enumerated)})" if self.enumerated else "")


def _array_feature(feature: Any) -> ArrayFeature:
    t = feature.type.multiArrayType
    which = t.WhichOneof("ShapeFlexibility")
    ranges = tuple((int(r.lowerBound), int(r.upperBound)) for r in t.shapeRange.sizeRanges) \
        if which == "shapeRange" else None
    enumerated = tuple(tuple(s.shape) for s in t.enumeratedShapes.shapes) if which == "enumeratedShapes" else ()
    return ArrayFeature(tuple(t.shape), _ARRAY_DTYPES.get(t.dataType, np.float32), ranges, enumerated)


def _image_feature(feature: Any) -> ImageFeature | None:
    kind = feature.type.WhichOneof("Type")
    if kind != "imageType":
        return None
    img = feature.type.imageType
    space = {10: "GRAYSCALE", 20: "RGB", 30: "BGR"}.get(img.colorSpace)
    if space is None:
        raise CoremlEvalError(f"image input '{feature.name}' has unsupported color space {img.colorSpace}")
    return ImageFeature(feature.name, int(img.height), int(img.width), space)


class Evaluator(abc.ABC):
    """Runs one CoreML model with NumPy. Build it with ``tfship.export.coremleval.load``."""

    def __init__(self, spec: Any, path: Path) -> None:
        self.spec = spec
        self.path = Path(path)
        desc = spec.description
        self.input_names: tuple[str, ...] = tuple(f.name for f in desc.input)
        self.output_names: tuple[str, ...] = tuple(f.name for f in desc.output)
        self._images = {f.name: img for f in desc.input if (img := _image_feature(f)) is not None}
        self._arrays = {f.name: _array_feature(f) for f in desc.input
                        if f.type.WhichOneof("Type") == "multiArrayType"}
        self.label_name = desc.predictedFeatureName or None
        self.probs_name = desc.predictedProbabilitiesName or None
        self.class_labels: tuple[str, ...] | None = None

    # -- what subclasses provide -------------------------------------------------------------
    @abc.abstractmethod
    def _run(self, feeds: dict[str, Value]) -> dict[str, Value]:
        """Evaluate one chunk; ``feeds`` are spec-shaped arrays with a sample axis."""

    # -- the public API ---------------------------------------------------------------------
    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by feature name for a batch of samples (see the package docstring for shapes)."""
        if set(feeds) != set(self.input_names):
            raise CoremlEvalError(f"'{self.path}' takes inputs {list(self.input_names)}, got {sorted(feeds)}")
        prepared = {name: self._prepare(name, np.asarray(arr)) for name, arr in feeds.items()}
        counts = {a.shape[0] for a in prepared.values()}
        if len(counts) != 1:
            raise CoremlEvalError(f"inputs to '{self.path}' have different sample counts: {sorted(counts)}")
        n = counts.pop()
        chunks: list[dict[str, np.ndarray]] = []
        for start in range(0, n, CHUNK):
            part = {k: Value(v[start:start + CHUNK], True) for k, v in prepared.items()}
            chunks.append(self._outputs(self._run(part), min(CHUNK, n - start)))
        if not chunks:
            raise CoremlEvalError(f"no samples fed to '{self.path}'")
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}

    def _prepare(self, name: str, arr: np.ndarray) -> np.ndarray:
        img = self._images.get(name)
        if img is not None:
            return self._image_pixels(img, arr)
        feature = self._arrays.get(name)
        if feature is None:
            return arr.astype(np.float32)
        arr = arr.astype(feature.dtype)
        if feature.accepts(arr.shape) and not feature.accepts(arr.shape[1:]):
            return arr[None]
        if not feature.accepts(arr.shape[1:]):
            raise CoremlEvalError(f"input '{name}' of '{self.path}' must be shaped (N,)+{feature.describe()} "
                                  f"or {feature.describe()}, got {arr.shape}")
        return arr

    def _image_pixels(self, img: ImageFeature, arr: np.ndarray) -> np.ndarray:
        """(N, H, W) or (N, H, W, 3) pixel values -> (N, 1, C, H, W) float32, channel order of the model."""
        want = (img.height, img.width) if img.channels == 1 else (img.height, img.width, 3)
        if arr.ndim == len(want):
            arr = arr[None]
        if arr.shape[1:] != want:
            raise CoremlEvalError(f"image input '{img.name}' of '{self.path}' takes pixel arrays shaped "
                                  f"(N, {', '.join(map(str, want))}) with values 0..255, got {arr.shape}")
        x = arr.astype(np.float32)
        if img.channels == 1:
            return x[:, None, None, :, :]
        if img.color_space == "BGR":
            x = x[..., ::-1]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))[:, None]

    def _outputs(self, raw: dict[str, Value], samples: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in self.output_names:
            if name in (self.label_name, self.probs_name) and self.class_labels is not None:
                continue
            if name not in raw:
                raise CoremlEvalError(f"'{self.path}': output '{name}' was not produced by the model")
            v = raw[name]
            # An output that does not depend on the inputs (a shape, a constant) is the same for every sample.
            out[name] = v.array if v.batched else np.broadcast_to(v.array, (samples,) + v.array.shape)
        if self.class_labels is not None:
            probs = self._class_probabilities(raw)
            if self.probs_name:
                out[self.probs_name] = probs
            if self.label_name:
                labels = np.asarray(self.class_labels, dtype=object)
                out[self.label_name] = labels[np.argmax(probs, axis=1)].astype(str)
        return out

    @abc.abstractmethod
    def _class_probabilities(self, raw: dict[str, Value]) -> np.ndarray:
        """(S, K) float64 probabilities in ``class_labels`` order."""


def broadcastable(values: list[Value]) -> tuple[list[np.ndarray], bool]:
    """Arrays ready for NumPy broadcasting (spec axes right-aligned, sample axis leading) and
    whether the result is batched."""
    batched = any(v.batched for v in values)
    if not batched:
        return [v.array for v in values], False
    rank = max(v.rank for v in values)
    out = []
    for v in values:
        a = v.array
        if v.batched and v.rank < rank:
            a = a.reshape(a.shape[:1] + (1,) * (rank - v.rank) + a.shape[1:])
        out.append(a)
    return out, True


def flat_probabilities(v: Value, num_classes: int, where: str) -> np.ndarray:
    """A probability tensor of any spec shape with K elements per sample -> (S, K) float64."""
    arr = v.array if v.batched else v.array[None]
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    if flat.shape[1] != num_classes:
        raise CoremlEvalError(f"{where}: probability tensor has {flat.shape[1]} values per sample, "
                              f"the classifier has {num_classes} labels")
    return flat
