"""export-all: every requested format from one SavedModel, built aside and moved into place whole.

Everything is written into a temporary sibling folder; only when every exporter succeeded, every
artifact loaded in its runtime and agreed with the SavedModel on a small batch, and the manifest is
written, does the new folder replace the old one. A failed or interrupted export leaves the previous
export untouched and no half-written artifact behind.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import tfship
from tfship.errors import UsageError
from tfship.export import manifest, registry
from tfship.export.base import Artifact, ExportOptions, SourceModel
from tfship.export.errors import ExportError
from tfship.savedmodel import ModelVersion, resolve_model, run_dir_of

DEFAULT_EXPORTS = "exports"
SANITY_BATCH = 64
# Minimum top-1 agreement with the SavedModel on the sanity batch, per precision. This is a smoke test
# that catches a converter which silently dropped weights (NaN or constant outputs agree ~10%); the
# real tolerances are verify's. Quantized models may flip a near-tie or two out of 64.
SANITY_MIN_AGREEMENT = {"fp32": 1.0, "fp16": 0.95, "int8-dynamic": 0.95, "int8": 0.9}


@dataclass(frozen=True)
class ExportConfig:
    model: Path
    out: Path | None = None
    formats: tuple[str, ...] = tuple(registry.FORMATS)
    version: int | None = None
    signature: str | None = None
    options: ExportOptions = ExportOptions()
    calibration_data: Path | None = None   # .npy of inputs; default MNIST training images when they fit
    data_dir: Path | None = None


@dataclass(frozen=True)
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    seconds: float


def plan(config: ExportConfig) -> tuple[ModelVersion, Path]:
    """Check everything that can be checked without TensorFlow; return the model and the output folder."""
    for fmt in config.formats:
        if fmt not in registry.FORMATS:
            raise UsageError(f"unknown format '{fmt}'; valid formats: {', '.join(registry.FORMATS)}")
    if not config.formats:
        raise UsageError("no formats to export")
    model = resolve_model(config.model, config.version)
    if config.out is not None:
        out = Path(config.out)
    else:
        run = run_dir_of(model)
        out = (run if run is not None else model.base.parent) / DEFAULT_EXPORTS
    require_npy(config.calibration_data, "--calibration-data")
    return model, out


def require_npy(path: Path | None, flag: str) -> None:
    """A user-named inputs file must exist: checked before TensorFlow loads, not after an export."""
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{flag} '{path}' does not exist (expected a .npy file)")


def sample_inputs(source: SourceModel, npy: Path | None, data_dir: Path | None, count: int,
                  split: str = "train") -> tuple[np.ndarray, np.ndarray | None, str]:
    """Inputs shaped like the source's: a user's .npy, else MNIST when the shape fits, else seeded noise.

    Returns (inputs, labels or None, a description of where they came from).
    """
    shape = tuple(d for d in source.input.shape[1:])
    if npy is not None:
        x = np.load(npy).astype(np.float32)
        if tuple(x.shape[1:]) != shape:
            raise UsageError(f"'{npy}' holds inputs of shape {x.shape}, the signature wants (N, {', '.join(map(str, shape))})")
        return x[:count], None, str(npy)
    if source.image.height == 28 and source.image.width == 28 and source.image.channels == 1:
        from tfship import mnist

        data = mnist.load(data_dir)
        part = data.train if split == "train" else data.test
        x = part.flat_float()[:count].reshape(-1, *shape)
        return x, part.labels[:count].astype(np.int64), f"MNIST {split} images"
    rng = np.random.default_rng(0)
    return rng.random((count, *shape), dtype=np.float32), None, "seeded uniform noise in [0, 1)"


def _sanity_check(source: SourceModel, folder: Path, artifacts: list[Artifact], x: np.ndarray,
                  reference: np.ndarray) -> dict[str, float]:
    agreement = {}
    for artifact in artifacts:
        runner = registry.runner_class(artifact.format)(folder / artifact.path, source)
        scores = runner.run({source.input.name: x})[source.output.name]
        agree = float(np.mean(scores.argmax(axis=1) == reference.argmax(axis=1)))
        needed = SANITY_MIN_AGREEMENT.get(artifact.precision, 1.0)
        if not np.all(np.isfinite(scores)) or agree < needed:
            raise ExportError(artifact.format, f"{artifact.path} agrees with the SavedModel on only "
                              f"{agree:.0%} of {len(x)} images (needs {needed:.0%}; non-finite outputs: "
                              f"{not np.all(np.isfinite(scores))})", "the converter lost the model's weights "
                              "or ops; run with --debug and report it")
        agreement[artifact.path] = agree
    return agreement


def _artifact_entry(folder: Path, artifact: Artifact, source: SourceModel, sanity: float) -> dict[str, Any]:
    entry = registry.FORMATS[artifact.format]
    path = folder / artifact.path
    return {
        "path": artifact.path,
        "format": artifact.format,
        "precision": artifact.precision,
        "size_bytes": manifest.size_of(path),
        "sha256": manifest.sha256_of(path),
        "inputs": [t.to_json() for t in artifact.inputs],
        "outputs": [t.to_json() for t in artifact.outputs],
        "labels": list(source.labels),
        "converter": registry.package_versions(entry.converter_packages),
        "runtime": registry.package_versions(entry.runtime_packages),
        "sanity_top1_agreement": sanity,
        "details": artifact.details,
    }


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    if old.exists():
        shutil.rmtree(old)


def export_all(config: ExportConfig, progress=print) -> ExportResult:
    started = time.perf_counter()
    model, out = plan(config)

    from tfship.export.runners.savedmodel import SavedModelRunner
    from tfship.export.source import load_source

    source = load_source(model, config.signature)
    progress(f"source: {source.path} signature '{source.signature_key}' "
             f"{source.input.name}{list(source.input.shape)} -> {source.output.name}{list(source.output.shape)}, "
             f"{source.num_classes} labels{' (from assets)' if source.labels_from_asset else ''}")
    calibration, _, origin = sample_inputs(source, config.calibration_data, config.data_dir, 1000)
    options = replace(config.options, calibration=calibration,
                      version_string=config.options.version_string or str(model.version))
    sanity_x = calibration[:SANITY_BATCH]
    reference = SavedModelRunner(source.path, source).run({source.input.name: sanity_x})[source.output.name]

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        entries = []
        for fmt in config.formats:
            t0 = time.perf_counter()
            progress(f"[{fmt}] exporting ...")
            artifacts = registry.exporter(fmt).export(source, tmp, options)
            agreement = _sanity_check(source, tmp, artifacts, sanity_x, reference)
            for artifact in artifacts:
                entries.append(_artifact_entry(tmp, artifact, source, agreement[artifact.path]))
                progress(f"[{fmt}]   {artifact.path} ({artifact.precision}, "
                         f"{entries[-1]['size_bytes'] / 1e6:.2f} MB, top-1 agreement "
                         f"{agreement[artifact.path]:.0%} on {len(sanity_x)} images)")
            progress(f"[{fmt}] done in {time.perf_counter() - t0:.1f} s")
        document = {
            "schema_version": manifest.SCHEMA_VERSION,
            "tfship_version": tfship.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": {
                "path": str(source.path.resolve()),
                "base": str(model.base.resolve()),
                "version": model.version,
                "fingerprint": source.fingerprint,
                "signature": source.signature_key,
                "inputs": [source.input.to_json()],
                "outputs": [source.output.to_json()],
                "image": {"height": source.image.height, "width": source.image.width,
                          "channels": source.image.channels},
                "labels": list(source.labels),
                "labels_from_asset": source.labels_from_asset,
            },
            "calibration": origin,
            "artifacts": entries,
        }
        manifest.write(tmp, document)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ExportResult(out, document, time.perf_counter() - started)
