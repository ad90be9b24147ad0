"""The clients against a real ``tfship serve`` on loopback: parity, errors, retries, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from live_server import MODEL_NAME, free_port, start_server, stop_server, wait_until_available
from PIL import Image

from tfship.clients import GrpcClient, RestClient, RetryPolicy, ServerError, connect
from tfship.errors import SignatureError
from tfship.savedmodel import resolve_model

# Same SavedModel, same TF kernels, float32 carried bit-exact both ways (packed bytes; JSON reprs
# that parse back to the same float32); what is left is batch-size-dependent summation order in
# TF's matmul/conv kernels when the server batches differently: ~1e-7 on softmax outputs.
SCORE_TOLERANCE = 1e-6
N_IMAGES = 1000


@pytest.fixture(scope="module")
def test_images(mnist) -> np.ndarray:
    return mnist.test.flat_float()[:N_IMAGES]


@pytest.fixture(scope="module")
def reference_scores(server, test_images) -> np.ndarray:
    """The SavedModel's own answer, in process."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(resolve_model(server.model_dir).path))
    return loaded.signatures["predict_images"](images=tf.constant(test_images))["scores"].numpy()


def _clients(server):
    return [GrpcClient(server.grpc, MODEL_NAME), RestClient(server.rest, MODEL_NAME),
            RestClient(server.rest, MODEL_NAME, json_format="row")]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["grpc", "rest-columnar", "rest-row"])
def test_predict_matches_the_savedmodel_in_process(server, test_images, reference_scores, index):
    with _clients(server)[index] as client:
        prediction = client.predict(test_images)
    assert prediction.scores.shape == (N_IMAGES, 10)
    assert np.abs(prediction.scores - reference_scores).max() <= SCORE_TOLERANCE
    assert prediction.labels == tuple("0123456789")


@pytest.mark.parametrize("index", [0, 1], ids=["grpc", "rest"])
def test_classify_matches_the_savedmodel_in_process(server, test_images, reference_scores, index):
    with _clients(server)[index] as client:
        result = client.classify(test_images)
    assert result.labels == tuple("0123456789")
    assert np.abs(result.scores - reference_scores).max() <= SCORE_TOLERANCE
    assert [r.label for r in result.best[:20]] == [str(i) for i in reference_scores[:20].argmax(1)]


def test_uint8_and_28x28_inputs_give_the_same_scores(server, mnist):
    u8 = mnist.test.images[:8]
    with GrpcClient(server.grpc) as client:
        a = client.predict(np.asarray(u8).reshape(8, 28, 28)).scores
        b = client.predict(np.asarray(u8).reshape(8, 784).astype(np.float32) / 255).scores
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_status_and_metadata(server, transport):
    with connect(getattr(server, transport), MODEL_NAME) as client:
        status = client.status()
        metadata = client.metadata()
    assert status.available and [v.version for v in status.versions] == [1]
    assert status.versions[0].error_code == "OK"
    signature = metadata.signatures["predict_images"]
    assert signature.inputs["images"].dtype == "DT_FLOAT"
    assert signature.inputs["images"].shape == (-1, 784)
    assert signature.outputs["scores"].shape == (-1, 10)
    assert set(metadata.signatures["serving_default"].outputs) == {"classes", "scores"}
    assert metadata.version == 1


@pytest.mark.parametrize("transport, http_status", [("grpc", None), ("rest", 404)])
def test_unknown_model_surfaces_not_found_with_the_servers_message(server, transport, http_status):
    with connect(getattr(server, transport), "no_such_model") as client, pytest.raises(ServerError) as info:
        client.predict(np.zeros((1, 784), np.float32))
    assert info.value.code == "NOT_FOUND"
    assert "no_such_model" in info.value.message
    assert info.value.http_status == http_status


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_unknown_version_is_a_server_error_and_unknown_signature_names_the_choices(server, transport):
    with connect(getattr(server, transport), MODEL_NAME, version=99) as client, pytest.raises(ServerError) as info:
        client.status()
    assert info.value.code == "NOT_FOUND"
    with connect(getattr(server, transport), MODEL_NAME) as client, pytest.raises(SignatureError) as info:
        client.predict(np.zeros((1, 784), np.float32), signature="no_such_signature")
    assert str(info.value) == ("model 'mnist' version 1 has no signature 'no_such_signature'; it has: "
                               "predict_images, serving_default")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_mnist_contract_is_read_from_the_metadata(server, transport):
    """TF Serving's MNIST names: predict_images is chosen (serving_default is the classify signature)."""
    with connect(getattr(server, transport), MODEL_NAME) as client:
        prediction = client.predict(np.zeros((2, 784), np.float32))
        assert client._metadata_cache is not None  # read once, then reused
        client.predict(np.zeros((1, 784), np.float32))
    assert (prediction.input.signature, prediction.input.input_name, prediction.input.preprocessing) == (
        "predict_images", "images", "mnist arrays")
    assert prediction.labels_from == "indices" and prediction.labels == tuple("0123456789")


def test_retry_reaches_a_server_that_starts_late(server, tmp_path):
    """Requests sent before the server is up are refused, retried with backoff, then answered."""
    grpc_port, rest_port = free_port(), free_port()
    started: list = []

    def start_later() -> None:
        time.sleep(1.0)
        started.append(start_server(server.model_dir, tmp_path / "late.log", grpc_port, rest_port))

    thread = threading.Thread(target=start_later)
    begin = time.monotonic()
    thread.start()
    try:
        # The server needs a TensorFlow import and a model load: allow ~60 s of backoff.
        retry = RetryPolicy(attempts=80, initial_backoff=0.2, multiplier=1.5, max_backoff=1.0)
        with GrpcClient(f"127.0.0.1:{grpc_port}", MODEL_NAME, retry=retry) as client:
            status = client.status()
        with RestClient(f"http://127.0.0.1:{rest_port}", MODEL_NAME, retry=retry) as client:
            prediction = client.predict(np.zeros((1, 784), np.float32))
    finally:
        thread.join()
        stop_server(started[0])
    assert time.monotonic() - begin > 1.0  # the first attempts really were refused
    assert status.available and prediction.scores.shape == (1, 10)


# -- the CLI, in a subprocess as a user runs it ----------------------------------------------------

def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfship.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist):
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for i in range(3):
        paper = 255 - mnist.test.images[i].reshape(28, 28)
        path = folder / f"digit{i}.png"
        Image.fromarray(np.asarray(paper, np.uint8)).resize((84, 84)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_cli_predict_prints_label_confidence_and_top3(server, digit_files, mnist, transport):
    result = _cli("predict", "--server", getattr(server, transport), "--model", MODEL_NAME,
                  *map(str, digit_files))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.strip().splitlines()
    assert header == (f"# {MODEL_NAME}{' version 1' if transport == 'grpc' else ''}: signature 'predict_images', "
                      "input 'images' float32 3x784 (grayscale 28x28 (flat), mnist, values 0..1); labels: indices")
    assert len(lines) == 3 and all("top 3:" in line for line in lines)
    as_json = _cli("predict", "--server", getattr(server, transport), "--json", *map(str, digit_files))
    predictions = json.loads(as_json.stdout)["predictions"]
    assert [len(p["top"]) for p in predictions] == [3, 3, 3]
    assert all(0.0 <= p["confidence"] <= 1.0 for p in predictions)
    # A trained CNN reads these three clean digits right.
    assert [p["label"] for p in predictions] == [str(int(x)) for x in mnist.test.labels[:3]]


def test_cli_status_and_metadata(server):
    status = _cli("status", "--server", server.grpc, "--json")
    assert json.loads(status.stdout)["versions"][0]["state"] == "AVAILABLE"
    text = _cli("metadata", "--server", server.rest)
    assert text.returncode == 0 and "predict_images" in text.stdout and "DT_FLOAT [-1, 784]" in text.stdout
    assert text.stdout.strip().splitlines()[-1] == (
        "tfship predict uses: signature 'predict_images', input 'images' (grayscale 28x28 (flat) images, float32), "
        "scores 'scores', labels from indices")


@pytest.mark.parametrize("args, words", [
    (["--model", "nope"], "NOT_FOUND"),
    (["--server", "grpc://127.0.0.1:9", "--attempts", "2"], "cannot reach grpc://127.0.0.1:9"),
    (["--server", "http://127.0.0.1:9", "--attempts", "2"], "cannot reach http://127.0.0.1:9"),
])
def test_cli_failures_are_one_clear_line(server, digit_files, args, words):
    full = ["predict", "--server", server.grpc, *args, str(digit_files[0])]
    result = _cli(*full)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr


def test_cli_unreadable_image_is_one_clear_line(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    result = _cli("predict", str(bad))
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "broken.png" in result.stderr
