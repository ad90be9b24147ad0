"""Core results <-> ``tensorflow_serving.apis`` messages, shared by both transports.

gRPC sends these messages as they are; REST prints the status and metadata ones as JSON, exactly
as TF Serving's REST handler does (it, too, converts the gRPC response protos to JSON).
"""

from __future__ import annotations

from tfship.serve.core import Classification, Metadata, ModelRef, Regression, Served
from tfship.serve.manager import VersionState


def model_ref(spec) -> ModelRef:
    """A ``ModelSpec`` as a :class:`ModelRef`."""
    choice = spec.WhichOneof("version_choice")
    return ModelRef(spec.name, spec.version.value if choice == "version" else None,
                    spec.version_label if choice == "version_label" else None, spec.signature_name)


def fill_model_spec(spec, served: Served) -> None:
    spec.name = served.name
    spec.version.value = served.version
    spec.signature_name = served.signature_name


def serialized_examples(input_proto) -> list[bytes]:
    """The examples of an ``Input`` message, serialized, with the shared context merged into each."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        lst = input_proto.example_list_with_context
        # A serialized context followed by a serialized example parses as their merge, which is how
        # TF Serving feeds ExampleListWithContext to the model.
        context = lst.context.SerializeToString()
        return [context + e.SerializeToString() for e in lst.examples]
    return []  # the core answers "Input is empty." once it has found the model, as TF Serving does


def status_response(states: list[VersionState]):
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    for s in states:
        v = response.model_version_status.add(version=s.version)
        v.state = get_model_status_pb2.ModelVersionStatus.State.Value(s.state)
        v.status.error_code = _error_code(s.error_code)
        v.status.error_message = s.error_message
    return response


def _error_code(name: str) -> int:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Value(name)


def metadata_response(meta: Metadata):
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = meta.model.name
    response.model_spec.version.value = meta.model.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, sig in meta.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(sig)
    response.metadata["signature_def"].Pack(signature_map)
    return response


def classification_result(result: Classification, proto) -> None:
    """Fill a ``ClassificationResult``: per example, one (label, score) per class."""
    ref = result.classes if result.classes is not None else result.scores
    for i in range(ref.shape[0]):
        classifications = proto.classifications.add()
        for j in range(ref.shape[1]):
            c = classifications.classes.add()
            if result.classes is not None:
                label = result.classes[i, j]
                c.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if result.scores is not None:
                c.score = float(result.scores[i, j])


def regression_result(result: Regression, proto) -> None:
    for v in result.values:
        proto.regressions.add(value=float(v))


def status_json(response) -> str:
    from google.protobuf import json_format

    return json_format.MessageToJson(response, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def metadata_json(response) -> str:
    """TF Serving's metadata JSON: the model spec, and the signature map unpacked from its ``Any``."""
    import json

    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    opts = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    return json.dumps({"model_spec": json_format.MessageToDict(response.model_spec, **opts),
                       "metadata": {"signature_def": json_format.MessageToDict(signature_map, **opts)}}, indent=1)
