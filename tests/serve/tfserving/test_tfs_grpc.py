"""TF Serving's gRPC-side tests, ported: what a client of PredictionService and ModelService sees.

Sources (tensorflow/serving, tensorflow_serving/...): servables/tensorflow/predict_impl_test.cc (PI),
classification_service_test.cc (CS), regression_service_test.cc (RS), multi_inference_test.cc (MI),
model_servers/get_model_status_impl_test.cc (GS), model_servers/tensorflow_model_server_test.py (TMS).
"""

from __future__ import annotations

import grpc
import pytest

MODEL = "test_model"
VERSION = 123


def _code(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call(request, timeout=30)
    return e.value.code(), e.value.details()


def _tensor(values=(), dtype=1, shape=None, strings=()):
    from tensorflow.core.framework import tensor_pb2

    t = tensor_pb2.TensorProto(dtype=dtype)
    t.float_val.extend(values)
    t.string_val.extend(strings)
    for s in shape or ():
        t.tensor_shape.dim.add(size=s)
    return t


def _predict(name=MODEL, signature="", version=VERSION, inputs=None, output_filter=()):
    from tensorflow_serving.apis import predict_pb2

    r = predict_pb2.PredictRequest()
    if name is not None:
        r.model_spec.name = name
        if version is not None:
            r.model_spec.version.value = version
        r.model_spec.signature_name = signature
    for k, v in (inputs or {}).items():
        r.inputs[k].CopyFrom(v)
    r.output_filter.extend(output_filter)
    return r


def _scalar_float(value: float):
    # PI: expected outputs are `float_val: v, dtype: DT_FLOAT, tensor_shape {}`, a scalar.
    return _tensor([value])


# PI:86-110 MissingOrEmptyModelSpec, CS/RS InvalidModelSpec.
def test_missing_or_empty_model_spec(prediction):
    from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

    for call, message in ((prediction.Predict, predict_pb2.PredictRequest),
                          (prediction.Classify, classification_pb2.ClassificationRequest),
                          (prediction.Regress, regression_pb2.RegressionRequest)):
        request = message()
        assert _code(call, request)[0] == grpc.StatusCode.INVALID_ARGUMENT  # no model_spec
        request.model_spec.SetInParent()
        assert _code(call, request)[0] == grpc.StatusCode.INVALID_ARGUMENT  # no name
        request.model_spec.name = "test"
        assert _code(call, request)[0] == grpc.StatusCode.NOT_FOUND


def test_predict_empty_input_list(prediction):  # PI:112-126
    code, details = _code(prediction.Predict, _predict())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input size does not match signature: 0!=1" in details


def test_predict_inputs_dont_match_signature(prediction):  # PI:128-148
    request = _predict(inputs={"key": _tensor(dtype=7, shape=[1], strings=[b"any_key"])})
    assert _code(prediction.Predict, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_predict_output_filter(prediction):  # PI:150-180
    request = _predict(inputs={"x": _scalar_float(2.0)}, output_filter=["output_filter"])
    code, details = _code(prediction.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: output_filter" in details
    assert prediction.Predict(_predict(inputs={"x": _scalar_float(2.0)}, output_filter=["y"]), timeout=30)
    code, details = _code(prediction.Predict, _predict(inputs={"x": _scalar_float(2.0)}, output_filter=["y", "y"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "duplicate output tensor alias: y" in details


def test_predict_input_of_wrong_type(prediction):  # PI:182-202
    request = _predict(inputs={"x": _tensor(dtype=7, shape=[1], strings=[b"any_key"])}, output_filter=["y"])
    assert _code(prediction.Predict, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("signature, alias, out_alias, expected", [
    ("", "x", "y", 3.0),  # PI:204-230 PredictionSuccess
    ("regress_x2_to_y3", "inputs", "outputs", 4.0),  # PI:232-256 PredictionWithNamedRegressionSignature
    ("classify_x2_to_y3", "inputs", "scores", 4.0),  # PI:258-285 PredictionWithNamedClassificationSignature
])
def test_predict_success_with_a_scalar(prediction, signature, alias, out_alias, expected):
    # The input has no tensor_shape (a scalar) though the signature declares [-1, 1]: TF Serving
    # feeds it to the graph as it is, and answers a scalar.
    response = prediction.Predict(_predict(signature=signature, inputs={alias: _scalar_float(2.0)}), timeout=30)
    assert dict(response.outputs) == {out_alias: _scalar_float(expected)}
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == VERSION
    assert response.model_spec.signature_name == (signature or "serving_default")


def test_predict_with_customized_signatures(prediction):  # PI:287-368 (saved_model_counter)
    def call(signature, inputs=None, output_filter=()):
        r = prediction.Predict(_predict("counter", signature, None, inputs, output_filter), timeout=30)
        assert r.model_spec.signature_name == signature
        return dict(r.outputs)

    call("reset_counter")
    assert call("get_counter") == {"output": _scalar_float(0)}
    assert call("incr_counter") == {"output": _scalar_float(1)}
    assert call("reset_counter") == {"output": _scalar_float(0)}
    assert call("incr_counter", output_filter=["output"]) == {"output": _scalar_float(1)}
    assert call("incr_counter_by", {"delta": _scalar_float(3)}) == {"output": _scalar_float(4)}


def test_unknown_signature(prediction):
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    # predict_util.cc RunPredict: FAILED_PRECONDITION; CS:86-96, RS:86-96: INVALID_ARGUMENT.
    code, details = _code(prediction.Predict, _predict(signature="invalid_signature_name",
                                                       inputs={"x": _scalar_float(2.0)}))
    assert (code, details) == (grpc.StatusCode.FAILED_PRECONDITION,
                               'Serving signature key "invalid_signature_name" not found.')
    for call, message in ((prediction.Classify, classification_pb2.ClassificationRequest),
                          (prediction.Regress, regression_pb2.RegressionRequest)):
        request = message()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = "invalid_signature_name"
        assert _code(call, request)[0] == grpc.StatusCode.INVALID_ARGUMENT


def _examples(request, x: float, extra: bool = True):
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(x)
    if extra:  # CS/RS: features the model does not read
        example.features.feature["locale"].bytes_list.value.append(b"pt_BR")
        example.features.feature["age"].float_list.value.append(19.0)
    return request


@pytest.mark.parametrize("model, x, expected", [(MODEL, 80.0, 42.0),  # CS:98-147 ClassificationSuccess
                                                ("default", 2.0, 3.0),  # TMS:111-141 testClassify
                                                ("default_tf2", 2.0, 3.0)])  # TMS:143-149 testClassifyTf2
def test_classify(prediction, model, x, expected):
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "classify_x_to_y"
    response = prediction.Classify(_examples(request, x), timeout=30)
    assert len(response.result.classifications) == 1
    assert [(c.label, c.score) for c in response.result.classifications[0].classes] == [("", expected)]
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == (model, "classify_x_to_y", VERSION)


@pytest.mark.parametrize("model, x, expected", [(MODEL, 80.0, 42.0),  # RS:98-145 RegressionSuccess
                                                ("default", 2.0, 3.0),  # TMS:151-181 testRegress
                                                ("default_tf2", 2.0, 3.0)])  # TMS:183-189 testRegressTf2
def test_regress(prediction, model, x, expected):
    from tensorflow_serving.apis import regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "regress_x_to_y"
    response = prediction.Regress(_examples(request, x), timeout=30)
    assert [r.value for r in response.result.regressions] == [expected]
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == (model, "regress_x_to_y", VERSION)


def _multi(tasks, x=2.0, model=MODEL):
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    for name, signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = name if name is not None else model
        task.model_spec.signature_name = signature
        task.method_name = method
    if x is not None:
        _examples(request, x, extra=False)
    return request


REGRESS, CLASSIFY, PREDICT = "tensorflow/serving/regress", "tensorflow/serving/classify", "tensorflow/serving/predict"


# MI, both instantiations (TF1 model, and the TF2 export whose method names are all "predict").
@pytest.mark.parametrize("model", [MODEL, "default_tf2"])
@pytest.mark.parametrize("tasks, x, code, message", [
    ([(None, "regress_x_to_y", REGRESS)], None, grpc.StatusCode.INVALID_ARGUMENT, "Input is empty"),  # MI:126
    ([(None, "ThisSignatureDoesNotExist", REGRESS)], 2.0, grpc.StatusCode.INVALID_ARGUMENT,
     "signature not found"),  # MI:148
    ([(None, "regress_x_to_y", REGRESS), ("ModelDoesNotExist", "regress_x_to_y", REGRESS)], 2.0,
     grpc.StatusCode.INVALID_ARGUMENT, "must access the same model name"),  # MI:170
    ([(None, "regress_x_to_y", REGRESS), (None, "regress_x_to_y", REGRESS)], 2.0,
     grpc.StatusCode.INVALID_ARGUMENT, "Duplicate evaluation of signature: regress_x_to_y"),  # MI:196
    ([(None, "serving_default", PREDICT)], 2.0, grpc.StatusCode.UNIMPLEMENTED, "Unsupported signature"),  # MI:218
    ([("", "regress_x_to_y", REGRESS)], 2.0, grpc.StatusCode.INVALID_ARGUMENT,
     "Found ModelSpec with an empty model name."),  # multi_inference.cc:44
])
def test_multi_inference_errors(prediction, model, tasks, x, code, message):
    got, details = _code(prediction.MultiInference, _multi(tasks, x, model))
    assert got == code, details
    assert message in details


@pytest.mark.parametrize("model", [MODEL, "default_tf2"])
@pytest.mark.parametrize("tasks, expected", [
    ([("regress_x_to_y", REGRESS)], [("regression", 3.0)]),  # MI:240 ValidSingleSignatureTest
    ([("regress_x_to_y", REGRESS), ("regress_x_to_y2", REGRESS)],
     [("regression", 3.0), ("regression", 4.0)]),  # MI:270 MultipleValidRegressSignaturesTest
    ([("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY)],
     [("regression", 3.0), ("classification", 3.0)]),  # MI:310 RegressAndClassifySignaturesTest; TMS:191-235
])
def test_multi_inference(prediction, model, tasks, expected):
    response = prediction.MultiInference(_multi([(None, s, m) for s, m in tasks], 2.0, model), timeout=30)
    got = []
    for (signature, _), result in zip(tasks, response.results):
        assert (result.model_spec.name, result.model_spec.signature_name) == (model, signature)
        assert result.model_spec.version.value == VERSION
        if result.HasField("regression_result"):
            got.append(("regression", result.regression_result.regressions[0].value))
        else:
            got.append(("classification", result.classification_result.classifications[0].classes[0].score))
    assert got == expected


def _status_request(name=None, version=None, label=None):
    from tensorflow_serving.apis import get_model_status_pb2

    r = get_model_status_pb2.GetModelStatusRequest()
    if name is not None:
        r.model_spec.name = name
    if version is not None:
        r.model_spec.version.value = version
    if label is not None:
        r.model_spec.version_label = label
    return r


def test_get_model_status_errors(model_service):
    from tensorflow_serving.apis import get_model_status_pb2

    # GS:96-103 MissingOrEmptyModelSpecFailure; GS:105-118; GS:120-134.
    assert _code(model_service.GetModelStatus, get_model_status_pb2.GetModelStatusRequest())[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert _code(model_service.GetModelStatus, _status_request("nonexistent_model"))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(model_service.GetModelStatus, _status_request("half_plus_two_2_versions_all", 125))[0] == \
        grpc.StatusCode.NOT_FOUND


def test_get_model_status_all_and_single_versions(model_service):  # GS:136-175
    response = model_service.GetModelStatus(_status_request("half_plus_two_2_versions_all"), timeout=30)
    assert {s.version for s in response.model_version_status} == {123, 124}
    assert all((s.status.error_code, s.status.error_message) == (0, "") for s in response.model_version_status)
    response = model_service.GetModelStatus(_status_request("half_plus_two_2_versions_all", 123), timeout=30)
    assert [s.version for s in response.model_version_status] == [123]
    # TMS:93-109 testGetModelStatus.
    response = model_service.GetModelStatus(_status_request("default"), timeout=30)
    assert [(s.version, s.status.error_code) for s in response.model_version_status] == [(123, 0)]


def test_get_model_status_ignores_version_label(model_service):
    # get_model_status_impl.cc reads only model_spec.version: a label, even an unknown one, is ignored.
    response = model_service.GetModelStatus(_status_request("half_plus_two_2_versions_all", label="nope"),
                                            timeout=30)
    assert {s.version for s in response.model_version_status} == {123, 124}


def test_get_model_metadata(prediction):  # TMS:111-131 testGetModelMetadata
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=30)
    assert response.model_spec.name == "default"
    assert response.model_spec.version.value == VERSION
    assert list(response.metadata) == ["signature_def"]


@pytest.mark.parametrize("model, signature, expected, output_filter", [
    ("default", "serving_default", 3.0, ["y"]),  # TMS:237 testPredictSavedModel (VerifyPredictRequest)
    ("half_plus_three", "serving_default", 4.0, ["y"]),  # TMS:256-282 testGoodModelConfig
    ("half_plus_three", "serving_default", 4.0, []),
    ("default_tf2", "serving_default", 3.0, []),
])
def test_verify_predict_request(prediction, model, signature, expected, output_filter):
    # tensorflow_model_server_test_base.py VerifyPredictRequest: x = [2.0] with shape [1].
    response = prediction.Predict(_predict(model, signature, None, {"x": _tensor([2.0], shape=[1])}, output_filter),
                                  timeout=30)
    assert list(response.outputs) == ["y"]
    assert response.outputs["y"].dtype == 1
    assert list(response.outputs["y"].float_val) == [expected]
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == (model, signature, VERSION)
