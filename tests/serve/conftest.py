"""Fixtures for the serving tests: a small SavedModel, an in-process server on ephemeral loopback ports,
and clients we did not write (requests for REST, the tensorflow_serving.apis stubs for gRPC).

The model is an untrained CNN with a fixed seed: its scores are far from uniform on random images,
so "served scores equal in-process scores" compares real numbers, and nothing has to train.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from serve_helpers import MAX_REQUEST_BYTES, MODEL, write_version


@pytest.fixture(scope="session")
def serve_base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("serve") / "saved_model"
    write_version(base, seed=0)
    return base


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return np.random.default_rng(7).random((4, 784), dtype=np.float32)


@pytest.fixture(scope="session")
def reference(serve_base, images) -> np.ndarray:
    """Scores of the SavedModel run in this process, straight through TensorFlow."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(serve_base / "1"))
    return loaded.signatures["predict_images"](images=tf.constant(images))["scores"].numpy()


@pytest.fixture(scope="session")
def server(serve_base):
    from tfship.serve.config import ModelConfig, MonitoringOptions, VersionPolicy
    from tfship.serve.server import ModelServer, ServerOptions

    opts = ServerOptions(models=(ModelConfig(MODEL, serve_base, VersionPolicy("latest", 1), {"stable": 1}),),
                         grpc_port=0, rest_port=0, monitoring=MonitoringOptions(True), poll_seconds=0,
                         max_request_bytes=MAX_REQUEST_BYTES, grace_seconds=5)
    s = ModelServer(opts)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def rest_url(server) -> str:
    return f"http://127.0.0.1:{server.rest_port}"


@pytest.fixture(scope="session")
def channel(server):
    import grpc

    ch = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield ch
    ch.close()


@pytest.fixture(scope="session")
def prediction_stub(channel):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_stub(channel):
    from tensorflow_serving.apis import model_service_pb2_grpc

    return model_service_pb2_grpc.ModelServiceStub(channel)


