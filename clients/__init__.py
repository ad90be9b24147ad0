"""Clients for a served tfship (or TensorFlow Serving) model: gRPC and REST, one API.

    from tfship.clients import GrpcClient, RestClient
    with GrpcClient("localhost:8500", "mnist") as client:
        prediction = client.predict(["digit.png"])       # image files, or arrays (raw tensors)
        print(prediction.top_k(3)[0])                    # [Ranked(label='7', score=0.99), ...]

The signature, input name, shape and dtype and the scores and labels outputs come from the model's
metadata (read once per client), so the same call works for any served image classifier.

Installs with ``pip install 'tfship[client]'``; importing it never imports TensorFlow.
"""

from tfship.clients.base import NO_RETRY, ModelClient, RetryPolicy
from tfship.clients.errors import ImageError, ProtocolError, ServerError, ServerUnavailableError
from tfship.clients.grpc_client import GrpcClient
from tfship.clients.images import load_image, preprocess, to_batch
from tfship.clients.inputs import VALUE_RANGES, InputOptions, encode
from tfship.clients.results import (InputForm, Metadata, ModelRef, ModelStatus, Prediction, Ranked, Signature,
                                    TensorSpec, VersionStatus)
from tfship.clients.rest_client import RestClient
from tfship.clients.signatures import PredictPlan, choose_signature, plan_predict
from tfship.errors import SignatureError


def connect(server: str, model: str = "mnist", **kwargs) -> ModelClient:
    """A client for ``server``: ``grpc://``/``grpcs://``/``host:port`` -> gRPC, ``http(s)://`` -> REST."""
    if server.startswith(("http://", "https://")):
        return RestClient(server, model, **kwargs)
    return GrpcClient(server, model, **kwargs)


__all__ = ["GrpcClient", "RestClient", "ModelClient", "connect", "RetryPolicy", "NO_RETRY", "Prediction",
           "Ranked", "Metadata", "Signature", "TensorSpec", "ModelStatus", "VersionStatus", "ModelRef",
           "ServerError", "ServerUnavailableError", "ProtocolError", "ImageError", "SignatureError", "load_image",
           "preprocess", "to_batch", "InputForm", "InputOptions", "VALUE_RANGES", "encode", "PredictPlan",
           "choose_signature", "plan_predict"]
