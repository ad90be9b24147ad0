"""Which signature, input and outputs the clients pick from a model's metadata, and how files and
arrays become that input: no server (the live tests are test_image_models.py and test_server.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tfship.clients.images import load_image
from tfship.clients.inputs import InputOptions, encode, encode_items
from tfship.clients.results import Metadata, Signature, TensorSpec
from tfship.clients.signatures import choose_signature, image_layout, plan_predict
from tfship.errors import SignatureError, UsageError


def _sig(inputs: dict, outputs: dict | None = None, method: str = "tensorflow/serving/predict") -> Signature:
    outputs = outputs if outputs is not None else {"output_0": ("DT_FLOAT", (-1, 5))}
    return Signature(method, {n: TensorSpec(*v) for n, v in inputs.items()},
                     {n: TensorSpec(*v) for n, v in outputs.items()})


def _meta(**signatures: Signature) -> Metadata:
    return Metadata("m", 1, dict(signatures))


RGB = _sig({"pixels": ("DT_FLOAT", (-1, 32, 32, 3))})
# tfship's MNIST contract = TF Serving's MNIST example: predict_images, and a classify serving_default.
MNIST = _meta(predict_images=_sig({"images": ("DT_FLOAT", (-1, 784))}, {"scores": ("DT_FLOAT", (-1, 10))}),
              serving_default=_sig({"inputs": ("DT_STRING", (-1,))},
                                   {"classes": ("DT_STRING", (-1, 10)), "scores": ("DT_FLOAT", (-1, 10))},
                                   "tensorflow/serving/classify"))


def test_keras_export_picks_serving_default():
    # Keras 3 model.export(): `serve` and `serving_default`, identical; TF Serving's default wins.
    plan = plan_predict(_meta(serve=RGB, serving_default=RGB, __saved_model_init_op=_sig({}, {})))
    assert (plan.signature, plan.input_name, plan.scores, plan.labels) == ("serving_default", "pixels", "output_0", None)
    assert (plan.layout.height, plan.layout.width, plan.layout.channels, plan.layout.axes) == (32, 32, 3, "NHWC")


def test_mnist_contract_picks_predict_images_over_the_classify_default():
    plan = plan_predict(MNIST)
    assert (plan.signature, plan.input_name, plan.scores) == ("predict_images", "images", "scores")
    assert plan.layout.is_mnist and plan.layout.axes == "flat"


def test_ambiguous_and_missing_signatures_are_errors_naming_them():
    with pytest.raises(SignatureError, match="several predict signatures that take images: a, b; name one"):
        choose_signature(_meta(a=RGB, b=RGB))
    with pytest.raises(SignatureError, match="has no signature 'nope'; it has: predict_images, serving_default"):
        choose_signature(MNIST, "nope")
    text = _meta(serving_default=_sig({"text": ("DT_STRING", (-1,))}))
    with pytest.raises(SignatureError, match=r"no predict signature that takes images .*serving_default \(text DT_STRING"):
        choose_signature(text)
    assert choose_signature(_meta(a=RGB, b=RGB), "b") == "b"


def test_inputs_and_outputs_are_checked_by_name():
    two_inputs = _meta(serving_default=_sig({"a": ("DT_FLOAT", (-1, 4, 4, 3)), "b": ("DT_FLOAT", (-1, 4, 4, 3))}))
    with pytest.raises(SignatureError, match="has 2 inputs \\(a, b\\).*--input"):
        plan_predict(two_inputs, "serving_default")
    assert plan_predict(two_inputs, "serving_default", "b").input_name == "b"
    with pytest.raises(SignatureError, match="no input 'pixel'; its inputs: pixels DT_FLOAT \\[-1, 32, 32, 3\\]"):
        plan_predict(_meta(serving_default=RGB), input_name="pixel")
    two_scores = _sig({"x": ("DT_FLOAT", (-1, 8, 8, 1))}, {"a": ("DT_FLOAT", (-1, 3)), "b": ("DT_FLOAT", (-1, 3))})
    with pytest.raises(SignatureError, match="several float \\[N, K\\] outputs \\(a, b\\); name the scores with --output"):
        plan_predict(_meta(serving_default=two_scores))
    labelled = _sig({"x": ("DT_FLOAT", (-1, 8, 8, 1))},
                    {"logits": ("DT_FLOAT", (-1, 3)), "scores": ("DT_FLOAT", (-1, 3)), "classes": ("DT_STRING", (-1, 3))})
    plan = plan_predict(_meta(serving_default=labelled))
    assert (plan.scores, plan.labels, plan.outputs()) == ("scores", "classes", ("scores", "classes"))


def test_encoded_image_inputs_are_image_signatures_but_tf_examples_are_not():
    # TF Serving's ResNet example (resnet_client.py sends JPEG bytes): image_bytes string [N].
    resnet = _sig({"image_bytes": ("DT_STRING", (-1,))},
                  {"classes": ("DT_INT64", (-1,)), "probabilities": ("DT_FLOAT", (-1, 1001))})
    plan = plan_predict(_meta(serving_default=resnet))
    assert (plan.input_name, plan.encoded, plan.scores, plan.labels) == ("image_bytes", True, "probabilities", None)
    with pytest.raises(SignatureError, match="input 'inputs' is DT_STRING \\[-1\\]; .* use --api classify"):
        plan_predict(MNIST, "serving_default")


def test_encoded_images_travel_as_bytes_and_b64(photo):
    from tfship.clients.rest_client import encode_predict

    resnet = _sig({"image_bytes": ("DT_STRING", (-1,))}, {"probabilities": ("DT_FLOAT", (-1, 5))})
    plan = plan_predict(_meta(serving_default=resnet))
    batch, form = encode([photo[0], photo[0]], plan)
    assert batch.tolist() == [photo[0].read_bytes()] * 2 and form.value_range is None
    body = encode_predict(batch, "serving_default", "image_bytes", "columnar")
    import base64
    import json

    values = json.loads(body)["inputs"]["image_bytes"]
    assert [base64.b64decode(v["b64"]) for v in values] == [photo[0].read_bytes()] * 2
    with pytest.raises(Exception, match="takes encoded image files .* not arrays"):
        encode(np.zeros((1, 4)), plan)


@pytest.mark.parametrize("shape, dtype, expected", [
    ((-1, 224, 224, 3), "DT_FLOAT", (224, 224, 3, "NHWC")),
    ((-1, 3, 64, 48), "DT_FLOAT", (64, 48, 3, "NCHW")),
    ((-1, 28, 28), "DT_FLOAT", (28, 28, 1, "NHW")),  # Keras' Flatten(input_shape=(28, 28)) tutorial model
    ((-1, -1, -1, 3), "DT_UINT8", (None, None, 3, "NHWC")),
    ((-1, 784), "DT_FLOAT", (28, 28, 1, "flat")),
    ((-1, 3072), "DT_HALF", (32, 32, 3, "flat")),
    ((1, 96, 96, 1), "DT_INT32", (96, 96, 1, "NHWC")),
    ((-1, 10), "DT_FLOAT", None),  # not a square nor 3 x a square
    ((-1, 32, 32, 5), "DT_FLOAT", None),
    ((-1, 32, 32, 3), "DT_STRING", None),
    ((-1, 32, 32, 3), "DT_BOOL", None),
    (None, "DT_FLOAT", None),
])
def test_image_layouts(shape, dtype, expected):
    layout = image_layout(TensorSpec(dtype, shape))
    assert (None if layout is None else (layout.height, layout.width, layout.channels, layout.axes)) == expected


def _plan(shape, dtype="DT_FLOAT", outputs=None):
    return plan_predict(_meta(serving_default=_sig({"x": (dtype, shape)}, outputs)))


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 40x60 RGB photo and its pixels."""
    pixels = np.random.default_rng(3).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_photo_becomes_rgb_resized_in_each_value_range(photo):
    path, pixels = photo
    # Independently: Pillow's bilinear resize to W x H = 30 x 20.
    resized = np.asarray(Image.fromarray(pixels).resize((30, 20), Image.Resampling.BILINEAR), np.float32)
    plan = _plan((-1, 20, 30, 3))
    for value_range, expected in (("0..1", resized / 255), ("0..255", resized), ("-1..1", resized / 127.5 - 1)):
        batch, form = encode(path, plan, InputOptions(value_range))
        assert batch.shape == (1, 20, 30, 3) and batch.dtype == np.float32
        np.testing.assert_allclose(batch[0], expected, atol=1e-6)
        assert (form.value_range, form.preprocessing, form.image) == (value_range, "resize", "RGB 20x30")
    assert encode(path, plan)[1].value_range == "0..1"  # the default for float inputs


def test_layouts_dtypes_and_any_size(photo):
    path, pixels = photo
    gray = np.asarray(Image.fromarray(pixels).convert("L"), np.float32)
    batch, form = encode([path, path], _plan((-1, -1, -1, 1), "DT_UINT8"))
    assert batch.dtype == np.uint8 and batch.shape == (2, 40, 60, 1) and form.value_range == "0..255"
    np.testing.assert_array_equal(batch[0, ..., 0], gray.astype(np.uint8))  # no resize: exact pixels
    assert encode(path, _plan((-1, 3, -1, -1)))[0].shape == (1, 3, 40, 60)
    small = path.parent / "small.png"
    Image.fromarray(pixels[:20, :30]).save(small)
    with pytest.raises(Exception, match=r"do not stack into one batch \(\(40, 60, 1\), \(20, 30, 1\)\): images of an "
                                        "any-size input must all have the same size"):
        encode([path, small], _plan((-1, -1, -1, 1)))
    flat = encode(path, _plan((-1, 8 * 8 * 3), "DT_HALF"))[0]
    assert flat.shape == (1, 192) and flat.dtype == np.float16
    with pytest.raises(UsageError, match="'x' of signature 'serving_default' is uint8: it takes pixel values 0..255, not 0..1"):
        encode(path, _plan((-1, 8, 8, 3), "DT_UINT8"), InputOptions("0..1"))
    with pytest.raises(UsageError, match="not one of 0..1, 0..255, -1..1"):
        InputOptions("0..100")


def test_mnist_shaped_inputs_keep_mnist_preprocessing(tmp_path, mnist):
    digit = tmp_path / "digit.png"
    Image.fromarray(255 - mnist.test.images[0].reshape(28, 28)).resize((84, 84)).save(digit)
    expected = load_image(digit)
    for shape in ((-1, 784), (-1, 28, 28, 1), (-1, 28, 28)):
        batch, form = encode(digit, _plan(shape))
        assert form.preprocessing == "mnist"
        np.testing.assert_array_equal(batch.reshape(784), expected)  # bit-exact: the MNIST clients' values
    batch, _ = encode(digit, _plan((-1, 784)), InputOptions("0..255"))
    np.testing.assert_allclose(batch[0], expected * 255, atol=1e-4)
    plain = encode(digit, _plan((-1, 784)), InputOptions(preprocessing="resize"))[0]
    assert plain.shape == (1, 784) and not np.array_equal(plain[0], expected)
    with pytest.raises(UsageError, match="MNIST preprocessing makes 28x28 grayscale images, but input 'x'"):
        encode(digit, _plan((-1, 32, 32, 3)), InputOptions(preprocessing="mnist"))


def test_arrays_are_raw_tensors(tmp_path):
    plan = _plan((-1, 4, 4, 3))
    x = np.random.default_rng(0).random((2, 4, 4, 3)) * 300  # any values: raw means raw
    np.save(tmp_path / "x.npy", x)
    names, batch, form = encode_items([tmp_path / "x.npy", x[0]], plan, InputOptions())
    assert names == [f"{tmp_path / 'x.npy'}[0]", f"{tmp_path / 'x.npy'}[1]", "array[0]"]
    np.testing.assert_array_equal(batch, np.concatenate([x, x[:1]]).astype(np.float32))
    assert (form.preprocessing, form.value_range) == ("raw arrays", None)
    assert encode(x.reshape(2, 48), _plan((-1, 48)))[0].shape == (2, 48)
    with pytest.raises(Exception, match=r"array of shape \(2, 5\) does not fit input 'x' \[-1, 4, 4, 3\] of signature "
                                        r"'serving_default' \(expected one example \(4, 4, 3\) or a batch \(N, 4, 4, 3\)"):
        encode(np.zeros((2, 5)), plan)
    with pytest.raises(Exception, match="dtype float64 cannot be sent as input 'x' .* which takes uint8"):
        encode(x, _plan((-1, 4, 4, 3), "DT_UINT8"))


def test_a_non_image_input_takes_arrays_and_says_so_for_files(photo):
    plan = plan_predict(_meta(serving_default=_sig({"features": ("DT_FLOAT", (-1, 10))})), "serving_default")
    assert plan.layout is None
    assert encode(np.ones(10), plan)[0].shape == (1, 10)
    with pytest.raises(Exception, match=r"input 'features' of signature 'serving_default' is DT_FLOAT \[-1, 10\], "
                                        r"not an image batch .* send a .npy array"):
        encode(photo[0], plan)


def test_a_fixed_batch_size_splits_the_requests():
    from tfship.clients.base import _split

    plan = _plan((1, 8, 8, 3))
    assert plan.fixed_batch == 1
    assert [c.shape for c in _split(np.zeros((3, 8, 8, 3), np.float32), plan)] == [(1, 8, 8, 3)] * 3
    with pytest.raises(SignatureError, match="input 'x' of signature 'serving_default' takes batches of exactly 2; "
                                             "3 inputs do not split into them"):
        _split(np.zeros((3, 8, 8, 3), np.float32), _plan((2, 8, 8, 3)))
    assert _plan((-1, 8, 8, 3)).fixed_batch is None
