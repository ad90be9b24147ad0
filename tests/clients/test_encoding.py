"""Request encoding and answer decoding of both transports, without a server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfship.clients import GrpcClient, Prediction, RestClient, RetryPolicy, ServerError
from tfship.clients.base import _rows_to_scores
from tfship.clients.errors import ProtocolError, ServerUnavailableError, code_for_http_status
from tfship.clients.grpc_client import parse_target
from tfship.clients.rest_client import decode_classify, decode_predict, encode_classify, encode_predict
from tfship.errors import UsageError


@pytest.fixture
def batch() -> np.ndarray:
    # Values like k/255 and arbitrary floats: both must reach the server bit-exact.
    rng = np.random.default_rng(0)
    b = rng.integers(0, 256, (4, 784)).astype(np.float32) / np.float32(255)
    b[0, :10] = rng.random(10, dtype=np.float32)
    return b


@pytest.mark.parametrize("json_format", ["columnar", "row"])
def test_rest_json_carries_exact_float32(batch, json_format):
    body = json.loads(encode_predict(batch, "predict_images", "images", json_format))
    values = body["inputs"]["images"] if json_format == "columnar" else body["instances"]
    np.testing.assert_array_equal(np.asarray(values, dtype=np.float32), batch)
    assert body["signature_name"] == "predict_images"


def test_rest_decodes_both_answer_formats():
    scores = np.random.default_rng(1).random((2, 10), dtype=np.float32)
    as_json = json.loads(json.dumps(scores.tolist()))
    for body in ({"outputs": as_json}, {"outputs": {"scores": as_json, "other": [1, 2]}},
                 {"predictions": as_json}, {"predictions": [{"scores": r, "other": 1} for r in as_json]}):
        decoded = decode_predict(body, ("scores",), "srv")
        assert list(decoded) == ["scores"]
        np.testing.assert_array_equal(decoded["scores"], scores)
    with pytest.raises(ProtocolError, match="neither"):
        decode_predict({"error": "x"}, ("scores",), "srv")


def test_rest_decodes_string_outputs_and_base64():
    # TF Serving writes DT_STRING outputs as JSON strings, and binary ones (names ending in _bytes)
    # as {"b64": ...} (api_rest.md, "Encoding binary values").
    body = {"outputs": {"scores": [[0.25, 0.75]], "classes": [["cat", {"b64": "ZG9n"}]]}}
    decoded = decode_predict(body, ("scores", "classes"), "srv")
    assert decoded["classes"].tolist() == [["cat", "dog"]] and decoded["classes"].dtype == object


def test_rest_classify_round_trip(batch):
    body = json.loads(encode_classify(batch[:2], "serving_default", "x"))
    assert np.asarray(body["examples"][1]["x"], dtype=np.float32).tolist() == batch[1].tolist()
    rows = decode_classify({"results": [[["0", 0.25], ["1", 0.75]]]}, "srv")
    assert rows == [[("0", 0.25), ("1", 0.75)]]
    assert decode_classify({"result": [[["a", 1.0]]]}, "srv") == [[("a", 1.0)]]


def test_classify_rows_are_reordered_to_the_first_rows_labels():
    labels, scores = _rows_to_scores([[("0", 0.1), ("1", 0.9)], [("1", 0.3), ("0", 0.7)]], 2, "srv")
    assert labels == ("0", "1")
    np.testing.assert_array_equal(scores, np.array([[0.1, 0.9], [0.7, 0.3]], np.float32))


def test_top_k_classes_that_differ_per_image_keep_their_own_labels():
    # A top-k classifier names different classes per image: each image ranks only its own.
    labels, scores = _rows_to_scores([[("0", 0.1), ("1", 0.9)], [("0", 0.3), ("2", 0.7)]], 2, "srv")
    assert labels == ("0", "1", "2")
    p = Prediction(scores, labels, "m", None)
    assert [[(r.label, round(r.score, 2)) for r in row] for row in p.top_k(3)] == [
        [("1", 0.9), ("0", 0.1)], [("2", 0.7), ("0", 0.3)]]
    with pytest.raises(ProtocolError, match="repeats a label"):
        _rows_to_scores([[("0", 0.1), ("0", 0.9)]], 1, "srv")


def test_grpc_request_is_packed_tensor_content(batch):
    client = GrpcClient("grpc://localhost:1", "mnist", version=3)
    request = client.build_predict_request(batch, "predict_images", "images", ("scores",))
    tensor = request.inputs["images"]
    assert tensor.tensor_content == batch.astype("<f4").tobytes() and not tensor.float_val
    assert [d.size for d in tensor.tensor_shape.dim] == [4, 784]
    assert (request.model_spec.name, request.model_spec.version.value) == ("mnist", 3)
    assert request.model_spec.signature_name == "predict_images" and list(request.output_filter) == ["scores"]
    client.close()


def test_top_k_is_best_first():
    p = Prediction(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32), ("a", "b", "c"), "m", 1)
    assert [[r.label for r in row] for row in p.top_k(2)] == [["b", "c"], ["a", "c"]]
    assert [r.label for r in p.best] == ["b", "a"]
    assert p.top_k(1)[0][0].score == pytest.approx(0.7)


def test_targets_and_options_are_checked():
    assert parse_target("grpc://h:1") == ("h:1", False)
    assert parse_target("grpcs://h:1") == ("h:1", True)
    assert parse_target("h:8500") == ("h:8500", False)
    for bad in ("http://h:1", "h", "grpc://h:port"):
        with pytest.raises(UsageError):
            parse_target(bad)
    with pytest.raises(UsageError, match="http:// or https://"):
        RestClient("localhost:8501")
    with pytest.raises(UsageError, match="not both"):
        RestClient("http://h:1", "mnist", version=1, version_label="stable")


def test_rest_url_selects_version_or_label():
    assert RestClient("http://h:1/", "m").model_url == "http://h:1/v1/models/m"
    assert RestClient("http://h:1", "m", version=2).model_url == "http://h:1/v1/models/m/versions/2"
    assert RestClient("http://h:1", "m", version_label="canary").model_url == "http://h:1/v1/models/m/labels/canary"


def test_http_status_maps_to_canonical_codes():
    assert [code_for_http_status(s) for s in (400, 404, 503, 500, 418, 502)] == [
        "INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", "INTERNAL", "INVALID_ARGUMENT", "UNKNOWN"]


def test_backoff_grows_to_its_cap():
    assert list(RetryPolicy(attempts=6, initial_backoff=0.1, multiplier=2, max_backoff=0.5).waits()) == [
        0.1, 0.2, 0.4, 0.5, 0.5]
    assert list(RetryPolicy(attempts=1).waits()) == []


@pytest.mark.parametrize("make", [lambda: GrpcClient("127.0.0.1:9", retry=RetryPolicy(3, 0.01)),
                                  lambda: RestClient("http://127.0.0.1:9", retry=RetryPolicy(3, 0.01))],
                         ids=["grpc", "rest"])
def test_refused_connection_is_retried_then_reported(make, batch):
    # Port 9 (discard) is closed on loopback: every attempt is refused at once.
    with make() as client, pytest.raises(ServerUnavailableError) as info:
        client.predict(batch)
    assert info.value.attempts == 3 and info.value.code == "UNAVAILABLE"
    assert "127.0.0.1:9" in str(info.value)


def test_a_non_retryable_error_is_not_retried():
    client = RestClient("http://127.0.0.1:9", retry=RetryPolicy(5, 0.01))
    calls = []

    def failing():
        calls.append(1)
        raise ServerError("NOT_FOUND", "no such model", server="srv")

    with pytest.raises(ServerError, match="NOT_FOUND"):
        client._with_retries(failing)
    assert len(calls) == 1


@pytest.mark.parametrize("values, expected", [
    ([0.5], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]),      # fewer values: the last one repeats
    ([], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),         # none: zeros
    ([1, 2, 3, 4, 5, 6, 7], [[1, 2, 3], [4, 5, 6]]),  # more: the first six
])
def test_answers_with_short_value_lists_fill_as_tensorflow(values, expected):
    """The server's conversion (tfship.tensorproto, TensorFlow's Tensor::FromProto rule) reads the
    clients' answers too: an output sent as a short float_val list decodes as TF Serving's would."""
    from tfship.clients import _proto
    from tfship.clients.tensors import from_tensor_proto

    tensor = _proto.TensorProto(dtype=1, float_val=values)
    tensor.tensor_shape.dim.add(size=2)
    tensor.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(from_tensor_proto(tensor), np.array(expected, np.float32))


def test_cli_prints_probabilities_as_percent_and_logits_as_numbers():
    from tfship.clients.cli import score_format

    assert score_format(np.array([[0.2, 0.8]], np.float32)).format(0.8) == "80.0%"
    assert score_format(np.array([[0.2, np.nan]], np.float32)).format(0.2) == "20.0%"  # NaN: a top-k gap
    assert score_format(np.array([[-3.5, 7.25]], np.float32)).format(7.25) == "7.25"
