"""The MNIST-form preprocessing shared with the iOS app (docs/CLIENTS.md, "Preprocessing")."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tfship.clients.errors import ImageError
from tfship.clients.images import from_array, load_image, preprocess, to_batch


def _on_paper(digit01: np.ndarray, scale: int = 4, at=(10, 60), paper=(160, 200)) -> np.ndarray:
    """An MNIST digit as a scan would show it: enlarged, dark ink on white paper, off-centre."""
    big = np.asarray(Image.fromarray((digit01.reshape(28, 28) * 255).astype(np.float32)).resize(
        (28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    sheet = np.full(paper, 255.0, dtype=np.float32)
    sheet[at[0]:at[0] + big.shape[0], at[1]:at[1] + big.shape[1]] = 255.0 - big
    return sheet


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    a = img.reshape(28, 28)
    idx = np.arange(28)
    return float((a.sum(1) * idx).sum() / a.sum()), float((a.sum(0) * idx).sum() / a.sum())


def test_arrays_of_every_accepted_shape_and_dtype():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = u8.reshape(3, 784).astype(np.float32) / 255
    for variant in (u8, u8.reshape(3, 784), u8.reshape(3, 28, 28, 1)):
        np.testing.assert_array_equal(from_array(variant), expected)
    np.testing.assert_array_equal(from_array(expected.reshape(3, 28, 28).astype(np.float64)), expected)
    assert from_array(u8[0]).shape == (1, 784)
    assert from_array(expected[0]).shape == (1, 784)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 27, 27), np.uint8), "shape (2, 27, 27)"),
    (np.full((1, 784), 255.0, np.float32), "divide by 255"),
    (np.zeros((1, 784), np.int32), "dtype int32"),
    (np.full((1, 784), np.nan, np.float32), "NaN"),
])
def test_bad_arrays_say_what_is_wrong(bad, words):
    with pytest.raises(ImageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        from_array(bad)


def test_scanned_mnist_digits_come_back_in_mnist_form(mnist):
    """Enlarged, inverted, off-centre MNIST digits are restored close to the originals."""
    originals = mnist.test.flat_float()[:100]
    restored = np.stack([preprocess(_on_paper(x)) for x in originals])
    correlation = [np.corrcoef(a, b)[0, 1] for a, b in zip(restored, originals)]
    # Measured 0.94 mean: resampling twice (enlarge, then shrink) blurs strokes a little; a wrong
    # inversion, scale or centring drops it below 0.6.
    assert np.mean(correlation) > 0.9
    assert restored.dtype == np.float32 and restored.min() >= 0.0 and restored.max() <= 1.0


def test_digit_is_fitted_into_20_pixels_and_centred_by_mass():
    sheet = np.full((300, 120), 255.0, dtype=np.float32)
    sheet[40:240, 10:50] = 0.0   # a tall dark bar, far from the centre
    sheet[40:60, 50:110] = 0.0   # and a flag to the right: the mass is off the box centre
    out = preprocess(sheet).reshape(28, 28)
    rows = np.flatnonzero((out > 0.1).any(1))
    assert rows[-1] - rows[0] + 1 == 20  # longer side scaled to 20 px
    cy, cx = _centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_light_digit_on_dark_is_not_inverted():
    dark = np.zeros((50, 50), dtype=np.float32)
    dark[10:40, 20:30] = 200.0
    out = preprocess(dark).reshape(28, 28)
    assert out[14, 14] > 0.7 and out[0, 0] == 0.0


def test_blank_page_names_the_file(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(path)
    with pytest.raises(ImageError, match="blank.png.*no digit"):
        load_image(path)


def test_unreadable_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="cannot read image file .*notes.png"):
        load_image(bad)
    with pytest.raises(ImageError, match="missing.png' does not exist"):
        load_image(tmp_path / "missing.png")


def test_png_jpeg_and_transparent_files_agree(tmp_path, mnist):
    sheet = np.round(_on_paper(mnist.test.flat_float()[0])).astype(np.uint8)
    Image.fromarray(sheet).convert("RGB").save(tmp_path / "d.png")
    Image.fromarray(sheet).save(tmp_path / "d.jpg", quality=95)
    ink = Image.fromarray(255 - sheet)  # stroke opacity; colour black
    rgba = Image.new("RGBA", ink.size, (0, 0, 0, 0))
    rgba.putalpha(ink)
    rgba.save(tmp_path / "d_alpha.png")
    png, jpg, alpha = (load_image(tmp_path / n) for n in ("d.png", "d.jpg", "d_alpha.png"))
    assert np.abs(png - alpha).max() < 0.02  # alpha composited over white = the same scan
    assert np.abs(png - jpg).mean() < 0.02  # JPEG noise only
    batch = to_batch([tmp_path / "d.png", str(tmp_path / "d.jpg")])
    assert batch.shape == (2, 784)
