"""The clients against served image classifiers that are not MNIST (tests/clients/image_models.py):
the signature, input, scores and labels read from the metadata, files made into each model's form,
over gRPC and REST, from Python and the CLI, compared with the model run in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from image_models import FLAT_RGB, GRAY_U8_SHAPE, LABELS, RGB_SHAPE, SWAP_V2_SHAPE, build_models, write_config
from live_server import start_server, stop_server, wait_until_available
from PIL import Image

from tfship.clients import connect

# Same SavedModel and kernels in process and in the server, inputs carried exactly both ways
# (test_server.py's reasoning); what is left is kernel summation order: ~1e-7 on softmax outputs.
SCORE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The three models, built once and served by one ``tfship serve`` (a model config file)."""
    root = tmp_path_factory.mktemp("image_models")
    models = build_models(root)
    proc = start_server(None, root / "serve.log", config_file=write_config(models, root / "models.config"))
    wait_until_available(proc, models=tuple(models))
    yield proc, models
    stop_server(proc)


@pytest.fixture(scope="module")
def in_process(served):
    """Each model's serving_default signature, loaded in this process."""
    import tensorflow as tf

    _, models = served
    signatures = {name: tf.saved_model.load(str(m.base / "1")).signatures["serving_default"]
                  for name, m in models.items() if name != "swap"}

    def run(name: str, **inputs) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}).items()}

    return run


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A 40x60 RGB photo with an alpha-free PNG, and a JPEG of another size."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(11)
    a = folder / "a.png"
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(a)
    b = folder / "b.png"
    Image.fromarray(rng.integers(0, 256, (90, 50, 3), dtype=np.uint8)).save(b)
    return [a, b]


def _expected_input(name: str, paths) -> tuple[str, np.ndarray]:
    """Each model's input for the photos, computed here with Pillow alone (not the clients' code)."""
    def resized(path, mode, h, w):
        with Image.open(path) as img:
            return np.asarray(img.convert(mode).resize((w, h), Image.Resampling.BILINEAR))

    if name == "rgb":
        return "pixels", np.stack([resized(p, "RGB", *RGB_SHAPE[:2]) for p in paths]).astype(np.float32) / 255
    if name == "gray_u8":
        return "image", np.stack([resized(p, "L", *GRAY_U8_SHAPE[:2]) for p in paths])[..., np.newaxis]
    flat = np.stack([resized(p, "RGB", *FLAT_RGB[:2]).reshape(-1) for p in paths])
    return "image", flat.astype(np.float32) / 255


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("name, labels, value_range, dtype", [
    ("rgb", tuple("01234"), "0..1", "float32"),
    ("gray_u8", tuple("012"), "0..255", "uint8"),
    ("labelled", LABELS, "0..1", "float32"),
])
def test_photos_are_classified_as_the_model_does_in_process(served, in_process, photos, transport, name,
                                                             labels, value_range, dtype):
    proc, _ = served
    input_name, batch = _expected_input(name, photos)
    expected = in_process(name, **{input_name: batch})
    with connect(getattr(proc, transport), name) as client:
        prediction = client.predict(photos)
    scores_name = "probabilities" if name == "labelled" else "output_0"
    assert np.abs(prediction.scores - expected[scores_name]).max() <= SCORE_TOLERANCE
    assert prediction.labels == labels
    assert prediction.labels_from == ("model" if name == "labelled" else "indices")
    form = prediction.input
    assert (form.signature, form.input_name, form.dtype, form.shape, form.value_range, form.preprocessing) == (
        "serving_default", input_name, dtype, batch.shape, value_range, "resize")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_encoded_image_input_gets_the_files_bytes(served, in_process, photos, transport):
    """A string [N] input named image_bytes (TF Serving's ResNet example) decodes the files itself."""
    proc, _ = served
    expected = in_process("encoded", image_bytes=np.array([p.read_bytes() for p in photos], dtype=object))
    with connect(getattr(proc, transport), "encoded") as client:
        prediction = client.predict(photos)
    assert np.abs(prediction.scores - expected["probabilities"]).max() <= SCORE_TOLERANCE
    assert (prediction.input.input_name, prediction.input.dtype, prediction.input.preprocessing) == (
        "image_bytes", "string", "file bytes")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_cli_predicts_a_photo_with_a_value_range(served, in_process, photos, transport):
    """The issue's command: ``tfship predict --server ... --model NAME photo.png`` on a Keras-3 RGB model."""
    proc, _ = served
    result = subprocess.run([sys.executable, "-m", "tfship.cli", "predict", "--server", getattr(proc, transport),
                             "--model", "rgb", "--range", "-1..1", "--top", "5", "--json", str(photos[0])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    _, unit = _expected_input("rgb", photos[:1])
    expected = in_process("rgb", pixels=unit * 2 - 1)["output_0"][0]
    top = answer["predictions"][0]["top"]
    assert [r["label"] for r in top] == [str(j) for j in np.argsort(-expected, kind="stable")]
    assert max(abs(r["score"] - expected[int(r["label"])]) for r in top) <= SCORE_TOLERANCE
    assert answer["input"]["value_range"] == "-1..1" and answer["input"]["shape"] == [1, 32, 32, 3]


def test_cli_labels_from_the_model_and_raw_npy_tensors(served, in_process, photos, tmp_path):
    proc, _ = served
    raw = np.random.default_rng(5).random((2, *RGB_SHAPE), dtype=np.float32) * 255  # raw: no scaling
    np.save(tmp_path / "raw.npy", raw)
    cli = [sys.executable, "-m", "tfship.cli", "predict", "--server", proc.grpc]
    labelled = subprocess.run([*cli, "--model", "labelled", "--top", "1", str(photos[1])],
                              capture_output=True, text=True, timeout=60)
    (tmp_path / "labels.txt").write_text("apple\nbanana\n\ncherry\ndate\nelder\n")  # blank lines skipped
    tensors = subprocess.run([*cli, "--model", "rgb", "--json", "--labels", str(tmp_path / "labels.txt"),
                              str(tmp_path / "raw.npy")], capture_output=True, text=True, timeout=60)
    assert labelled.returncode == 0 and tensors.returncode == 0, labelled.stderr + tensors.stderr
    header, line = labelled.stdout.strip().splitlines()
    expected = in_process("labelled", image=_expected_input("labelled", photos[1:])[1])
    best = expected["probabilities"][0].argmax()
    assert header.endswith("; labels: model") and line.split()[1] == expected["classes"][0][best].decode()
    answer = json.loads(tensors.stdout)
    reference = in_process("rgb", pixels=raw)["output_0"]
    names = ("apple", "banana", "cherry", "date", "elder")
    assert [p["label"] for p in answer["predictions"]] == [names[j] for j in reference.argmax(1)]
    assert answer["labels_from"] == "given"
    assert [p["image"] for p in answer["predictions"]] == [f"{tmp_path / 'raw.npy'}[{i}]" for i in range(2)]
    assert answer["input"]["preprocessing"] == "raw arrays" and answer["input"]["value_range"] is None


def test_wrong_signature_and_input_names_say_what_the_model_has(served, photos):
    proc, _ = served
    cli = [sys.executable, "-m", "tfship.cli", "predict", "--server", proc.rest, "--model", "rgb"]
    wrong = subprocess.run([*cli, "--signature", "predict_images", str(photos[0])], capture_output=True, text=True,
                           timeout=60)
    assert wrong.returncode == 1 and wrong.stderr.strip() == (
        "predict: error: model 'rgb' version 1 has no signature 'predict_images'; it has: serve, serving_default")
    wrong = subprocess.run([*cli, "--input", "images", str(photos[0])], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1 and wrong.stderr.strip() == (
        "predict: error: signature 'serving_default' of model 'rgb' version 1 has no input 'images'; "
        "its inputs: pixels DT_FLOAT [-1, 32, 32, 3]")


def test_a_new_version_that_takes_another_input_is_read_again(served, photos):
    """The metadata is cached per client; when the server refuses a request because a new version
    takes another input, the client reads the metadata again once and sends what it now takes."""
    proc, models = served
    clients = [connect(proc.grpc, "swap"), connect(proc.rest, "swap")]
    try:
        before = [client.predict(photos[:1]).input for client in clients]
        assert [(f.input_name, f.shape) for f in before] == [("pixels", (1, *RGB_SHAPE))] * 2
        base = models["swap"].base
        os.rename(base.parent / "swap_v2_staged", base / "2")  # one rename: the poller never sees half of it
        deadline = time.monotonic() + 60
        while [v.version for v in clients[0].status().versions if v.state == "AVAILABLE"] != [2]:
            assert time.monotonic() < deadline, "version 2 did not replace version 1 within 60 s"
            time.sleep(0.3)
        after = [client.predict(photos[:1]) for client in clients]
    finally:
        for client in clients:
            client.close()
    assert [(p.input.input_name, p.input.shape) for p in after] == [("image", (1, *SWAP_V2_SHAPE))] * 2
    assert after[0].version == 2 and all(p.scores.shape == (1, 5) for p in after)
