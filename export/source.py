"""Read what an export needs from a SavedModel: the predict signature, its image layout, labels.

What makes a SavedModel exportable (docs/EXPORT.md): a signature with exactly one float input shaped
(batch, H*W*C) with H*W a square and C=1, (batch, H, W) or (batch, H, W, C), and exactly one float
output shaped (batch, K) of class scores. ``predict_images`` is used if present, then
``serving_default``, then ``serve`` (Keras 3's ``model.export``), then any other that fits.
Labels come from the model when it has them: ``assets/labels.txt`` (one per line, K lines), else the
only other text asset with exactly K lines, else the class names a classify signature returns (a
string constant of K values in the graph, as TF1's ``SavedModelBuilder`` tutorial writes), else
"0".."K-1".
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from tfship import contract
from tfship.errors import SignatureError
from tfship.export.base import ImageLayout, SourceModel, TensorInfo
from tfship.savedmodel import SAVED_MODEL_FILE, ModelVersion

PREFERRED_SIGNATURES = (contract.PREDICT_SIGNATURE, "serving_default", "serve")
_FLOAT_DTYPES = ("float32", "float16", "float64")


def _read_meta_graph(path: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / SAVED_MODEL_FILE).read_bytes())
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise SignatureError(f"'{path}' has no MetaGraph tagged 'serve' (the tag TF Serving loads)")


def _tensor_info(name: str, info) -> TensorInfo:
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(info.dtype).name
    dtype = "string" if dtype == "string" else dtype
    if info.tensor_shape.unknown_rank:
        shape: tuple[int | None, ...] = ()
    else:
        shape = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
    return TensorInfo(name, dtype, shape)


def signatures_of(path: Path) -> dict[str, tuple[list[TensorInfo], list[TensorInfo]]]:
    """Every signature's inputs and outputs, as written in saved_model.pb."""
    meta_graph = _read_meta_graph(path)
    return {
        key: ([_tensor_info(n, t) for n, t in sorted(sig.inputs.items())],
              [_tensor_info(n, t) for n, t in sorted(sig.outputs.items())])
        for key, sig in meta_graph.signature_def.items() if not key.startswith("__")
    }


def image_layout(tensor: TensorInfo) -> ImageLayout | None:
    dims = tensor.shape[1:]
    if any(d is None for d in dims):
        return None
    if len(dims) == 1:
        side = math.isqrt(dims[0])
        return ImageLayout(side, side, 1) if side * side == dims[0] and side > 1 else None
    if len(dims) == 2:
        return ImageLayout(dims[0], dims[1], 1)
    if len(dims) == 3 and dims[2] in (1, 3):
        return ImageLayout(dims[0], dims[1], dims[2])
    return None


def _why_unusable(inputs: list[TensorInfo], outputs: list[TensorInfo]) -> str | None:
    if len(inputs) != 1 or len(outputs) != 1:
        return f"has {len(inputs)} inputs and {len(outputs)} outputs (need exactly one of each)"
    x, y = inputs[0], outputs[0]
    if x.dtype not in _FLOAT_DTYPES:
        return f"input '{x.name}' is {x.dtype} (need a float image tensor)"
    if image_layout(x) is None:
        return (f"input '{x.name}' has shape {list(x.shape)} (need [batch, H*W] with H*W square, "
                f"[batch, H, W] or [batch, H, W, C] with C 1 or 3)")
    if y.dtype not in _FLOAT_DTYPES or len(y.shape) != 2 or y.shape[1] is None:
        return f"output '{y.name}' is {y.dtype} {list(y.shape)} (need float [batch, num_classes])"
    return None


def choose_signature(path: Path, requested: str | None = None) -> tuple[str, TensorInfo, TensorInfo]:
    sigs = signatures_of(path)
    if requested is not None:
        if requested not in sigs:
            raise SignatureError(f"'{path}' has no signature '{requested}'; it has: {', '.join(sorted(sigs))}")
        order = [requested]
    else:
        order = [k for k in PREFERRED_SIGNATURES if k in sigs] + sorted(k for k in sigs if k not in PREFERRED_SIGNATURES)
    reasons = []
    for key in order:
        inputs, outputs = sigs[key]
        why = _why_unusable(inputs, outputs)
        if why is None:
            return key, inputs[0], outputs[0]
        reasons.append(f"'{key}' {why}")
    raise SignatureError(f"no exportable predict signature in '{path}': " + "; ".join(reasons or ["no signatures"]))


def _lines(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _classify_classes(meta_graph, num_classes: int) -> tuple[str, ...] | None:
    """The class names a classify signature returns, when the graph holds them as one string constant."""
    if not any(sig.method_name == "tensorflow/serving/classify" for sig in meta_graph.signature_def.values()):
        return None
    nodes = list(meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        nodes.extend(function.node_def)
    found = set()
    for node in nodes:
        if node.op != "Const" or "value" not in node.attr:
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype == 7 and len(tensor.string_val) == num_classes:  # 7 = DT_STRING
            found.add(tuple(v.decode("utf-8", "replace") for v in tensor.string_val))
    return found.pop() if len(found) == 1 else None


def read_labels(path: Path, num_classes: int, meta_graph=None) -> tuple[tuple[str, ...], str]:
    """(labels, where they came from). A labels.txt with the wrong count is an error; other sources
    are used only when they fit exactly."""
    labels_file = path / "assets" / contract.LABELS_ASSET
    if labels_file.is_file():
        labels = _lines(labels_file)
        if len(labels) != num_classes:
            raise SignatureError(f"'{labels_file}' has {len(labels)} labels but the model has {num_classes} outputs")
        return labels, f"assets/{contract.LABELS_ASSET}"
    assets = sorted(p for p in (path / "assets").glob("*.txt")) if (path / "assets").is_dir() else []
    fitting = [(p, _lines(p)) for p in assets]
    fitting = [(p, lines) for p, lines in fitting if len(lines) == num_classes and len(set(lines)) == num_classes]
    if len(fitting) == 1:
        return fitting[0][1], f"assets/{fitting[0][0].name}"
    classes = _classify_classes(meta_graph, num_classes) if meta_graph is not None else None
    if classes is not None and len(set(classes)) == num_classes:
        return classes, "classify signature"
    return tuple(str(i) for i in range(num_classes)), ""


def fingerprint(path: Path) -> str:
    """TensorFlow's SavedModel fingerprint (checksum of saved_model.pb), else a sha256 of it."""
    fp_file = path / "fingerprint.pb"
    if fp_file.is_file():
        from tensorflow.core.protobuf import fingerprint_pb2

        fp = fingerprint_pb2.FingerprintDef()
        fp.ParseFromString(fp_file.read_bytes())
        return f"tf:{fp.saved_model_checksum}"
    return "sha256:" + hashlib.sha256((path / SAVED_MODEL_FILE).read_bytes()).hexdigest()


def load_source(model: ModelVersion, signature: str | None = None) -> SourceModel:
    key, x, y = choose_signature(model.path, signature)
    labels, origin = read_labels(model.path, int(y.shape[1]), _read_meta_graph(model.path))
    layout = image_layout(x)
    return SourceModel(model=model, signature_key=key, input=x, output=y, image=layout, labels=labels,
                       labels_from_asset=origin.startswith("assets/"), fingerprint=fingerprint(model.path),
                       labels_origin=origin or "class indices")
