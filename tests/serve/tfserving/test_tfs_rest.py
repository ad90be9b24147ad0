"""TF Serving's REST tests, ported: every case a client can see, over a real socket.

Sources (tensorflow/serving, tensorflow_serving/...):
- model_servers/http_rest_api_handler_test.cc (HRH), model_servers/http_rest_api_util_test.cc (HRU),
- util/net_http/server/internal/evhttp_request_test.cc (EVH),
- model_servers/tensorflow_model_server_test.py (TMS), and http_server.cc for the dispatcher.
The status of an error is what http_server.cc's ToHTTPStatusCode makes of the handler's code.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import requests

import tfs_models

HP2 = "saved_model_half_plus_two_2_versions"
RESERVED = "%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"  # HRU: "!#$%&'()*+,/:;=?@[]"
METADATA_JSON = Path(__file__).with_name("saved_model_half_plus_two_2_versions_metadata.json")


def _call(url: str, method: str, path: str, body=None, headers=None) -> requests.Response:
    data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.request(method, url + path, data=data, headers=headers, timeout=30)


def _error(r: requests.Response) -> str:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


# HRH:146-206 UnsupportedApiCalls; HRU:155-220 failure cases of ParseModelInfo.
@pytest.mark.parametrize("method, path, code, message", [
    ("GET", "/v1/foo", 400, "Malformed request"),  # HRH:150
    ("POST", "/v1/foo", 400, "Malformed request"),  # HRH:155
    ("GET", "/v1/models", 400, "Missing model name"),  # HRH:160
    ("GET", "/v1/models/debug/model_name", 400, "Malformed request"),  # HRH:165
    ("POST", "/v1/models", 400, "Malformed request"),  # HRH:170
    ("GET", "/v1/models/foo:predict", 400, "Malformed request"),  # HRH:175
    ("GET", "/v1/models/foo/version/50:predict", 400, "Malformed request"),  # HRH:180
    ("POST", "/v1/models/foo/version/50:regress", 400, "Malformed request"),  # HRH:185
    ("POST", "/v1/models/foo/versions/HELLO:regress", 400, "Malformed request"),  # HRH:191
    ("POST", "/v1/models/foo/versions/18446744073709551615:regress", 400, "Failed to convert version"),  # HRH:196
    ("POST", "/v1/models/foo/versions/18446744073709551615:predict", 400, "Failed to convert version"),  # HRU:203
    ("POST", "/v1/models/foo/metadata", 400, "Malformed request"),  # HRH:205
    ("POST", "/v1/models/foo/label/some_label:regress", 400, "Malformed request"),  # HRH:211
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", 400, "Malformed request"),  # HRH:216
    ("POST", "/v1/models/foo/versions/some_label:regress", 400, "Malformed request"),  # HRH:221
    ("POST", "/v1/models/foo/versions/string:predict", 400, "Malformed request"),  # HRU:198
    # http_server.cc: every method but OPTIONS reaches ProcessRequest, which only knows GET and POST.
    ("PUT", f"/v1/models/{HP2}", 400, f"Malformed request: PUT /v1/models/{HP2}"),
    ("DELETE", f"/v1/models/{HP2}", 400, f"Malformed request: DELETE /v1/models/{HP2}"),
    ("PATCH", f"/v1/models/{HP2}:predict", 400, "Malformed request: PATCH"),
    # The handler matches its method names exactly, after a case-insensitive path match.
    ("POST", f"/v1/models/{HP2}:PREDICT", 400, f"Malformed request: POST /v1/models/{HP2}:PREDICT"),
    # http_server.cc RestApiRequestDispatcher: only "(?i)/v1/.*" is handled; net_http answers 404.
    ("GET", "/v2/models/foo", 404, "/v2/models/foo"),  # EVH:78 SimpleGETNotFound
    ("POST", "/", 404, "/"),
])
def test_unsupported_api_calls(tfs_rest, method, path, code, message):
    r = _call(tfs_rest, method, path)
    assert r.status_code == code, r.text
    assert message in _error(r)


def test_cors_preflight(tfs_rest):
    # http_server.cc: OPTIONS with an http(s) Origin is answered OK; without, FAILED_PRECONDITION.
    r = _call(tfs_rest, "OPTIONS", f"/v1/models/{HP2}:predict", headers={"Origin": "http://example.com"})
    assert r.status_code == 200, r.text
    r = _call(tfs_rest, "OPTIONS", f"/v1/models/{HP2}:predict")
    assert r.status_code == 400
    assert _error(r) == "Origin header is missing in CORS preflight"


# HRH:228-246 PredictModelNameVersionErrors.
@pytest.mark.parametrize("path", ["/v1/models/foo:predict", "/v1/models/foo/versions/50:predict",
                                  f"/v1/models/{HP2}99:predict", f"/v1/models/{HP2}/versions/99:predict"])
def test_predict_unknown_model_or_version_is_not_found(tfs_rest, path):
    r = _call(tfs_rest, "POST", path, {"instances": [1]})
    assert r.status_code == 404, r.text
    assert _error(r)


# HRH:248-292 PredictRequestErrors.
@pytest.mark.parametrize("path, body, message", [
    (":predict", "", "JSON Parse error: The document is empty"),
    (":predict", "instances = [1, 2]", "JSON Parse error: Invalid value"),
    (":predict", {"instances": ["x", "y"]}, "not of expected type: float"),
    ("/labels/Version_Nonexistent:predict", {"instances": ["x", "y"]}, "Unrecognized servable version label"),
    (":predict", {"signature_name": 100}, "'signature_name' key must be a string value."),
])
def test_predict_request_errors(tfs_rest, path, body, message):
    r = _call(tfs_rest, "POST", f"/v1/models/{HP2}{path}", body)
    assert r.status_code == 400, r.text
    assert message in _error(r)


# HRH:294-352 Predict; TMS:480-520 testPredictREST, testPredictColumnarREST (model "default").
@pytest.mark.parametrize("model, path, body, expected", [
    (HP2, ":predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]}, {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    (HP2, "/versions/123:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
    (HP2, "/labels/Version_Label:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
    (HP2, "/versions/123:predict", {"signature_name": "serving_default", "instances": [3.0, 4.0]},
     {"predictions": [3.5, 4.0]}),
    (HP2, "/versions/123:predict", {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
     {"outputs": [3.5, 4.0]}),
    ("default", ":predict", {"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
    ("default", ":predict", {"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
])
def test_predict(tfs_rest, model, path, body, expected):
    r = _call(tfs_rest, "POST", f"/v1/models/{model}{path}", body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == expected


def test_predict_floats_are_written_as_tf_serving_writes_them(tfs_rest):
    # util/json_tensor.cc WriteDecimal: "%g", or max_digits10 when that does not round-trip; ".0" on
    # whole numbers. 0.5 * 0.1 + 2 in float32 is 2.04999995; TF Serving writes 2.05, never 2.049999952316284.
    r = _call(tfs_rest, "POST", f"/v1/models/{HP2}:predict", {"instances": [0.1, 2.0, 13999996.0, 1 / 3]})
    assert r.status_code == 200, r.text
    assert r.text.replace(" ", "").replace("\n", "") == '{"predictions":[2.05,3.0,7e+06,2.16666675]}'


# HRH:354-389 Regress; TMS:459-477 testRegressREST.
@pytest.mark.parametrize("model, path, x, expected", [
    (HP2, ":regress", 80.0, 42.0), (HP2, "/versions/123:regress", 80.0, 42.0),
    (HP2, "/labels/Version_Label:regress", 80.0, 42.0), ("default", ":regress", 2.0, 3.0)])
def test_regress(tfs_rest, model, path, x, expected):
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": x}]}
    r = _call(tfs_rest, "POST", f"/v1/models/{model}{path}", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [expected]}


# HRH:391-416 Classify; TMS:437-457 testClassifyREST.
@pytest.mark.parametrize("model, path, x, expected", [
    (HP2, ":classify", 20.0, 12.0), (HP2, "/labels/Version_Label:classify", 10.0, 7.0),
    ("default", ":classify", 2.0, 3.0)])
def test_classify(tfs_rest, model, path, x, expected):
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": x}]}
    r = _call(tfs_rest, "POST", f"/v1/models/{model}{path}", body)
    assert r.status_code == 200, r.text
    assert r.json() == {"results": [[["", expected]]]}


def _status(version: str = "123") -> dict:
    return {"model_version_status": [{"version": version, "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


# HRH:418-483 GetStatus; TMS:522-546 testGetStatusREST.
@pytest.mark.parametrize("path", [f"/v1/models/{HP2}", f"/v1/models/{HP2}/versions/123",
                                  f"/v1/models/{HP2}/labels/Version_Label", "/v1/models/default"])
def test_get_status(tfs_rest, path):
    r = _call(tfs_rest, "GET", path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == _status()


def _sorted(obj):
    # tensorflow_model_server_test_base.py SortedObject: the metadata has no order.
    if isinstance(obj, dict):
        return sorted((k, _sorted(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return sorted(_sorted(x) for x in obj)
    return obj


# HRH:485-503 GetModelMetadata (the testdata file is TF Serving's, with its tensor names: the rebuilt
# model's signature map carries them, see tfs_models.py); TMS:548-578 testGetModelMetadataREST.
@pytest.mark.parametrize("model, signatures", [(HP2, list(tfs_models.SIGNATURES)),
                                               ("default", tfs_models.CPU_SIGNATURES)])
def test_get_model_metadata(tfs_rest, model, signatures):
    expected = json.loads(METADATA_JSON.read_text())
    expected["model_spec"]["name"] = model
    defs = expected["metadata"]["signature_def"]["signature_def"]
    for name in [n for n in defs if n not in signatures]:
        del defs[name]
    r = _call(tfs_rest, "GET", f"/v1/models/{model}/metadata")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert _sorted(r.json()) == _sorted(expected)


# HRU:36-105 and 123-160: percent-encoded reserved characters in model names and labels are decoded
# after the path is matched (curl_easy_unescape), so "%2F" and "%3A" never split the path.
# A label is looked up before the model (server_core.cc GetModelVersionForLabel): an unknown one is
# INVALID_ARGUMENT even for an unknown model.
@pytest.mark.parametrize("method, path, code, message", [
    ("GET", f"/v1/models/modelname{RESERVED}", 404, "modelname!#$%&'()*+,/:;=?@[]"),
    ("GET", f"/v1/models/modelname{RESERVED}/labels/latest{RESERVED}/metadata", 400,
     "Unrecognized servable version label: latest!#$%&'()*+,/:;=?@[]"),
    ("POST", f"/v1/models/modelname{RESERVED}:predict", 404, "modelname!#$%&'()*+,/:;=?@[]"),
    ("POST", f"/v1/models/modelname{RESERVED}/labels/latest{RESERVED}:predict", 400,
     "Unrecognized servable version label: latest!#$%&'()*+,/:;=?@[]"),
])
def test_percent_encoded_names_are_decoded(tfs_rest, method, path, code, message):
    r = _call(tfs_rest, method, path, {"instances": [1.0]} if method == "POST" else None)
    assert r.status_code == code, r.text
    assert message in _error(r)


def test_percent_encoded_label_reaches_the_model(tfs_rest):
    # HRU:62-74: a label with reserved characters is decoded before it is looked up.
    r = _call(tfs_rest, "GET", f"/v1/models/{HP2}/labels/latest{RESERVED}/metadata")
    assert r.status_code == 400, r.text
    assert "Unrecognized servable version label: latest!#$%&'()*+,/:;=?@[]" in _error(r)
    r = _call(tfs_rest, "GET", "/v1/models/%64efault")  # "%64" is "d"
    assert r.status_code == 200 and r.json() == _status()
    # Status ignores the label (get_model_status_impl.cc reads model_spec.version only).
    r = _call(tfs_rest, "GET", f"/v1/models/{HP2}/labels/latest{RESERVED}")
    assert r.status_code == 200 and r.json() == _status()


def test_query_string_is_part_of_the_path(tfs_rest):
    # EVH:152-190 RequestUri: uri_path() keeps "?query"; the handler then sees it in the model name.
    r = _call(tfs_rest, "GET", "/v1/models/default?param=value")
    assert r.status_code == 404, r.text
    assert "default?param=value" in _error(r)


# EVH:264-372: a body with a Content-Encoding naming gzip is decompressed; an invalid one reads as empty.
def test_gzip_request_body(tfs_rest):
    body = gzip.compress(json.dumps({"instances": [2.0, 3.0, 4.0]}).encode())
    r = _call(tfs_rest, "POST", "/v1/models/default:predict", body, headers={"Content-Encoding": "my_gzip"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [3.0, 3.5, 4.0]}
    r = _call(tfs_rest, "POST", "/v1/models/default:predict", b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert "JSON Parse error: The document is empty" in _error(r)
