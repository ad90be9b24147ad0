"""TFLite: four flatbuffers from the predict signature, each keeping its signature name and tensor names.

- ``model.tflite``: fp32.
- ``model_fp16.tflite``: fp16 weights, fp32 compute (weights dequantized at load).
- ``model_int8_dynamic.tflite``: dynamic-range: int8 weights, activations quantized on the fly.
- ``model_int8.tflite``: full-integer, calibrated on representative training images; its input and
  output are **int8** (what microcontroller and Edge TPU delegates require). Feed
  ``round(x / scale) + zero_point`` and read ``(q - zero_point) * scale``; the scales are in the
  tensor details, and ``TfliteRunner`` does it for you.

Converted with ``from_concrete_functions`` on the source's frozen predict graph (``SourceModel.frozen``;
STACK.md: ``from_saved_model`` silently drops the weights with Keras 3 models). That API names the
signature ``serving_default``; we rename it to the source's signature key and add tfship's provenance
as a ``tfship_provenance`` metadata entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tfship.export.base import Artifact, ExportOptions, Exporter, SourceModel, TensorInfo, Variant
from tfship.export.errors import ExportError

PROVENANCE_METADATA = "tfship_provenance"
# Calibration images for full-integer quantization: enough to pin activation ranges; more costs time
# and buys nothing measurable on MNIST.
CALIBRATION_SAMPLES = 500


def _fp32(conv, tf, rep) -> None:
    pass


def _fp16(conv, tf, rep) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]


def _dynamic(conv, tf, rep) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(conv, tf, rep) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8


VARIANTS = (
    Variant("model.tflite", "fp32"),
    Variant("model_fp16.tflite", "fp16"),
    Variant("model_int8_dynamic.tflite", "int8-dynamic"),
    Variant("model_int8.tflite", "int8"),
)
# (converter, tf, representative_dataset) -> None, per precision.
CONFIGURE: dict[str, Callable] = {"fp32": _fp32, "fp16": _fp16, "int8-dynamic": _dynamic, "int8": _int8}


def _representative(source: SourceModel, calibration: np.ndarray | None) -> Callable[[], Iterator[list]]:
    if calibration is None:
        raise ExportError("tflite", "full-integer quantization needs calibration inputs",
                          "pass representative inputs, e.g. --calibration-data images.npy")
    samples = np.asarray(calibration[:CALIBRATION_SAMPLES], dtype=np.float32)

    def dataset() -> Iterator[list]:
        for row in samples:
            yield [row[None, ...]]

    return dataset


def _signature_of_subgraph(schema, model):
    """A SignatureDef over the main subgraph's one input and one output. The converter writes none when it
    falls back from its SavedModel path to the GraphDef path (seen on EfficientNetB0: docs/FINDINGS.md)."""
    subgraph = model.subgraphs[0]
    if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 1:
        raise ExportError("tflite", f"converter wrote no signature and a graph with {len(subgraph.inputs)} inputs "
                                    f"and {len(subgraph.outputs)} outputs, expected 1 and 1")
    signature = schema.SignatureDefT()
    signature.subgraphIndex = 0
    signature.inputs, signature.outputs = [], []
    for tensors, index in ((signature.inputs, subgraph.inputs[0]), (signature.outputs, subgraph.outputs[0])):
        entry = schema.TensorMapT()
        entry.tensorIndex = int(index)
        entry.name = b"x"
        tensors.append(entry)
    return signature


def _finalize(blob: bytes, signature_key: str, input_name: str, output_name: str, provenance: dict) -> bytes:
    """Rename the signature and attach provenance, through TensorFlow's flatbuffer object API."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    if not model.signatureDefs:
        model.signatureDefs = [_signature_of_subgraph(schema, model)]
    if len(model.signatureDefs) != 1:
        raise ExportError("tflite", f"converter wrote {len(model.signatureDefs)} signatures, expected 1")
    signature = model.signatureDefs[0]
    signature.signatureKey = signature_key.encode()
    # The frozen graph's tensors are named after the signature's, but the converter names the signature's
    # outputs output_0..: give both ends the SavedModel signature's names.
    if len(signature.inputs) != 1 or len(signature.outputs) != 1:
        raise ExportError("tflite", f"converter wrote {len(signature.inputs)} inputs and {len(signature.outputs)} "
                                    "outputs, expected 1 and 1")
    signature.inputs[0].name = input_name.encode()
    signature.outputs[0].name = output_name.encode()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(provenance, sort_keys=True).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = PROVENANCE_METADATA.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _io_details(blob: bytes, signature_key: str) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...], dict]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob)
    runner = interpreter.get_signature_runner(signature_key)

    def describe(details: dict) -> tuple[tuple[TensorInfo, ...], dict]:
        infos, quant = [], {}
        for name, d in sorted(details.items()):
            shape = tuple(None if s < 0 else int(s) for s in d["shape_signature"])
            infos.append(TensorInfo(name, np.dtype(d["dtype"]).name, shape))
            scale, zero = d["quantization"]
            if scale:
                quant[name] = {"scale": float(scale), "zero_point": int(zero)}
        return tuple(infos), quant

    inputs, q_in = describe(runner.get_input_details())
    outputs, q_out = describe(runner.get_output_details())
    return inputs, outputs, {"quantization": {**q_in, **q_out}} if (q_in or q_out) else {}


class TfliteExporter(Exporter):
    name = "tflite"
    description = "TensorFlow Lite flatbuffers (fp32, fp16, dynamic-range int8, full-integer int8) for LiteRT"

    def variants(self, options: ExportOptions) -> tuple[Variant, ...]:
        return VARIANTS

    def export_variant(self, source: SourceModel, variant: Variant, out_dir: Path,
                       options: ExportOptions) -> Artifact:
        import tensorflow as tf

        frozen = source.frozen()
        # The frozen graph holds no variables; the new converter path still asks for a trackable object.
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen.function], tf.Module())
        rep = _representative(source, options.calibration) if variant.precision == "int8" else None
        CONFIGURE[variant.precision](converter, tf, rep)
        try:
            blob = converter.convert()
        except Exception as e:  # the converter raises many types; name the variant and re-raise
            raise ExportError("tflite", f"{variant.file}: {type(e).__name__}: {e}".splitlines()[0],
                              "run with --debug for the converter's trace") from e
        provenance = {"source": str(source.path), "signature": source.signature_key,
                      "fingerprint": source.fingerprint, "labels": list(source.labels),
                      "tensorflow": tf.__version__, "precision": variant.precision}
        blob = _finalize(blob, source.signature_key, source.input.name, source.output.name, provenance)
        (out_dir / variant.file).write_bytes(blob)
        inputs, outputs, details = _io_details(blob, source.signature_key)
        return Artifact(variant.file, self.name, variant.precision, inputs, outputs,
                        {"signature_key": source.signature_key, **details})


def perturb(path: Path, out: Path, factor: float = 1.05) -> str:
    """Registry hook: a copy of a .tflite with its largest weight tensor (or, for int8 weights, that
    tensor's quantization scale) multiplied by ``factor``, as a broken converter might. Returns the tensor."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    tensors = model.subgraphs[0].tensors
    weights = [t for t in tensors if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)]
    target = max(weights, key=lambda t: len(model.buffers[t.buffer].data))
    if target.type == 0:  # FLOAT32: scale the values
        data = np.frombuffer(bytes(bytearray(model.buffers[target.buffer].data)), dtype=np.float32) * factor
        model.buffers[target.buffer].data = np.frombuffer(data.astype(np.float32).tobytes(), dtype=np.uint8)
    elif target.quantization is not None and target.quantization.scale is not None \
            and len(target.quantization.scale):
        target.quantization.scale = [s * factor for s in target.quantization.scale]
    else:  # fp16 weights: scale the half floats
        data = np.frombuffer(bytes(bytearray(model.buffers[target.buffer].data)), dtype=np.float16) * factor
        model.buffers[target.buffer].data = np.frombuffer(data.astype(np.float16).tobytes(), dtype=np.uint8)
    flatbuffer_utils.write_model(model, str(out))
    return target.name.decode() if isinstance(target.name, bytes) else target.name


def read_provenance(path: Path) -> dict:
    """The provenance JSON tfship stored in a .tflite file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for entry in model.metadata or []:
        if entry.name.decode() == PROVENANCE_METADATA:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    raise ExportError("tflite", f"'{path}' carries no {PROVENANCE_METADATA} metadata")
