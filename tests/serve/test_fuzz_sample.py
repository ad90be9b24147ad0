"""A fixed-seed sample of the black-box fuzzer (benchmarks/fuzz_serving.py) against a real server.

1,000 cases (500 REST, 500 gRPC) with valid requests mixed in: any 5xx, gRPC INTERNAL / UNKNOWN,
REST error that is not ``{"error": ...}`` JSON, leaked Python class name, failed valid request or a
server that stops answering fails the test with the fuzzer's own report. The full run (10,000 per
transport) is a benchmark: docs/RELIABILITY.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUZZER = REPO / "benchmarks" / "fuzz_serving.py"
SEED = 2026  # fixed: the same cases every run; the benchmark explores other seeds


@pytest.mark.timeout(600)
def test_fuzzer_sample_finds_no_problem(tmp_path):
    report = tmp_path / "fuzz.json"
    result = subprocess.run([sys.executable, str(FUZZER), "--count", "500", "--seed", str(SEED),
                             "--seconds", "300", "--out", str(report)],
                            capture_output=True, text=True, timeout=580, cwd=REPO)
    assert result.returncode == 0, f"fuzzer found problems:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    assert "sent 500 REST + 500 gRPC cases" in result.stdout, result.stdout
    assert "no problems" in result.stdout
