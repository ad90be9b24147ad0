"""What the clients return, the same for gRPC and REST."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ModelRef:
    """Which model a request goes to: name, and at most one of version / version label."""

    name: str
    version: int | None = None
    version_label: str | None = None

    def __post_init__(self) -> None:
        from tfship.errors import UsageError

        if not self.name:
            raise UsageError("a model name is required")
        if self.version is not None and self.version_label is not None:
            raise UsageError("give a model version or a version label, not both")

    def describe(self) -> str:
        if self.version is not None:
            return f"{self.name} version {self.version}"
        if self.version_label is not None:
            return f"{self.name} label '{self.version_label}'"
        return f"{self.name} (latest)"


@dataclass(frozen=True)
class Ranked:
    """One label with its score."""

    label: str
    score: float


@dataclass(frozen=True)
class InputForm:
    """How a predict call's inputs were made: what a user needs to know to trust the scores."""

    signature: str
    input_name: str
    dtype: str  # numpy's name, e.g. "float32"
    shape: tuple[int, ...]  # the batch as sent
    image: str | None  # the input's image form, e.g. "RGB 32x32"; None when it is not an image
    preprocessing: str  # "mnist", "resize", "mnist arrays", "raw arrays" (joined with " + " when mixed)
    value_range: str | None  # "0..1", "0..255" or "-1..1"; None for raw arrays

    def describe(self) -> str:
        dims = "x".join(str(d) for d in self.shape)
        text = f"signature '{self.signature}', input '{self.input_name}' {self.dtype} {dims}"
        if self.image is not None:
            text += f" ({self.image}, {self.preprocessing}"
            text += f", values {self.value_range})" if self.value_range else ")"
        return text


@dataclass(frozen=True)
class Prediction:
    """Scores for N images over K labels (``scores[i, j]`` is image i's score for ``labels[j]``)."""

    scores: np.ndarray  # float32 (N, K)
    labels: tuple[str, ...]
    model: str
    version: int | None  # the version that answered, when the server says
    input: InputForm | None = None  # how the inputs were made (predict; None for classify)
    labels_from: str = "indices"  # "model" (a string output or classify), "given" (labels=), "indices"

    def top_k(self, k: int = 3) -> list[list[Ranked]]:
        """Per image, the ``k`` best labels, best first."""
        k = min(k, self.scores.shape[1])
        # NaN (a label a top-k classifier did not return for this image) sorts last and is left out.
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        return [[Ranked(self.labels[j], float(row[j])) for j in idx if not np.isnan(row[j])]
                for row, idx in zip(self.scores, order)]

    @property
    def best(self) -> list[Ranked]:
        """Per image, the best label and its score."""
        return [ranked[0] for ranked in self.top_k(1)]

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass(frozen=True)
class TensorSpec:
    """A signature input or output as the server describes it (-1 = any size)."""

    dtype: str  # TensorFlow's name, e.g. "DT_FLOAT"
    shape: tuple[int, ...] | None  # None when the rank is unknown


@dataclass(frozen=True)
class Signature:
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class Metadata:
    """A model version's signatures (GetModelMetadata)."""

    model: str
    version: int | None
    signatures: dict[str, Signature] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionStatus:
    """One version's state as TF Serving reports it (``AVAILABLE``, ``LOADING``, ``END``...)."""

    version: int
    state: str
    error_code: str
    error_message: str


@dataclass(frozen=True)
class ModelStatus:
    model: str
    versions: tuple[VersionStatus, ...]

    @property
    def available(self) -> bool:
        return any(v.state == "AVAILABLE" for v in self.versions)
