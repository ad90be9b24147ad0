"""One server for the ported TF Serving tests, serving TF2 rebuilds of TF Serving's test models
(see tfs_models.py), each under the name and version folder its TF Serving test uses."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfs_models  # noqa: E402

VERSION = 123
# name -> (model folder, version policy, labels); the folders are built once per session.
SERVED = {
    # predict_impl_test.cc, classification_service_test.cc, regression_service_test.cc,
    # multi_inference_test.cc (TF1 variant): tensorflow/cc/saved_model/testdata/half_plus_two.
    "test_model": ("half_plus_two", ("latest", ()), {}),
    # http_rest_api_handler_test.cc: the same model, specific version 123, label Version_Label.
    "saved_model_half_plus_two_2_versions": ("half_plus_two", ("specific", (123,)), {"Version_Label": 123}),
    # get_model_status_impl_test.cc serves saved_model_half_plus_two_2_versions (123 and 124); a
    # second name here, since the handler test above serves that name at version 123 only.
    "half_plus_two_2_versions_all": ("half_plus_two_2_versions", ("all", ()), {}),
    # tensorflow_model_server_test.py: saved_model_half_plus_two_cpu as "default", its TF2 export,
    # half_plus_three, and predict_impl_test.cc's saved_model_counter.
    "default": ("half_plus_two_cpu", ("latest", ()), {}),
    "default_tf2": ("half_plus_two_tf2_cpu", ("latest", ()), {}),
    "half_plus_three": ("half_plus_three", ("latest", ()), {}),
    "counter": ("counter", ("latest", ()), {}),
}


@pytest.fixture(scope="session")
def tfs_models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfserving_testdata")
    hp2 = tfs_models.half_plus_two(root / "half_plus_two")
    tfs_models.copy_version(hp2, root / "half_plus_two_2_versions")
    tfs_models.copy_version(hp2, root / "half_plus_two_2_versions", folder="00000124")
    tfs_models.copy_version(hp2, root / "half_plus_two_cpu", signatures=tfs_models.CPU_SIGNATURES)
    tfs_models.copy_version(hp2, root / "half_plus_two_tf2_cpu", signatures=tfs_models.CPU_SIGNATURES,
                            methods=tfs_models.PREDICT)
    tfs_models.half_plus_two(root / "half_plus_three", b=3.0)
    tfs_models.rewrite_signatures(root / "half_plus_three" / tfs_models.VERSION_FOLDER,
                                  {k: tfs_models.SIGNATURES[k] for k in tfs_models.CPU_SIGNATURES})
    tfs_models.counter(root / "counter")
    return root


@pytest.fixture(scope="session")
def tfs_server(tfs_models_dir):
    # Not an override of tests/serve's ``server``: its session-scoped ``rest_url`` and stubs would be
    # cached with whichever server came first, so this suite has its own, named apart.
    from tfship.serve.config import ModelConfig, VersionPolicy
    from tfship.serve.server import ModelServer, ServerOptions

    models = tuple(ModelConfig(name, tfs_models_dir / folder, VersionPolicy(kind, versions=versions), labels)
                   for name, (folder, (kind, versions), labels) in SERVED.items())
    s = ModelServer(ServerOptions(models=models, grpc_port=0, rest_port=0, poll_seconds=0, grace_seconds=5))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def tfs_rest(tfs_server) -> str:
    return f"http://127.0.0.1:{tfs_server.rest_port}"


@pytest.fixture(scope="session")
def tfs_stubs(tfs_server):
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{tfs_server.grpc_port}") as ch:
        yield (prediction_service_pb2_grpc.PredictionServiceStub(ch), model_service_pb2_grpc.ModelServiceStub(ch))


@pytest.fixture(scope="session")
def prediction(tfs_stubs):
    return tfs_stubs[0]


@pytest.fixture(scope="session")
def model_service(tfs_stubs):
    return tfs_stubs[1]
