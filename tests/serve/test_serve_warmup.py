"""TF Serving's warmup file: written by `tfship train` / `tfship warmup`, replayed before a version is AVAILABLE.

Cases from TF Serving 2.20's servables/tensorflow/saved_model_warmup_test.cc: a file of valid
records loads (and each is replayed num_request_iterations times); an unparseable record, an
unsupported log type (session_run_log) and more than kMaxNumRecords records fail the load; no file is
fine. Also load retries (core/loader_harness.cc): a failing load is tried 1 + max_num_load_retries times.
"""

from __future__ import annotations

import logging
import shutil

import pytest
from serve_helpers import MODEL

from tfship.serve import warmup
from tfship.serve.config import LoadOptions, ModelConfig


@pytest.fixture()
def base(serve_base, tmp_path):
    copy = tmp_path / "base"
    shutil.copytree(serve_base, copy)
    return copy


def _load(base, **options):
    from tfship.serve.manager import ModelManager

    manager = ModelManager([ModelConfig(MODEL, base)], load=LoadOptions(**options))
    manager.reconcile()
    state = manager.status(MODEL)[0]
    manager.stop()
    return state


def test_train_writes_a_warmup_file_tensorflow_reads(serve_base):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup.requests_path(serve_base / "1")
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert [r.predict_log.request.model_spec.signature_name for r in records] == ["predict_images"]
    assert records[0].predict_log.request.inputs["images"].tensor_shape.dim[1].size == 784


def test_replay_counts_records_and_iterations(base, caplog):
    class Counting:
        calls = 0

        def run(self, signature, inputs):
            Counting.calls += 1

    assert warmup.replay(Counting(), base / "1", iterations=3) == 1
    assert Counting.calls == 3


def test_warmup_file_replayed_before_available(base, caplog):
    with caplog.at_level(logging.INFO, logger="tfship.serve"):
        assert _load(base, warmup_iterations=2).state == "AVAILABLE"
    assert "Number of warmup records read: 1." in caplog.text


def _write(base, entries) -> None:
    warmup.requests_path(base / "1").write_bytes(b"".join(warmup.frame(e) for e in entries))


def _predict_record() -> bytes:
    return next(warmup.read_records(warmup.requests_path(_ORIGINAL)))


_ORIGINAL = None


@pytest.fixture(autouse=True)
def _original(serve_base):
    global _ORIGINAL
    _ORIGINAL = serve_base / "1"


@pytest.mark.parametrize("records, message", [
    (lambda: [b"\xff\xff not a proto"], "Failed to parse warmup record 1"),
    (lambda: [_session_run_log()], "Unsupported log_type for warmup: session_run_log"),
    # Empty PredictionLogs (no log type: nothing to run) keep the 1001 records small.
    (lambda: [b""] * (warmup.MAX_RECORDS + 1), "Number of warmup records exceeds the maximum (1000)"),
    (lambda: [_bad_input_record()], "warmup record 1 of"),
])
def test_a_bad_warmup_file_fails_the_load(base, records, message):
    _write(base, records())
    state = _load(base)
    assert state.state == "END"
    assert message in state.error_message


def test_a_corrupt_tfrecord_fails_the_load(base):
    path = warmup.requests_path(base / "1")
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF
    path.write_bytes(bytes(data))
    state = _load(base)
    assert state.state == "END" and "verify your warmup data is in TFRecord format" in state.error_message


def test_warmup_off_does_not_read_the_file(base):
    _write(base, [b"\xff\xff not a proto"])
    assert _load(base, enable_model_warmup=False).state == "AVAILABLE"


def test_no_file_is_fine(base):
    warmup.requests_path(base / "1").unlink()
    assert _load(base).state == "AVAILABLE"


def test_failed_loads_are_retried(base, caplog):
    _write(base, [b"\xff\xff not a proto"])
    with caplog.at_level(logging.WARNING, logger="tfship.serve"):
        assert _load(base, max_num_load_retries=2, load_retry_interval_seconds=0).state == "END"
    assert "attempt 1 of 3" in caplog.text and "attempt 2 of 3" in caplog.text


def test_tfship_warmup_command_writes_every_version(base, capsys):
    from tfship.cli import main

    shutil.rmtree(base / "1" / warmup.ASSETS_EXTRA)
    assert main(["warmup", "--model", str(base), "--batch-sizes", "1,8"]) == 0
    assert capsys.readouterr().out.strip() == str(warmup.requests_path(base / "1"))
    assert len(list(warmup.read_records(warmup.requests_path(base / "1")))) == 2


def _session_run_log() -> bytes:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    entry.session_run_log.SetInParent()
    return entry.SerializeToString()


def _bad_input_record() -> bytes:
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog.FromString(_predict_record())
    entry.predict_log.request.inputs["images"].tensor_shape.dim[1].size = 3
    del entry.predict_log.request.inputs["images"].float_val[3:]
    return entry.SerializeToString()


def test_saved_model_tags_choose_the_metagraph(base):
    """--saved_model_tags: TF's loader wants the MetaGraphDef with exactly these tags."""
    from tfship.serve.backends.base import BackendOptions
    from tfship.serve.manager import ModelManager

    for tags, state in ((("serve",), "AVAILABLE"), (("serve", "gpu"), "END")):
        manager = ModelManager([ModelConfig(MODEL, base)], backend=BackendOptions(tags=tags))
        manager.reconcile()
        status = manager.status(MODEL)[0]
        manager.stop()
        assert status.state == state, status.error_message
        if state == "END":
            assert "no MetaGraphDef tagged serve,gpu (it has: serve)" in status.error_message
