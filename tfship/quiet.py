"""Keep TensorFlow's C++ log lines and libraries' version warnings out of tfship's output.

TensorFlow 2.21 writes its start-up lines (oneDNN, CUDA, cpu_feature_guard, absl's "All log messages
before absl::InitializeLog()") straight to file descriptor 2 from C++, before and regardless of
``TF_CPP_MIN_LOG_LEVEL``; later ones (``cuInit`` failed, NodeDef warnings) come at first use. So the
filter sits on the descriptor itself: fd 2 becomes a pipe, and a thread copies every line that is not
one of those to the real stderr. Anything else written to stderr (tfship's own errors, tqdm's progress
bars, a crashing library's message) passes through unchanged. ``tfship --debug`` installs nothing.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import warnings

# One C++ log line: absl's "I0000 00:00:1796067166.638276   10363 port.cc:153] ..." or TSL's
# "2026-11-30 19:59:01.123456: I tensorflow/core/...cc:42] ..."; the continuation line of
# cpu_feature_guard's message; absl's notice; absl's Python handler ("WARNING:absl:...").
_NOISE = re.compile(
    rb"([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w./+-]+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [\w./+-]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags"
    rb"|WARNING:absl:"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)")
# A partial line that could still become noise is held until its end arrives; any other is passed on now
# (a progress bar redraws its line with '\r' and no newline).
_MAYBE_NOISE = re.compile(
    rb"([IWEF](\d{0,3}|\d{4}( [\d:.]*( +\d*( [\w./+-]*(:\d*)?)?)?)?)"
    rb"|\d{1,4}(-[\d :.-]*(: ?([IWEF]( [\w./+-]*(:\d*)?)?)?)?)?"
    rb"|W(A(R(N(I(N(G([: ].*)?)?)?)?)?)?)?|T(o( .*)?)?|I(N(F(O(:.*)?)?)?)?)$", re.S)
# Python warnings of the converter and runtime stacks about versions they were not tested with.
_QUIET_MODULES = r"(tensorflow|keras|coremltools|tf2onnx|onnx|onnxruntime|absl|google\.protobuf)(\.|$)"

_installed = False


def install(debug: bool = False) -> None:
    """From now on, fd 2 carries no TensorFlow C++ log lines (this process and its children)."""
    global _installed
    if debug or _installed:
        return
    _installed = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module=_QUIET_MODULES)
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return  # no fd 2 to filter (a daemon without stderr): nothing to keep quiet either
    thread = threading.Thread(target=_copy, args=(read_end, real), name="tfship-stderr-filter", daemon=True)
    thread.start()
    atexit.register(_restore, real, thread)


def is_noise(line: bytes) -> bool:
    return _NOISE.match(line.lstrip(b"\r")) is not None


def _copy(read_end: int, real: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_end, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending = _forward(pending + chunk, real)
    if pending and not is_noise(pending):
        _write(real, pending)
    os.close(read_end)


def _forward(data: bytes, real: int) -> bytes:
    """Write the complete lines of ``data`` that are not noise; return what is held back."""
    out = []
    start = 0
    for m in re.finditer(rb"[\r\n]", data):
        line = data[start:m.end()]
        if not is_noise(line):
            out.append(line)
        start = m.end()
    rest = data[start:]
    if rest and not _MAYBE_NOISE.match(rest):
        out.append(rest)
        rest = b""
    if out:
        _write(real, b"".join(out))
    return rest


def _write(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # the real stderr is gone (a closed terminal): keep draining so writers never block


def _restore(real: int, thread: threading.Thread) -> None:
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(real, 2)  # closes this process's write end of the pipe: the thread sees EOF and drains
    thread.join(timeout=2)
