"""TF Serving's batching, monitoring and SSL config messages, which ``tensorflow-serving-api`` does not ship.

The wheel has ``tensorflow_serving.config.model_server_config_pb2`` but neither
``servables/tensorflow/session_bundle_config_pb2`` (``BatchingParameters``) nor
``config/monitoring_config_pb2`` (``MonitoringConfig``) nor ``config/ssl_config_pb2`` (``SSLConfig``).
The files users hand to ``--batching_parameters_file``, ``--monitoring_config_file`` and
``--ssl_config_file`` are text-format protos, so we
declare the same messages (same package, names, field numbers and types as TF Serving's
``.proto`` files) in a private descriptor pool and parse with protobuf's own text parser: a
field TF Serving would reject is rejected here too. The private pool keeps them out of the default
pool, where a later real ``*_pb2`` import would clash with them.
"""

from __future__ import annotations

import functools


@functools.cache
def _classes() -> dict:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)

    f = descriptor_pb2.FileDescriptorProto(
        name="tfship/serve/tf_serving_config.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"])
    T = descriptor_pb2.FieldDescriptorProto

    def add(msg, name: str, number: int, type_: int, type_name: str = "", repeated: bool = False) -> None:
        field = msg.field.add(name=name, number=number, type=type_, json_name=_camel(name),
                              label=T.LABEL_REPEATED if repeated else T.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name

    i64, s, b = ".google.protobuf.Int64Value", ".google.protobuf.StringValue", ".google.protobuf.BoolValue"
    batching = f.message_type.add(name="BatchingParameters")
    add(batching, "max_batch_size", 1, T.TYPE_MESSAGE, i64)
    add(batching, "batch_timeout_micros", 2, T.TYPE_MESSAGE, i64)
    add(batching, "max_enqueued_batches", 3, T.TYPE_MESSAGE, i64)
    add(batching, "num_batch_threads", 4, T.TYPE_MESSAGE, i64)
    add(batching, "thread_pool_name", 5, T.TYPE_MESSAGE, s)
    add(batching, "allowed_batch_sizes", 6, T.TYPE_INT64, repeated=True)
    add(batching, "pad_variable_length_inputs", 7, T.TYPE_BOOL)
    add(batching, "enable_large_batch_splitting", 8, T.TYPE_MESSAGE, b)
    add(batching, "max_execution_batch_size", 9, T.TYPE_MESSAGE, i64)

    prometheus = f.message_type.add(name="PrometheusConfig")
    add(prometheus, "enable", 1, T.TYPE_BOOL)
    add(prometheus, "path", 2, T.TYPE_STRING)
    monitoring = f.message_type.add(name="MonitoringConfig")
    add(monitoring, "prometheus_config", 1, T.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")

    ssl = f.message_type.add(name="SSLConfig")  # config/ssl_config.proto
    add(ssl, "server_key", 1, T.TYPE_STRING)
    add(ssl, "server_cert", 2, T.TYPE_STRING)
    add(ssl, "custom_ca", 3, T.TYPE_STRING)
    add(ssl, "client_verify", 4, T.TYPE_BOOL)
    pool.Add(f)

    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
            for name in ("BatchingParameters", "PrometheusConfig", "MonitoringConfig", "SSLConfig")}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def batching_parameters_class():
    """The ``tensorflow.serving.BatchingParameters`` message class."""
    return _classes()["BatchingParameters"]


def monitoring_config_class():
    """The ``tensorflow.serving.MonitoringConfig`` message class."""
    return _classes()["MonitoringConfig"]


def ssl_config_class():
    """The ``tensorflow.serving.SSLConfig`` message class."""
    return _classes()["SSLConfig"]
