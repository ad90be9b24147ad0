"""The zoo benchmark: export-all + verify on real architectures; prints the model x artifact matrix.

    python benchmarks/zoo.py [--models MobileNetV2,DenseNet121,...|all|tiny] [--side 32]
                             [--samples 300] [--out runs/zoo] [--table runs/zoo/zoo.md]

Models (tests/zoo/zoo_models.py): keras.applications architectures with random weights (batch-norm
statistics settled on noise, so outputs vary), written by Keras 3's ``model.export()``; a TF1
``SavedModelBuilder`` model; a ``tf.Module`` with logits; and the test suite's tiny models (``tiny``).
Each model runs in its own process (a fresh TensorFlow, as a user runs export-all), so one model's
crash or memory use does not touch the next. Per artifact: verdict (or why not), max |diff|, the
relative difference (max |diff| / score spread, tolerances.py), top-1 agreement on decided inputs,
export and verify seconds. The table is written as Markdown (docs/EXPORT.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "zoo"))

DEFAULT_MODELS = ("MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "DenseNet121",
                  "ResNet50", "ResNet50V2", "ConvNeXtTiny", "Xception", "InceptionV3", "NASNetMobile",
                  "TF1Builder", "TfModule")

_CHILD = """
import os, sys, json, time
sys.path.insert(0, {zoo!r})
from pathlib import Path
from tfship.export.cli import quiet_libraries
quiet_libraries()
import zoo_models
name, base, side, samples = {name!r}, Path({base!r}), {side!r}, {samples!r}
t = time.perf_counter()
if name in zoo_models.KERAS_APPS:
    zoo_models.keras_app(name, base, side)
elif name in zoo_models.TINY:
    zoo_models.TINY[name](base)
else:
    zoo_models.BUILDERS[name](base)
build = time.perf_counter() - t
from tfship.export.pipeline import ExportConfig, export_all
from tfship.export.verify import VerifyConfig, verify
from tfship.export import manifest
result = export_all(ExportConfig(model=base), progress=lambda *_: None)
verify(VerifyConfig(exports=result.out, samples=samples, latency=False), progress=lambda *_: None,
       source=result.source)
print("ZOO-RESULT " + json.dumps({{"build_seconds": build, "export_seconds": result.seconds,
                                  "manifest": manifest.read(result.out)}}))
"""


def run_model(name: str, out: Path, side: int | None, samples: int, timeout: int) -> dict:
    folder = out / name.lower()
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    # The SavedModel base folder is named after the model: the CoreML class is named after it.
    code = _CHILD.format(zoo=str(REPO / "tests" / "zoo"), name=name, base=str(folder / name), side=side,
                         samples=samples)
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("ZOO-RESULT "):
            return {"name": name, "wall": time.perf_counter() - started, **json.loads(line[len("ZOO-RESULT "):])}
    tail = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return {"name": name, "error": f"exit {done.returncode}: {tail[0][:300]}"}


def _cell(artifact: dict) -> str:
    parity = artifact.get("parity") or {}
    status = artifact["status"]
    if status == "not_exported":
        return f"not exported: {artifact['reason']}"
    if not parity:
        return f"{status.replace('_', ' ')}: {artifact.get('reason', '')}"
    numbers = (f"{parity['max_abs_diff']:.1e} / {parity['rel_diff']:.1e} rel, top-1 "
               f"{parity['top1_agreement']:.1%} ({parity['decided']})")
    verdict = "pass" if status == "verified" else f"FAIL ({artifact['reason']})"
    return f"{verdict}; {numbers}; {artifact.get('export_seconds', 0):.0f}+{parity.get('verify_seconds', 0):.0f} s"


def table(results: list[dict]) -> str:
    lines = ["| model | artifact | precision | verdict; max abs diff / relative diff, top-1 agreement (decided "
             "inputs); export + verify s |", "| --- | --- | --- | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | — | — | run failed: {r['error']} |")
            continue
        for a in r["manifest"]["artifacts"]:
            lines.append(f"| {r['name']} | {a['path']} | {a['precision']} | {_cell(a)} |")
    verified = sum(a["status"] == "verified" for r in results if "error" not in r for a in r["manifest"]["artifacts"])
    total = sum(len(r["manifest"]["artifacts"]) for r in results if "error" not in r)
    lines.append("")
    lines.append(f"{verified} of {total} artifacts verified over {len(results)} models.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated names (tests/zoo/zoo_models.py), 'all' or 'tiny'")
    parser.add_argument("--side", type=int, help="input side for keras.applications (default: the smallest each takes)")
    parser.add_argument("--samples", type=int, default=300, help="verification inputs per model (seeded noise)")
    parser.add_argument("--out", type=Path, default=Path("runs/zoo"))
    parser.add_argument("--table", type=Path, help="write the Markdown table here (default: <out>/zoo.md)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per model")
    args = parser.parse_args()

    import zoo_models

    names = {"all": list(zoo_models.BUILDERS) + list(zoo_models.TINY), "tiny": list(zoo_models.TINY)}.get(
        args.models, [n.strip() for n in args.models.split(",") if n.strip()])
    unknown = [n for n in names if n not in zoo_models.BUILDERS and n not in zoo_models.TINY]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join([*zoo_models.BUILDERS, *zoo_models.TINY])}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        r = run_model(name, args.out, args.side, args.samples, args.timeout)
        results.append(r)
        print(f"{name}: " + (r["error"] if "error" in r else
                             f"{sum(a['status'] == 'verified' for a in r['manifest']['artifacts'])}/"
                             f"{len(r['manifest']['artifacts'])} verified in {r['wall']:.0f} s"), flush=True)
        (args.out / "zoo.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    print(text)
    path = args.table or args.out / "zoo.md"
    path.write_text(text + "\n")
    print(f"written: {path}, {args.out / 'zoo.json'}")


if __name__ == "__main__":
    main()
