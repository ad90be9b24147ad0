"""TF Serving's wire messages for the client, without TensorFlow or tensorflow-serving-api.

The message classes are built at import from tfship's own compiled ``.proto`` files (see
``build.py``) in a *private* ``DescriptorPool``. tensorflow-serving-api registers the same full names
(``tensorflow.serving.PredictRequest``...) in protobuf's default pool; a private pool lets both live
in one process (the server and the compatibility tests import both) while the bytes on the wire stay
identical.
"""

from __future__ import annotations

import base64

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tfship.clients._proto.descriptors import FILE_DESCRIPTOR_SET_B64


def _build_pool() -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(FILE_DESCRIPTOR_SET_B64))
    pool = descriptor_pool.DescriptorPool()
    for file_proto in files.file:  # protoc lists imports before the files that use them
        pool.Add(file_proto)
    return pool


POOL = _build_pool()


def message_class(full_name: str):
    """The Python class of message ``full_name`` (e.g. ``tensorflow.serving.PredictRequest``)."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def method_path(service: str, method: str) -> str:
    """The gRPC path of ``service.method``, e.g. ``/tensorflow.serving.PredictionService/Predict``."""
    descriptor = POOL.FindServiceByName(service).FindMethodByName(method)
    return f"/{descriptor.containing_service.full_name}/{descriptor.name}"


_SERVING = "tensorflow.serving."

TensorProto = message_class("tensorflow.TensorProto")
TensorShapeProto = message_class("tensorflow.TensorShapeProto")
Example = message_class("tensorflow.Example")
SignatureDef = message_class("tensorflow.SignatureDef")
ModelSpec = message_class(_SERVING + "ModelSpec")
PredictRequest = message_class(_SERVING + "PredictRequest")
PredictResponse = message_class(_SERVING + "PredictResponse")
ClassificationRequest = message_class(_SERVING + "ClassificationRequest")
ClassificationResponse = message_class(_SERVING + "ClassificationResponse")
GetModelMetadataRequest = message_class(_SERVING + "GetModelMetadataRequest")
GetModelMetadataResponse = message_class(_SERVING + "GetModelMetadataResponse")
SignatureDefMap = message_class(_SERVING + "SignatureDefMap")
GetModelStatusRequest = message_class(_SERVING + "GetModelStatusRequest")
GetModelStatusResponse = message_class(_SERVING + "GetModelStatusResponse")

DT_FLOAT = POOL.FindEnumTypeByName("tensorflow.DataType").values_by_name["DT_FLOAT"].number
DT_STRING = POOL.FindEnumTypeByName("tensorflow.DataType").values_by_name["DT_STRING"].number

PREDICT = method_path(_SERVING + "PredictionService", "Predict")
CLASSIFY = method_path(_SERVING + "PredictionService", "Classify")
GET_MODEL_METADATA = method_path(_SERVING + "PredictionService", "GetModelMetadata")
GET_MODEL_STATUS = method_path(_SERVING + "ModelService", "GetModelStatus")
