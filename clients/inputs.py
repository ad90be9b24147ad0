"""Image files and arrays -> the tensor a model's input takes (its layout, size, value range, dtype).

Image files:
- ``mnist`` preprocessing (the default for 28x28x1 and 784-vector inputs): ``images.preprocess``,
  the steps shared with the iOS app (crop, 20 px, centred by mass in 28x28);
- ``resize`` (the default for every other image input): grayscale or RGB by the input's channels,
  resized to its H x W with Pillow's bilinear filter (antialiased when shrinking; the aspect ratio is
  not kept, as in Keras' ``image_dataset_from_directory``). An input of any size (-1) keeps the
  file's own size.
Then pixel values 0..255 are mapped to the value range (``0..1`` = v / 255, ``0..255`` = v,
``-1..1`` = v / 127.5 - 1; default ``0..1`` for float inputs, ``0..255`` for integer ones) and cast
to the input's dtype (integers rounded).

An input of encoded images (a string [N] input such as ``image_bytes``) gets each file's bytes as they
are: the model decodes them.

Arrays (NumPy, or ``.npy`` files) are raw tensors: sent as they are, one example or a batch, reshaped
only between ``[N, ...]`` and a flat ``[N, D]`` input, cast only where no value changes kind. For
28x28x1 / 784 inputs they keep the MNIST form the clients always took: (N, 784), (N, 28, 28) or
(N, 28, 28, 1), uint8 0..255 or float 0..1, mapped to the value range like images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfship.clients.errors import ImageError
from tfship.clients.images import Images, decode_image, from_array, load_image
from tfship.clients.results import InputForm
from tfship.clients.signatures import ImageLayout, PredictPlan, shape_text
from tfship.errors import UsageError

# value = pixel / 255 * scale + offset
VALUE_RANGES: dict[str, tuple[float, float]] = {"0..1": (1.0, 0.0), "0..255": (255.0, 0.0), "-1..1": (2.0, -1.0)}
PREPROCESSING = ("auto", "mnist", "resize")


@dataclass(frozen=True)
class InputOptions:
    """How image files become tensors: ``value_range`` (None = by dtype) and ``preprocessing``."""

    value_range: str | None = None
    preprocessing: str = "auto"

    def __post_init__(self) -> None:
        if self.value_range is not None and self.value_range not in VALUE_RANGES:
            raise UsageError(f"value range '{self.value_range}' is not one of {', '.join(VALUE_RANGES)}")
        if self.preprocessing not in PREPROCESSING:
            raise UsageError(f"preprocessing '{self.preprocessing}' is not one of {', '.join(PREPROCESSING)}")


def encode(images: Images, plan: PredictPlan, options: InputOptions = InputOptions()) -> tuple[np.ndarray, InputForm]:
    """Any accepted input (an array, one path, or a list of paths) -> the batch and how it was made."""
    if isinstance(images, np.ndarray):
        _, batch, form = encode_items([images], plan, options)
        return batch, form
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if not (isinstance(images, Sequence) and images and all(isinstance(p, (str, os.PathLike)) for p in images)):
        raise ImageError(f"expected a NumPy array or image file path(s), got {type(images).__name__}"
                         + (" (empty list)" if isinstance(images, Sequence) and not images else ""))
    _, batch, form = encode_items(list(images), plan, options)
    return batch, form


def encode_items(items: list, plan: PredictPlan, options: InputOptions) -> tuple[list[str], np.ndarray, InputForm]:
    """Paths (image files, ``.npy``) and arrays -> a name per row, the batch, and how it was made."""
    if plan.encoded:
        return _encoded_items(items, plan)
    value_range = _value_range(plan, options)
    mode = _image_mode(plan, options)
    names, rows, kinds = [], [], set()
    for item in items:
        if isinstance(item, np.ndarray) or Path(item).suffix.lower() == ".npy":
            name = "array" if isinstance(item, np.ndarray) else str(item)
            batch = _array_tensor(item if isinstance(item, np.ndarray) else load_npy(Path(item)), plan,
                                  value_range, name)
            names += [f"{name}[{i}]" for i in range(batch.shape[0])]
            kinds.add("mnist arrays" if _mnist_arrays(plan) else "raw arrays")
        else:
            batch = _image_tensor(Path(item), plan, mode, value_range)
            names.append(str(item))
            kinds.add(mode)
        rows.append(batch)
    try:
        batch = np.concatenate(rows) if len(rows) > 1 else rows[0]
    except ValueError as e:
        raise ImageError(f"the inputs do not stack into one batch ({', '.join(str(r.shape[1:]) for r in rows)}): "
                         "images of an any-size input must all have the same size") from e
    if batch.shape[0] == 0:
        raise ImageError("no images to send (the batch is empty)")
    image = plan.layout.describe() if plan.layout is not None else None
    used_range = value_range if kinds - {"raw arrays"} else None
    form = InputForm(plan.signature, plan.input_name, batch.dtype.name, tuple(batch.shape), image,
                     " + ".join(sorted(kinds)), used_range)
    return names, batch, form


def _encoded_items(items: list, plan: PredictPlan) -> tuple[list[str], np.ndarray, InputForm]:
    batch = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray) or Path(item).suffix.lower() == ".npy":
            raise ImageError(f"input '{plan.input_name}' of signature '{plan.signature}' takes encoded image "
                             f"files (a string [N] tensor); send image files, not arrays")
        try:
            batch[i] = Path(item).read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read image file '{item}': {e.strerror}") from e
    form = InputForm(plan.signature, plan.input_name, "string", (len(items),), "encoded image files",
                     "file bytes", None)
    return [str(item) for item in items], batch, form


def _value_range(plan: PredictPlan, options: InputOptions) -> str:
    integer = plan.dtype.kind in "iu"
    chosen = options.value_range or ("0..255" if integer else "0..1")
    if integer and chosen != "0..255":
        raise UsageError(f"input '{plan.input_name}' of signature '{plan.signature}' is {plan.dtype.name}: "
                         f"it takes pixel values 0..255, not {chosen}")
    return chosen


def _image_mode(plan: PredictPlan, options: InputOptions) -> str:
    if options.preprocessing == "auto":
        return "mnist" if plan.layout is not None and plan.layout.is_mnist else "resize"
    if options.preprocessing == "mnist" and (plan.layout is None or not plan.layout.is_mnist):
        raise UsageError(f"MNIST preprocessing makes 28x28 grayscale images, but input '{plan.input_name}' of "
                         f"signature '{plan.signature}' is {shape_text(plan.input.shape)}")
    return options.preprocessing


def _mnist_arrays(plan: PredictPlan) -> bool:
    return plan.layout is not None and plan.layout.is_mnist


def _need_image_input(plan: PredictPlan, name: str) -> ImageLayout:
    if plan.layout is None:
        raise ImageError(
            f"{name}: input '{plan.input_name}' of signature '{plan.signature}' is {plan.input.dtype} "
            f"{shape_text(plan.input.shape)}, not an image batch ([N, H, W, C] with C 1 or 3, [N, C, H, W], "
            "[N, H, W] or [N, H*W*C]); send a .npy array of that shape instead")
    return plan.layout


def _image_tensor(path: Path, plan: PredictPlan, mode: str, value_range: str) -> np.ndarray:
    layout = _need_image_input(plan, str(path))
    if mode == "mnist":
        unit = load_image(path).reshape(1, 28, 28, 1)
    else:
        from PIL import Image

        image = decode_image(path, "L" if layout.channels == 1 else "RGB")
        size = (layout.width or image.width, layout.height or image.height)
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32).reshape(size[1], size[0], layout.channels)
        unit = pixels[np.newaxis] / np.float32(255.0)
    return _arrange(_scale(unit, plan, value_range), layout)


def _scale(unit: np.ndarray, plan: PredictPlan, value_range: str) -> np.ndarray:
    """Values in [0, 1] -> the value range, in the input's dtype (integers rounded)."""
    scale, offset = VALUE_RANGES[value_range]
    dtype = plan.dtype
    if value_range == "0..1":  # bit-exact with the unit values the MNIST clients always sent
        values = unit
    else:
        values = unit * np.float32(scale) + np.float32(offset)
    if dtype.kind in "iu":
        return np.clip(np.round(values), 0, 255).astype(dtype)
    return values.astype(dtype, copy=False)


def _arrange(nhwc: np.ndarray, layout: ImageLayout) -> np.ndarray:
    if layout.axes == "NCHW":
        return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    if layout.axes == "NHW":
        return nhwc[..., 0]
    if layout.axes == "flat":
        return nhwc.reshape(nhwc.shape[0], -1)
    return nhwc


def load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise ImageError(f"array file '{path}' does not exist") from e
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot read array file '{path}': {e}") from e


def _array_tensor(a: np.ndarray, plan: PredictPlan, value_range: str, name: str) -> np.ndarray:
    if _mnist_arrays(plan):
        try:
            unit = from_array(a).reshape(-1, 28, 28, 1)
        except ImageError as e:
            raise ImageError(f"{name}: {e}") from e
        return _arrange(_scale(unit, plan, value_range), plan.layout)
    return _fit_dtype(_fit_shape(np.asarray(a), plan, name), plan, name)


def _fit_shape(a: np.ndarray, plan: PredictPlan, name: str) -> np.ndarray:
    shape = plan.input.shape
    if shape is None:
        return a
    tail = shape[1:]

    def fits(s: tuple[int, ...]) -> bool:
        return len(s) == len(tail) and all(want < 0 or want == have for want, have in zip(tail, s))

    if fits(a.shape):
        return a[np.newaxis]
    if a.ndim >= 1 and fits(a.shape[1:]):
        return a
    if len(tail) == 1 and tail[0] > 0 and a.ndim >= 2 and int(np.prod(a.shape[1:])) == tail[0]:
        return a.reshape(a.shape[0], tail[0])
    example = "(" + ", ".join("?" if d < 0 else str(d) for d in tail) + ")"
    raise ImageError(f"{name}: array of shape {a.shape} does not fit input '{plan.input_name}' "
                     f"{shape_text(shape)} of signature '{plan.signature}' (expected one example {example} or a "
                     f"batch (N, {example[1:]})")


def _fit_dtype(a: np.ndarray, plan: PredictPlan, name: str) -> np.ndarray:
    want = plan.dtype
    if a.dtype == want:
        return a
    if want.kind == "f" and a.dtype.kind in "fiu":
        return a.astype(want)
    if want.kind in "iu" and a.dtype.kind in "iu" and (a.size == 0 or (
            np.iinfo(want).min <= a.min() and a.max() <= np.iinfo(want).max)):
        return a.astype(want)
    raise ImageError(f"{name}: array of dtype {a.dtype} cannot be sent as input '{plan.input_name}' of signature "
                     f"'{plan.signature}', which takes {want.name}")
