"""export-all: every requested format from one SavedModel, each artifact on its own, moved into place whole.

``plan`` checks every argument of every requested format before TensorFlow is imported. Then the
SavedModel is loaded once and its predict signature frozen once (``SourceModel``); every variant of
every format is converted from that one graph, loaded in its runtime and sanity-checked on its own:
one variant's failure is recorded (``not_exported`` and why) and the others go on. Everything is
written into a temporary sibling folder; when the manifest is written, the new folder replaces the old
one. An interrupted export, or one where no artifact could be written, leaves the previous export as
it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import tfship
from tfship.errors import UsageError
from tfship.export import manifest, registry
from tfship.export.base import Artifact, Exporter, ExportOptions, SourceModel, Variant
from tfship.export.errors import ExportError
from tfship.export.inputs import NOISE, require_npy, sample_inputs
from tfship.export.tolerances import tolerance_for
from tfship.savedmodel import ModelVersion, resolve_model, run_dir_of

log = logging.getLogger("tfship.export")

DEFAULT_EXPORTS = "exports"
SANITY_BATCH = 64
# The sanity check catches broken converters only; quantization loss is verify's to judge. Outputs are
# "constant" when their largest per-class spread over the batch is below this fraction of the reference's.
CONSTANT_FRACTION = 1e-3
# A reference whose outputs vary less than this relative to their size (fp32 rounding noise) over the
# sanity batch cannot tell a constant converter from a faithful one; verify's tolerance judges it then.
REFERENCE_STILL = 1e-5
# Top-1 agreement is "chance level" when Cohen's kappa against the reference -- agreement beyond what
# unrelated predictors with the same class frequencies reach, (p - p_chance) / (1 - p_chance) -- is at
# most this (0.2 = "slight agreement", Landis & Koch 1977). Kappa rather than a margin over chance: a
# random-weight model that predicts one class for 88% of noise inputs has 88% chance agreement, and a
# faithful int8 copy at 97% must not look broken (tiny_mobilenet in tests/zoo did).
MAX_CHANCE_KAPPA = 0.2
# A chance-level variant is the precision's doing, not the converter's, when its top-1 agreement is within
# this of its precision twin's on the same sanity batch: two binomial standard deviations of a ~50% rate on
# 64 inputs (2 x sqrt(0.25 / 64) = 0.125), rounded up. ResNet50's int8-dynamic copy (random weights) agreed
# on 48% of the batch (39% by chance) and was dropped as broken; on 300 inputs it keeps 52%, its twin 51%.
TWIN_SANITY_MARGIN = 0.15


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
class Plan:
    model: ModelVersion
    out: Path
    options: ExportOptions                 # with names resolved from the model
    exporters: dict[str, Exporter]


@dataclass(frozen=True)
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    seconds: float
    source: SourceModel


def plan(config: ExportConfig) -> Plan:
    """Check everything that can be checked without TensorFlow: formats, every format's options, the
    model folder, the calibration file. Resolves the CoreML class name from the model folder."""
    from tfship.export.coreml import class_name_for

    if not config.formats:
        raise UsageError("no formats to export")
    for fmt in config.formats:
        if fmt not in registry.FORMATS:
            raise UsageError(f"unknown format '{fmt}'; valid formats: {', '.join(registry.FORMATS)}")
    options = config.options
    model = resolve_model(config.model, config.version)
    run = run_dir_of(model)
    if options.coreml_name is None:
        options = replace(options, coreml_name=class_name_for((run or model.base).name))
    exporters = {fmt: registry.exporter(fmt) for fmt in config.formats}
    for exporter in exporters.values():
        exporter.check(options)
    out = Path(config.out) if config.out is not None else (run if run is not None else model.base.parent) / DEFAULT_EXPORTS
    require_npy(config.calibration_data, "--calibration-data")
    return Plan(model, out, options, exporters)


def sanity_problem(scores: np.ndarray, reference: np.ndarray) -> str | None:
    """Why ``scores`` look like a broken converter's (NaN/inf, constant, chance-level), or None."""
    bad = ~np.isfinite(scores).all(axis=1)
    if bad.any():
        return f"non-finite outputs (NaN or inf) on {int(bad.sum())} of {len(scores)} inputs"
    ref_spread = float(reference.std(axis=0).max())
    if ref_spread <= REFERENCE_STILL * float(np.abs(reference).max()):
        return None  # the reference itself barely varies over these inputs: nothing to tell apart here
    if float(scores.std(axis=0).max()) < CONSTANT_FRACTION * ref_spread:
        return f"the same outputs for every input (the reference's vary by {ref_spread:.3g})"
    k = reference.shape[1]
    ref_top, top = reference.argmax(axis=1), scores.argmax(axis=1)
    chance = float(np.sum(np.bincount(ref_top, minlength=k) * np.bincount(top, minlength=k))) / len(top) ** 2
    agreement = float(np.mean(ref_top == top))
    if chance < 1 and (agreement - chance) / (1 - chance) <= MAX_CHANCE_KAPPA:
        return (f"top-1 agreement {agreement:.0%} on {len(top)} inputs is chance level "
                f"({chance:.0%} for unrelated predictions)")
    return None


@dataclass
class Sanity:
    """The sanity check's inputs and the reference's scores on them, carried through every variant. A
    variant that looks broken is kept when its precision twin (twin.py) looks broken too, or agrees with
    the reference on top-1 hardly more often than it does: then the precision, not the converter, lost
    the model, and verify says so (``cannot represent``)."""

    source: SourceModel
    x: np.ndarray
    reference: np.ndarray
    calibration: np.ndarray
    _twins: dict[str, np.ndarray | None] = field(default_factory=dict)

    def agreement(self, scores: np.ndarray) -> float:
        return float(np.mean(scores.argmax(axis=1) == self.reference.argmax(axis=1)))

    def problem(self, fmt: str, precision: str, scores: np.ndarray) -> str | None:
        problem = sanity_problem(scores, self.reference)
        kind = tolerance_for(fmt, precision).twin
        if problem is None or kind is None or not np.isfinite(scores).all():
            return problem
        if kind not in self._twins:
            try:
                from tfship.export.twin import Twin

                self._twins[kind] = Twin(self.source.frozen(), kind, self.calibration)(self.x)
            except Exception:  # noqa: BLE001 - without a twin the sanity verdict stands (logged for --debug)
                log.debug("the %s twin could not run", kind, exc_info=True)
                self._twins[kind] = None
        twin = self._twins[kind]
        if twin is None:
            return problem
        if sanity_problem(twin, self.reference) is not None \
                or self.agreement(scores) >= self.agreement(twin) - TWIN_SANITY_MARGIN:
            return None
        return f"{problem}; TensorFlow's own {kind} rounding of the model agrees on {self.agreement(twin):.0%}"


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _not_exported(variant: Variant, fmt: str, reason: str, seconds: float) -> dict[str, Any]:
    return {"path": variant.file, "format": fmt, "precision": variant.precision,
            "status": manifest.NOT_EXPORTED, "reason": reason, "export_seconds": round(seconds, 3)}


def _artifact_entry(folder: Path, artifact: Artifact, source: SourceModel, sanity: float,
                    seconds: float) -> dict[str, Any]:
    entry = registry.FORMATS[artifact.format]
    path = folder / artifact.path
    return {
        "path": artifact.path,
        "format": artifact.format,
        "precision": artifact.precision,
        "status": manifest.EXPORTED,
        "reason": "not verified yet",
        "size_bytes": manifest.size_of(path),
        "sha256": manifest.sha256_of(path),
        "inputs": [t.to_json() for t in artifact.inputs],
        "outputs": [t.to_json() for t in artifact.outputs],
        "labels": list(source.labels),
        "converter": registry.package_versions(entry.converter_packages),
        "runtime": registry.package_versions(entry.runtime_packages),
        "sanity_top1_agreement": sanity,
        "export_seconds": round(seconds, 3),
        "details": artifact.details,
    }


def _export_variant(exporter: Exporter, fmt: str, variant: Variant, source: SourceModel, tmp: Path,
                    options: ExportOptions, sanity: Sanity) -> dict[str, Any]:
    """One variant, on its own: converted, loaded, sanity-checked. Failures become the entry's reason."""
    t0 = time.perf_counter()
    try:
        artifact = exporter.export_variant(source, variant, tmp, options)
    except Exception as e:  # any converter failure: recorded for this variant, the others go on
        _remove(tmp / variant.file)
        return _not_exported(variant, fmt, _one_line(e), time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    try:
        runner = registry.runner_class(artifact.format)(tmp / artifact.path, source)
        scores = runner.run({source.input.name: sanity.x})[source.output.name]
    except Exception as e:  # written, but its runtime here cannot run it (e.g. an op the evaluator lacks)
        entry = _artifact_entry(tmp, artifact, source, 0.0, seconds)
        entry.update(status=manifest.FAILED_VERIFICATION,
                     reason=f"{fmt} runtime could not run it: {type(e).__name__}: {_one_line(e)}")
        return entry
    problem = sanity.problem(fmt, variant.precision, scores)
    if problem is not None:
        _remove(tmp / artifact.path)
        return _not_exported(variant, fmt, f"the converter produced a broken model: {problem}", seconds)
    return _artifact_entry(tmp, artifact, source, sanity.agreement(scores), seconds)


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    if old.exists():
        shutil.rmtree(old)


def _source_document(source: SourceModel, model: ModelVersion) -> dict[str, Any]:
    return {
        "path": str(source.path.resolve()),
        "base": str(model.base.resolve()),
        "version": model.version,
        "fingerprint": source.fingerprint,
        "signature": source.signature_key,
        "inputs": [source.input.to_json()],
        "outputs": [source.output.to_json()],
        "image": {"height": source.image.height, "width": source.image.width, "channels": source.image.channels},
        "labels": list(source.labels),
        "labels_from_asset": source.labels_from_asset,
        "labels_origin": source.labels_origin,
    }


def export_all(config: ExportConfig, progress=print) -> ExportResult:
    started = time.perf_counter()
    the_plan = plan(config)
    model, out = the_plan.model, the_plan.out

    from tfship.export.source import load_source

    source = load_source(model, config.signature)
    progress(f"source: {source.path} signature '{source.signature_key}' "
             f"{source.input.name}{list(source.input.shape)} -> {source.output.name}{list(source.output.shape)}, "
             f"{source.num_classes} labels ({source.labels_origin})")
    calibration, _, origin = sample_inputs(source, config.calibration_data, config.data_dir, 1000)
    options = replace(the_plan.options, calibration=calibration,
                      version_string=the_plan.options.version_string or str(model.version))
    if origin == NOISE and "tflite" in the_plan.exporters:
        progress("note: int8 models are calibrated on random noise (no --calibration-data given): they "
                 "run, but their accuracy on real images is unknown; pass --calibration-data images.npy")
    sanity_x = calibration[:SANITY_BATCH]
    t0 = time.perf_counter()
    from tfship.export.runners.savedmodel import SavedModelRunner

    reference = SavedModelRunner(source.path, source).run({source.input.name: sanity_x})[source.output.name]
    source.frozen()
    from tfship.export.tflite import CALIBRATION_SAMPLES

    sanity = Sanity(source, sanity_x, reference, calibration[:CALIBRATION_SAMPLES])
    progress(f"loaded and froze the predict signature in {time.perf_counter() - t0:.1f} s")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        entries = []
        for fmt, exporter in the_plan.exporters.items():
            try:
                exporter.check_source(source, options)
            except UsageError as e:  # this format cannot represent the model: every variant says why
                entries += [_not_exported(v, fmt, str(e), 0.0) for v in exporter.variants(options)]
                progress(f"[{fmt}] not exported: {e}")
                continue
            for variant in exporter.variants(options):
                entry = _export_variant(exporter, fmt, variant, source, tmp, options, sanity)
                entries.append(entry)
                progress(f"[{fmt}] {variant.file}: {entry['status'].replace('_', ' ')}"
                         + (f" ({entry['reason']})" if entry["status"] != manifest.EXPORTED else
                            f" in {entry['export_seconds']:.1f} s, {entry['size_bytes'] / 1e6:.2f} MB"))
        if not any(e["status"] != manifest.NOT_EXPORTED for e in entries):
            raise ExportError(", ".join(the_plan.exporters), "no artifact could be exported: " + "; ".join(
                f"{e['path']}: {e['reason']}" for e in entries), "the previous export, if any, is unchanged")
        document = {
            "schema_version": manifest.SCHEMA_VERSION,
            "tfship_version": tfship.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": _source_document(source, model),
            "calibration": origin,
            "artifacts": entries,
        }
        manifest.write(tmp, document)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ExportResult(out, document, time.perf_counter() - started, source)
