"""Turn arrays and image files into MNIST's input form: float32 (N, 784) in [0, 1], light digit on dark.

(``inputs.py`` uses this for 28x28x1 and 784-vector inputs, and resizes files for every other model.)

The file preprocessing is a contract shared with the iOS demo app (docs/CLIENTS.md, "Preprocessing");
change both or neither. Steps, for one decoded image:

1. grayscale, float 0..255 (EXIF orientation applied; an alpha channel is composited over white;
   luma = 0.299 R + 0.587 G + 0.114 B, Pillow's "L" conversion);
2. if the background is light (mean of the border pixels > 127) invert (255 - v), so the digit is
   light on dark as in MNIST;
3. crop to the bounding box of the pixels > 10% of the maximum (no pixel above 0 -> ImageError);
4. resize with area averaging (Pillow's BOX filter, antialiased) so the longer side is 20 px,
   keeping the aspect ratio (shorter side = floor(s * 20 / longer + 0.5), at least 1);
5. paste into a 28x28 black canvas at the integer offset that puts the centre of mass of the pixel
   intensities nearest (14, 14), in pixel-index coordinates (row r, column c; centre = sum(r * v) /
   sum(v); offset = floor(14 - centre + 0.5)), clamped so the digit stays inside. This is where
   MNIST's own digits have their centre of mass (measured: 14.0 +- 0.3 on the test set);
6. divide by 255, float32, flatten row-major to 784 values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np

from tfship import contract
from tfship.clients.errors import ImageError
from tfship.errors import require

ImagePath = Union[str, os.PathLike]
Images = Union[np.ndarray, ImagePath, Sequence[ImagePath]]

SIDE = contract.IMAGE_HEIGHT  # 28
DIGIT_BOX = 20  # MNIST's digits were fitted into 20x20 and centred by mass in 28x28
INK_FRACTION = 0.1  # pixels above 10% of the maximum count as ink when cropping
LIGHT_BACKGROUND = 127.0
CENTRE = 14.0  # where the centre of mass goes, in pixel-index coordinates  # border mean above this means dark ink on light paper


def to_batch(images: Images) -> np.ndarray:
    """Any accepted input -> float32 (N, 784) in [0, 1]: an array, one path or a list of paths."""
    if isinstance(images, np.ndarray):
        return from_array(images)
    if isinstance(images, (str, os.PathLike)):
        return load_image(images)[np.newaxis, :]
    if isinstance(images, Sequence) and len(images) > 0 and all(isinstance(p, (str, os.PathLike)) for p in images):
        return np.stack([load_image(p) for p in images])
    raise ImageError(f"expected a NumPy array or image file path(s), got {type(images).__name__}"
                     + (" (empty list)" if isinstance(images, Sequence) and len(images) == 0 else ""))


def from_array(array: np.ndarray) -> np.ndarray:
    """(N, 784), (N, 28, 28), (N, 28, 28, 1), or one image (784,) / (28, 28); uint8 0..255 or float 0..1."""
    a = np.asarray(array)
    if a.shape in ((contract.NUM_PIXELS,), (SIDE, SIDE)):
        a = a.reshape(1, contract.NUM_PIXELS)
    elif a.shape[1:] in ((SIDE, SIDE), (SIDE, SIDE, 1)):
        a = a.reshape(a.shape[0], contract.NUM_PIXELS)
    if a.ndim != 2 or a.shape[1] != contract.NUM_PIXELS:
        raise ImageError(f"image array has shape {a.shape}; expected (N, 784), (N, 28, 28) or (N, 28, 28, 1)")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(a.dtype, np.floating):
        raise ImageError(f"image array has dtype {a.dtype}; expected uint8 (0..255) or float (0..1)")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise ImageError("image array contains NaN or infinite values")
    if a.size and (a.min() < 0.0 or a.max() > 1.0):
        raise ImageError(f"float image values span [{a.min():g}, {a.max():g}]; expected [0, 1] "
                         "(pass uint8 0..255 arrays as uint8, or divide by 255)")
    return a


def load_image(path: ImagePath) -> np.ndarray:
    """Decode an image file (PNG, JPEG, anything Pillow reads) and return its 784 MNIST-form values."""
    return preprocess(decode_grayscale(path), name=str(path))


def decode_grayscale(path: ImagePath) -> np.ndarray:
    """Step 1: the file as float32 (H, W) grayscale 0..255."""
    return np.asarray(decode_image(path, "L"), dtype=np.float32)


def decode_image(path: ImagePath, mode: str):
    """The file as an upright Pillow image in ``mode`` ("L" or "RGB"), alpha composited over white."""
    Image = require("PIL.Image", "pillow", "client", "reading image files")
    from PIL import ImageOps, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            return img.convert(mode)
    except FileNotFoundError as e:
        raise ImageError(f"image file '{p}' does not exist") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageError(f"cannot read image file '{p}': {e}") from e


def preprocess(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Steps 2-6 on a float (H, W) grayscale image in 0..255 -> float32 (784,) in [0, 1]."""
    if gray.ndim != 2 or gray.size == 0:
        raise ImageError(f"{name}: expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    g = gray.astype(np.float32)
    if _border_mean(g) > LIGHT_BACKGROUND:
        g = 255.0 - g
    digit = _crop_to_ink(g, name)
    digit = _resize_longer_side(digit, DIGIT_BOX)
    canvas = _paste_centred(digit, SIDE)
    # BOX averaging cannot overshoot, but clipping keeps the [0, 1] promise exact at the edges.
    return np.clip(canvas / np.float32(255.0), 0.0, 1.0).astype(np.float32).reshape(-1)


def _border_mean(g: np.ndarray) -> float:
    h, w = g.shape
    mask = np.zeros((h, w), dtype=bool)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True
    return float(g[mask].mean())


def _crop_to_ink(g: np.ndarray, name: str) -> np.ndarray:
    peak = float(g.max())
    if peak <= 0.0:
        raise ImageError(f"{name}: no digit found (the image is blank after making its background dark)")
    rows = np.flatnonzero((g > INK_FRACTION * peak).any(axis=1))
    cols = np.flatnonzero((g > INK_FRACTION * peak).any(axis=0))
    return g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _resize_longer_side(g: np.ndarray, target: int) -> np.ndarray:
    from PIL import Image

    h, w = g.shape
    longer = max(h, w)
    new_w = max(1, _round_half_up(w * target / longer))
    new_h = max(1, _round_half_up(h * target / longer))
    resized = Image.fromarray(np.ascontiguousarray(g, dtype=np.float32)).resize(
        (new_w, new_h), Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32)


def _paste_centred(digit: np.ndarray, side: int) -> np.ndarray:
    h, w = digit.shape
    mass = float(digit.sum())
    if mass > 0.0:
        cy = float((digit.sum(axis=1) * np.arange(h)).sum()) / mass
        cx = float((digit.sum(axis=0) * np.arange(w)).sum()) / mass
    else:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    top = min(max(_round_half_up(CENTRE - cy), 0), side - h)
    left = min(max(_round_half_up(CENTRE - cx), 0), side - w)
    canvas = np.zeros((side, side), dtype=np.float32)
    canvas[top:top + h, left:left + w] = digit
    return canvas
