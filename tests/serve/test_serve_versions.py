"""Versions while serving: hot swap under load with zero failures, incomplete folders, failed loads."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time

import grpc
import pytest
import requests
from serve_helpers import MODEL, predict_request, write_version

from tfship.serve.config import BatchingOptions, ModelConfig, VersionPolicy
from tfship.serve.manager import ModelManager
from tfship.serve.server import ModelServer, ServerOptions


def _states(manager: ModelManager) -> dict[int, str]:
    return {s.version: s.state for s in manager.status(MODEL)}


@pytest.mark.parametrize("batching", [None, BatchingOptions(max_batch_size=8, batch_timeout_micros=500,
                                                            num_batch_threads=1)],
                         ids=["unbatched", "batched"])
def test_swap_under_concurrent_load_fails_no_request(tmp_path, images, batching):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    base = tmp_path / "saved_model"
    write_version(base, seed=0)
    server = ModelServer(ServerOptions(models=(ModelConfig(MODEL, base),), grpc_port=0, rest_port=0,
                                       batching=batching, poll_seconds=0.1, grace_seconds=5))
    server.start()
    stop = threading.Event()
    failures: list[str] = []
    seen: list[int] = []
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}:predict"
    body = json.dumps({"signature_name": "predict_images", "instances": images[:1].tolist()})

    def grpc_load():
        while not stop.is_set():
            try:
                seen.append(stub.Predict(predict_request(images[:1]), timeout=30).model_spec.version.value)
            except grpc.RpcError as e:
                failures.append(f"gRPC {e.code()}: {e.details()}")

    def rest_load():
        with requests.Session() as http:
            while not stop.is_set():
                r = http.post(url, data=body, timeout=30)
                if r.status_code != 200:
                    failures.append(f"REST {r.status_code}: {r.text}")

    threads = [threading.Thread(target=f) for f in (grpc_load, grpc_load, rest_load, rest_load)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        write_version(base, seed=1)  # atomically renamed into place while requests flow
        deadline = time.monotonic() + 60
        while _states(server.manager) != {2: "AVAILABLE", 1: "END"}:
            assert time.monotonic() < deadline, _states(server.manager)
            time.sleep(0.05)
        time.sleep(0.5)  # keep the load on after the unload
    finally:
        stop.set()
        for t in threads:
            t.join()
        channel.close()
        server.stop()
    assert failures == []
    assert 1 in seen and seen[-1] == 2
    assert len(seen) > 20


def test_incomplete_and_temporary_folders_are_ignored(tmp_path, caplog):
    base = tmp_path / "saved_model"
    write_version(base, seed=0)
    shutil.copytree(base / "1", base / ".tmp-version-0123")  # tfship's in-progress name
    (base / "3" / "variables").mkdir(parents=True)  # a version still being copied: no saved_model.pb yet
    manager = ModelManager([ModelConfig(MODEL, base, VersionPolicy("all"))])
    try:
        manager.reconcile()
        assert _states(manager) == {1: "AVAILABLE"}
        assert manager.resolve(MODEL).version == 1
    finally:
        manager.stop()


def test_failed_version_keeps_current_one_serving(tmp_path, caplog, images):
    base = tmp_path / "saved_model"
    write_version(base, seed=0)
    manager = ModelManager([ModelConfig(MODEL, base)])
    try:
        manager.reconcile()
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"this is not a SavedModel")
        with caplog.at_level(logging.ERROR, logger="tfship.serve"):
            manager.reconcile()
        assert _states(manager) == {2: "END", 1: "AVAILABLE"}
        [failed] = manager.status(MODEL, version=2)
        assert failed.error_code == "UNKNOWN" and failed.error_message
        assert "version 2 failed to load" in caplog.text and "still serving [1]" in caplog.text
        servable = manager.resolve(MODEL)
        assert servable.version == 1
        assert servable.run("predict_images", {"images": images})["scores"].shape == (4, 10)
        # Unchanged, it is not retried on every poll.
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="tfship.serve"):
            manager.reconcile()
        assert "failed to load" not in caplog.text
    finally:
        manager.stop()


def test_specific_policy_and_labels(tmp_path):
    base = tmp_path / "saved_model"
    write_version(base, seed=0)
    write_version(base, seed=1)
    manager = ModelManager([ModelConfig(MODEL, base, VersionPolicy("all"), {"stable": 1, "canary": 2})])
    try:
        manager.reconcile()
        assert _states(manager) == {2: "AVAILABLE", 1: "AVAILABLE"}
        assert manager.resolve(MODEL).version == 2
        assert manager.resolve(MODEL, label="stable").version == 1
        assert manager.resolve(MODEL, label="canary").version == 2
    finally:
        manager.stop()


def test_heap_is_frozen_and_an_unloaded_version_is_still_freed(tmp_path):
    """The server takes what it has loaded out of the cyclic GC's reach (gc.freeze: a full collection
    over TensorFlow's objects stalled every request ~100 ms); a swapped-out version, reference cycles
    included, must still be freed."""
    import gc
    import weakref

    class Cycle:
        pass

    base = tmp_path / "saved_model"
    write_version(base, seed=0)
    server = ModelServer(ServerOptions(models=(ModelConfig(MODEL, base),), grpc_port=None, rest_port=0,
                                       poll_seconds=0.1, grace_seconds=5))
    server.start()
    try:
        assert gc.get_freeze_count() > 10_000
        version1 = server.manager.resolve(MODEL)
        cycle = Cycle()
        cycle.self = cycle  # only the cyclic collector can free this once version 1 lets go of it
        version1.test_cycle = cycle
        refs = [weakref.ref(version1.backend._loaded), weakref.ref(cycle)]  # TensorFlow's objects; the cycle
        del version1, cycle
        gc.freeze()  # frozen with the version, as the server's own freeze after loading does
        write_version(base, seed=1)
        deadline = time.monotonic() + 60
        while _states(server.manager).get(1) != "END":
            assert time.monotonic() < deadline, _states(server.manager)
            time.sleep(0.1)
        assert server.manager.resolve(MODEL).version == 2
        deadline = time.monotonic() + 10
        while any(r() is not None for r in refs):  # the refreeze after the unload collected them
            assert time.monotonic() < deadline, [r() for r in refs]
            time.sleep(0.1)
    finally:
        server.stop()
