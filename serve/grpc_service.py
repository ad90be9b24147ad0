"""The gRPC adapter: ``tensorflow.serving.PredictionService`` and ``ModelService`` over :class:`ServingCore`.

Uses the servicer bases and messages of ``tensorflow-serving-api`` on a ``grpc.aio`` server: every
RPC is a coroutine on one event loop. Predict hands its inputs to the core and awaits the batch
(no thread waits for it); the other RPCs run on the core's worker threads. A :class:`ServingError`
becomes its gRPC status code and message (``errors.grpc_code``), anything else INTERNAL, logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from tfship.errors import UsageError
from tfship.serve import config, messages, tensors
from tfship.serve.aio import LoopBridge
from tfship.serve.core import CLASSIFY_METHOD, REGRESS_METHOD, Classification, ServingCore
from tfship.serve.errors import TIMEOUT_MESSAGE, InvalidArgumentError, ServingError, grpc_code, release

log = logging.getLogger("tfship.serve")
ENTRYPOINT = "GRPC"


def _rpc(method):
    """Map a core error to the RPC's status; log and report INTERNAL for anything unexpected. A call with a
    deadline stops waiting for its answer then, with DEADLINE_EXCEEDED and the message TF Serving's session
    gives (TF Serving turns the deadline into the session's RunOptions.timeout_in_ms)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        import grpc

        try:
            if isinstance(request, _Undecodable):
                raise InvalidArgumentError(f"The request is not a valid {request.type_name} message "
                                           f"({request.reason}); send one serialized from the "
                                           "tensorflow_serving.apis protos")
            remaining = context.time_remaining()
            if remaining is None:  # no deadline: no timer
                return await method(self, request, context)
            async with asyncio.timeout(remaining):
                return await method(self, request, context)
        except TimeoutError:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, TIMEOUT_MESSAGE
        except ServingError as e:
            code, message = grpc_code(e), e.message
            release(e)
        except grpc.aio.AbortError:
            raise  # already an RPC status
        except Exception as e:  # noqa: BLE001 - a bug must answer INTERNAL and be logged, never kill the server
            log.exception("gRPC %s failed", method.__name__)
            code = grpc.StatusCode.INTERNAL
            message = f"{method.__name__} failed inside the server; its log has the details"
            release(e)
        # Aborting outside the except block: the AbortError must not carry the request's error (and
        # through its traceback, the request's arrays) as its __context__.
        await context.abort(code, message)

    return wrapper


def _spec(request):
    """The request's ModelSpec; INVALID_ARGUMENT without one (predict_impl.cc and the others)."""
    if not request.HasField("model_spec"):
        raise InvalidArgumentError("Missing ModelSpec")
    return request.model_spec


def add_services(server, core: ServingCore, tensor_content: bool = False) -> None:
    """Register PredictionService and ModelService on a ``grpc.aio.Server``. ``tensor_content``
    (--enable_serialization_as_tensor_content): Predict outputs packed into ``tensor_content``."""
    from tensorflow_serving.apis import (classification_pb2, inference_pb2, model_management_pb2,
                                         model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
                                         regression_pb2)

    bridge = LoopBridge()

    async def blocking(fn, *args):
        return await bridge.wait(core.run_blocking(fn, *args))

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        @_rpc
        async def Predict(self, request, context):
            ref = messages.model_ref(_spec(request))
            inputs = tensors.request_tensors(request.inputs, core.limits)
            result = await bridge.wait(core.predict_future(ref, inputs, list(request.output_filter), ENTRYPOINT))
            response = predict_pb2.PredictResponse()
            messages.fill_model_spec(response.model_spec, result.model)
            for name, value in result.outputs.items():
                tensors.response_tensor(value, response.outputs[name], tensor_content)
            return response

        @_rpc
        async def Classify(self, request, context):
            result = await blocking(core.classify, messages.model_ref(_spec(request)),
                                    messages.serialized_examples(request.input), ENTRYPOINT)
            response = classification_pb2.ClassificationResponse()
            messages.fill_model_spec(response.model_spec, result.model)
            messages.classification_result(result, response.result)
            return response

        @_rpc
        async def Regress(self, request, context):
            result = await blocking(core.regress, messages.model_ref(_spec(request)),
                                    messages.serialized_examples(request.input), ENTRYPOINT)
            response = regression_pb2.RegressionResponse()
            messages.fill_model_spec(response.model_spec, result.model)
            messages.regression_result(result, response.result)
            return response

        @_rpc
        async def MultiInference(self, request, context):
            tasks = [(messages.model_ref(t.model_spec), t.method_name) for t in request.tasks]
            results = await blocking(core.multi_inference, tasks, messages.serialized_examples(request.input),
                                     ENTRYPOINT)
            response = inference_pb2.MultiInferenceResponse()
            for r in results:
                out = response.results.add()
                messages.fill_model_spec(out.model_spec, r.model)
                if isinstance(r, Classification):
                    messages.classification_result(r, out.classification_result)
                else:
                    messages.regression_result(r, out.regression_result)
            return response

        @_rpc
        async def GetModelMetadata(self, request, context):
            meta = await blocking(core.metadata, messages.model_ref(_spec(request)),
                                  list(request.metadata_field), ENTRYPOINT)
            return messages.metadata_response(meta)

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        @_rpc
        async def GetModelStatus(self, request, context):
            return messages.status_response(core.status(messages.model_ref(_spec(request)), ENTRYPOINT))

        @_rpc
        async def HandleReloadConfigRequest(self, request, context):
            if request.config.WhichOneof("config") != "model_config_list":
                # TF Serving's message (model_servers/model_service_impl.cc).
                raise InvalidArgumentError("ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                           "Only ModelConfigList is currently supported")
            try:
                models = config.models_from_proto(request.config, "ReloadConfigRequest")
            except UsageError as e:
                raise InvalidArgumentError(str(e)) from e
            await blocking(core.reload_config, models)
            log.info("reloaded the model config over gRPC: %s", ", ".join(m.name for m in models) or "no models")
            return model_management_pb2.ReloadConfigResponse()  # status: OK (error_code 0)

    from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2

    _register(server, prediction_service_pb2, "PredictionService", PredictionService())
    _register(server, model_service_pb2, "ModelService", ModelService())


class _Undecodable:
    """A request whose bytes did not parse: the RPC answers INVALID_ARGUMENT (gRPC's own deserializer
    would answer UNKNOWN, naming a Python exception class)."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name, self.reason = type_name, reason


def _tolerant(message_class):
    from google.protobuf.message import DecodeError

    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except (DecodeError, RecursionError, ValueError) as e:
            return _Undecodable(message_class.DESCRIPTOR.full_name, str(e) or "malformed protobuf bytes")

    return parse


def _register(server, services_module, service: str, servicer) -> None:
    """What the generated ``add_*Servicer_to_server`` does, with :func:`_tolerant` request parsing."""
    import grpc
    from google.protobuf import message_factory

    descriptor = services_module.DESCRIPTOR.services_by_name[service]
    handlers = {m.name: grpc.unary_unary_rpc_method_handler(
        getattr(servicer, m.name), request_deserializer=_tolerant(message_factory.GetMessageClass(m.input_type)),
        response_serializer=lambda r: r.SerializeToString()) for m in descriptor.methods}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(descriptor.full_name, handlers),))


__all__ = ["add_services", "CLASSIFY_METHOD", "REGRESS_METHOD"]
