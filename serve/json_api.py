"""TF Serving's REST JSON <-> tensors and tf.Examples (its ``util/json_tensor.cc``), with its messages.

- predict: ``instances`` (row form: one element per batch row; objects when a signature has several
  inputs) or ``inputs`` (columnar form); answers ``predictions`` or ``outputs`` to match.
- classify / regress: ``examples`` (and an optional ``context`` merged into each; decoded in
  :mod:`.json_examples`); answers ``results``.
- ``{"b64": "..."}`` is a binary string; JSON integers and decimals are distinct (``1`` vs ``1.0``), as
  in TF Serving: in an example a list of integers becomes an int64 feature, of decimals a float one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import numpy as np

from tfship.errors import TensorProtoError
from tfship.serve.errors import InvalidArgumentError
from tfship.serve.servable import TensorSpec
from tfship.serve.tensors import dtype_name, numpy_dtype
from tfship.tensorproto import MAX_RANK, TensorLimits, check_size

ROW, COLUMNAR = "row", "columnar"


def _debug(value) -> str:
    """A JSON value as TF Serving's error messages quote it (JsonValueToDebugString)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except RecursionError:
        # A document nested deeper than json.dumps recurses (the parser takes up to 2 MB of brackets).
        return "<a JSON value nested too deeply to quote>"


def _json_type(value) -> str:
    # rapidjson's type names, as TF Serving prints them.
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _strict_loads(body: bytes):
    """orjson: ~5x faster than ``json.loads`` on a 784-float image (21 vs 107 us), which is ~10% of
    a REST request's CPU (docs/SERVING.md). Same values for every document both accept."""
    import orjson

    return orjson.loads(body)


def parse_body(body: bytes) -> dict:
    """The request body as a JSON object, or TF Serving's parse error."""
    if not body:
        raise InvalidArgumentError("JSON Parse error: The document is empty")
    try:
        return _object(_strict_loads(body))
    except ValueError:
        pass  # orjson rejects NaN, Infinity and integers over 64 bits, which json accepts; json words the errors
    try:
        doc = json.loads(body)
    except RecursionError as e:
        deep = _members_of_deep_object(body)  # rapidjson (iterative) accepts any depth; Python's parsers do not
        if deep is None:
            raise InvalidArgumentError("JSON Parse error: The document is nested too deeply") from e
        return deep
    except (ValueError, UnicodeDecodeError) as e:
        offset = getattr(e, "pos", 0)
        reason = getattr(e, "msg", "Invalid value.")  # undecodable bytes where a value should start
        raise InvalidArgumentError(f"JSON Parse error: {_RAPIDJSON.get(reason, reason)} at offset: {offset}") from e
    return _object(doc)


# The members a request body may have; a deep document keeps only these (TF Serving ignores the others).
_KEYS = ("signature_name", "instances", "inputs", "examples", "context")
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
# Scanning costs ~1-2 us per bracket: a document deeper than the parser allows is scanned only up to
# this size (TF Serving's own test sends 1 MB of brackets); larger ones are "nested too deeply".
DEEP_BODY_BYTES = 2 << 20


class _TooDeep:
    """A member value nested deeper than the parser allows: no tensor or name can be one."""

    def __repr__(self) -> str:
        return "[[...]]"


def _members_of_deep_object(body: bytes) -> dict | None:
    """A top-level object whose members nest too deeply for Python's parsers, split without
    recursion: known members are parsed (a too-deep one becomes :class:`_TooDeep`), others skipped.
    None if the body is not such an object (or too large to scan)."""
    if len(body) > DEEP_BODY_BYTES or not body.lstrip().startswith(b"{"):
        return None
    members: dict = {}
    depth, key, start = 0, None, None
    for m in _TOKENS.finditer(body):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
        elif tok in (b"]", b"}"):
            depth -= 1
        if depth == 1 and tok[:1] == b'"' and key is None and start is None:
            key = tok
        elif depth == 1 and tok == b":" and key is not None and start is None:
            start = m.end()
        elif (depth == 1 and tok == b",") or (depth == 0 and tok == b"}"):
            if key is None or start is None:
                return None
            name = json.loads(key)
            if name in _KEYS:
                members[name] = _member(body[start:m.start()])
            key, start = None, None
            if depth == 0:
                return members if not body[m.end():].strip() else None
    return None


def _member(text: bytes):
    try:
        return json.loads(text)
    except RecursionError:
        return _TooDeep()
    except ValueError as e:
        raise InvalidArgumentError(f"JSON Parse error: {_RAPIDJSON.get(e.msg, e.msg)}") from e


# Python's json messages -> rapidjson's (GetParseError_En), which TF Serving's clients see.
_RAPIDJSON = {
    "Expecting value": "Invalid value.",
    "Extra data": "The document root must not be followed by other values.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Expecting ',' delimiter": "Missing a comma or ']' after an array element.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid encoding in string.",
    "Invalid \\escape": "Invalid escape character in string.",
}


def _object(doc) -> dict:
    if not isinstance(doc, dict):
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} not formatted correctly. "
                                   "'signature_name' key must be a string value.")
    return name


def predict_inputs(doc: dict, specs: dict[str, TensorSpec],
                   limits: TensorLimits | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Input tensors and the request's form (``ROW`` or ``COLUMNAR``) from a ``:predict`` body.
    Each tensor's size, read from the JSON's leading elements, is checked against ``limits`` before
    any array is built."""
    if not specs:
        raise InvalidArgumentError(f"Failed to get input map for signature: {signature_name(doc) or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of "
                                   "'inputs' or 'instances' keys to exist ")
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise InvalidArgumentError(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise InvalidArgumentError(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        if limits is not None:
            first = instances[0]
            for name, spec in specs.items():
                value = first.get(name) if _is_named(first) else first
                _check_size(name, (len(instances), *_leading_shape(value)), spec, limits)
        return _from_instances(instances, specs), ROW
    if has_inputs:
        value = doc["inputs"]
        if limits is not None:
            for name, spec in specs.items():
                _check_size(name, _leading_shape(value.get(name) if _is_named(value) else value), spec, limits)
        return _from_inputs(value, specs), COLUMNAR
    raise InvalidArgumentError("Missing 'inputs' or 'instances' key")


def _leading_shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _check_size(name: str, shape: tuple[int, ...], spec: TensorSpec, limits: TensorLimits) -> None:
    try:
        check_size(shape, numpy_dtype(spec.dtype), limits)
    except TensorProtoError as e:
        raise InvalidArgumentError(f"input {name}: {e}") from e


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances: list, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(specs) > 1:
        raise InvalidArgumentError("instances is a plain list, but expecting list of objects as multiple input "
                                   "tensors required as per tensorinfo_map")
    named = _is_named(instances[0])
    if not named:
        (name, spec), = specs.items()
        fast = _fast_array(instances, spec)
        if fast is not None:
            return {name: fast}
    rows: dict[str, list[np.ndarray]] = {k: [] for k in specs}
    for i, elem in enumerate(instances):
        if named:
            if not _is_named(elem):
                raise InvalidArgumentError(f"Expecting object but got list at item {i} of input list")
            for key, value in elem.items():
                if key not in specs:
                    raise InvalidArgumentError(f"Failed to process element: {i} key: {key} of 'instances' list. "
                                               f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}")
                rows[key].append(_row(value, specs[key], i, rows[key], f" key: {key}"))
            if set(elem) != set(specs):
                raise InvalidArgumentError(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                           f"{_debug(elem)} keys must be equal to: {','.join(sorted(specs))}")
        else:
            if _is_named(elem):
                raise InvalidArgumentError(f"Expecting value/list but got object at item {i} of input list")
            (key, spec), = specs.items()
            rows[key].append(_row(elem, spec, i, rows[key], ""))
    return {k: np.stack(v) if v else np.empty((0,), numpy_dtype(specs[k].dtype)) for k, v in rows.items()}


def _row(value, spec: TensorSpec, index: int, previous: list[np.ndarray], where: str) -> np.ndarray:
    try:
        arr = _dense(value, spec.dtype)
        if previous and previous[0].shape != arr.shape:
            if previous[0].size != arr.size:
                raise InvalidArgumentError(f"Expecting tensor size: {previous[0].size} but got: {arr.size}")
            raise InvalidArgumentError(f"Expecting shape {_shape(previous[0].shape)} but got: {_shape(arr.shape)}")
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"Failed to process element: {index}{where} of 'instances' list. "
                                   f"Error: INVALID_ARGUMENT: {e.message}") from e
    return arr


def _shape(shape) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


def _from_inputs(value, specs: dict[str, TensorSpec]) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or _is_b64(value):
        if len(specs) > 1:
            raise InvalidArgumentError("inputs is a plain value/list, but expecting an object as multiple input "
                                       "tensors required as per tensorinfo_map")
        (name, spec), = specs.items()
        fast = _fast_array(value, spec)
        return {name: fast if fast is not None else _dense(value, spec.dtype)}
    out = {}
    for name in sorted(specs):
        if name not in value:
            raise InvalidArgumentError(f"Missing named input: {name} in 'inputs' object.")
        fast = _fast_array(value[name], specs[name])
        out[name] = fast if fast is not None else _dense(value[name], specs[name].dtype)
    return out


def _fast_array(value, spec: TensorSpec) -> np.ndarray | None:
    """The common case (a well-formed numeric nest) in one numpy call; None means take the slow,
    exact path, which also produces TF Serving's error messages."""
    if spec.dtype == 7 or not isinstance(value, list):
        return None
    try:
        arr = np.asarray(value)
    except ValueError:
        return None
    want = numpy_dtype(spec.dtype)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and want.kind in "iu"):
        return None
    if want.kind in "iu" and arr.size:
        low, high = _INT_RANGE[want.name]
        if int(arr.min()) < low or int(arr.max()) >= high:
            return None  # the exact path words the error for the value out of range
    with np.errstate(over="ignore"):  # a double beyond float32 becomes inf, as TF Serving's GetFloat gives
        return arr.astype(want, copy=False)


def _dense(value, dtype: int) -> np.ndarray:
    """A JSON nest as a dense tensor of ``dtype``, checked level by level like TF Serving does."""
    shape = []
    v = value
    while isinstance(v, list):
        shape.append(len(v))
        if not v:
            break
        v = v[0]
    if len(shape) > MAX_RANK:
        raise InvalidArgumentError(f"JSON Value: a list nested {len(shape)} deep is a tensor of rank {len(shape)}; "
                                   f"this server handles at most {MAX_RANK} dimensions")
    flat: list = []
    _fill(value, 0, shape, dtype, flat)
    if dtype == 7:
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return arr.reshape(shape)
    want = numpy_dtype(dtype)
    if want.kind in "iu":
        # Each value was range-checked as TF Serving's rapidjson accessors do; narrower types then wrap
        # like its static_cast (numpy refuses an out-of-range Python int instead).
        wide = np.uint64 if want == np.uint64 else np.int64
        return np.asarray(flat, dtype=wide).astype(want).reshape(shape)
    return np.asarray(flat, dtype=want).reshape(shape)


# The JSON integer range TF Serving accepts per type (util/json_tensor.cc:303-334: IsInt for int8/16/32 and
# uint8, IsInt64, IsUint, IsUint64); a number outside it is "not of expected type". (TF Serving has no
# uint16 case at all and answers Unimplemented; here it takes IsUint's range.)
_INT_RANGE = {"int8": (-2**31, 2**31), "int16": (-2**31, 2**31), "int32": (-2**31, 2**31),
              "uint8": (-2**31, 2**31), "uint16": (0, 2**32), "uint32": (0, 2**32),
              "int64": (-2**63, 2**63), "uint64": (0, 2**64)}
# rapidjson stores an integer literal beyond uint64 as a double, and refuses one beyond a double's range.
_MAX_DOUBLE_INT = 2**1024


def _fill(value, level: int, shape: list[int], dtype: int, out: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise InvalidArgumentError(f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the "
                                       f"JSON DOM. Expected at level: {rank}")
        out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise InvalidArgumentError(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise InvalidArgumentError(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                                   f"expected size: {shape[level]}")
    for v in value:
        _fill(v, level + 1, shape, dtype, out)


def _type_error(value, dtype: int) -> InvalidArgumentError:
    return InvalidArgumentError(f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: "
                                f"{dtype_name(dtype)}")


def _scalar(value, dtype: int):
    name = dtype_name(dtype)
    if isinstance(value, dict):
        if name != "string":
            raise _type_error(value, dtype)
        return _b64(value)
    if name in ("float", "double", "half"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, int) and abs(value) >= _MAX_DOUBLE_INT:
            raise InvalidArgumentError("JSON Parse error: Number too big to be stored in double")
    elif name == "string":
        ok = isinstance(value, str)
        value = value.encode("utf-8") if ok else value
    elif name == "bool":
        ok = isinstance(value, bool)
    else:
        low, high = _INT_RANGE.get(name, (-2**63, 2**63))
        ok = type(value) is int and low <= value < high
    if not ok:
        raise _type_error(value, dtype)
    return value


def _b64(value) -> bytes:
    if not _is_b64(value):
        raise InvalidArgumentError(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidArgumentError("Unable to base64 decode") from e
