"""``tfship verify``: run every artifact in a manifest on the same inputs as the SavedModel and judge it.

Per artifact: max and mean |diff| of scores (and the worst image), the relative difference and top-1
agreement on decided inputs (``tolerances.py`` explains both), accuracy when labels are known, size,
latency at batch 1 and 64, and a verdict against ``tolerances.py``. Results go to ``parity.json``
(also merged into ``manifest.json``: each artifact's ``status`` becomes ``verified`` or
``failed_verification`` with a ``reason``), ``parity.md`` and ``parity.png``. Artifacts the export
could not write (``not_exported``) are listed, not run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfship.errors import ModelNotFoundError
from tfship.export import manifest, registry
from tfship.export.base import Runner, SourceModel
from tfship.export.tolerances import (
    REPRESENTABLE_TOP1, TIE_FRACTION, Tolerance, decided, reference_scale, tolerance_for, too_many_flips, widened)
from tfship.savedmodel import resolve_model

# 10,000 is the whole MNIST test set (and the cap on a user's --inputs file by default).
DEFAULT_SAMPLES = 10000
# Seeded noise carries no class structure; more inputs buy little and cost minutes on deep models.
NOISE_SAMPLES = 1000
LATENCY_RUNS_BATCH1 = 30
LATENCY_RUNS_BATCH64 = 5


@dataclass(frozen=True)
class VerifyConfig:
    exports: Path                      # an export folder, or a run folder holding exports/
    inputs: Path | None = None         # .npy of inputs shaped like the signature's
    samples: int | None = None         # default: DEFAULT_SAMPLES, NOISE_SAMPLES for seeded noise
    data_dir: Path | None = None
    latency: bool = True
    only: tuple[str, ...] = ()         # artifact paths to check (default: all in the manifest)


@dataclass
class ArtifactParity:
    path: str
    format: str
    precision: str
    size_bytes: int
    sha256_matches: bool
    max_abs_diff: float
    mean_abs_diff: float
    worst_index: int
    rel_diff: float                    # max_abs_diff / scale
    scale: float                       # range of the reference scores (tolerances.reference_scale)
    top1_agreement: float              # on decided inputs (1.0 when none)
    decided: int                       # inputs whose reference top-1 is not a near-tie
    accuracy: float | None
    accuracy_drop: float | None
    latency_ms_batch1: float | None
    latency_ms_per_image_batch64: float | None
    tolerance: dict[str, Any]
    verify_seconds: float = 0.0
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    twin: dict[str, Any] | None = None  # the precision twin's numbers, when the fixed bounds were missed


class Twins:
    """Precision twins of the reference (``twin.py``), built and run only when an artifact misses a fixed
    bound, once per kind, on verify's inputs."""

    def __init__(self, source: SourceModel, x: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
                 calibration: str | None, data_dir: Path | None) -> None:
        self.source, self.x, self.reference, self.labels = source, x, reference, labels
        self.calibration, self.data_dir = calibration, data_dir
        self._results: dict[str, ArtifactParity] = {}

    def _calibration_inputs(self) -> np.ndarray:
        from tfship.export.inputs import sample_inputs
        from tfship.export.tflite import CALIBRATION_SAMPLES

        npy = Path(self.calibration) if self.calibration and Path(self.calibration).is_file() else None
        return sample_inputs(self.source, npy, self.data_dir, CALIBRATION_SAMPLES, split="train")[0]

    def measure(self, kind: str, fmt: str, precision: str, tol: Tolerance) -> ArtifactParity:
        if kind not in self._results:
            from tfship.export.twin import Twin

            twin = Twin(self.source.frozen(), kind, self._calibration_inputs() if kind == "int8" else None)
            self._results[kind] = compare(f"{kind} twin", fmt, precision, twin(self.x), self.reference,
                                          self.labels, tol)
        return self._results[kind]


def exports_folder(path: Path) -> Path:
    if (path / manifest.MANIFEST).is_file():
        return path
    if (path / "exports" / manifest.MANIFEST).is_file():
        return path / "exports"
    raise ModelNotFoundError(f"no {manifest.MANIFEST} in '{path}' or '{path / 'exports'}'; "
                             f"run 'export-all --model {path}' first")


def source_from_manifest(document: dict[str, Any]) -> SourceModel:
    from tfship.export.source import load_source

    src = document["source"]
    model = resolve_model(src["base"], src["version"])
    source = load_source(model, src["signature"])
    if source.fingerprint != src["fingerprint"]:
        raise ModelNotFoundError(f"the SavedModel at '{model.path}' has fingerprint {source.fingerprint}, but the "
                                 f"export was made from {src['fingerprint']}: re-run export-all")
    return source


def _latency(runner: Runner, x: np.ndarray, name: str) -> tuple[float, float]:
    one, batch = x[:1], x[:64]
    runner.run({name: one})  # warm-up: first calls allocate and JIT
    times = []
    for _ in range(LATENCY_RUNS_BATCH1):
        t = time.perf_counter()
        runner.run({name: one})
        times.append(time.perf_counter() - t)
    batch_times = []
    for _ in range(LATENCY_RUNS_BATCH64):
        t = time.perf_counter()
        runner.run({name: batch})
        batch_times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * float(np.median(batch_times)) / len(batch)


def judge_with_twin(result: ArtifactParity, tol: Tolerance, twins: Twins | None) -> ArtifactParity:
    """Judge against the fixed bounds; when an fp16/int8 artifact misses one, against what the model's
    precision twin loses (``tolerances.widened``), keeping at least ``REPRESENTABLE_TOP1`` top-1 agreement
    (below it with a twin below it too: the precision cannot represent the model, and the reason says so)."""
    judge(result, tol)
    if result.passed or tol.twin is None or twins is None or not result.sha256_matches \
            or not np.isfinite(result.max_abs_diff):
        return result
    try:
        twin = twins.measure(tol.twin, result.format, result.precision, tol)
    except Exception as e:  # noqa: BLE001 - a graph the twin cannot rewrite leaves the fixed bounds in force
        result.failures.append(f"the fixed bounds stand: the {tol.twin} twin that measures this precision's cost "
                               f"on the model could not run ({type(e).__name__}: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})")
        return result
    result.twin = {"kind": tol.twin, "rel_diff": twin.rel_diff, "top1_agreement": twin.top1_agreement,
                   "accuracy_drop": twin.accuracy_drop}
    wide = widened(tol, twin.rel_diff, twin.top1_agreement, twin.accuracy_drop)
    judge(result, wide)
    result.tolerance = asdict(wide)
    result.failures = [f"{f} (bound widened to what the model's {tol.twin} twin loses: {twin.rel_diff:.3g} of "
                       f"the range, top-1 {twin.top1_agreement:.1%})" for f in result.failures]
    if result.decided and result.top1_agreement < REPRESENTABLE_TOP1:
        if twin.decided and twin.top1_agreement < REPRESENTABLE_TOP1:
            result.failures = [f"{result.precision} cannot represent this model: this artifact keeps the top-1 class "
                               f"of {result.top1_agreement:.1%} of {result.decided} decided inputs, and TensorFlow's "
                               f"own {tol.twin} rounding of it keeps {twin.top1_agreement:.1%} (below "
                               f"{REPRESENTABLE_TOP1:.0%}; max |diff| {result.rel_diff:.3g} of the score range)"]
        else:
            result.failures.append(f"top-1 agreement {result.top1_agreement:.1%} is below {REPRESENTABLE_TOP1:.0%}, "
                                   f"the least verify accepts beyond the fixed bounds")
        result.passed = False
    return result


def judge(result: ArtifactParity, tol: Tolerance) -> ArtifactParity:
    """Fill in the verdict: every bound of the tolerance is checked and every miss recorded."""
    failures = []
    if not result.sha256_matches:
        failures.append("file changed since export (sha256 differs from the manifest)")
    if not np.isfinite(result.max_abs_diff):
        failures.append("non-finite scores")
    elif result.rel_diff > tol.max_rel_diff:
        failures.append(f"max |diff| {result.max_abs_diff:.3g} = {result.rel_diff:.3g} of the score range "
                        f"{result.scale:.3g} > {tol.max_rel_diff:g} at image {result.worst_index}")
    flips = round((1 - result.top1_agreement) * result.decided)
    if too_many_flips(flips, result.decided, tol.min_top1_agreement):
        failures.append(f"top-1 agreement {result.top1_agreement:.2%} ({flips} of {result.decided} decided inputs "
                        f"differ) is significantly below {tol.min_top1_agreement:.2%}")
    if tol.max_accuracy_drop is not None and result.accuracy_drop is not None \
            and result.accuracy_drop > tol.max_accuracy_drop:
        failures.append(f"accuracy {result.accuracy_drop * 100:.2f} points below the SavedModel "
                        f"(allowed {tol.max_accuracy_drop * 100:.2f})")
    result.failures = failures
    result.passed = not failures
    return result


def compare(path: str, fmt: str, precision: str, scores: np.ndarray, reference: np.ndarray,
            labels: np.ndarray | None, tol: Tolerance) -> ArtifactParity:
    """The numbers of one artifact's scores against the reference's (no verdict yet)."""
    diff = np.abs(scores.astype(np.float64) - reference.astype(np.float64))
    per_image = diff.max(axis=1) if len(diff) else np.zeros(0)
    worst = int(np.argmax(np.nan_to_num(per_image, nan=np.inf))) if len(per_image) else -1
    scale = reference_scale(reference)
    mask = decided(reference, TIE_FRACTION * scale)
    same = scores.argmax(axis=1) == reference.argmax(axis=1)
    agreement = float(np.mean(same[mask])) if mask.any() else 1.0
    accuracy = drop = None
    if labels is not None:
        accuracy = float(np.mean(scores.argmax(axis=1) == labels))
        drop = float(np.mean(reference.argmax(axis=1) == labels)) - accuracy
    max_diff = float(np.nanmax(per_image)) if np.all(np.isfinite(per_image)) else float("inf")
    return ArtifactParity(path=path, format=fmt, precision=precision, size_bytes=0, sha256_matches=True,
                          max_abs_diff=max_diff, mean_abs_diff=float(np.mean(diff)) if max_diff != float("inf")
                          else float("inf"), worst_index=worst, rel_diff=max_diff / scale, scale=scale,
                          top1_agreement=agreement, decided=int(mask.sum()), accuracy=accuracy,
                          accuracy_drop=drop, latency_ms_batch1=None, latency_ms_per_image_batch64=None,
                          tolerance=asdict(tol))


def verify(config: VerifyConfig, progress=print, source: SourceModel | None = None) -> dict[str, Any]:
    """Judge every exported artifact of the manifest. ``source``: the SourceModel export-all already
    loaded (reused, so the SavedModel is not loaded again); else it is read from the manifest."""
    from tfship.export.inputs import NOISE, sample_inputs
    from tfship.export.runners.savedmodel import SavedModelRunner

    folder = exports_folder(Path(config.exports))
    document = manifest.read(folder)
    if source is None:
        source = source_from_manifest(document)
    x, labels, origin = sample_inputs(source, config.inputs, config.data_dir, config.samples or DEFAULT_SAMPLES,
                                      split="test")
    if config.samples is None and origin == NOISE:
        x = x[:NOISE_SAMPLES]
    name, out = source.input.name, source.output.name
    runnable = [e for e in document["artifacts"] if e.get("status") != manifest.NOT_EXPORTED]
    progress(f"verifying {len(runnable)} artifacts on {len(x)} inputs ({origin})")

    reference_runner = SavedModelRunner(source.path, source)
    reference = reference_runner.run({name: x})[out]
    reference_accuracy = float(np.mean(reference.argmax(axis=1) == labels)) if labels is not None else None
    reference_latency = _latency(reference_runner, x, name) if config.latency else (None, None)

    twins = Twins(source, x, reference, labels, document.get("calibration"), config.data_dir)
    results = []
    for entry in [e for e in runnable if not config.only or e["path"] in config.only]:
        t0 = time.perf_counter()
        results.append(_verify_one(folder, entry, source, x, reference, labels, config.latency, twins))
        results[-1].verify_seconds = round(time.perf_counter() - t0, 3)
        progress(f"  {entry['path']}: {'pass' if results[-1].passed else 'FAIL'} "
                 f"({results[-1].verify_seconds:.1f} s)")

    report = {
        "inputs": {"source": origin, "count": int(len(x))},
        "reference": {"path": str(source.path), "accuracy": reference_accuracy,
                      "scale": reference_scale(reference),
                      "latency_ms_batch1": reference_latency[0],
                      "latency_ms_per_image_batch64": reference_latency[1]},
        "passed": all(r.passed for r in results),
        "artifacts": [asdict(r) for r in results],
    }
    from tfship.export import report as report_writer

    report_writer.write_all(folder, report)
    _merge_into_manifest(folder, document, report)
    return report


def _verify_one(folder: Path, entry: dict[str, Any], source: SourceModel, x: np.ndarray, reference: np.ndarray,
                labels: np.ndarray | None, latency: bool, twins: Twins | None = None) -> ArtifactParity:
    """One artifact judged on its own: a runner that fails to load or run is a failure of this artifact."""
    path = folder / entry["path"]
    name, out = source.input.name, source.output.name
    tol = tolerance_for(entry["format"], entry["precision"])
    try:
        runner = registry.runner_class(entry["format"])(path, source)
        scores = runner.run({name: x})[out]
    except Exception as e:  # any runtime error (e.g. an op the CoreML evaluator lacks) fails this artifact only
        result = compare(entry["path"], entry["format"], entry["precision"], np.full_like(reference, np.nan),
                         reference, labels, tol)
        result.failures = [f"{entry['format']} runtime could not run it: {type(e).__name__}: "
                           f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"]
        return result
    result = compare(entry["path"], entry["format"], entry["precision"], scores, reference, labels, tol)
    result.size_bytes = manifest.size_of(path)
    result.sha256_matches = manifest.sha256_of(path) == entry["sha256"]
    if latency:
        result.latency_ms_batch1, result.latency_ms_per_image_batch64 = _latency(runner, x, name)
    return judge_with_twin(result, tol, twins)


def _merge_into_manifest(folder: Path, document: dict[str, Any], report: dict[str, Any]) -> None:
    by_path = {r["path"]: r for r in report["artifacts"]}
    for entry in document["artifacts"]:
        if entry["path"] in by_path:
            r = by_path[entry["path"]]
            entry["parity"] = {k: r[k] for k in ("passed", "failures", "max_abs_diff", "mean_abs_diff",
                                                 "worst_index", "rel_diff", "scale", "top1_agreement",
                                                 "decided", "accuracy", "verify_seconds", "twin", "latency_ms_batch1",
                                                 "latency_ms_per_image_batch64")}
            entry["status"] = manifest.VERIFIED if r["passed"] else manifest.FAILED_VERIFICATION
            entry["reason"] = "" if r["passed"] else "; ".join(r["failures"])
    document["parity"] = {"passed": report["passed"], "inputs": report["inputs"], "reference": report["reference"],
                          "report": "parity.md"}
    manifest.write(folder, document)


def verify_and_report(config: VerifyConfig) -> int:
    """Run verify, print the table; exit code 1 when any artifact fails, naming it and its worst image."""
    from tfship.export.errors import ParityError
    from tfship.export.report import markdown_table

    report = verify(config)
    print(markdown_table(report))
    if not report["passed"]:
        failures = [f"{a['path']}: {'; '.join(a['failures'])} (worst image {a['worst_index']}, "
                    f"|diff| {a['max_abs_diff']:.3g})" for a in report["artifacts"] if not a["passed"]]
        raise ParityError(failures)
    print("all artifacts match the SavedModel within tolerance")
    return 0
