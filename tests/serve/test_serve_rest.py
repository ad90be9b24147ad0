"""REST, with a plain HTTP client over a real socket: every endpoint, and TF Serving's codes and messages."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests

from serve_helpers import MAX_REQUEST_BYTES, MODEL, example_bytes

# Same runtime, same batch: the served numbers come from the same kernels as the reference, and
# only JSON's float64 round trip of a float32 stands between them.
EXACT = 1e-7
# Another batch size changes how the matmul kernels split their sums: last-bit float32 differences.
OTHER_BATCH = 1e-6


def _post(url: str, body) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(url, data=data, timeout=30)


def _status_body(version: int) -> dict:
    return {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_status(rest_url):
    for path in ("", "/versions/1", "/labels/stable"):
        r = requests.get(f"{rest_url}/v1/models/{MODEL}{path}", timeout=10)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == _status_body(1)


@pytest.mark.parametrize("path, code, message", [
    ("/v1/models/nope", 404, "Could not find any versions of model nope"),
    (f"/v1/models/{MODEL}/versions/9", 404, f"Could not find version 9 of model {MODEL}"),
    (f"/v1/models/{MODEL}/labels/canary/metadata", 400, "Unrecognized servable version label: canary"),
    ("/v1/models", 400, "Missing model name in request."),
    ("/v1/nothing", 400, "Malformed request: GET /v1/nothing"),
    (f"/v1/models/{MODEL}/versions/9/metadata", 404, f"Servable not found for request: Specific({MODEL}, 9)"),
])
def test_get_errors(rest_url, path, code, message):
    r = requests.get(rest_url + path, timeout=10)
    assert (r.status_code, r.json()) == (code, {"error": message})


def test_metadata(rest_url):
    r = requests.get(f"{rest_url}/v1/models/{MODEL}/metadata", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_spec"] == {"name": MODEL, "version": "1", "signature_name": ""}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    images = sigs["predict_images"]["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "784"]
    assert sigs["serving_default"]["inputs"]["inputs"]["dtype"] == "DT_STRING"
    assert set(sigs["serving_default"]["outputs"]) == {"classes", "scores"}


@pytest.mark.parametrize("path", ["", "/versions/1", "/labels/stable", "/LABELS/stable"])
def test_predict_row_form_equals_in_process(rest_url, images, reference, path):
    r = _post(f"{rest_url}/v1/models/{MODEL}{path}:predict",
              {"signature_name": "predict_images", "instances": images.tolist()})
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["predictions"], dtype=np.float32)
    np.testing.assert_allclose(got, reference, rtol=0, atol=EXACT)


@pytest.mark.parametrize("copies", [1, 8])
def test_predict_answers_on_both_sides_of_the_inline_body_limit(rest_url, images, reference, copies):
    """Small bodies are decoded on the event loop, large ones on a worker thread: same answers."""
    from tfship.serve.rest import INLINE_BODY_BYTES

    body = json.dumps({"signature_name": "predict_images", "instances": np.tile(images[:1], (copies, 1)).tolist()})
    assert (len(body) > INLINE_BODY_BYTES) == (copies > 1), len(body)
    r = _post(f"{rest_url}/v1/models/{MODEL}:predict", body)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["predictions"], dtype=np.float32)
    np.testing.assert_allclose(got, np.tile(reference[:1], (copies, 1)), rtol=0, atol=OTHER_BATCH)


def test_predict_columnar_form(rest_url, images, reference):
    r = _post(f"{rest_url}/v1/models/{MODEL}:predict",
              {"signature_name": "predict_images", "inputs": {"images": images[:2].tolist()}})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["outputs"]), reference[:2], rtol=0, atol=OTHER_BATCH)


def test_predict_b64_string_input(rest_url, images, reference):
    """The classify signature's string input fed through :predict as {"b64": serialized tf.Example}."""
    instances = [{"b64": base64.b64encode(example_bytes(img)).decode()} for img in images[:2]]
    r = _post(f"{rest_url}/v1/models/{MODEL}:predict", {"instances": instances})
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    assert rows[0]["classes"] == [str(i) for i in range(10)]
    np.testing.assert_allclose(np.asarray([row["scores"] for row in rows]), reference[:2], rtol=0, atol=OTHER_BATCH)


def test_classify(rest_url, images, reference):
    r = _post(f"{rest_url}/v1/models/{MODEL}:classify", {"examples": [{"x": img.tolist()} for img in images]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [label for label, _ in results[0]] == [str(i) for i in range(10)]
    np.testing.assert_allclose(np.asarray([[s for _, s in row] for row in results]), reference, rtol=0, atol=EXACT)


def test_classify_with_context(rest_url, images, reference):
    r = _post(f"{rest_url}/v1/models/{MODEL}/versions/1:classify",
              {"context": {"x": images[0].tolist()}, "examples": [{}, {}]})
    assert r.status_code == 200, r.text
    scores = np.asarray([[s for _, s in row] for row in r.json()["results"]])
    np.testing.assert_allclose(scores, reference[[0, 0]], rtol=0, atol=OTHER_BATCH)


@pytest.mark.parametrize("verb, body, code, message", [
    ("predict", b"{not json", 400, "JSON Parse error: Missing a name for object member. at offset: 1"),
    ("predict", b"", 400, "JSON Parse error: The document is empty"),
    ("predict", b"[1]", 400, "JSON Value: [1] Is not object"),
    ("predict", b"[" * 100_000, 400, "JSON Parse error: The document is nested too deeply"),
    ("predict", b"\x80{}", 400, "JSON Parse error: Invalid value. at offset: 0"),
    ("predict", {"signature_name": "predict_images"}, 400, "Missing 'inputs' or 'instances' key"),
    ("predict", {"signature_name": 3, "instances": [1]}, 400,
     "JSON Value: {\"signature_name\":3,\"instances\":[1]} not formatted correctly. 'signature_name' key must be a "
     "string value."),
    ("predict", {"signature_name": "nope", "instances": [[0.0]]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("predict", {"signature_name": "predict_images", "instances": []}, 400,
     'JSON Value: {"signature_name":"predict_images","instances":[]} No values in \'instances\' array'),
    ("predict", {"signature_name": "predict_images", "instances": [["a"] * 784]}, 400,
     "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String "
     "is not of expected type: float"),
    ("predict", {"signature_name": "predict_images", "instances": [[0.5] * 784, [0.5] * 783]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 784 but "
     "got: 783"),
    # No check against the declared shape (TF Serving has none): the runtime refuses, in its words.
    ("predict", {"signature_name": "predict_images", "instances": [[0.5] * 5]}, 400,
     "Input to reshape is a tensor with 5 values, but the requested shape has 784\n\t [[{{node "
     "mnist_cnn_1/to_image_1/Reshape}}]]"),
    ("classify", {"instances": [[0.5]]}, 400,
     "JSON Value: {\"instances\":[[0.5]]} When method is classify, key 'examples' is expected and was not found"),
    ("classify", {"examples": [{"x": [0, 0.5]}]}, 400, "Unexpected element type in feature: x expecting type: int64"),
    ("regress", {"examples": [{"x": [0.5] * 784}]}, 400, "Expected one output Tensor."),
])
def test_post_errors(rest_url, verb, body, code, message):
    r = _post(f"{rest_url}/v1/models/{MODEL}:{verb}", body)
    assert (r.status_code, r.json()) == (code, {"error": message})


def test_classify_bad_feature_type_is_tensorflow_invalid_argument(rest_url):
    r = _post(f"{rest_url}/v1/models/{MODEL}:classify", {"examples": [{"x": ["a"] * 784}]})
    assert r.status_code == 400
    # TensorFlow's own ParseExample message, as TF Serving passes it on.
    assert r.json()["error"] == ("Name: <unknown>, Key: x, Index: 0.  Data types don't match. Data type: string but "
                                 "expected type: float\n\t [[{{node ParseExample/ParseExampleV2}}]]")


@pytest.mark.parametrize("path, code, message", [
    ("/v1/models/nope:predict", 404, "Servable not found for request: Latest(nope)"),
    (f"/v1/models/{MODEL}/versions/9:predict", 404, f"Servable not found for request: Specific({MODEL}, 9)"),
    (f"/v1/models/{MODEL}/labels/canary:predict", 400, "Unrecognized servable version label: canary"),
    (f"/v1/models/{MODEL}:explain", 400, f"Malformed request: POST /v1/models/{MODEL}:explain"),
])
def test_unknown_model_version_label(rest_url, path, code, message):
    r = _post(rest_url + path, {"instances": [[0.0] * 784]})
    assert (r.status_code, r.json()) == (code, {"error": message})


def test_request_size_limit(rest_url):
    r = _post(f"{rest_url}/v1/models/{MODEL}:predict", b"[" + b"0," * MAX_REQUEST_BYTES + b"0]")
    assert r.status_code == 413
    assert "limit" in r.json()["error"]
    assert requests.get(f"{rest_url}/v1/models/{MODEL}", timeout=10).status_code == 200


def test_prometheus_metrics(rest_url, images):
    _post(f"{rest_url}/v1/models/{MODEL}:predict", {"signature_name": "predict_images", "instances": images.tolist()})
    _post(f"{rest_url}/v1/models/{MODEL}:predict", {"signature_name": "nope", "instances": [[0.0]]})
    r = requests.get(f"{rest_url}/monitoring/prometheus/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f':tensorflow:serving:request_count_total{{model_name="{MODEL}",status="OK"}}' in text
    assert f':tensorflow:serving:request_count_total{{model_name="{MODEL}",status="INVALID_ARGUMENT"}}' in text
    assert f':tensorflow:serving:request_latency_count{{API="Predict",entrypoint="REST",model_name="{MODEL}"}}' in text


def test_json_bodies_parse_fast_and_leniently():
    """orjson parses; what it rejects but Python's json accepts (NaN, huge integers) still parses, and
    errors keep their wording."""
    import math

    from tfship.serve.errors import InvalidArgumentError
    from tfship.serve.json_api import parse_body

    assert parse_body(b'{"instances": [[0.5, 1e-3]]}') == {"instances": [[0.5, 1e-3]]}
    doc = parse_body(b'{"a": NaN, "b": 123456789012345678901234567890}')
    assert math.isnan(doc["a"]) and doc["b"] == 123456789012345678901234567890
    with pytest.raises(InvalidArgumentError, match="^JSON Parse error: Invalid value. at offset: 6$"):
        parse_body(b'{"a": }')
    with pytest.raises(InvalidArgumentError, match="Is not object"):
        parse_body(b"[1, 2]")
