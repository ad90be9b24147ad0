"""tfship's own TF Serving messages against tensorflow-serving-api's: same schema, same bytes."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import descriptor_pool

from tfship.clients import _proto
from tfship.clients._proto import build
from tfship.clients.tensors import from_tensor_proto, to_tensor_proto

OUR_FILES = build.PROTO_FILES


@pytest.fixture(scope="module")
def tfs():
    """tensorflow-serving-api's modules (imports TensorFlow), registered in the default pool."""
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                         model_service_pb2, predict_pb2, prediction_service_pb2)

    return {"predict": predict_pb2, "classification": classification_pb2, "metadata": get_model_metadata_pb2,
            "status": get_model_status_pb2, "prediction_service": prediction_service_pb2,
            "model_service": model_service_pb2}


def _our_messages():
    for name in OUR_FILES:
        stack = list(_proto.POOL.FindFileByName(name).message_types_by_name.values())
        while stack:
            message = stack.pop()
            if not message.GetOptions().map_entry:
                yield message
            stack.extend(message.nested_types)


def _our_enums():
    for name in OUR_FILES:
        yield from _proto.POOL.FindFileByName(name).enum_types_by_name.values()
    for message in _our_messages():
        yield from message.enum_types


def _repeated(field) -> bool:
    return field.is_repeated  # protobuf 7 dropped FieldDescriptor.label


def test_every_field_matches_tensorflow_serving(tfs):
    theirs_pool = descriptor_pool.Default()
    checked = 0
    for ours in _our_messages():
        theirs = theirs_pool.FindMessageTypeByName(ours.full_name)
        for field in ours.fields:
            other = theirs.fields_by_number.get(field.number)
            where = f"{ours.full_name}.{field.name} (= {field.number})"
            assert other is not None, f"{where}: no such field number in TF Serving"
            assert (other.name, other.type, _repeated(other)) == (field.name, field.type, _repeated(field)), where
            if field.message_type is not None:
                assert other.message_type.full_name == field.message_type.full_name, where
            if field.enum_type is not None:
                assert other.enum_type.full_name == field.enum_type.full_name, where
            checked += 1
    assert checked > 60  # the walk really covered the messages


def test_every_enum_value_matches_tensorflow_serving(tfs):
    theirs_pool = descriptor_pool.Default()
    for ours in _our_enums():
        theirs = theirs_pool.FindEnumTypeByName(ours.full_name)
        for value in ours.values:
            assert theirs.values_by_name[value.name].number == value.number, f"{ours.full_name}.{value.name}"


def test_rpc_paths_exist_in_tensorflow_serving(tfs):
    for path in (_proto.PREDICT, _proto.CLASSIFY, _proto.GET_MODEL_METADATA, _proto.GET_MODEL_STATUS):
        service, method = path.strip("/").split("/")
        descriptor = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(method)
        ours = _proto.POOL.FindServiceByName(service).FindMethodByName(method)
        assert descriptor.input_type.full_name == ours.input_type.full_name
        assert descriptor.output_type.full_name == ours.output_type.full_name


def _filled_predict_request(cls_request, images):
    request = cls_request()
    request.model_spec.name = "mnist"
    request.model_spec.version.value = 7
    request.model_spec.signature_name = "predict_images"
    request.output_filter.append("scores")
    tensor = request.inputs["images"]
    tensor.dtype = 1
    for d in images.shape:
        tensor.tensor_shape.dim.add().size = d
    tensor.tensor_content = images.tobytes()
    return request


def test_predict_request_bytes_round_trip(tfs):
    images = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    ours = _filled_predict_request(_proto.PredictRequest, images)
    theirs = _filled_predict_request(tfs["predict"].PredictRequest, images)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    parsed = tfs["predict"].PredictRequest.FromString(ours.SerializeToString())
    assert parsed == theirs
    assert _proto.PredictRequest.FromString(theirs.SerializeToString()) == ours


def test_packed_tensor_decodes_in_tensorflow():
    import tensorflow as tf

    images = np.random.default_rng(1).random((5, 784), dtype=np.float32)
    for packed in (True, False):
        ours = to_tensor_proto(images, packed=packed)
        as_tf = tf.make_ndarray(tf.make_tensor_proto(0.0).FromString(ours.SerializeToString()))
        np.testing.assert_array_equal(as_tf, images)
        assert bool(ours.tensor_content) == packed


def test_tensorflow_tensors_decode_here():
    import tensorflow as tf

    scores = np.random.default_rng(2).random((4, 10), dtype=np.float32)
    for proto in (tf.make_tensor_proto(scores), tf.make_tensor_proto(scores.tolist(), dtype=tf.float32,
                                                                       shape=scores.shape)):
        ours = _proto.TensorProto.FromString(proto.SerializeToString())
        np.testing.assert_array_equal(from_tensor_proto(ours), scores)
    labels = tf.make_tensor_proto([[b"0", b"1"], [b"0", b"1"]])
    decoded = from_tensor_proto(_proto.TensorProto.FromString(labels.SerializeToString()))
    assert decoded.tolist() == [["0", "1"], ["0", "1"]]


def test_classification_round_trip(tfs):
    ours = _proto.ClassificationRequest()
    ours.model_spec.name = "mnist"
    ours.model_spec.version_label = "stable"
    ours.input.example_list.examples.add().features.feature["x"].float_list.value.extend([0.0, 0.5, 1.0])
    theirs = tfs["classification"].ClassificationRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.version_label == "stable"
    assert list(theirs.input.example_list.examples[0].features.feature["x"].float_list.value) == [0.0, 0.5, 1.0]

    response = tfs["classification"].ClassificationResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 3
    item = response.result.classifications.add()
    item.classes.add(label="0", score=0.25)
    item.classes.add(label="1", score=0.75)
    back = _proto.ClassificationResponse.FromString(response.SerializeToString())
    assert [(c.label, c.score) for c in back.result.classifications[0].classes] == [("0", 0.25), ("1", 0.75)]
    assert back.model_spec.version.value == 3
    assert back.SerializeToString(deterministic=True) == response.SerializeToString(deterministic=True)


def test_metadata_and_status_round_trip(tfs):
    sig_map = tfs["metadata"].SignatureDefMap()
    sig = sig_map.signature_def["predict_images"]
    sig.method_name = "tensorflow/serving/predict"
    sig.inputs["images"].name = "images:0"
    sig.inputs["images"].dtype = 1
    sig.inputs["images"].tensor_shape.dim.add().size = -1
    sig.inputs["images"].tensor_shape.dim.add().size = 784
    response = tfs["metadata"].GetModelMetadataResponse()
    response.model_spec.name = "mnist"
    response.metadata["signature_def"].Pack(sig_map)
    back = _proto.GetModelMetadataResponse.FromString(response.SerializeToString())
    assert back.metadata["signature_def"].type_url.endswith("tensorflow.serving.SignatureDefMap")
    ours_map = _proto.SignatureDefMap.FromString(back.metadata["signature_def"].value)
    dims = [d.size for d in ours_map.signature_def["predict_images"].inputs["images"].tensor_shape.dim]
    assert dims == [-1, 784]
    assert ours_map.SerializeToString(deterministic=True) == sig_map.SerializeToString(deterministic=True)

    status = tfs["status"].GetModelStatusResponse()
    v = status.model_version_status.add(version=2, state=30)
    v.status.error_code = 5
    v.status.error_message = "gone"
    ours_status = _proto.GetModelStatusResponse.FromString(status.SerializeToString())
    assert (ours_status.model_version_status[0].state, ours_status.model_version_status[0].status.error_code) == (30, 5)
    assert ours_status.SerializeToString(deterministic=True) == status.SerializeToString(deterministic=True)


def test_committed_descriptors_match_the_proto_sources():
    # In a subprocess: grpc_tools' protoc segfaults in a process that has imported TensorFlow
    # (grpcio-tools 1.85 + tensorflow 2.21; see docs/CLIENTS.md).
    import subprocess
    import sys

    pytest.importorskip("grpc_tools")
    result = subprocess.run([sys.executable, "-m", "tfship.clients._proto.build", "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
