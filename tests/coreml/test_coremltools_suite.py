"""coremltools' own TF/Keras frontend op tests, run with tfship's evaluator as their predict backend
(tests/coreml/coremltools_suite/): a CI-sized subset covering the layers and ops real image models
need (padding, resizing, slicing, reductions, normalizations, dynamic shapes), each over the
NeuralNetwork (fp32) and ML Program (fp16) backends, with coremltools' own tolerances.

The suite runs in a subprocess: coremltools' Keras tests need tf-keras with TF_USE_LEGACY_KERAS=1,
which must be set before TensorFlow is imported, and this process has imported it with Keras 3.
The full sampled run and its table are in docs/COREML.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUITE = HERE / "coremltools_suite"

pytest.importorskip("coremltools")
pytest.importorskip("tf_keras", reason="coremltools' Keras tests need tf-keras (the dev extra installs it)")


@pytest.fixture(scope="module")
def suite_outcomes(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("coremltools_suite")
    proc = subprocess.run([sys.executable, str(SUITE / "run.py"), "--select", str(SUITE / "ci_subset.txt"),
                           "--out", str(out), "--timeout", "120"], capture_output=True, text=True, timeout=900)
    log = out / "outcomes.jsonl"
    assert log.exists(), f"the suite wrote no outcomes:\n{proc.stdout[-2000:]}\n{(out / 'pytest.log').read_text()[-3000:]}"
    return {r["id"]: r for r in map(json.loads, log.read_text().splitlines())}


def test_every_selected_coremltools_test_ran(suite_outcomes):
    wanted = [line for line in (SUITE / "ci_subset.txt").read_text().splitlines() if line.strip()]
    missing = [i for i in wanted if i not in suite_outcomes]
    assert not missing, f"not collected (renamed in this coremltools?): {missing[:3]}"


def test_coremltools_op_tests_pass_numerically_with_the_evaluator(suite_outcomes):
    bad = {i: f"{r['outcome']}: {r['message'][:200]}" for i, r in suite_outcomes.items() if r["outcome"] != "pass"}
    assert not bad, "\n".join(f"{k}\n    {v}" for k, v in bad.items())
