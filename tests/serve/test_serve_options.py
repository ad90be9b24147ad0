"""What some tensorflow_model_server flags mean, checked on the core and manager in process:
--enable_signature_method_name_check, --allow_version_labels_for_unavailable_models and
--enable_serialization_as_tensor_content.

References: TF Serving 2.20 servables/tensorflow/predict_util.cc (VerifySignature), classifier.cc and
regressor.cc (method_name checks), model_servers/server_core.cc (UpdateModelVersionLabelMap) and its
server_core_test.cc (labels for unavailable versions).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from serve_helpers import MODEL, example_bytes

from tfship.serve.config import LoadOptions, ModelConfig, VersionPolicy
from tfship.serve.errors import FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError


@pytest.fixture(scope="module")
def manager(serve_base):
    from tfship.serve.manager import ModelManager

    m = ModelManager([ModelConfig(MODEL, serve_base)])
    m.reconcile()
    yield m
    m.stop()


def _core(manager, check: bool):
    from tfship.serve.core import ServingCore

    return ServingCore(manager, worker_threads=2, method_name_check=check)


def test_method_name_check_off_by_default_serves_tf2_signatures(manager, images):
    """A TF2 SavedModel gives every signature method_name tensorflow/serving/predict; unchecked, classify works."""
    from tfship.serve.core import ModelRef

    core = _core(manager, False)
    try:
        result = core.classify(ModelRef(MODEL, signature_name="serving_default"), [example_bytes(images[0])])
        assert result.scores.shape == (1, 10)
    finally:
        core.close()


def test_method_name_check_refuses_a_predict_signature_for_classify(manager, images):
    from tfship.serve.core import ModelRef

    core = _core(manager, True)
    try:
        with pytest.raises(InvalidArgumentError, match="Expected classification signature method_name to be "
                           "tensorflow/serving/classify. Was: tensorflow/serving/predict"):
            core.classify(ModelRef(MODEL, signature_name="serving_default"), [example_bytes(images[0])])
        with pytest.raises(InvalidArgumentError, match="Expected regression signature method_name to be "
                           "tensorflow/serving/regress. Was: tensorflow/serving/predict"):
            core.regress(ModelRef(MODEL, signature_name="serving_default"), [example_bytes(images[0])])
        # Predict accepts predict, classify and regress method names.
        assert core.predict(ModelRef(MODEL, signature_name="predict_images"), {"images": images}).outputs
    finally:
        core.close()


def test_method_name_check_refuses_an_unknown_method_for_predict(manager, images):
    from tfship.serve.core import ModelRef

    servable = manager.resolve(MODEL)
    sig = servable.signature_defs["predict_images"]
    original = sig.method_name
    sig.method_name = "custom/method"  # as a TF1 SavedModel could carry
    core = _core(manager, True)
    try:
        with pytest.raises(InternalError, match=r"Expected prediction signature method_name to be one of "
                           r"\{tensorflow/serving/predict, tensorflow/serving/classify, "
                           r"tensorflow/serving/regress\}. Was: custom/method"):
            core.predict(ModelRef(MODEL, signature_name="predict_images"), {"images": images})
    finally:
        sig.method_name = original
        core.close()


def _labelled(base, labels, allow: bool):
    from tfship.serve.manager import ModelManager

    m = ModelManager([ModelConfig(MODEL, base, VersionPolicy("all"), labels)],
                     load=LoadOptions(allow_version_labels_for_unavailable_models=allow))
    m.reconcile()
    return m


def test_labels_must_name_available_versions(serve_base):
    m = _labelled(serve_base, {"stable": 1, "canary": 7}, allow=False)
    try:
        with pytest.raises(FailedPreconditionError, match="Request to assign label to version 7 of model mnist, "
                           "which is not currently available for inference"):
            m.check_labels()
    finally:
        m.stop()


def test_allow_labels_for_unavailable_models_lets_new_labels_wait(serve_base):
    m = _labelled(serve_base, {"stable": 1, "canary": 7}, allow=True)
    try:
        m.check_labels()  # a new label may name a version not loaded yet
        # ...but moving an existing label to an unavailable version is refused (server_core.cc).
        with pytest.raises(FailedPreconditionError, match="version 8 of model mnist"):
            m.set_models([ModelConfig(MODEL, serve_base, VersionPolicy("all"), {"stable": 1, "canary": 8})])
        with pytest.raises(NotFoundError, match="Could not find version 7"):  # the old label map stays
            m.status(MODEL, label="canary")
        m.set_models([ModelConfig(MODEL, serve_base, VersionPolicy("all"), {"stable": 1, "canary": 7})])
    finally:
        m.stop()


def test_server_refuses_to_start_with_a_label_on_a_missing_version(serve_base):
    from tfship.errors import UsageError
    from tfship.serve.server import ModelServer, ServerOptions

    opts = ServerOptions(models=(ModelConfig(MODEL, serve_base, labels={"canary": 9}),), grpc_port=None, rest_port=0,
                         poll_seconds=0)
    with pytest.raises(UsageError, match="version 9 of model mnist"):
        ModelServer(opts).start()


def test_tensor_content_serialization(serve_base, images):
    import grpc
    import numpy as np
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    from serve_helpers import predict_request

    from tfship.serve.server import ModelServer, ServerOptions

    server = ModelServer(ServerOptions(models=(ModelConfig(MODEL, serve_base),), grpc_port=0, rest_port=None,
                                       poll_seconds=0, tensor_content=True, grace_seconds=1))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            out = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(predict_request(images),
                                                                                     timeout=30)
        scores = out.outputs["scores"]
        assert not scores.float_val and len(scores.tensor_content) == 4 * 10 * len(images)
        assert np.frombuffer(scores.tensor_content, "<f4").reshape(len(images), 10).sum(axis=1) == pytest.approx(1)
    finally:
        server.stop()


def test_prefer_tflite_model_falls_back_to_tensorflow_without_an_artifact(serve_base, caplog, tmp_path):
    """TF Serving: "If no TensorFlow Lite model found, fallback to TensorFlow model." serve_base has no
    exports, so the tflite backend has nothing to load; with --backend tflite the version fails instead."""
    import argparse
    import logging

    from tfship.serve import cli
    from tfship.serve.manager import ModelManager

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    opts = cli.options(cli.parse(parser.parse_args(["--model_base_path", str(serve_base), "--prefer_tflite_model"])))
    assert (opts.backend.kind, opts.backend.fallback) == ("tflite", "savedmodel")
    for backend, state in ((opts.backend, "AVAILABLE"), (replace(opts.backend, fallback=None), "END")):
        m = ModelManager([ModelConfig(MODEL, serve_base)], backend=backend)
        with caplog.at_level(logging.WARNING, logger="tfship.serve"):
            m.reconcile()
        status = m.status(MODEL)[0]
        kind = m.resolve(MODEL).backend.kind if state == "AVAILABLE" else None
        m.stop()
        assert status.state == state, status.error_message
        if state == "AVAILABLE":
            assert kind == "savedmodel"
            assert "no usable tflite artifact, serving it with savedmodel" in caplog.text
