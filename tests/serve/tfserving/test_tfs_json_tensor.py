"""TF Serving's util/json_tensor_test.cc (JT), ported against tfship's JSON <-> tensor functions.

``FillPredictRequestFromJson`` is ``parse_body`` + ``predict_inputs``; ``MakeJsonFromTensors`` is
``predict_response``. Expected tensors are compared as arrays (dtype, shape, values).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfship.serve import json_api, json_writer
from tfship.serve.errors import InvalidArgumentError
from tfship.serve.servable import TensorSpec

F32, F64, I32, STR = 1, 2, 3, 7


def _decode(body: str, **dtypes):
    doc = json_api.parse_body(body.encode())
    json_api.signature_name(doc)  # FillPredictRequestFromJson reads the signature name first
    return json_api.predict_inputs(doc, {k: TensorSpec(v, None) for k, v in dtypes.items()})


def _eq(got: np.ndarray, expected, dtype) -> None:
    expected = np.asarray(expected, dtype=dtype)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_single_unnamed_tensor():  # JT:57, JT:298 (with signature_name), JT:326 (non-null-terminated)
    inputs, form = _decode('{"instances": [[1,2],[3,4],[5,6]]}', default=I32)
    assert form == json_api.ROW
    _eq(inputs["default"], [[1, 2], [3, 4], [5, 6]], np.int32)
    doc = json_api.parse_body(b'{"signature_name": "predict_images", "instances": [[1,2]]}')
    assert json_api.signature_name(doc) == "predict_images"


def test_mixed_input_for_float_and_double():  # JT:121, JT:149
    inputs, _ = _decode('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', default=F32)
    _eq(inputs["default"], [1, 2, 3, 4, 5.003, 0.007, 0], np.float32)
    inputs, _ = _decode('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', default=F64)
    _eq(inputs["default"], [1, 2, 3, 4, 0.662, 0, 0], np.float64)


def test_float_precision_loss_and_range():  # JT:183, JT:224, JT:261
    for text in ("1435774380", "1435774380.0"):
        _eq(_decode(f'{{"instances": [{text}]}}', default=F32)[0]["default"], [1435774380], np.float32)
    big = repr(float(np.finfo(np.float64).max))
    _eq(_decode(f'{{"instances": [{big}, -{big}]}}', default=F32)[0]["default"], [np.inf, -np.inf], np.float32)
    tiny = repr(float(np.finfo(np.float64).tiny))
    got = _decode(f'{{"instances": [{tiny}, -{tiny}]}}', default=F32)[0]["default"]
    _eq(got, [0.0, -0.0], np.float32)
    assert np.signbit(got[1])


def test_base64():  # JT:357, JT:382, JT:408
    _eq(_decode('{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}', default=STR)[0]["default"],
        [b"hello", b"world"], object)
    _eq(_decode('{"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}', default=STR)[0]["default"],
        [[b"hello"], [b"world"]], object)
    _eq(_decode('{"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]}',
                default=STR)[0]["default"], [[[b"hello"], [b"world"]]], object)


def test_multiple_named_tensors():  # JT:439
    inputs, form = _decode('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN],
         "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity],
         "dbl_tensor": [2.0]}]}''', int_tensor=I32, str_tensor=STR, float_tensor=F32, dbl_tensor=F64)
    assert form == json_api.ROW
    _eq(inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)
    _eq(inputs["str_tensor"], [[b"foo", b"bar"], [b"baz", b"bat"]], object)
    _eq(inputs["float_tensor"], [[1.0, np.nan], [2.0, np.inf]], np.float32)
    _eq(inputs["dbl_tensor"], [[np.nan], [2.0]], np.float64)


def test_columnar_format():  # JT:529, JT:589
    for body in ('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'):
        inputs, form = _decode(body, int_tensor=I32)
        assert form == json_api.COLUMNAR
        _eq(inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]]], np.int32)
    inputs, _ = _decode('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], '
                        '"bin_tensor": {"b64": "aGVsbG8="}}}', int_tensor=I32, str_tensor=STR, bin_tensor=STR)
    _eq(inputs["str_tensor"], [b"foo", b"bar"], object)
    _eq(inputs["bin_tensor"], b"hello", object)  # a scalar


@pytest.mark.parametrize("body, dtypes, message", [
    ("", dict(default=I32), "document is empty"),  # JT:642
    ('{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', dict(default=I32), "must be a string value"),
    ('{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}', dict(default=I32),
     "Not formatted correctly"),
    ('{"instances": [[1,2],[3,4],[5,6,7]]}', dict(default=I32), "Expecting tensor size"),
    ('{"instances": [[1,2],[3,4],[[5,6]]]}', dict(default=I32), "Expecting shape"),
    ('{"instances": [1, [1]]}', dict(default=I32), "Expecting shape"),
    ('{"instances": [[1,2],["a", "b"]]}', dict(default=I32), "not of expected type"),
    # JT:705 MultipleNamedTensorErrors.
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}',
     dict(int_tensor=I32, str_tensor=STR), "Expecting shape"),
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}',
     dict(int_tensor=I32, str_tensor=STR), "Expecting tensor size"),
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, [1, 20, 30], '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}',
     dict(int_tensor=I32, str_tensor=STR), "Expecting object but got list"),
    ('{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}', dict(str_tensor=STR),
     "Expecting value/list but got object"),
])
def test_decoding_errors(body, dtypes, message):
    with pytest.raises(InvalidArgumentError, match=None) as e:
        _decode(body, **dtypes)
    assert message in e.value.message


def test_deeply_nested_documents():
    # JT:87 DeeplyNestedWellFormed: 500,000 levels in a member TF Serving does not read are fine.
    inputs, _ = _decode('{"instances":[1], "nested":' + "[" * 500_000 + "]" * 500_000 + "}", default=I32)
    _eq(inputs["default"], [1], np.int32)
    # JT:104 DeeplyNestedMalformed: as deep a signature_name is not a string.
    with pytest.raises(InvalidArgumentError) as e:
        _decode('{"signature_name":' + "[" * 500_000 + "]" * 500_000 + "}", default=I32)
    assert "key must be a string value" in e.value.message


def _as_strings(text: str):
    # JT CompareJsonAllValuesAsStrings: numbers compared as the text TF Serving wrote.
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def test_encode_tensors():  # JT:832, JT:871, JT:897
    ints = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2], np.int32).reshape(2, 3, 2)
    want = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]
    assert json.loads(json_writer.predict_response({"int_tensor": ints}, json_api.ROW)) == {"predictions": want}
    assert json.loads(json_writer.predict_response({"int_tensor": ints}, json_api.COLUMNAR)) == {"outputs": want}
    five = np.arange(1, 6, dtype=np.int32)
    assert json.loads(json_writer.predict_response({"int_tensor": five}, json_api.ROW)) == {
        "predictions": [1, 2, 3, 4, 5]}
    strings = np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)
    assert json.loads(json_writer.predict_response({"str_tensor_bytes": strings}, json_api.ROW)) == {"predictions": [
        [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}


def test_encode_floats_six_digit_precision_and_non_finite():  # JT:924, JT:951
    t = np.array([9000000, 999999, 0.50000, .0003, .00003, 555557.5], np.float32).reshape(2, 3)
    assert _as_strings(json_writer.predict_response({"float_tensor": t}, json_api.ROW)) == {
        "predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]}
    t = np.array([np.nan, np.inf, 3, -np.inf], np.float32).reshape(2, 2)
    assert _as_strings(json_writer.predict_response({"float_tensor": t}, json_api.ROW)) == {
        "predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]}


@pytest.mark.parametrize("outputs, message", [
    ({}, "empty tensor map"),  # JT:976
    ({"tensor": np.array([1 + 2j, 3j], np.complex64)}, "tensor type: complex64"),
    ({"tensor": np.array(1, np.int32)}, "no shape information"),
])
def test_encode_errors(outputs, message):
    with pytest.raises(InvalidArgumentError) as e:
        json_writer.predict_response(outputs, json_api.ROW)
    assert message in e.value.message


def test_encode_results():  # JT:1534, JT:1559, JT:1573
    classes = np.array([[b"car", b"bike"], [b"bus", b"tram"]], dtype=object)
    scores = np.array([[0.2, 0.8], [0.6, 0.4]], np.float32)
    assert json.loads(json_writer.classify_response(classes, scores)) == {
        "results": [[["car", 0.2], ["bike", 0.8]], [["bus", 0.6], ["tram", 0.4]]]}
    assert json.loads(json_writer.regress_response(np.array([0.2, 0.5], np.float32))) == {"results": [0.2, 0.5]}
    assert _as_strings(json_writer.regress_response(np.array([np.nan, np.inf, 1], np.float32))) == {
        "results": ["NaN", "Infinity", "1.0"]}
