"""Serving backends: the same requests to the SavedModel, ONNX and TFLite backends, over REST and gRPC,
must get the same answers (within the artifact's verify tolerance), and an artifact that is not verified
or not intact must never serve.

The session's trained CNN and its exports are copied into a run folder of this module's own
(``<run>/saved_model/1`` and ``<run>/exports``), and the ONNX and fp32 TFLite artifacts are verified
there on 200 test images, so nothing here changes the session's shared exports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests
from serve_helpers import MODEL, example_bytes, predict_request

from tfship.export.tolerances import TIE_FRACTION, decided, reference_scale, tolerance_for
from tfship.serve.backends import BACKENDS, DEFAULT_BACKEND
from tfship.serve.backends.base import BackendOptions

ARTIFACT_BACKENDS = [b for b in BACKENDS if b != DEFAULT_BACKEND]  # generated from the registry
SERVED = {"onnx": "model.onnx", "tflite": "model.tflite"}  # the fp32 artifact each backend serves
VERIFY_SAMPLES = 200


def _tolerance(kind: str, reference: np.ndarray) -> float:
    """The artifact's verify tolerance as an absolute bound: its max relative difference times the range
    the reference's scores span (export/tolerances.py)."""
    return tolerance_for(kind, "fp32").max_rel_diff * reference_scale(reference)


@pytest.fixture(scope="module")
def run(cnn_run, cnn_exports, tmp_path_factory, mnist_dir) -> Path:
    """A run folder with version 1 and its exports, the served artifacts verified."""
    from tfship.export.verify import VerifyConfig, verify

    run = tmp_path_factory.mktemp("backends") / "cnn"
    shutil.copytree(cnn_run / "saved_model", run / "saved_model")
    (run / "exports").mkdir()
    shutil.copy2(cnn_exports.out / "manifest.json", run / "exports")
    for name in SERVED.values():
        shutil.copy2(cnn_exports.out / name, run / "exports" / name)
    report = verify(VerifyConfig(exports=run / "exports", samples=VERIFY_SAMPLES, data_dir=mnist_dir, latency=False,
                                 only=tuple(SERVED.values())), progress=lambda *_: None)
    assert report["passed"], report["artifacts"]
    return run


@pytest.fixture(scope="module")
def servers(run):
    """One server per backend on ephemeral ports, batching on (requests go through the batcher)."""
    from tfship.serve.config import BatchingOptions, ModelConfig
    from tfship.serve.server import ModelServer, ServerOptions

    started = {}
    try:
        for kind in BACKENDS:
            s = ModelServer(ServerOptions(models=(ModelConfig(MODEL, run / "saved_model"),), grpc_port=0, rest_port=0,
                                          batching=BatchingOptions(max_batch_size=32), poll_seconds=0,
                                          grace_seconds=5, backend=BackendOptions(kind)))
            s.start()
            started[kind] = s
        yield started
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture(scope="module")
def images(mnist) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate([mnist.test.flat_float()[:6], rng.random((2, 784), dtype=np.float32)])


def _rest(server, path: str, body=None):
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}{path}"
    r = requests.post(url, json=body, timeout=30) if body is not None else requests.get(url, timeout=30)
    return r.status_code, r.json()


def _grpc(server, method: str, request):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return "OK", getattr(stub, method)(request, timeout=30)
        except grpc.RpcError as e:
            return e.code().name, e.details()


def _answers(server, images: np.ndarray) -> dict[str, np.ndarray]:
    """The scores one server gives for ``images``: REST row and columnar forms, gRPC Predict."""
    import tensorflow as tf

    out = {}
    code, body = _rest(server, ":predict", {"signature_name": "predict_images", "instances": images.tolist()})
    assert code == 200, body
    out["rest rows"] = np.asarray(body["predictions"], dtype=np.float32)
    code, body = _rest(server, ":predict", {"signature_name": "predict_images", "inputs": {"images": images[:3].tolist()}})
    assert code == 200 and set(body) == {"outputs"}, body
    out["rest columns"] = np.asarray(body["outputs"], dtype=np.float32)
    code, resp = _grpc(server, "Predict", predict_request(images))
    assert code == "OK", resp
    assert (resp.model_spec.name, resp.model_spec.version.value, resp.model_spec.signature_name) == (
        MODEL, 1, "predict_images")
    assert list(resp.outputs) == ["scores"] and resp.outputs["scores"].dtype == 1  # DT_FLOAT, as the SavedModel
    assert len(resp.outputs["scores"].float_val) == images.shape[0] * 10  # typed field, as TF Serving writes it
    out["grpc"] = tf.make_ndarray(resp.outputs["scores"])
    return out


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_same_answers_over_the_wire(servers, images, kind):
    """Every request form, both transports: the artifact's scores within its verify tolerance of the
    SavedModel's, the same top-1 class, the same shapes and dtypes."""
    reference = _answers(servers[DEFAULT_BACKEND], images)
    answers = _answers(servers[kind], images)
    for form, want in reference.items():
        got = answers[form]
        assert got.shape == want.shape and got.dtype == want.dtype, form
        np.testing.assert_allclose(got, want, rtol=0, atol=_tolerance(kind, want), err_msg=form)
        sure = decided(want, TIE_FRACTION * reference_scale(want))  # verify's rule: near-ties may swap
        assert sure.sum() >= len(want) // 2 and (got.argmax(1) == want.argmax(1))[sure].all(), form
    # A different backend is not the same computation: if these were bit-equal, the SavedModel answered.
    assert any(not np.array_equal(answers[f], reference[f]) for f in reference)


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_same_metadata_and_status(servers, kind):
    from tensorflow_serving.apis import get_model_metadata_pb2

    assert _rest(servers[kind], "/metadata") == _rest(servers[DEFAULT_BACKEND], "/metadata")
    assert _rest(servers[kind], "") == _rest(servers[DEFAULT_BACKEND], "")
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = MODEL
    req.metadata_field.append("signature_def")
    got, want = _grpc(servers[kind], "GetModelMetadata", req), _grpc(servers[DEFAULT_BACKEND], "GetModelMetadata", req)
    assert got[0] == "OK" and got[1] == want[1]


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_other_signatures_answer_as_missing(servers, images, kind):
    """The artifact computes only the predict signature it was exported from. The classify signature
    (serialized tf.Example in) gets TF Serving's errors for a signature that does not exist:
    servables/tensorflow/classifier.cc (GetClassificationSignature) and predict_util.cc."""
    from tensorflow_serving.apis import classification_pb2

    body = {"examples": [{"x": images[0].tolist()}]}
    assert _rest(servers[DEFAULT_BACKEND], ":classify", body)[0] == 200
    assert _rest(servers[kind], ":classify", body) == (
        400, {"error": "No signature was found with the name: serving_default"})
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = MODEL
    req.input.example_list.examples.add().ParseFromString(example_bytes(images[0]))
    assert _grpc(servers[kind], "Classify", req) == (
        "INVALID_ARGUMENT", "No signature was found with the name: serving_default")
    assert _grpc(servers[kind], "Predict", predict_request(images, signature="serving_default")) == (
        "FAILED_PRECONDITION", 'Serving signature key "serving_default" not found.')
    assert _rest(servers[kind], ":predict", {"instances": images[:1].tolist()}) == (
        400, {"error": 'Serving signature name: "serving_default" not found in signature def'})


# --- what may serve: the manager loads a version only from a verified, intact artifact -------------

def _copy_run(run: Path, dest: Path, with_exports: bool = True) -> Path:
    shutil.copytree(run / "saved_model", dest / "saved_model")
    if with_exports:
        shutil.copytree(run / "exports", dest / "exports")
    return dest


def _load(run: Path, kind: str):
    from tfship.serve.config import ModelConfig
    from tfship.serve.manager import ModelManager

    manager = ModelManager([ModelConfig(MODEL, run / "saved_model")], backend=BackendOptions(kind))
    manager.reconcile()
    return manager


def _failure(manager) -> str:
    (state,) = manager.status(MODEL)
    assert (state.version, state.state, state.error_code) == (1, "END", "UNKNOWN")
    return state.error_message


def _edit_entry(run: Path, path: str, **fields) -> None:
    manifest = run / "exports" / "manifest.json"
    document = json.loads(manifest.read_text())
    entry = next(e for e in document["artifacts"] if e["path"] == path)
    if document.get("schema_version", 1) < 2:  # a v1 manifest's verdict is verify's parity
        entry["parity"]["passed"] = fields.get("status") == "verified"
        entry["parity"]["failures"] = [fields.get("reason", "")]
    entry.update(fields)
    manifest.write_text(json.dumps(document))


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_changed_artifact_is_refused(run, tmp_path, kind):
    copy = _copy_run(run, tmp_path)
    artifact = copy / "exports" / SERVED[kind]
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    artifact.write_bytes(bytes(data))
    manager = _load(copy, kind)
    try:
        message = _failure(manager)
        assert str(artifact) in message and "sha256" in message and "does not match the manifest" in message
    finally:
        manager.stop()


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_unverified_artifact_is_refused(run, tmp_path, kind):
    copy = _copy_run(run, tmp_path)
    _edit_entry(copy, SERVED[kind], status="failed_verification", reason="max |diff| 0.2 > 1e-05 at image 7")
    manager = _load(copy, kind)
    try:
        message = _failure(manager)
        assert str(copy / "exports" / SERVED[kind]) in message
        assert "status 'failed_verification', not 'verified'" in message and "max |diff| 0.2" in message
    finally:
        manager.stop()


def test_version_without_export_loads_once_exported(run, tmp_path):
    """No manifest made from the version: it fails to load, saying so, and the version keeps being
    retried as manifests change, so an export-all after the version appeared brings it up."""
    copy = _copy_run(run, tmp_path, with_exports=False)
    manager = _load(copy, "onnx")
    try:
        assert "no exports manifest for version 1" in _failure(manager)
        stale = copy / "exports"
        shutil.copytree(run / "exports", stale)
        document = json.loads((stale / "manifest.json").read_text())
        document["source"]["fingerprint"] = "tf:1"  # made from another SavedModel that was version 1
        (stale / "manifest.json").write_text(json.dumps(document))
        manager.reconcile()
        assert "exported from an earlier SavedModel version 1" in _failure(manager)
        shutil.copy2(run / "exports" / "manifest.json", stale / "manifest.json")
        manager.reconcile()
        (state,) = manager.status(MODEL)
        assert state.state == "AVAILABLE", state.error_message
        assert manager.resolve(MODEL).backend.artifact.path == stale / "model.onnx"
    finally:
        manager.stop()


def test_unknown_backend_is_a_usage_error_before_tensorflow():
    import argparse

    from tfship.errors import UsageError
    from tfship.serve import cli

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    with pytest.raises(UsageError, match="unknown backend 'torch'; valid backends: savedmodel, onnx, tflite"):
        cli.parse(parser.parse_args(["--model", "x", "--backend", "torch"]))
    with pytest.raises(UsageError, match="tflite artifacts come in fp16, fp32, int8, int8-dynamic"):
        cli.parse(parser.parse_args(["--model", "x", "--backend", "tflite", "--backend_precision", "bf16"]))


@pytest.mark.parametrize("kind", ARTIFACT_BACKENDS)
def test_a_wrong_shape_is_refused_and_the_backend_keeps_serving(servers, images, kind):
    """Shapes are the runtime's to judge (a SavedModel's graph refuses [1, 5]); an artifact was exported
    for the signature's shapes, so the backend refuses another before the runtime is resized to it."""
    code, body = _rest(servers[kind], ":predict", {"signature_name": "predict_images", "instances": [[0.5] * 5]})
    assert code == 400 and body["error"].startswith("input 'images' of signature 'predict_images' has shape [1, 5]")
    assert _rest(servers[DEFAULT_BACKEND], ":predict", {"signature_name": "predict_images",
                                                        "instances": [[0.5] * 5]})[0] == 400
    code, resp = _grpc(servers[kind], "Predict", predict_request(images[:, :100]))
    assert code == "INVALID_ARGUMENT" and "has shape [8, 100]" in resp
    assert _answers(servers[kind], images)["grpc"].shape == (8, 10)  # and the next requests are answered


def test_tfship_serve_backend_flag_with_workers(run, servers, images, tmp_path):
    """The flag end to end: ``tfship serve --backend tflite --workers 2`` (each worker its own LiteRT with
    cores/2 threads) answers as the in-process tflite server does, logs which artifact it loaded, and
    stops cleanly on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tfship.cli", "serve", "--model", str(run), "--backend", "tflite",
                                 "--workers", "2", "--enable_batching", "--port", str(ports[0]),
                                 "--rest_api_port", str(ports[1]), "--file_system_poll_wait_seconds", "0"],
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stderr=err, stdout=err)
    try:
        deadline = time.monotonic() + 120
        while "serve: listening" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        body = {"signature_name": "predict_images", "instances": images.tolist()}
        r = requests.post(f"http://127.0.0.1:{ports[1]}/v1/models/{MODEL}:predict", json=body, timeout=30)
        assert r.status_code == 200, r.text
        want = _rest(servers["tflite"], ":predict", body)[1]["predictions"]
        np.testing.assert_allclose(r.json()["predictions"], want, rtol=0, atol=_tolerance("tflite", np.asarray(want)))
        assert log.read_text().count(f"tflite {run / 'exports' / 'model.tflite'} (fp32, verified") == 2  # both workers
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
