"""TensorFlow Serving's model layout: ``<base>/<version>/saved_model.pb``. No TensorFlow needed.

A *run folder* (what ``tfship train --out runs/cnn`` writes) holds the base folder as
``saved_model/``. Users may point tfship at a run folder, a base folder or one version folder.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfship.errors import ModelNotFoundError

SAVED_MODEL_FILE = "saved_model.pb"
RUN_SAVED_MODEL_DIR = "saved_model"
# Version folders are being written under a name TF Serving ignores (not an integer) and renamed
# into place when complete, so a server polling the base folder never sees a half-written version.
_TMP_PREFIX = ".tmp-version-"
# TF Serving reads a version from a folder name with absl::SimpleAtoi
# (sources/storage_path/file_system_storage_path_source.cc, ParseVersionNumber): optional ASCII
# whitespace around an optional sign and decimal digits, fitting int64. "00000123" is version 123.
_VERSION_NAME = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*")
_INT64 = 1 << 63


@dataclass(frozen=True)
class ModelVersion:
    """One servable version: its base folder, integer version and folder name (``00000123`` is
    version 123, as in TF Serving's own test data)."""

    base: Path
    version: int
    folder: str = ""  # the folder's name when it is not str(version)

    @property
    def path(self) -> Path:
        return self.base / (self.folder or str(self.version))


def parse_version(name: str) -> int | None:
    """The version a folder name stands for, as TF Serving parses it; None if it is not one."""
    m = _VERSION_NAME.fullmatch(name)
    if m is None:
        return None
    value = int(m.group(1))
    return value if -_INT64 <= value < _INT64 else None


def version_folders(base: Path) -> dict[int, Path]:
    """Complete versions under ``base`` (folders whose name parses as a version and that hold a
    saved_model.pb), ascending. Two folders naming one version ("1" and "0001"): the later name in
    sorted order wins, as in TF Serving's IndexChildrenByVersion."""
    if not base.is_dir():
        return {}
    found: dict[int, Path] = {}
    for child in sorted(base.iterdir(), key=lambda c: c.name):
        version = parse_version(child.name)
        if version is not None and child.is_dir() and (child / SAVED_MODEL_FILE).is_file():
            found[version] = child
    return dict(sorted(found.items()))


def list_versions(base: Path) -> list[int]:
    """Complete versions under ``base``, ascending (see :func:`version_folders`)."""
    return list(version_folders(base))


def resolve_model(path: str | os.PathLike, version: int | None = None) -> ModelVersion:
    """Find the SavedModel a user means by ``path``: a run folder, a base folder or a version folder.

    With a run or base folder the highest version is used unless ``version`` is given.
    """
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"model folder '{p}' does not exist (expected a run folder from "
                                 "'tfship train', a SavedModel base folder or a version folder)")
    if (p / SAVED_MODEL_FILE).is_file():
        own = parse_version(p.name)
        if own is None:
            raise ModelNotFoundError(
                f"'{p}' holds a SavedModel but its folder name is not an integer version; "
                f"TensorFlow Serving's layout is <base>/<version>/{SAVED_MODEL_FILE}")
        if version is not None and version != own:
            raise ModelNotFoundError(f"'{p}' is version {own}, but --version {version} was asked for")
        return _version(p.parent, own, p.name)
    base = p / RUN_SAVED_MODEL_DIR if (p / RUN_SAVED_MODEL_DIR).is_dir() else p
    folders = version_folders(base)
    versions = list(folders)
    if not versions:
        raise ModelNotFoundError(
            f"no SavedModel version found under '{base}' (expected folders like "
            f"'{base}/1/{SAVED_MODEL_FILE}'); train one with 'tfship train --out {p}'")
    if version is None:
        version = versions[-1]
    if version not in versions:
        raise ModelNotFoundError(f"version {version} not found under '{base}'; available: {versions}")
    return _version(base, version, folders[version].name)


def _version(base: Path, version: int, folder: str) -> ModelVersion:
    return ModelVersion(base, version, "" if folder == str(version) else folder)


def run_dir_of(model: ModelVersion) -> Path | None:
    """The run folder a model version belongs to, if it sits in one (``<run>/saved_model/<v>``)."""
    return model.base.parent if model.base.name == RUN_SAVED_MODEL_DIR else None


def write_new_version(base: Path, write: Callable[[Path], None]) -> ModelVersion:
    """Write the next integer version under ``base`` atomically and return it.

    ``write(tmp_dir)`` fills a temporary folder (it must not exist yet, as ``tf.saved_model.save``
    wants); the folder is then renamed to ``<base>/<next version>``. Existing versions are never
    touched. If ``write`` fails, nothing is left behind.
    """
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        write(tmp)
        if not (tmp / SAVED_MODEL_FILE).is_file():
            raise ModelNotFoundError(f"writing a SavedModel into '{tmp}' produced no {SAVED_MODEL_FILE}")
        while True:
            existing = list_versions(base) + _taken_names(base)
            version = max(existing, default=0) + 1
            try:
                # os.rename onto a non-existent name is atomic on POSIX; if another writer took the
                # number between listing and renaming, the rename fails and we try the next one.
                os.rename(tmp, base / str(version))
                return ModelVersion(base, version)
            except OSError:
                if not (base / str(version)).exists():
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _taken_names(base: Path) -> list[int]:
    """Version names in use even without a saved_model.pb (a version someone else is filling)."""
    return [v for v in (parse_version(c.name) for c in base.iterdir()) if v is not None]
