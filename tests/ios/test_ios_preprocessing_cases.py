"""The preprocessing cases bundled with the Swift package's tests are what the Python clients compute
today (under pytest the Swift tests get fresh ones; alone, e.g. on a Mac, they read this copy)."""

from __future__ import annotations

import json

import numpy as np

import preprocessing_cases

# The file stores 4 decimals of 0..255 values; float32 noise is ~1e-5 of that.
STORED_DECIMALS_TOL = 1e-3


def test_cases_file_is_current():
    stored = json.loads(preprocessing_cases.CASES_FILE.read_text(encoding="utf-8"))
    fresh = preprocessing_cases.compute_cases()
    assert [c["name"] for c in stored["cases"]] == [c["name"] for c in fresh["cases"]]
    stale = []
    for old, new in zip(stored["cases"], fresh["cases"]):
        same_input = (old["width"], old["height"], old["pixels"]) == (new["width"], new["height"], new["pixels"])
        if old["expected"] is None or new["expected"] is None:
            same_output = old["expected"] is new["expected"]
        else:
            same_output = np.allclose(old["expected"], new["expected"], rtol=0, atol=STORED_DECIMALS_TOL)
        if not (same_input and same_output):
            stale.append(old["name"])
    assert not stale, (
        f"clients/images.py now preprocesses {stale} differently: update "
        "ios_demo/MNISTDemoCore/Sources/MNISTDemoCore/DigitPreprocessor.swift to match, then run 'python tests/ios/preprocessing_cases.py'")


def test_cases_cover_every_branch():
    cases = {c["name"]: c for c in preprocessing_cases.compute_cases()["cases"]}
    assert cases["blank"]["expected"] is None and cases["white_page"]["expected"] is None
    for case in cases.values():
        if case["expected"] is not None:
            digit = np.array(case["expected"]).reshape(28, 28)
            rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
            assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20, case["name"]
    # The heavy-left digit would be pushed past the right edge and is clamped to touch it.
    assert np.array(cases["heavy_left"]["expected"]).reshape(28, 28)[:, 27].any()
    # The light page was inverted: its digit is light on dark.
    assert max(cases["paper_two"]["expected"]) > 200
