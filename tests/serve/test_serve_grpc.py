"""gRPC through the official tensorflow_serving.apis stubs: every RPC, the health service, status codes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from serve_helpers import MODEL, example_bytes, predict_request

# Same runtime and batch as the reference; float32 travels unchanged in float_val.
EXACT = 0.0
# Another batch size changes how the matmul kernels split their sums: last-bit float32 differences.
OTHER_BATCH = 1e-6


def _examples_request(message, images, context_image=None):
    from tensorflow.core.example import example_pb2

    req = message()
    req.model_spec.name = MODEL
    if context_image is None:
        for img in images:
            req.input.example_list.examples.add().ParseFromString(example_bytes(img))
    else:
        lst = req.input.example_list_with_context
        lst.context.ParseFromString(example_bytes(context_image))
        for _ in range(2):
            lst.examples.add().CopyFrom(example_pb2.Example())
    return req


def _code(call, *args) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call(*args, timeout=30)
    return e.value.code(), e.value.details()


@pytest.mark.parametrize("spec", [{}, {"version": 1}, {"label": "stable"}])
def test_predict_equals_in_process(prediction_stub, images, reference, spec):
    import tensorflow as tf

    resp = prediction_stub.Predict(predict_request(images, **spec), timeout=30)
    assert (resp.model_spec.name, resp.model_spec.version.value, resp.model_spec.signature_name) == (
        MODEL, 1, "predict_images")
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["scores"]), reference, rtol=0, atol=EXACT)


def test_predict_output_filter(prediction_stub, images):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = MODEL  # default signature: the classify one, which has two outputs
    req.inputs["inputs"].CopyFrom(tf.make_tensor_proto([example_bytes(images[0])]))
    req.output_filter.append("classes")
    resp = prediction_stub.Predict(req, timeout=30)
    assert list(resp.outputs) == ["classes"]
    assert [c.decode() for c in tf.make_ndarray(resp.outputs["classes"])[0]] == [str(i) for i in range(10)]
    req.output_filter[:] = ["nope"]
    assert _code(prediction_stub.Predict, req) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: nope Outputs expected to be in the set {classes,scores}.")


def test_classify(prediction_stub, images, reference):
    from tensorflow_serving.apis import classification_pb2

    resp = prediction_stub.Classify(_examples_request(classification_pb2.ClassificationRequest, images), timeout=30)
    assert (resp.model_spec.version.value, resp.model_spec.signature_name) == (1, "serving_default")
    got = [[c.score for c in row.classes] for row in resp.result.classifications]
    assert [c.label for c in resp.result.classifications[0].classes] == [str(i) for i in range(10)]
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), reference, rtol=0, atol=EXACT)


def test_classify_with_context(prediction_stub, images, reference):
    from tensorflow_serving.apis import classification_pb2

    req = _examples_request(classification_pb2.ClassificationRequest, images, context_image=images[1])
    resp = prediction_stub.Classify(req, timeout=30)
    got = [[c.score for c in row.classes] for row in resp.result.classifications]
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), reference[[1, 1]], rtol=0, atol=OTHER_BATCH)


def test_regress_without_regression_signature(prediction_stub, images):
    from tensorflow_serving.apis import regression_pb2

    req = _examples_request(regression_pb2.RegressionRequest, images)
    assert _code(prediction_stub.Regress, req) == (grpc.StatusCode.INVALID_ARGUMENT, "Expected one output Tensor.")


def test_multi_inference(prediction_stub, images, reference):
    from tensorflow_serving.apis import inference_pb2

    req = inference_pb2.MultiInferenceRequest()
    task = req.tasks.add()
    task.model_spec.name = MODEL
    task.method_name = "tensorflow/serving/classify"
    for img in images[:2]:
        req.input.example_list.examples.add().ParseFromString(example_bytes(img))
    resp = prediction_stub.MultiInference(req, timeout=30)
    got = [[c.score for c in row.classes] for row in resp.results[0].classification_result.classifications]
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), reference[:2], rtol=0, atol=OTHER_BATCH)
    req.tasks.add().CopyFrom(task)
    assert _code(prediction_stub.MultiInference, req) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Duplicate evaluation of signature: serving_default")


def test_metadata(prediction_stub):
    from tensorflow_serving.apis import get_model_metadata_pb2

    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = MODEL
    req.metadata_field.append("signature_def")
    resp = prediction_stub.GetModelMetadata(req, timeout=30)
    assert (resp.model_spec.name, resp.model_spec.version.value) == (MODEL, 1)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigs)
    assert [d.size for d in sigs.signature_def["predict_images"].inputs["images"].tensor_shape.dim] == [-1, 784]
    req.metadata_field[:] = ["graph"]
    assert _code(prediction_stub.GetModelMetadata, req) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Metadata field graph is not supported")


def test_model_status(model_stub):
    from tensorflow_serving.apis import get_model_status_pb2

    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = MODEL
    resp = model_stub.GetModelStatus(req, timeout=30)
    [status] = resp.model_version_status
    assert (status.version, status.state, status.status.error_code) == (
        1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0)
    req.model_spec.version.value = 3
    assert _code(model_stub.GetModelStatus, req) == (grpc.StatusCode.NOT_FOUND, f"Could not find version 3 of model {MODEL}")


def test_health(channel):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


def _wrong_dtype(images):
    req = predict_request(images.astype(np.float64))
    return req


def _missing_input(images):
    req = predict_request(images)
    req.inputs["extra"].CopyFrom(req.inputs.pop("images"))
    return req


@pytest.mark.parametrize("make, code, message", [
    (lambda im: predict_request(im, name="nope"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    (lambda im: predict_request(im, version=4), grpc.StatusCode.NOT_FOUND,
     f"Servable not found for request: Specific({MODEL}, 4)"),
    (lambda im: predict_request(im, label="canary"), grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: canary"),
    (lambda im: predict_request(im, signature="nope"), grpc.StatusCode.FAILED_PRECONDITION,
     'Serving signature key "nope" not found.'),
    (_wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be float but float64 is provided"),
    (_missing_input, grpc.StatusCode.INVALID_ARGUMENT,
     "input size does not match signature: 1!=1 len({extra}) != len({images}). Sent extra: {extra}. "
     "Missing but required: {images}."),
])
def test_predict_errors(prediction_stub, images, make, code, message):
    assert _code(prediction_stub.Predict, make(images)) == (code, message)


def test_shapes_are_the_runtimes_to_judge(prediction_stub, images):
    # TF Serving feeds a tensor of any shape to the graph (no check against the declared shape):
    # the runtime refuses what it cannot compute, as INVALID_ARGUMENT in its own words.
    code, message = _code(prediction_stub.Predict, predict_request(np.ascontiguousarray(images[:, :783])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "3132" in message and "Traceback" not in message


def test_malformed_tensor_does_not_crash(prediction_stub, images, reference):
    import tensorflow as tf

    req = predict_request(images)
    req.inputs["images"].tensor_content = b"\x00" * 7  # not a multiple of 4 bytes, nor 4*784*4
    code, _ = _code(prediction_stub.Predict, req)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    resp = prediction_stub.Predict(predict_request(images), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["scores"]), reference, rtol=0, atol=EXACT)
