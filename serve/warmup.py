"""TF Serving's model warmup: ``<version>/assets.extra/tf_serving_warmup_requests``, written and replayed.

The file is a TFRecord of ``tensorflow.serving.PredictionLog`` messages, as TF Serving documents
(``servables/tensorflow/saved_model_warmup_util.cc``): each record holds one logged request
(predict, classify, regress or multi_inference). On load, with ``--enable_model_warmup`` (TF
Serving's default), each record is replayed ``--num_request_iterations_for_warmup`` times through
the loaded version before it becomes AVAILABLE; a record that does not parse, an unsupported log
type, more than 1000 records, or a request that fails, fails the load, as in TF Serving.

:func:`write_for_saved_model` writes the file for any SavedModel version: one PredictRequest per
numeric signature and batch size, zeros shaped as the signature says. ``tfship train`` calls it for
every version it writes; ``tfship warmup --model DIR`` adds it to SavedModels made elsewhere. The
TFRecord framing (length, masked CRC-32C of the length, data, masked CRC-32C of the data) is done
here in Python, so neither side needs TensorFlow's file I/O.
"""

from __future__ import annotations

import argparse
import logging
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tfship.errors import TfshipError, UsageError

log = logging.getLogger("tfship.serve")

ASSETS_EXTRA = "assets.extra"
REQUESTS_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords (saved_model_warmup_util.h)
_SKIPPED_SIGNATURES = ("__saved_model_init_op",)


class WarmupError(TfshipError):
    """The warmup file could not be replayed; the version does not load (TF Serving's semantics)."""


def requests_path(version_dir: Path) -> Path:
    return Path(version_dir) / ASSETS_EXTRA / REQUESTS_FILE


# --- TFRecord framing (tensorflow/core/lib/io/record_writer.cc) --------------------------------------

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, data, masked CRC of the data."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", _masked(length)) + record + struct.pack("<I", _masked(record))


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file; a corrupt or truncated one raises :class:`WarmupError`."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise WarmupError(f"{path}: truncated record header at byte {pos}. Please verify your warmup data "
                              "is in TFRecord format.")
        length_bytes = data[pos:pos + 8]
        (length,), (length_crc,) = struct.unpack("<Q", length_bytes), struct.unpack("<I", data[pos + 8:pos + 12])
        if _masked(length_bytes) != length_crc:
            raise WarmupError(f"{path}: corrupted record at byte {pos}. Please verify your warmup data is in "
                              "TFRecord format.")
        end = pos + 12 + length
        if end + 4 > len(data):
            raise WarmupError(f"{path}: truncated record at byte {pos}. Please verify your warmup data is in "
                              "TFRecord format.")
        record = data[pos + 12:end]
        if _masked(record) != struct.unpack("<I", data[end:end + 4])[0]:
            raise WarmupError(f"{path}: corrupted record at byte {pos}. Please verify your warmup data is in "
                              "TFRecord format.")
        yield record
        pos = end + 4


# --- replay ------------------------------------------------------------------------------------------

def replay(servable, version_dir: Path, iterations: int = 1) -> int:
    """Replay the version's warmup file through ``servable`` (``run(signature, inputs)``); the number of
    records, 0 when there is no file. Raises :class:`WarmupError` naming the record that failed."""
    path = requests_path(version_dir)
    if not path.is_file():
        log.info("No warmup data file found at %s", path)
        return 0
    from tensorflow_serving.apis import prediction_log_pb2

    start = time.perf_counter()
    count = 0
    for record in read_records(path):
        count += 1
        if count > MAX_RECORDS:
            raise WarmupError(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        entry = prediction_log_pb2.PredictionLog()
        try:
            entry.ParseFromString(record)
        except Exception as e:  # protobuf's DecodeError; TF Serving: "Failed to parse warmup record"
            raise WarmupError(f"Failed to parse warmup record {count} from {path}") from e
        for _ in range(iterations):
            try:
                _run(servable, entry)
            except WarmupError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of a warmup request fails the load
                raise WarmupError(f"warmup record {count} of {path} failed: {getattr(e, 'message', e)}") from e
    log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. "
             "Elapsed time (microseconds): %d.", path, count, (time.perf_counter() - start) * 1e6)
    return count


def _run(servable, entry) -> None:
    from tfship.serve.tensors import request_tensors

    kind = entry.WhichOneof("log_type")
    if kind == "predict_log":
        request = entry.predict_log.request
        servable.run(request.model_spec.signature_name or "serving_default", request_tensors(request.inputs, None))
    elif kind in ("classify_log", "regress_log"):
        request = getattr(entry, kind).request
        servable.run(request.model_spec.signature_name or "serving_default", {"inputs": _examples(request.input)})
    elif kind == "multi_inference_log":
        request = entry.multi_inference_log.request
        for task in request.tasks:
            servable.run(task.model_spec.signature_name or "serving_default", {"inputs": _examples(request.input)})
    elif kind is not None:  # predict_streamed_log, session_run_log (RunWarmupRequest)
        raise WarmupError(f"Unsupported log_type for warmup: {kind}")


def _examples(request_input) -> np.ndarray:
    from tfship.serve.messages import serialized_examples

    values = serialized_examples(request_input)
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


# --- writing -----------------------------------------------------------------------------------------

def predict_logs(version_dir: Path, model_name: str, batch_sizes: Sequence[int] = (1,),
                 tags: Sequence[str] = ("serve",)) -> tuple[list, list[str]]:
    """PredictionLogs for the version's numeric signatures (zeros, one per batch size), and the names of
    the signatures skipped (string inputs such as serialized tf.Examples, or unknown ranks)."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    from tfship.tensorproto import dtype_name, from_numpy, numpy_dtype

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    graph = next((g for g in proto.meta_graphs if set(g.meta_info_def.tags) == set(tags)), None)
    if graph is None:
        raise UsageError(f"'{version_dir}' has no MetaGraphDef tagged {','.join(tags)}")
    logs, skipped = [], []
    for name, sig in sorted(graph.signature_def.items()):
        specs = sig.inputs
        if name in _SKIPPED_SIGNATURES or not specs:
            continue
        if any(t.tensor_shape.unknown_rank or dtype_name(t.dtype) in ("string", "resource", "variant")
               for t in specs.values()):
            skipped.append(name)
            continue
        for n in batch_sizes:
            entry = prediction_log_pb2.PredictionLog()
            request = entry.predict_log.request
            request.model_spec.name = model_name
            request.model_spec.signature_name = name
            for key, t in specs.items():
                dims = [d.size for d in t.tensor_shape.dim]
                shape = [n if i == 0 and d < 0 else max(d, 1) for i, d in enumerate(dims)]
                from_numpy(np.zeros(shape, dtype=numpy_dtype(t.dtype)), request.inputs[key])
            logs.append(entry)
    return logs, skipped


def write_for_saved_model(version_dir: Path, model_name: str, batch_sizes: Sequence[int] = (1,)) -> Path:
    """Write ``assets.extra/tf_serving_warmup_requests`` into a SavedModel version folder."""
    logs, skipped = predict_logs(version_dir, model_name, batch_sizes)
    if not logs:
        raise UsageError(f"'{version_dir}' has no signature with numeric inputs to warm up "
                         f"(skipped: {', '.join(skipped) or 'none'})")
    path = requests_path(version_dir)
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"".join(frame(entry.SerializeToString()) for entry in logs))
    return path


# --- tfship warmup ------------------------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="a run folder, a SavedModel base folder or one "
                        "version folder; every version found gets the file")
    parser.add_argument("--model_name", default=None, help="model name written into the requests (TF Serving "
                        "ignores it when replaying; default: the contract's model name)")
    parser.add_argument("--batch-sizes", dest="batch_sizes", default="1", help="comma-separated batch sizes to "
                        "warm (default: 1; add your --batching_parameters_file's allowed_batch_sizes)")


def run(args: argparse.Namespace) -> int:
    from tfship import contract

    try:
        sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    except ValueError as e:
        raise UsageError(f"--batch-sizes '{args.batch_sizes}' is not a comma-separated list of integers") from e
    if not sizes or min(sizes) < 1:
        raise UsageError("--batch-sizes needs positive integers")
    folders = _version_folders(args.model)
    for folder in folders:
        print(write_for_saved_model(folder, args.model_name or contract.DEFAULT_MODEL_NAME, sizes))
    return 0


def _version_folders(model: Path) -> list[Path]:
    from tfship.savedmodel import SAVED_MODEL_FILE, list_versions, resolve_model

    if (model / SAVED_MODEL_FILE).is_file():
        return [model]
    base = resolve_model(model).base
    versions = list_versions(base)
    if not versions:
        raise UsageError(f"'{model}' holds no SavedModel version")
    return [base / str(v) for v in versions]
