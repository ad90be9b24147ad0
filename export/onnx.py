"""ONNX via tf2onnx: ``model.onnx``, opset 17 by default, dynamic batch, the source's tensor names.

STACK.md: ``tf2onnx.convert.from_keras`` fails on Keras 3 and ``from_function`` on a loaded signature
wrapper fails. We hand tf2onnx the source's frozen predict graph (``SourceModel.frozen``) with
``from_graph_def``: no captured variable can become an extra graph input (STACK.md, EfficientNet and
ConvNeXt). tf2onnx does not raise on a TF op it cannot map: it logs "Unsupported ops" and writes the op
as is; we collect that log record and fail naming the ops. The input and output keep the signature's
names, the dynamic batch dimension is named ``batch``, labels and provenance go in ``metadata_props``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from tfship.errors import UsageError
from tfship.export.base import Artifact, ExportOptions, Exporter, SourceModel, TensorInfo, Variant
from tfship.export.errors import ExportError

FILE = "model.onnx"
# tf2onnx 1.17 rejects opset 19+; 13 is the oldest with the ops our models use in their current form.
SUPPORTED_OPSETS = range(13, 19)
BATCH_DIM = "batch"


class _UnsupportedOps(logging.Handler):
    """Collects tf2onnx's "Unsupported ops: Counter(...)" record (it logs instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Unsupported ops"):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _quiet_tf2onnx() -> Iterator[_UnsupportedOps]:
    """tf2onnx logs every step at INFO and each unmapped node at ERROR: keep it out of tfship's output."""
    logger = logging.getLogger("tf2onnx")
    handler = _UnsupportedOps()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


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

    def check(self, options: ExportOptions) -> None:
        if options.opset not in SUPPORTED_OPSETS:
            raise UsageError(f"--opset {options.opset} is not supported by tf2onnx here; use "
                             f"{SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1} (default 17)")

    def variants(self, options: ExportOptions) -> tuple[Variant, ...]:
        return (Variant(FILE, "fp32"),)

    def export_variant(self, source: SourceModel, variant: Variant, out_dir: Path,
                       options: ExportOptions) -> Artifact:
        import onnx
        import tensorflow as tf
        import tf2onnx

        frozen = source.frozen()
        try:
            with _quiet_tf2onnx() as unsupported:
                model, _ = tf2onnx.convert.from_graph_def(
                    frozen.without_erfc(), input_names=[frozen.input_tensor], output_names=[frozen.output_tensor],
                    opset=options.opset)
        except Exception as e:  # tf2onnx raises many types; say which format and what to try
            raise ExportError("onnx", f"tf2onnx: {type(e).__name__}: {e}".splitlines()[0],
                              "try another --opset (13-18) or run with --debug") from e
        if unsupported.messages:
            raise ExportError("onnx", f"tf2onnx cannot convert these TensorFlow ops at opset {options.opset}: "
                                      f"{unsupported.messages[0].removeprefix('Unsupported ops: ')}",
                              "try another --opset (13-18) or leave ONNX out with --formats")

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
        return Artifact(FILE, self.name, "fp32", _describe(graph.input), _describe(graph.output),
                        {"opset": options.opset, "ir_version": model.ir_version})


def perturb(path: Path, out: Path, factor: float = 1.05) -> str:
    """Registry hook: a copy of a .onnx with its largest initializer multiplied by ``factor``. Returns its name."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((values * factor).astype(values.dtype), init.name))
    onnx.save(model, str(out))
    return init.name
