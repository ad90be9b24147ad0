"""ONNX via tf2onnx: ``model.onnx``, opset 17 by default, dynamic batch, the source's tensor names.

STACK.md: ``tf2onnx.convert.from_keras`` fails on Keras 3 and ``from_function`` on a loaded signature
wrapper fails, so we convert a fresh ``tf.function`` around the signature. tf2onnx names the output
after the graph's ``Identity`` tensor; we rename it to the signature's output name, name the dynamic
batch dimension ``batch``, and store labels and provenance in ``metadata_props``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tfship.errors import UsageError
from tfship.export.base import Artifact, ExportOptions, Exporter, SourceModel, TensorInfo
from tfship.export.errors import ExportError

FILE = "model.onnx"
# tf2onnx 1.17 rejects opset 19+; 13 is the oldest with the ops our models use in their current form.
SUPPORTED_OPSETS = range(13, 19)
BATCH_DIM = "batch"


def _rename_value(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def _name_batch_dim(values) -> None:
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM


def _describe(values) -> tuple[TensorInfo, ...]:
    from onnx import helper

    out = []
    for v in values:
        t = v.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        out.append(TensorInfo(v.name, helper.tensor_dtype_to_np_dtype(t.elem_type).name, shape))
    return tuple(out)


class OnnxExporter(Exporter):
    name = "onnx"
    description = "ONNX model (tf2onnx) for onnxruntime and any ONNX runtime"

    def export(self, source: SourceModel, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        if options.opset not in SUPPORTED_OPSETS:
            raise UsageError(f"--opset {options.opset} is not supported by tf2onnx here; use "
                             f"{SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1} (default 17)")
        import onnx
        import tensorflow as tf
        import tf2onnx

        from tfship.export.tf_function import load_predict_function

        _loaded, predict = load_predict_function(source)
        try:
            model, _ = tf2onnx.convert.from_function(predict, input_signature=predict.input_signature,
                                                     opset=options.opset)
        except Exception as e:  # tf2onnx raises many types; say which format and what to try
            raise ExportError("onnx", f"tf2onnx: {type(e).__name__}: {e}".splitlines()[0],
                              "try another --opset (13-18) or run with --debug") from e

        graph = model.graph
        if len(graph.input) != 1 or len(graph.output) != 1:
            raise ExportError("onnx", f"expected 1 input and 1 output, tf2onnx wrote "
                                      f"{len(graph.input)} and {len(graph.output)}")
        if graph.input[0].name != source.input.name:
            _rename_value(graph, graph.input[0].name, source.input.name)
        if graph.output[0].name != source.output.name:
            _rename_value(graph, graph.output[0].name, source.output.name)
        _name_batch_dim([*graph.input, *graph.output])
        graph.name = f"{source.model.base.name}_{source.signature_key}"
        model.producer_name = "tfship (tf2onnx)"
        model.doc_string = f"Exported by tfship from {source.path} signature '{source.signature_key}'"
        props = {
            "labels": json.dumps(list(source.labels)),
            "source_saved_model": str(source.path),
            "source_version": str(source.model.version),
            "source_fingerprint": source.fingerprint,
            "signature": source.signature_key,
            "tensorflow": tf.__version__,
            "tf2onnx": tf2onnx.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        onnx.helper.set_model_props(model, props)

        path = out_dir / FILE
        onnx.save_model(model, str(path))
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.checker.ValidationError as e:
            raise ExportError("onnx", f"the written model fails onnx.checker: {e}".splitlines()[0],
                              "try another --opset") from e
        return [Artifact(FILE, self.name, "fp32", _describe(graph.input), _describe(graph.output),
                         {"opset": options.opset, "ir_version": model.ir_version})]
