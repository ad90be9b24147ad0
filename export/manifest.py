"""``manifest.json``: what an export folder holds, where it came from, and (after verify) how well
each artifact agrees with the SavedModel.

Schema 2 (a contract: the serving backends read it): every entry of ``artifacts`` has ``status`` —
``verified``, ``failed_verification``, ``not_exported`` or ``exported`` (written, not verified yet) —
and ``reason`` (why, for anything but ``verified``; "" otherwise). A ``not_exported`` entry has
``path``, ``format``, ``precision``, ``status``, ``reason`` and no file; the others keep every field
(``sha256``, ``size_bytes``, ``inputs``, ``outputs``, ``labels``, ``converter``, ``runtime``,
``details``, after verify ``parity``). Readers accept only ``status == "verified"`` with a matching sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SCHEMA_VERSION = 2
VERIFIED = "verified"
FAILED_VERIFICATION = "failed_verification"
NOT_EXPORTED = "not_exported"
EXPORTED = "exported"
STATUSES = (VERIFIED, FAILED_VERIFICATION, NOT_EXPORTED, EXPORTED)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file())


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def sha256_of(path: Path) -> str:
    """sha256 of a file; for a folder (``.mlpackage``), of its relative paths and contents in order."""
    h = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    for file in _files(path):
        h.update(file.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_of(file).encode())
    return h.hexdigest()


def read(folder: Path) -> dict[str, Any]:
    from tfship.errors import ModelNotFoundError

    path = folder / MANIFEST
    if not path.is_file():
        raise ModelNotFoundError(f"no {MANIFEST} in '{folder}'; run 'export-all --model ...' first")
    return json.loads(path.read_text(encoding="utf-8"))


def write(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write atomically: a reader never sees half a manifest."""
    path = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
