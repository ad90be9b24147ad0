"""Helpers for the CoreML tests (a uniquely named module: every test folder has a conftest.py)."""

from __future__ import annotations

from tfship import contract
from tfship.export.base import ImageLayout, SourceModel, TensorInfo
from tfship.savedmodel import ModelVersion


def contract_source(model: ModelVersion, labels=contract.MNIST_LABELS) -> SourceModel:
    return SourceModel(model=model, signature_key=contract.PREDICT_SIGNATURE,
                       input=TensorInfo(contract.PREDICT_INPUT, "float32", (None, contract.NUM_PIXELS)),
                       output=TensorInfo(contract.PREDICT_OUTPUT, "float32", (None, contract.NUM_CLASSES)),
                       image=ImageLayout(28, 28, 1), labels=tuple(labels), labels_from_asset=True,
                       fingerprint="test-fingerprint")
