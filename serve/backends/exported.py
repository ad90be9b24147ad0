"""What the ONNX and TFLite backends share: an exported artifact serving the SavedModel's predict signature.

The artifact comes from the version's exports manifest (:mod:`.artifacts`): verified, sha256
checked. It serves exactly the signature it was exported from (the manifest's ``source.signature``),
under the SavedModel's own input and output names, dtypes and shapes; the other signatures (a
classify signature on serialized ``tf.Example``) are not served, and a request for one gets TF
Serving's error for a signature that does not exist. Metadata stays the SavedModel's.
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from tfship.serve.backends.artifacts import ArtifactError, ServedArtifact, find_artifact, manifests_key
from tfship.serve.backends.base import Backend, BackendOptions, SignatureInfo, Tensors, signature_info
from tfship.serve.errors import InternalError, InvalidArgumentError, ServingError
from tfship.serve.tensors import numpy_dtype


class ExportedBackend(Backend):
    """Loads ``find_artifact(path, kind, precision)`` with :meth:`load_artifact`; runs it with :meth:`compute`."""

    def __init__(self, path: Path, options: BackendOptions) -> None:
        super().__init__(path, options)
        self.artifact = find_artifact(path, self.kind, options.precision)
        name = self.artifact.source.get("signature")
        if name not in self.signature_defs:
            raise ArtifactError(f"{self.artifact.manifest}: exported from signature '{name}', which '{path}' "
                                f"does not have (it has {sorted(self.signature_defs)})")
        info = signature_info(name, self.signature_defs[name])
        _check_names(self.artifact, info)
        self.signature = info
        self.signatures = {name: info}
        self._output_dtypes = {k: numpy_dtype(s.dtype) for k, s in info.outputs.items()}
        self.load_artifact(self.artifact.path)
        self.description = (f"{self.kind} {self.artifact.path} ({self.artifact.entry.get('precision')}, "
                            f"verified, sha256 {str(self.artifact.entry.get('sha256'))[:12]}) for signature '{name}'")

    @abc.abstractmethod
    def load_artifact(self, path: Path) -> None:
        """Load the artifact file in this backend's runtime."""

    @abc.abstractmethod
    def compute(self, inputs: Tensors) -> Tensors:
        """The artifact's outputs, named as the signature's, for inputs named as the signature's."""

    def run(self, signature_name: str, inputs: Tensors) -> Tensors:
        _check_shapes(self.signature, inputs)
        try:
            outputs = self.compute(inputs)
        except ServingError:
            raise
        except Exception as e:  # the runtime's own failure: its words, never a Python class name
            raise InternalError(f"{self.kind} runtime failed on '{self.artifact.path.name}': {e}") from e
        return {k: np.asarray(v, dtype=self._output_dtypes[k]) for k, v in outputs.items()}

    @staticmethod
    def load_key(path: Path, options: BackendOptions) -> tuple:
        return Backend.load_key(path, options) + manifests_key(path)


def _check_shapes(info: SignatureInfo, inputs: Tensors) -> None:
    """The artifact was exported for the signature's shapes: a tensor of another rank or size is refused
    here (the runtimes would refuse it too, and a LiteRT interpreter resized to it might not recover)."""
    for key, value in inputs.items():
        want = info.inputs[key].shape
        if want is None:
            continue
        if value.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want, value.shape)):
            raise InvalidArgumentError(
                f"input '{key}' of signature '{info.name}' has shape {list(value.shape)}, but the model expects "
                f"{[d if d >= 0 else None for d in want]} (None: any size)")


def _check_names(artifact: ServedArtifact, info: SignatureInfo) -> None:
    """The artifact must take and give the signature's tensors by the same names (export keeps them)."""
    for what, listed, wanted in (("inputs", artifact.entry.get("inputs", []), info.inputs),
                                 ("outputs", artifact.entry.get("outputs", []), info.outputs)):
        names = sorted(t.get("name") for t in listed)
        if names != sorted(wanted):
            raise ArtifactError(f"{artifact.path}: its {what} are {names}, the signature '{info.name}' has "
                                f"{sorted(wanted)}")


def check_runtime_names(backend: ExportedBackend, inputs: list[str], outputs: list[str]) -> None:
    """What the runtime loaded must have the signature's tensor names, or requests could not be fed."""
    info = backend.signature
    if inputs != sorted(info.inputs) or outputs != sorted(info.outputs):
        raise ArtifactError(f"{backend.artifact.path}: the runtime sees inputs {inputs} and outputs {outputs}; "
                            f"signature '{info.name}' has {sorted(info.inputs)} and {sorted(info.outputs)}")
