"""TF Serving's REST ``:classify`` / ``:regress`` bodies -> serialized ``tf.Example``s (its
``util/json_tensor.cc`` FillClassificationRequestFromJson and friends), with its messages.

``examples`` is a list of JSON objects, feature name -> value or list of values; an optional ``context``
object is merged into each. Integers become int64 features, decimals float ones, strings and
``{"b64": ...}`` bytes ones; one feature's values must share a kind.
"""

from __future__ import annotations

from tfship.serve.errors import InvalidArgumentError
from tfship.serve.json_api import _b64, _debug, _is_b64, _json_type


def examples(doc: dict) -> list[bytes]:
    """Serialized tf.Examples from a ``:classify`` / ``:regress`` body (context merged into each)."""
    from tensorflow.core.example import example_pb2

    context = None
    if "context" in doc:
        context = example_pb2.Example()
        _fill_example(doc["context"], context)
    items = doc.get("examples")
    if "examples" not in doc:
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} When method is classify, key 'examples' is "
                                   "expected and was not found")
    if not isinstance(items, list):
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} Expecting 'examples' value to be an list/array")
    if not items:
        raise InvalidArgumentError(f"JSON Value: {_debug(doc)} 'examples' value is an empty array")
    out = []
    for item in items:
        ex = example_pb2.Example()
        if context is not None:
            ex.CopyFrom(context)
        _fill_example(item, ex)
        out.append(ex.SerializeToString())
    return out


def _fill_example(value, example) -> None:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = example.features.feature[name]
        feature.Clear()
        for v in content if isinstance(content, list) else [content]:
            _add_to_feature(v, name, feature)


_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def _add_to_feature(v, name: str, feature) -> None:
    if v is None or isinstance(v, list) or (isinstance(v, dict) and not _is_b64(v)):
        raise InvalidArgumentError(f"Feature: {name} has element with unexpected JSON type: {_json_type(v)}")
    if isinstance(v, bool):
        kind, item = "int64_list", int(v)
    elif isinstance(v, dict):
        kind, item = "bytes_list", _b64(v)
    elif isinstance(v, str):
        kind, item = "bytes_list", v.encode("utf-8")
    elif isinstance(v, float):
        kind, item = "float_list", v
    else:
        if not -(2 ** 63) <= v < 2 ** 63:
            raise InvalidArgumentError(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        kind, item = "int64_list", v
    current = feature.WhichOneof("kind")
    if current is not None and current != kind:
        raise InvalidArgumentError(f"Unexpected element type in feature: {name} expecting type: "
                                   f"{_KIND_NAMES[current]}")
    getattr(feature, kind).value.append(item)
