"""What every serving backend shares: the signatures read from ``saved_model.pb``, and one interface.

A backend is one loaded model version in one runtime. It reports the SavedModel's ``SignatureDef``s
unchanged (metadata is the same whichever runtime computes), says which of them it can run
(:attr:`Backend.signatures`), and runs one on inputs already checked against that signature.
Backends raise :class:`~tfship.serve.errors.ServingError`; a backend that cannot load raises any
error with a message naming the file and the reason (the manager reports it as the version's status).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tfship.errors import ModelNotFoundError

Tensors = dict[str, np.ndarray]
# TF2 SavedModels carry this pseudo-signature; TF Serving lists it in metadata but it takes no input.
INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclass(frozen=True)
class TensorSpec:
    dtype: int  # tensorflow DataType enum
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for unknown rank


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @property
    def batchable(self) -> bool:
        """Every input has an unknown leading (batch) dimension, so requests can be concatenated."""
        return bool(self.inputs) and all(s.shape and s.shape[0] == -1 for s in self.inputs.values())


@dataclass(frozen=True)
class BackendOptions:
    """Which runtime serves the versions, and how.

    ``kind``: a name in :data:`tfship.serve.backends.BACKENDS`. ``precision``: which artifact of that
    format an artifact backend loads from the exports manifest (fp32 unless asked; never silently
    another). ``threads`` / ``inter_op_threads``: the runtime's thread counts (None: its default;
    ``--workers N`` gives each worker cores/N)."""

    kind: str = "savedmodel"
    precision: str = "fp32"
    threads: int | None = None
    inter_op_threads: int | None = None
    tags: tuple[str, ...] = ("serve",)  # --saved_model_tags: the MetaGraphDef to load (its exact tag set)
    fallback: str | None = None  # --prefer_tflite_model: this backend serves a version with no usable artifact

    def or_threads(self, threads: int | None, inter_op_threads: int | None) -> BackendOptions:
        """These options, with thread counts not set here taken from the server's TensorFlow flags."""
        return replace(self, threads=self.threads or threads, inter_op_threads=self.inter_op_threads or inter_op_threads)


class Backend(abc.ABC):
    """One model version loaded in one runtime. :meth:`run` may be called from several threads."""

    kind: str = ""

    def __init__(self, path: Path, options: BackendOptions) -> None:
        self.path = path
        self.options = options
        self.signature_defs = read_signature_defs(path, options.tags)  # map<string, SignatureDef>, for metadata
        self.signatures: dict[str, SignatureInfo] = {}  # what run() accepts; subclasses fill it
        self.description = f"{self.kind} {path}"  # what was loaded, for the log

    @abc.abstractmethod
    def run(self, signature_name: str, inputs: Tensors) -> Tensors:
        """Outputs of signature ``signature_name`` (one of :attr:`signatures`) on checked inputs."""

    def close(self) -> None:
        """Free the runtime's resources; requests holding this version finished first."""

    @staticmethod
    def load_key(path: Path, options: BackendOptions) -> tuple:
        """What a failed load depends on: the manager retries a failed version only when this changes."""
        return (_mtime(path / "saved_model.pb"),)


def read_signature_defs(path: Path, tags: tuple[str, ...] = ("serve",)):
    """The SignatureDefs of the MetaGraph tagged ``tags`` (TF's loader: that exact set of tags) from
    ``saved_model.pb``: protobuf only, no TensorFlow runtime."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    except OSError as e:
        raise ModelNotFoundError(f"cannot read '{path / 'saved_model.pb'}': {e.strerror}") from e
    graph = next((g for g in proto.meta_graphs if set(g.meta_info_def.tags) == set(tags)), None)
    if graph is None:
        found = "; ".join(",".join(g.meta_info_def.tags) for g in proto.meta_graphs)
        raise ModelNotFoundError(f"'{path}' has no MetaGraphDef tagged {','.join(tags)} (it has: {found})")
    return graph.signature_def


def signature_info(name: str, sig) -> SignatureInfo:
    def spec(t) -> TensorSpec:
        shape = None if t.tensor_shape.unknown_rank else tuple(d.size for d in t.tensor_shape.dim)
        return TensorSpec(t.dtype, shape)

    return SignatureInfo(name, {k: spec(v) for k, v in sig.inputs.items()},
                         {k: spec(v) for k, v in sig.outputs.items()})


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
