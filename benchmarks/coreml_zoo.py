"""keras.applications image classifiers through coremltools and tfship's CoreML evaluator.

    .venv/bin/python benchmarks/coreml_zoo.py                      # every model of coremleval.zoo.ZOO
    .venv/bin/python benchmarks/coreml_zoo.py --models MobileNetV2 ResNet50 --backends neuralnetwork

Each model (random weights, 10 classes, small input) is frozen, converted to NeuralNetwork (fp32) and
ML Program (fp16), evaluated by ``tfship.export.coremleval`` and compared with TensorFlow on logits.
Prints a markdown table (verdict, max |diff|, max |diff| / max |tf|, top-1 agreement, seconds) and
writes it with the raw rows to --out (default benchmarks/coreml_zoo.md and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def table(rows: list) -> str:
    lines = ["| model | backend | verdict | max abs diff | max diff / max abs logit | allowed | TF 1-ulp sensitivity | top-1 agree | convert s | eval s | note |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.model} | {r.backend} | {r.verdict} | {_fmt(r.max_abs, '.3g')} | "
                     f"{_fmt(r.rel, '.2e')} | {_fmt(r.allowed, '.2e')} | {_fmt(r.sensitivity, '.1e')} | {_fmt(r.top1, '.0%')} | "
                     f"{r.convert_s:.1f} | {r.eval_s:.1f} | {r.detail[:80]} |")
    return "\n".join(lines)


def _write(out: Path, rows: list) -> None:
    out.with_suffix(".md").write_text(table(rows) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from tfship.export.coremleval.zoo import BACKENDS, ZOO

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(ZOO), choices=list(ZOO))
    ap.add_argument("--backends", nargs="+", default=["neuralnetwork", "mlprogram"], choices=list(BACKENDS))
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("coreml_zoo"))
    args = ap.parse_args(argv)

    from tfship.export.coremleval.zoo import run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            for r in run(name, tuple(args.backends), Path(tmp), args.samples):
                rows.append(r)
                print(f"{r.model:18s} {r.backend:14s} {r.verdict:15s} rel={_fmt(r.rel, '.2e')} "
                      f"top1={_fmt(r.top1, '.0%')} {r.detail[:100]}", flush=True)
            _write(args.out, rows)  # after every model: a long run's partial table survives an interrupt
    print("\n" + table(rows))
    return 0 if all(r.verdict == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
