"""What the playground shows of a run folder (``tfship train --out RUN``): versions, labels, exports.

Reads files only (no TensorFlow): ``saved_model/<v>/assets/labels.txt`` for each version,
``exports/manifest.json``, and the parity report ``exports/parity.json`` / ``parity.png`` that
``tfship verify`` writes. A file that is missing or does not parse is reported as such, never hidden.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfship import contract
from tfship.errors import ModelNotFoundError
from tfship.savedmodel import RUN_SAVED_MODEL_DIR, list_versions

EXPORTS_DIR = "exports"
MANIFEST = "manifest.json"
PARITY_JSON = "parity.json"
PARITY_PNG = "parity.png"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def open(cls, path: Path) -> "RunFolder":
        """A run folder holds ``saved_model/<version>/``; anything else is refused with what was expected."""
        path = Path(path)
        if not path.is_dir():
            raise ModelNotFoundError(f"run folder '{path}' does not exist (expected the folder "
                                     "'tfship train --out' wrote)")
        if not list_versions(path / RUN_SAVED_MODEL_DIR):
            raise ModelNotFoundError(f"'{path}' is not a run folder: no '{RUN_SAVED_MODEL_DIR}/<version>/' "
                                     "with a saved_model.pb in it (expected the folder 'tfship train --out' wrote)")
        return cls(path.resolve())

    @property
    def exports(self) -> Path:
        return self.path / EXPORTS_DIR

    @property
    def parity_png(self) -> Path:
        return self.exports / PARITY_PNG

    def describe(self) -> dict[str, Any]:
        """Everything the page's run view shows, as one JSON-ready document."""
        manifest, manifest_error = _read_json(self.exports / MANIFEST,
                                              f"run 'export-all --model {self.path}' to write it")
        parity, parity_error = _read_json(self.exports / PARITY_JSON, f"run 'tfship verify --model {self.path}'")
        return {
            "run_dir": str(self.path),
            "versions": [{"version": v, "labels": self._labels(v)}
                         for v in list_versions(self.path / RUN_SAVED_MODEL_DIR)],
            "manifest": manifest,
            "manifest_error": manifest_error,
            "parity": parity,
            "parity_error": parity_error,
            "parity_png": self.parity_png.is_file(),
        }

    def _labels(self, version: int) -> list[str] | None:
        labels_file = self.path / RUN_SAVED_MODEL_DIR / str(version) / "assets" / contract.LABELS_ASSET
        if not labels_file.is_file():
            return None
        return [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_json(path: Path, hint: str) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, f"no {path.name} in '{path.parent}'; {hint}"
    try:
        return _json_safe(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"'{path}' could not be read: {e}"


def _json_safe(value: Any) -> Any:
    """Python's json writes inf and NaN (a failed artifact's max |diff| is inf); browsers' JSON.parse
    rejects them, so they travel as the strings "inf", "-inf" and "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
