"""``tfship verify``: run every artifact in a manifest on the same inputs as the SavedModel and judge it.

Per artifact: max and mean |diff| of scores (and the worst image), top-1 agreement, accuracy when
labels are known, size, latency at batch 1 and 64, and a verdict against ``tolerances.py``. Results
go to ``parity.json`` (also merged into ``manifest.json``), ``parity.md`` and ``parity.png``.
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
from tfship.export.tolerances import Tolerance, tolerance_for
from tfship.savedmodel import resolve_model

# 10,000 is the whole MNIST test set; non-MNIST models are verified on this many seeded inputs.
DEFAULT_SAMPLES = 10000
LATENCY_RUNS_BATCH1 = 30
LATENCY_RUNS_BATCH64 = 5


@dataclass(frozen=True)
class VerifyConfig:
    exports: Path                      # an export folder, or a run folder holding exports/
    inputs: Path | None = None         # .npy of inputs shaped like the signature's
    samples: int = DEFAULT_SAMPLES
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
    top1_agreement: float
    accuracy: float | None
    accuracy_drop: float | None
    latency_ms_batch1: float | None
    latency_ms_per_image_batch64: float | None
    tolerance: dict[str, Any]
    passed: bool = False
    failures: list[str] = field(default_factory=list)


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


def judge(result: ArtifactParity, tol: Tolerance) -> ArtifactParity:
    """Fill in the verdict: every bound of the tolerance is checked and every miss recorded."""
    failures = []
    if not result.sha256_matches:
        failures.append("file changed since export (sha256 differs from the manifest)")
    if not np.isfinite(result.max_abs_diff):
        failures.append("non-finite scores")
    elif tol.max_abs_diff is not None and result.max_abs_diff > tol.max_abs_diff:
        failures.append(f"max |diff| {result.max_abs_diff:.3g} > {tol.max_abs_diff:g} at image {result.worst_index}")
    if result.top1_agreement < tol.min_top1_agreement:
        failures.append(f"top-1 agreement {result.top1_agreement:.2%} < {tol.min_top1_agreement:.2%}")
    if tol.max_accuracy_drop is not None and result.accuracy_drop is not None \
            and result.accuracy_drop > tol.max_accuracy_drop:
        failures.append(f"accuracy {result.accuracy_drop * 100:.2f} points below the SavedModel "
                        f"(allowed {tol.max_accuracy_drop * 100:.2f})")
    result.failures = failures
    result.passed = not failures
    return result


def compare(path: str, fmt: str, precision: str, scores: np.ndarray, reference: np.ndarray,
            labels: np.ndarray | None) -> ArtifactParity:
    """The numbers of one artifact's scores against the reference's (no verdict yet)."""
    diff = np.abs(scores.astype(np.float64) - reference.astype(np.float64))
    per_image = diff.max(axis=1) if len(diff) else np.zeros(0)
    worst = int(np.argmax(np.nan_to_num(per_image, nan=np.inf))) if len(per_image) else -1
    agreement = float(np.mean(scores.argmax(axis=1) == reference.argmax(axis=1)))
    accuracy = drop = None
    if labels is not None:
        accuracy = float(np.mean(scores.argmax(axis=1) == labels))
        drop = float(np.mean(reference.argmax(axis=1) == labels)) - accuracy
    max_diff = float(np.nanmax(per_image)) if np.all(np.isfinite(per_image)) else float("inf")
    return ArtifactParity(path=path, format=fmt, precision=precision, size_bytes=0, sha256_matches=True,
                          max_abs_diff=max_diff, mean_abs_diff=float(np.mean(diff)) if max_diff != float("inf")
                          else float("inf"), worst_index=worst, top1_agreement=agreement, accuracy=accuracy,
                          accuracy_drop=drop, latency_ms_batch1=None, latency_ms_per_image_batch64=None,
                          tolerance={})


def verify(config: VerifyConfig, progress=print) -> dict[str, Any]:
    from tfship.export.pipeline import sample_inputs
    from tfship.export.runners.savedmodel import SavedModelRunner

    folder = exports_folder(Path(config.exports))
    document = manifest.read(folder)
    source = source_from_manifest(document)
    x, labels, origin = sample_inputs(source, config.inputs, config.data_dir, config.samples, split="test")
    name, out = source.input.name, source.output.name
    progress(f"verifying {len(document['artifacts'])} artifacts on {len(x)} inputs ({origin})")

    reference_runner = SavedModelRunner(source.path, source)
    reference = reference_runner.run({name: x})[out]
    reference_accuracy = float(np.mean(reference.argmax(axis=1) == labels)) if labels is not None else None
    reference_latency = _latency(reference_runner, x, name) if config.latency else (None, None)

    results = []
    for entry in _progress_iter(document["artifacts"], config.only):
        path = folder / entry["path"]
        runner = registry.runner_class(entry["format"])(path, source)
        scores = runner.run({name: x})[out]
        result = compare(entry["path"], entry["format"], entry["precision"], scores, reference, labels)
        result.size_bytes = manifest.size_of(path)
        result.sha256_matches = manifest.sha256_of(path) == entry["sha256"]
        if config.latency:
            result.latency_ms_batch1, result.latency_ms_per_image_batch64 = _latency(runner, x, name)
        tol = tolerance_for(entry["format"], entry["precision"])
        result.tolerance = asdict(tol)
        results.append(judge(result, tol))

    report = {
        "inputs": {"source": origin, "count": int(len(x))},
        "reference": {"path": str(source.path), "accuracy": reference_accuracy,
                      "latency_ms_batch1": reference_latency[0],
                      "latency_ms_per_image_batch64": reference_latency[1]},
        "passed": all(r.passed for r in results),
        "artifacts": [asdict(r) for r in results],
    }
    from tfship.export import report as report_writer

    report_writer.write_all(folder, report)
    _merge_into_manifest(folder, document, report)
    return report


def _progress_iter(entries: list[dict[str, Any]], only: tuple[str, ...]):
    selected = [e for e in entries if not only or e["path"] in only]
    try:
        from tqdm import tqdm
    except ImportError:
        return selected
    return tqdm(selected, desc="verify", unit="artifact")


def _merge_into_manifest(folder: Path, document: dict[str, Any], report: dict[str, Any]) -> None:
    by_path = {r["path"]: r for r in report["artifacts"]}
    for entry in document["artifacts"]:
        if entry["path"] in by_path:
            r = by_path[entry["path"]]
            entry["parity"] = {k: r[k] for k in ("passed", "failures", "max_abs_diff", "mean_abs_diff",
                                                 "worst_index", "top1_agreement", "accuracy",
                                                 "latency_ms_batch1", "latency_ms_per_image_batch64")}
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
