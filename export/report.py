"""The parity report in three forms: ``parity.json`` for machines, ``parity.md`` for people, ``parity.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfship.export.tolerances import TWIN_FACTOR


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _twin_note(twin: dict[str, Any] | None) -> str:
    """Why a pass beyond the fixed bounds is one: what the model's precision twin loses (tolerances.py)."""
    if not twin:
        return ""
    return (f"; beyond the fixed bounds but within {TWIN_FACTOR:g}x what this model's {twin['kind']} twin loses "
            f"({twin['rel_diff']:.2e} of the range, top-1 {twin['top1_agreement']:.1%})")


def markdown_table(report: dict[str, Any]) -> str:
    ref = report["reference"]
    lines = [
        f"Parity against the SavedModel on {report['inputs']['count']} inputs ({report['inputs']['source']}); "
        f"reference accuracy {_fmt(ref['accuracy'], '.2%')}, latency {_fmt(ref['latency_ms_batch1'], '.2f')} ms "
        f"(batch 1), {_fmt(ref['latency_ms_per_image_batch64'], '.3f')} ms/image (batch 64).",
        "",
        "| artifact | precision | verdict | max abs diff | relative diff | worst image | top-1 agreement "
        "(decided inputs) | accuracy | size MB | ms batch 1 | ms/image batch 64 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for a in report["artifacts"]:
        verdict = ("pass" + _twin_note(a.get("twin"))) if a["passed"] else "**FAIL**: " + "; ".join(a["failures"])
        lines.append(
            f"| {a['path']} | {a['precision']} | {verdict} | {a['max_abs_diff']:.2e} | {a['rel_diff']:.2e} "
            f"| {a['worst_index']} | {a['top1_agreement']:.2%} ({a['decided']}) | {_fmt(a['accuracy'], '.2%')} "
            f"| {a['size_bytes'] / 1e6:.2f} | {_fmt(a['latency_ms_batch1'], '.2f')} "
            f"| {_fmt(a['latency_ms_per_image_batch64'], '.3f')} |")
    return "\n".join(lines)


def status_table(document: dict[str, Any]) -> str:
    """export-all's closing table: one row per artifact with its status and why."""
    lines = ["| artifact | precision | status | details |", "| --- | --- | --- | --- |"]
    for a in document["artifacts"]:
        parity = a.get("parity") or {}
        if a["status"] == "verified":
            detail = (f"max |diff| {parity['max_abs_diff']:.2e} ({parity['rel_diff']:.2e} of the score range), "
                      f"top-1 agreement {parity['top1_agreement']:.2%} on {parity['decided']} decided inputs"
                      + _twin_note(parity.get("twin")))
        else:
            detail = a.get("reason", "")
        lines.append(f"| {a['path']} | {a['precision']} | {a['status'].replace('_', ' ')} | {detail} |")
    if "noise" in str(document.get("calibration", "")) and any(a["precision"] == "int8" for a in document["artifacts"]):
        lines.append("")
        lines.append("int8 calibration used random noise (no --calibration-data): pass real images for an int8 "
                     "model you mean to ship.")
    return "\n".join(lines)


def plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    artifacts = report["artifacts"]
    names = [a["path"] for a in artifacts]
    y = np.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.55 * len(names) + 1.8), sharey=True)
    colors = ["tab:green" if a["passed"] else "tab:red" for a in artifacts]
    diffs = [max(a["rel_diff"], 1e-12) if np.isfinite(a["rel_diff"]) else 1.0 for a in artifacts]
    ax1.barh(y, diffs, color=colors)
    for i, a in enumerate(artifacts):
        tol = a["tolerance"].get("max_rel_diff")
        if tol:
            ax1.plot([tol, tol], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax1.set_xscale("log")
    ax1.set_xlabel("max |score diff| / score range vs SavedModel (bar: tolerance)")
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.grid(axis="x", alpha=0.3)
    disagree = [max(1 - a["top1_agreement"], 1e-5) for a in artifacts]
    ax2.barh(y, disagree, color=colors)
    for i, a in enumerate(artifacts):
        allowed = 1 - a["tolerance"]["min_top1_agreement"]
        ax2.plot([max(allowed, 1e-5)] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax2.set_xscale("log")
    ax2.set_xlabel("top-1 disagreement (floor 1e-5; bar: allowed)")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(f"parity on {report['inputs']['count']} inputs: "
                 f"{'all pass' if report['passed'] else 'FAILURES'}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(folder: Path, report: dict[str, Any]) -> None:
    (folder / "parity.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "parity.md").write_text("# Parity report\n\n" + markdown_table(report) + "\n", encoding="utf-8")
    plot(folder / "parity.png", report)
