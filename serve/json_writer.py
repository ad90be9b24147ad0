"""TF Serving's REST JSON writer (its ``util/json_tensor.cc``: ``MakeJsonFromTensors``,
``MakeJsonFromClassificationResult``, ``MakeJsonFromRegressionResult``, ``WriteDecimal``).

Floats are written as TF Serving writes them, not as Python would: printf ``%g``, or 9 (float32) / 17
(float64) significant digits when ``%g`` does not read back as the same value; ``.0`` after whole
numbers; ``NaN``, ``Infinity``, ``-Infinity``. The types TF Serving cannot write (half, uint16,
complex, ...) are INVALID_ARGUMENT, as there.
"""

from __future__ import annotations

import base64
import json
import math
from array import array

import numpy as np

from tfship import tensorproto
from tfship.errors import TensorProtoError
from tfship.serve.errors import InvalidArgumentError
from tfship.serve.json_api import COLUMNAR
from tfship.serve.tensors import dtype_name


def predict_response(outputs: dict[str, np.ndarray], form: str) -> str:
    """``{"predictions": ...}`` (row form) or ``{"outputs": ...}`` (columnar form), written as TF
    Serving's ``MakeJsonFromTensors`` writes them (util/json_tensor.cc)."""
    if not outputs:
        raise InvalidArgumentError("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if form == COLUMNAR:
        if len(names) == 1:
            return '{"outputs": ' + _tensor_json(names[0], outputs[names[0]]) + "}"
        return '{"outputs": {' + ", ".join(f"{json.dumps(n)}: {_tensor_json(n, outputs[n])}" for n in names) + "}}"
    batch = None
    for name in names:
        t = outputs[name]
        if t.ndim == 0:
            raise InvalidArgumentError(f"Tensor name: {name} has no shape information ")
        if batch is not None and t.shape[0] != batch:
            raise InvalidArgumentError(f"Tensor name: {name} has inconsistent batch size: {t.shape[0]} "
                                       f"expecting: {batch}")
        batch = t.shape[0]
    if len(names) == 1:
        return '{"predictions": ' + _tensor_json(names[0], outputs[names[0]]) + "}"
    rows = {n: [_tensor_json(n, row) for row in outputs[n]] for n in names}
    items = ["{" + ", ".join(f"{json.dumps(n)}: {rows[n][i]}" for n in names) + "}" for i in range(batch)]
    return '{"predictions": [' + ", ".join(items) + "]}"


# util/json_tensor.cc AddSingleValueAndAdvance: the types TF Serving writes as JSON (no half,
# uint16, complex, ...: those are "Failed to write JSON value for tensor type").
_JSON_INTS = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64))


def _tensor_json(name: str, t: np.ndarray) -> str:
    if t.dtype.kind == "f" and t.dtype.itemsize in (4, 8):
        flat = decimals(t)
    elif t.dtype in _JSON_INTS:
        flat = [str(v) for v in t.reshape(-1).tolist()]
    elif t.dtype == np.bool_:
        flat = ["true" if v else "false" for v in t.reshape(-1).tolist()]
    elif t.dtype.kind in "OS":
        as_b64 = name.endswith("_bytes")  # TF Serving's convention for binary string outputs
        flat = [_string_json(v, as_b64) for v in t.reshape(-1).tolist()]
    else:
        kind = "string" if t.dtype.kind == "U" else dtype_name(_enum_or_zero(t.dtype))
        raise InvalidArgumentError(f"Failed to write JSON value for tensor type: {kind}")
    return _nested(flat, t.shape)


def _enum_or_zero(dtype: np.dtype) -> int:
    try:
        return tensorproto.enum_for(dtype)
    except TensorProtoError:
        return 0


def _string_json(v, as_b64: bool) -> str:
    b = v if isinstance(v, bytes) else str(v).encode()
    if as_b64:
        return '{"b64": "' + base64.b64encode(b).decode() + '"}'
    return json.dumps(b.decode("utf-8", "replace"), ensure_ascii=False)


def _nested(flat: list[str], shape: tuple[int, ...]) -> str:
    """Values (row-major) as nested JSON arrays of ``shape``."""
    parts = flat
    for k in range(len(shape) - 1, -1, -1):
        size, groups = shape[k], math.prod(shape[:k])
        parts = ["[" + ", ".join(parts[g * size:(g + 1) * size]) + "]" for g in range(groups)]
    return parts[0]


def decimals(t: np.ndarray) -> list[str]:
    """Floats as TF Serving's WriteDecimal writes them: printf ``%g`` when that reads back as the same
    float32/float64, else ``%.9g``/``%.17g`` (max_digits10); ``.0`` after whole numbers; NaN and
    [-]Infinity. So float32 0.2 is ``0.2`` (not 0.20000000298023224) and 9000000 is ``9e+06``."""
    values = t.reshape(-1).tolist()
    out = ["%g" % v for v in values]
    back = [float(x) for x in out]
    if t.dtype == np.float32:
        back = array("f", back).tolist()  # read back as float32 (C rounding, in bulk)
    wide = "%.9g" if t.dtype == np.float32 else "%.17g"
    for i, (v, b) in enumerate(zip(values, back)):
        if v == b and v - v == 0:  # round-trips and is finite (inf - inf and nan are nan)
            continue
        if v != v:
            out[i] = "NaN"
        elif v - v != 0:
            out[i] = "Infinity" if v > 0 else "-Infinity"
        else:
            out[i] = wide % v
    return [x if ("." in x or "e" in x or x[-1] in "yN") else x + ".0" for x in out]


def classify_response(classes, scores) -> str:
    n = (classes if classes is not None else scores).shape[0]
    k = (classes if classes is not None else scores).shape[1]
    labels = [["" for _ in range(k)] for _ in range(n)] if classes is None else \
        [[c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in row] for row in classes.tolist()]
    flat = ["0.0"] * (n * k) if scores is None else decimals(scores.astype(np.float32, copy=False))
    values = [flat[i * k:(i + 1) * k] for i in range(n)]
    rows = ["[" + ", ".join(f"[{json.dumps(labels[i][j], ensure_ascii=False)}, {values[i][j]}]" for j in range(k)) + "]"
            for i in range(n)]
    return '{"results": [' + ", ".join(rows) + "]}"


def regress_response(values: np.ndarray) -> str:
    return '{"results": [' + ", ".join(decimals(values.astype(np.float32, copy=False))) + "]}"
