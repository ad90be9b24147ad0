"""Preprocessing cases shared by the Python clients and the iOS app.

Each case is a small grayscale image and what ``tfship.clients.images.preprocess`` makes of it
(28x28, on the 0..255 scale), or ``null`` when it finds no digit. The Swift package's
PreprocessingParityTests run DigitPreprocessor.swift on the same images and must get the same
pixels: under pytest on cases computed now (test_ios_swift_package.py), alone (``swift test`` on a
Mac) on the copy bundled with the tests, which test_ios_preprocessing_cases.py keeps current.

Regenerate after changing the preprocessing on purpose:  python tests/ios/preprocessing_cases.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CASES_FILE = (Path(__file__).resolve().parents[2] / "ios_demo" / "MNISTDemoCore" / "Tests" / "MNISTDemoCoreTests"
              / "Resources" / "preprocessing_cases.json")
# Offsets are floor(14 - centre + 0.5): a centre within this of a rounding edge could land one
# pixel apart in Swift's and NumPy's float arithmetic, so no case may sit that close.
MIN_ROUNDING_MARGIN = 1e-3


def _draw(size: tuple[int, int], background: int, ink: int, strokes, width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.new("L", size, background)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        if len(stroke) == 1:
            x, y = stroke[0]
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
        else:
            draw.line(stroke, fill=ink, width=width, joint="curve")
    return np.asarray(image, dtype=np.uint8)


def source_images() -> dict[str, np.ndarray]:
    """Inputs covering every branch of the preprocessing."""
    rng = np.random.default_rng(7)
    noisy = _draw((64, 64), 0, 255, [[(20, 12), (44, 14), (30, 52)]], 7).astype(np.int32)
    # Faint specks (below 10% of the maximum) must not widen the crop.
    noisy = np.maximum(noisy, (rng.random(noisy.shape) < 0.05) * 20).astype(np.uint8)
    # Symmetric shapes put the centre exactly on a rounding edge, so this small blob is lopsided.
    tiny = np.zeros((30, 30), dtype=np.uint8)
    tiny[17:20, 10:14] = [[255, 255, 120, 0], [255, 255, 255, 60], [90, 255, 255, 255]]
    heavy_left = np.zeros((40, 40), dtype=np.uint8)
    heavy_left[5:35, 5:12] = 255  # a thick bar with a thin tail: the centre of mass sits far left,
    heavy_left[18:20, 12:35] = 90  # so centring would push the digit out and must be clamped
    # Only pixels above 10% of the maximum are ink: a speck at 12% widens the crop, one at 9% does
    # not (Pillow draws without antialiasing, so the drawn cases have no values near the threshold).
    threshold = np.zeros((40, 40), dtype=np.uint8)
    threshold[8:31, 17:22] = 255
    threshold[9:12, 22:26] = 200
    threshold[35, 5] = 31  # 12.2% of 255: ink
    threshold[2, 36] = 23  # 9.0%: not ink
    return {
        # The app's own canvas: white strokes on black (a 7).
        "canvas_seven": _draw((84, 84), 0, 255, [[(18, 16), (64, 16), (34, 72)]], 6),
        # A scan of paper: dark ink on a light page, so it is inverted (a 2).
        "paper_two": _draw((60, 48), 235, 20, [[(14, 14), (30, 6), (44, 16), (14, 40), (48, 40)]], 5),
        # Much wider than tall: resized to 20 wide, aspect ratio kept (a minus sign).
        "wide_bar": _draw((70, 30), 0, 200, [[(8, 15), (60, 17)]], 4),
        # Smaller than 20 px: enlarged.
        "tiny_blob": tiny,
        "faint_noise": noisy,
        "heavy_left": heavy_left,
        "ink_threshold": threshold,
        # No ink at all, either way round: no classification.
        "blank": np.zeros((28, 28), dtype=np.uint8),
        "white_page": np.full((40, 30), 255, dtype=np.uint8),
    }


def _rounding_margin(gray: np.ndarray) -> float:
    # Uses the client's own step functions, so the margin is that of the code under comparison.
    from tfship.clients import images

    g = gray.astype(np.float32)
    if images._border_mean(g) > images.LIGHT_BACKGROUND:
        g = 255.0 - g
    digit = images._resize_longer_side(images._crop_to_ink(g, "case"), images.DIGIT_BOX)
    mass = float(digit.sum())
    h, w = digit.shape
    # Pixel-index coordinates, as the clients centre (their docstring, step 5).
    cy = float((digit.sum(axis=1) * np.arange(h)).sum()) / mass
    cx = float((digit.sum(axis=0) * np.arange(w)).sum()) / mass
    edges = [images.CENTRE - c + 0.5 for c in (cx, cy)]
    # floor(e) jumps where e is an integer: how far the nearest jump is.
    return min(abs(e - round(e)) for e in edges)


def compute_cases() -> dict:
    from tfship.clients import images
    from tfship.clients.errors import ImageError

    cases = []
    for name, gray in source_images().items():
        try:
            expected = images.preprocess(gray.astype(np.float32), name=name) * np.float32(255.0)
        except ImageError:
            expected = None
        if expected is not None:
            margin = _rounding_margin(gray)
            if margin < MIN_ROUNDING_MARGIN:
                raise ValueError(f"case {name}: centre of mass {margin:g} from a rounding edge; change the case")
        h, w = gray.shape
        cases.append({
            "name": name,
            "width": w,
            "height": h,
            "pixels": [int(v) for v in gray.reshape(-1)],
            "expected": None if expected is None else [round(float(v), 4) for v in expected],
        })
    return {"about": "Computed by tfship.clients.images.preprocess; regenerate with "
                     "'python tests/ios/preprocessing_cases.py'. Expected pixels are 28x28, row-major, 0..255.",
            "cases": cases}


def write(path: Path = CASES_FILE) -> None:
    path.write_text(json.dumps(compute_cases(), separators=(",", ":")) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {CASES_FILE}")
