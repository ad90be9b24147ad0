"""The request the app's ServerClassifier builds, from ModelContract.Server, is one tfship's server
answers: same URL path, body keys and response keys, and the scores TensorFlow computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ios_swift
import preprocessing_cases

SERVER = {k.removeprefix("Server."): v for k, v in ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes()).items()
          if k.startswith("Server.")}
PIXEL_SCALE = ios_swift.read_contract(ios_swift.CONTRACT_FILE.read_bytes())["pixelScale"]
# Served and in-process scores come from the same TensorFlow graph; only JSON's float text differs.
SCORE_ATOL = 1e-6


@pytest.fixture(scope="module")
def rest_url(softmax_run):
    from tfship.serve.config import ModelConfig
    from tfship.serve.server import ModelServer, ServerOptions

    server = ModelServer(ServerOptions(models=(ModelConfig(SERVER["modelName"], softmax_run / "saved_model"),),
                                       grpc_port=None, rest_port=0, poll_seconds=0, grace_seconds=1))
    server.start()
    yield f"http://127.0.0.1:{server.rest_port}"
    server.stop()


def app_instance() -> list[float]:
    """What DigitPreprocessor.serverInstance sends for a drawn seven: 8-bit pixels times 1/255."""
    case = next(c for c in preprocessing_cases.compute_cases()["cases"] if c["name"] == "canvas_seven")
    pixels = np.floor(np.asarray(case["expected"], dtype=np.float64) + 0.5).clip(0, 255)
    return (pixels * PIXEL_SCALE).tolist()


def post(url: str, body: dict):
    import requests

    return requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30)


def test_the_apps_request_is_answered(rest_url, softmax_run):
    import tensorflow as tf

    instance = app_instance()
    path = SERVER["predictPathFormat"].replace("%@", SERVER["modelName"])
    response = post(rest_url + path, {SERVER["signatureKey"]: SERVER["signatureName"],
                                      SERVER["instancesKey"]: [instance]})
    assert response.status_code == 200, response.text
    scores = response.json()[SERVER["predictionsKey"]]
    assert np.asarray(scores).shape == (1, len(ios_swift.read_contract(
        ios_swift.CONTRACT_FILE.read_bytes())["labels"]))

    loaded = tf.saved_model.load(str(softmax_run / "saved_model" / "1"))
    expected = loaded.signatures[SERVER["signatureName"]](images=tf.constant([instance], tf.float32))
    np.testing.assert_allclose(scores, next(iter(expected.values())).numpy(), rtol=0, atol=SCORE_ATOL)


def test_an_error_comes_back_under_the_error_key(rest_url):
    path = SERVER["predictPathFormat"].replace("%@", "no_such_model")
    response = post(rest_url + path, {SERVER["signatureKey"]: SERVER["signatureName"],
                                      SERVER["instancesKey"]: [app_instance()]})
    assert response.status_code == 404
    assert "no_such_model" in response.json()[SERVER["errorKey"]]
