"""Changing the served models while serving: ModelService/HandleReloadConfigRequest (through the official
stubs) and ``--model_config_file_poll_wait_seconds``, as TF Serving does them."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import grpc
import pytest
from serve_helpers import MODEL, predict_request

from tfship.serve.config import ModelConfig, model_config_text
from tfship.serve.server import ModelServer, ServerOptions

OTHER = "other"


def _reload_request(models: list[tuple[str, Path]]):
    from tensorflow_serving.apis import model_management_pb2

    req = model_management_pb2.ReloadConfigRequest()
    for name, base in models:
        m = req.config.model_config_list.config.add()
        m.name, m.base_path, m.model_platform = name, str(base), "tensorflow"
    return req


@pytest.fixture
def one_model_server(serve_base):
    server = ModelServer(ServerOptions(models=(ModelConfig(MODEL, serve_base),), grpc_port=0, rest_port=None,
                                       poll_seconds=0, grace_seconds=5))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield server, channel
    channel.close()
    server.stop()


def test_reload_config_adds_and_removes_models(one_model_server, serve_base, images):
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    _, channel = one_model_server
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = models.HandleReloadConfigRequest(_reload_request([(MODEL, serve_base), (OTHER, serve_base)]),
                                                timeout=120)
    assert response.status.error_code == 0
    assert predict.Predict(predict_request(images[:1], name=OTHER), timeout=30).model_spec.name == OTHER
    assert predict.Predict(predict_request(images[:1]), timeout=30).model_spec.name == MODEL  # kept serving

    models.HandleReloadConfigRequest(_reload_request([(OTHER, serve_base)]), timeout=120)
    with pytest.raises(grpc.RpcError) as e:
        predict.Predict(predict_request(images[:1]), timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(mnist)" in e.value.details()
    assert predict.Predict(predict_request(images[:1], name=OTHER), timeout=30).model_spec.name == OTHER


def test_reload_config_errors(one_model_server, serve_base, tmp_path, images):
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc, prediction_service_pb2_grpc

    _, channel = one_model_server
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    with pytest.raises(grpc.RpcError) as e:
        models.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == ("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                 "Only ModelConfigList is currently supported")

    with pytest.raises(grpc.RpcError) as e:
        models.HandleReloadConfigRequest(_reload_request([(MODEL, serve_base), (MODEL, serve_base)]), timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "names a model twice" in e.value.details()

    # A model that cannot load: UNKNOWN naming it; the model that loads keeps answering.
    with pytest.raises(grpc.RpcError) as e:
        models.HandleReloadConfigRequest(_reload_request([(MODEL, serve_base), (OTHER, tmp_path / "empty")]),
                                         timeout=60)
    assert e.value.code() == grpc.StatusCode.UNKNOWN
    assert e.value.details() == "Some models did not become available: {{name: other}}"
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert predict.Predict(predict_request(images[:1]), timeout=30).model_spec.name == MODEL


def test_model_config_file_is_polled(serve_base, tmp_path, images, caplog):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    config = tmp_path / "models.config"
    config.write_text(model_config_text([ModelConfig(MODEL, serve_base)]))
    server = ModelServer(ServerOptions(models=(ModelConfig(MODEL, serve_base),), grpc_port=0, rest_port=None,
                                       poll_seconds=0, grace_seconds=5, model_config_file=config,
                                       config_poll_seconds=0.1))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    try:
        config.write_text(model_config_text([ModelConfig(MODEL, serve_base), ModelConfig(OTHER, serve_base)]))
        wait_for(lambda: server.manager.has_available(OTHER), "the new model was never served")
        assert predict.Predict(predict_request(images[:1], name=OTHER), timeout=30).model_spec.name == OTHER

        with caplog.at_level(logging.ERROR, logger="tfship.serve"):
            config.write_text("model_config_list { config { name: 'broken' ")  # a half-written edit
            wait_for(lambda: "changed but was not applied" in caplog.text, "the bad file was not reported")
        assert "is not a valid text tensorflow.serving.ModelServerConfig" in caplog.text
        assert predict.Predict(predict_request(images[:1], name=OTHER), timeout=30).model_spec.name == OTHER
    finally:
        channel.close()
        server.stop()
