"""Which exported artifact serves a SavedModel version, and whether it may.

A version ``<base>/<V>/`` is served by an artifact of the exports manifest that was made from it:
``export-all`` writes ``<run>/exports/manifest.json`` (``<run>`` is the folder holding the base
folder, e.g. ``runs/cnn`` for ``runs/cnn/saved_model``), and the manifest's ``source`` names the
version (``source.version``) and the SavedModel's fingerprint (``source.fingerprint``). So the
candidates are the ``manifest.json`` of every folder directly beside the base folder
(``<run>/*/manifest.json``); one matches version V when its ``source.version`` is V and its
fingerprint is that of ``<base>/<V>/`` as it is now (a manifest made from an older SavedModel that
was once version V is stale). To serve several versions, export each into its own folder:
``export-all --model runs/cnn --version 2 --out runs/cnn/exports-2``.

In the matching manifest, the artifact of the backend's format and precision may serve only when
its ``status`` is ``verified`` (schema v2; a v1 manifest counts as verified only when verify's
``parity.passed`` is true) and its file's sha256 is the manifest's. Anything else is a
:class:`ArtifactError` naming the file and the reason; the version then fails to load, as a
SavedModel that does not load fails in TF Serving.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfship.errors import TfshipError

MANIFEST = "manifest.json"
VERIFIED = "verified"


class ArtifactError(TfshipError):
    """No exported artifact may serve this version; the message says which file and why."""


@dataclass(frozen=True)
class ServedArtifact:
    """An artifact cleared to serve a version: its file, manifest entry and the manifest's source."""

    path: Path
    entry: dict[str, Any]
    source: dict[str, Any]
    manifest: Path


def candidate_manifests(version_path: Path) -> list[Path]:
    """``<run>/*/manifest.json``: the manifests beside the base folder ``version_path.parent``."""
    run = version_path.parent.parent
    try:
        folders = sorted(p for p in run.iterdir() if p.is_dir() and p != version_path.parent)
    except OSError:
        return []
    return [f / MANIFEST for f in folders if (f / MANIFEST).is_file()]


def manifests_key(version_path: Path) -> tuple:
    """Names and mtimes of the candidate manifests: a failed version is retried when they change
    (an ``export-all`` or ``verify`` run after the version appeared)."""
    stamps = []
    for m in candidate_manifests(version_path):
        try:
            stamps.append((str(m), m.stat().st_mtime))
        except OSError:
            continue
    return tuple(stamps)


def find_artifact(version_path: Path, fmt: str, precision: str) -> ServedArtifact:
    """The verified ``fmt``/``precision`` artifact exported from ``version_path``, or an ArtifactError."""
    from tfship.export.source import fingerprint

    version = int(version_path.name)
    candidates = candidate_manifests(version_path)
    if not candidates:
        raise ArtifactError(f"no exports manifest for version {version}: no '*/{MANIFEST}' beside "
                            f"'{version_path.parent}'; run 'export-all --model {version_path}'")
    current = fingerprint(version_path)
    reasons = []
    matching = []
    for path in candidates:
        document = _read(path)
        source = document.get("source", {})
        if source.get("version") != version:
            reasons.append(f"{path}: exported from version {source.get('version')}")
        elif source.get("fingerprint") != current:
            reasons.append(f"{path}: exported from an earlier SavedModel version {version} (fingerprint "
                           f"{source.get('fingerprint')}, now {current}); re-run export-all")
        else:
            matching.append((document.get("created", ""), path, document))
    if not matching:
        raise ArtifactError(f"no exports manifest made from version {version} ('{version_path}'): "
                            + "; ".join(reasons))
    problems = []
    for _, path, document in sorted(matching, key=lambda m: m[0], reverse=True):  # newest export first
        try:
            return _artifact(path, document, fmt, precision)
        except ArtifactError as e:
            problems.append(str(e))
    raise ArtifactError("; ".join(problems))


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ArtifactError(f"cannot read exports manifest '{path}': {e}") from e
    if not isinstance(document, dict):
        raise ArtifactError(f"exports manifest '{path}' is not a JSON object")
    return document


def status_of(entry: dict[str, Any], schema_version: int) -> tuple[str, str]:
    """(status, reason) of a manifest entry; schema v1 had no status: derived from verify's parity."""
    if schema_version >= 2:
        return str(entry.get("status", "missing")), str(entry.get("reason", ""))
    parity = entry.get("parity")
    if parity is None:
        return "exported", "not verified yet (run 'tfship verify')"
    if parity.get("passed"):
        return VERIFIED, ""
    return "failed_verification", "; ".join(parity.get("failures", [])) or "verify did not pass it"


def _artifact(manifest: Path, document: dict[str, Any], fmt: str, precision: str) -> ServedArtifact:
    from tfship.export.manifest import sha256_of

    entries = [e for e in document.get("artifacts", []) if e.get("format") == fmt]
    entry = next((e for e in entries if e.get("precision") == precision), None)
    if entry is None:
        have = ", ".join(f"{e.get('path')} ({e.get('precision')})" for e in entries) or "none"
        raise ArtifactError(f"{manifest}: no {fmt} artifact at precision {precision} (its {fmt} artifacts: {have})")
    path = manifest.parent / entry["path"]
    status, reason = status_of(entry, int(document.get("schema_version", 1)))
    if status != VERIFIED:
        raise ArtifactError(f"{path}: status '{status}', not '{VERIFIED}'" + (f" ({reason})" if reason else ""))
    if not path.exists():
        raise ArtifactError(f"{path}: listed in {manifest} but missing")
    actual = sha256_of(path)
    if actual != entry.get("sha256"):
        raise ArtifactError(f"{path}: sha256 {actual} does not match the manifest's {entry.get('sha256')} "
                            "(the file changed after it was exported and verified)")
    return ServedArtifact(path, entry, document["source"], manifest)
