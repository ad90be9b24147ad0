"""Which signature, input and outputs a predict call uses, read from the model's metadata.

TF Serving's users expect: the signature they name; else ``serving_default`` when it is a
predict-style image signature; else the one predict signature that takes images. Anything else
(no such signature, several candidates, an input that is not an image) is a ``SignatureError``
naming what was expected and what the model has.

A predict-style image signature has one numeric input shaped like an image batch and at least one
float ``[N, K]`` output (the scores):

- ``[N, H, W, C]`` with C 1 or 3 (channels last, TensorFlow's layout), else ``[N, C, H, W]``;
- ``[N, H, W]``: grayscale without a channel axis (Keras' ``Flatten(input_shape=(28, 28))``);
- ``[N, D]``: flat pixels, D = 784 (MNIST), a square (grayscale) or three times a square (RGB).

H and W may be -1 (any size: images are sent at their own size). An input of encoded image files
also counts: one DT_STRING ``[N]`` input whose name says so (``image_bytes`` in TF Serving's ResNet
example; names such as ``inputs`` / ``examples`` are serialized tf.Examples, for the Classify API).
Labels come from a string output (``classes`` first, as TF Serving's classify signatures name it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfship import tensorproto
from tfship.clients.results import Metadata, Signature, TensorSpec
from tfship.errors import SignatureError

DEFAULT_SIGNATURE = "serving_default"  # tf.saved_model.save's and TF Serving's default key
MNIST_SIDE = 28
# Output names that say "these are the scores", in order of preference, when several float outputs
# qualify: TF Serving's classify signatures call them ``scores``; Keras' export calls one output ``output_0``.
SCORE_NAMES = ("scores", "probabilities", "predictions", "output_0")
# A string input named with one of these words carries encoded image files (JPEG, PNG...) ...
ENCODED_IMAGE_WORDS = ("image", "bytes", "jpeg", "jpg", "png", "b64")
# ... unless it is one of the names TF Serving's tf.Example signatures use.
EXAMPLE_INPUTS = ("inputs", "examples", "input_example_tensor", "serialized_example", "tf_example")
LABEL_NAMES = ("classes", "labels")

_NUMPY_BY_NAME = {d.enum_name: d.numpy for d in tensorproto.DATA_TYPES.values()}


def numpy_dtype(spec: TensorSpec) -> np.dtype | None:
    """The numpy dtype of a metadata dtype name (``DT_FLOAT`` -> float32); None when there is none."""
    return _NUMPY_BY_NAME.get(spec.dtype)


@dataclass(frozen=True)
class ImageLayout:
    """How an image batch fills an input tensor. ``height``/``width`` None = any size."""

    height: int | None
    width: int | None
    channels: int  # 1 (grayscale) or 3 (RGB)
    axes: str  # "NHWC", "NCHW", "NHW" or "flat" ([N, H*W*C], row-major HWC)

    @property
    def is_mnist(self) -> bool:
        return (self.height, self.width, self.channels) == (MNIST_SIDE, MNIST_SIDE, 1)

    def describe(self) -> str:
        size = f"{_dim(self.height)}x{_dim(self.width)}"
        return f"{'grayscale' if self.channels == 1 else 'RGB'} {size}" + (
            f" ({self.axes})" if self.axes not in ("NHWC", "NHW") else "")


@dataclass(frozen=True)
class PredictPlan:
    """What one predict call sends and reads, for one model version."""

    signature: str
    input_name: str
    input: TensorSpec
    layout: ImageLayout | None  # None: the input is not an image; only arrays can be sent
    scores: str  # the float [N, K] output
    labels: str | None  # a string output holding the class names, if the signature has one
    num_classes: int | None  # K, when the metadata says
    encoded: bool = False  # the input takes the image files' bytes (a DT_STRING [N] input)

    @property
    def dtype(self) -> np.dtype:
        return numpy_dtype(self.input)

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the input declares, when it is fixed (e.g. 1); None for any."""
        shape = self.input.shape
        return shape[0] if shape and shape[0] > 0 else None

    def outputs(self) -> tuple[str, ...]:
        return (self.scores,) if self.labels is None else (self.scores, self.labels)


def image_layout(spec: TensorSpec) -> ImageLayout | None:
    """The image layout of an input, or None when it does not look like an image batch."""
    dtype = numpy_dtype(spec)
    if dtype is None or dtype.kind not in "fiu" or spec.shape is None:
        return None
    dims = [None if d < 0 else d for d in spec.shape[1:]]
    if len(dims) == 3:
        if dims[2] in (1, 3):
            return ImageLayout(dims[0], dims[1], dims[2], "NHWC")
        if dims[0] in (1, 3):
            return ImageLayout(dims[1], dims[2], dims[0], "NCHW")
        return None
    if len(dims) == 2 and (dims[0] is None or dims[0] > 1) and (dims[1] is None or dims[1] > 1):
        return ImageLayout(dims[0], dims[1], 1, "NHW")
    if len(dims) == 1 and dims[0] is not None:
        for channels in (1, 3):
            side = math.isqrt(dims[0] // channels)
            if dims[0] % channels == 0 and side > 1 and side * side * channels == dims[0]:
                return ImageLayout(side, side, channels, "flat")
    return None


def is_encoded_image(name: str, spec: TensorSpec) -> bool:
    """A DT_STRING [N] input named for image bytes (not one of tf.Example's names)."""
    lowered = name.lower()
    return (spec.dtype == "DT_STRING" and (spec.shape is None or len(spec.shape) == 1)
            and lowered not in EXAMPLE_INPUTS and any(word in lowered for word in ENCODED_IMAGE_WORDS))


def _score_candidates(sig: Signature) -> list[str]:
    def is_scores(spec: TensorSpec) -> bool:
        dtype = numpy_dtype(spec)
        return dtype is not None and dtype.kind == "f" and (spec.shape is None or len(spec.shape) == 2)

    return [name for name, spec in sig.outputs.items() if is_scores(spec)]


def _label_output(sig: Signature) -> str | None:
    strings = [name for name, spec in sig.outputs.items() if spec.dtype == "DT_STRING"]
    preferred = [name for name in LABEL_NAMES if name in strings]
    if preferred:
        return preferred[0]
    return strings[0] if len(strings) == 1 else None


def is_image_predict(sig: Signature) -> bool:
    """One input, image-shaped and numeric or encoded image files, and a float [N, K] output."""
    if len(sig.inputs) != 1 or not _score_candidates(sig):
        return False
    name, spec = next(iter(sig.inputs.items()))
    return image_layout(spec) is not None or is_encoded_image(name, spec)


def choose_signature(metadata: Metadata, requested: str | None = None) -> str:
    """The signature a predict call uses (see the module docstring for the rule)."""
    public = {name: sig for name, sig in metadata.signatures.items() if not name.startswith("__")}
    where = _where(metadata)
    if requested is not None:
        if requested not in public:
            raise SignatureError(f"{where} has no signature '{requested}'; it has: {_list(public)}")
        return requested
    candidates = [name for name, sig in public.items() if is_image_predict(sig)]
    if DEFAULT_SIGNATURE in candidates:
        return DEFAULT_SIGNATURE
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SignatureError(
            f"{where} has no predict signature that takes images (one numeric input [N, H, W, C] with C 1 or 3, "
            f"[N, C, H, W], [N, H, W] or [N, H*W*C], or a string [N] input of image bytes, and a float [N, K] "
            f"output); its signatures: "
            f"{_describe_all(public)}. Name one with --signature (and send a .npy array)")
    raise SignatureError(f"{where} has several predict signatures that take images: {', '.join(candidates)}; "
                         "name one with --signature")


def plan_predict(metadata: Metadata, signature: str | None = None, input_name: str | None = None,
                 output_name: str | None = None) -> PredictPlan:
    """Signature, input, scores and labels outputs of a predict call, checked against the metadata."""
    name = choose_signature(metadata, signature)
    sig = metadata.signatures[name]
    where = f"signature '{name}' of {_where(metadata)}"
    if input_name is None:
        if len(sig.inputs) != 1:
            raise SignatureError(f"{where} has {len(sig.inputs)} inputs ({_list(sig.inputs)}); the client sends "
                                 "one: name it with --input")
        input_name = next(iter(sig.inputs))
    elif input_name not in sig.inputs:
        raise SignatureError(f"{where} has no input '{input_name}'; its inputs: {_describe(sig.inputs)}")
    scores = _scores_output(sig, output_name, where)
    shape = sig.outputs[scores].shape
    k = shape[1] if shape is not None and len(shape) == 2 and shape[1] > 0 else None
    spec = sig.inputs[input_name]
    encoded = is_encoded_image(input_name, spec)
    if not encoded and (numpy_dtype(spec) is None or spec.dtype == "DT_STRING"):
        raise SignatureError(f"{where}: input '{input_name}' is {spec.dtype} {shape_text(spec.shape)}; the predict "
                             "client sends numeric tensors or, to a string [N] input named for image bytes, image "
                             "files (for tf.Example inputs use --api classify)")
    return PredictPlan(name, input_name, spec, image_layout(spec), scores, _label_output(sig), k, encoded)


def _scores_output(sig: Signature, output_name: str | None, where: str) -> str:
    if output_name is not None:
        if output_name not in sig.outputs:
            raise SignatureError(f"{where} has no output '{output_name}'; its outputs: {_describe(sig.outputs)}")
        return output_name
    candidates = _score_candidates(sig)
    if len(candidates) == 1:
        return candidates[0]
    preferred = [name for name in SCORE_NAMES if name in candidates]
    if preferred:
        return preferred[0]
    if not candidates:
        raise SignatureError(f"{where} has no float [N, K] output to read scores from; its outputs: "
                             f"{_describe(sig.outputs)}")
    raise SignatureError(f"{where} has several float [N, K] outputs ({', '.join(candidates)}); name the scores "
                         "with --output")


def _where(metadata: Metadata) -> str:
    version = f" version {metadata.version}" if metadata.version is not None else ""
    return f"model '{metadata.model}'{version}"


def _dim(d: int | None) -> str:
    return "?" if d is None else str(d)


def shape_text(shape: tuple[int, ...] | None) -> str:
    return "[unknown rank]" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def _describe(tensors: dict[str, TensorSpec]) -> str:
    return ", ".join(f"{n} {s.dtype} {shape_text(s.shape)}" for n, s in tensors.items()) or "none"


def _describe_all(signatures: dict[str, Signature]) -> str:
    return "; ".join(f"{name} ({_describe(sig.inputs)} -> {_describe(sig.outputs)})"
                     for name, sig in signatures.items()) or "none"


def _list(items) -> str:
    return ", ".join(items) or "none"
