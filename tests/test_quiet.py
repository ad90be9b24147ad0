"""TensorFlow's C++ log lines stay out of tfship's output unless --debug (tfship/quiet.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from tfship import quiet

# Imports TensorFlow and runs an op (which is when the CUDA probe logs), then writes tfship's own lines.
PROBE = """
import sys
from tfship import quiet
quiet.install(debug=sys.argv[1] == "debug")
import tensorflow as tf
tf.constant(1.0) + 1
print("tfship's own line", file=sys.stderr)
sys.stderr.write("progress 50%")
"""
TF_NOISE = ("oneDNN", "cudart_stub", "port.cc", "absl::InitializeLog", "cpu_feature_guard", "To enable the following")


def _stderr(mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_tensorflow_start_up_lines_are_filtered_and_ours_pass():
    noisy = _stderr("debug")
    # The check below means something only if TensorFlow does log here (it does, as of TF 2.21).
    assert any(word in noisy for word in TF_NOISE), noisy
    quiet_err = _stderr("quiet")
    assert [w for w in TF_NOISE if w in quiet_err] == [], quiet_err
    assert quiet_err == "tfship's own line\nprogress 50%"


def test_forward_keeps_progress_bars_and_drops_split_log_lines(tmp_path):
    read_end, write_end = os.pipe()
    try:
        # A progress bar redraw (no newline) passes at once; a log line cut across two reads is held back
        # while it could still be noise, then dropped whole.
        held = quiet._forward(b"\r 10%|#   |\r 20%|##  |", write_end)
        assert held == b""
        held = quiet._forward(b"I0000 00:00:1796067262.461348   12140 por", write_end)
        assert held.startswith(b"I0000")
        held = quiet._forward(held + b"t.cc:153] oneDNN custom operations are on.\nreal error\n", write_end)
        assert held == b""
        os.close(write_end)
        write_end = -1
        with os.fdopen(read_end, "rb") as f:
            assert f.read() == b"\r 10%|#   |\r 20%|##  |real error\n"
    finally:
        if write_end != -1:
            os.close(write_end)


def test_noise_patterns():
    assert quiet.is_noise(b"2026-11-30 19:59:01.123456: I tensorflow/core/util/port.cc:113] oneDNN\n")
    assert quiet.is_noise(b"E0000 00:00:1796067274.082265   12140 cuda_platform.cc:52] failed call to cuInit\n")
    assert quiet.is_noise(b"WARNING:absl:Found untraced functions\n")
    assert quiet.is_noise(b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")  # LiteRT 2.3
    assert not quiet.is_noise(b"INFO: something of tfship's\n")
    assert not quiet.is_noise(b"export-all: error: no saved_model.pb in 'runs/x'\n")
    assert not quiet.is_noise(b"Error: I0000 is not a log line here\n")
