"""Precision twins: the reference model run by TensorFlow with a precision's rounding applied.

A correct fp16 or int8 copy of a model loses what that precision loses *on that model*: little on a
trained, well-conditioned network, a great deal on a deep random-weight one, whose rounding errors
grow layer after layer (docs/EXPORT.md, docs/FINDINGS.md). No fixed bound fits both, so verify asks
TensorFlow what the precision costs here: it rewrites the frozen predict graph (``graph.py``) so that
TensorFlow itself computes with that precision's rounding, and measures the twin against the
reference on the same inputs. ``tolerances.py`` then allows an artifact a few times what its twin
loses (never less than the fixed bound). A broken artifact (wrong weights, wrong layout, a wrong
kernel) is not a rounding of the reference, and stays far outside.

The kinds, each a simulation of what the converter is documented to do:

- ``fp16-weights`` (TFLite float16): every float constant rounded to fp16, fp32 compute.
- ``fp16-compute`` (Core ML ML Program, fp16): constants and the input rounded to fp16, and every op's
  float output rounded to fp16 (fp16 activations end to end).
- ``int8-dynamic`` (TFLite dynamic range): the weights of Conv2D, DepthwiseConv2dNative, MatMul and
  BatchMatMul with at least ``DYNAMIC_MIN_ELEMENTS`` values rounded to 8 bits per output channel
  (symmetric, 127 steps a side); those ops' activation inputs rounded to 8 bits per image over that
  image's own range (asymmetric, 255 steps).
- ``int8`` (TFLite full integer): the same weights, and every op's float output rounded to 8 bits over
  the range it takes on the calibration inputs (the min/max the converter's calibration records), or
  over the fixed range TFLite gives softmax, logistic and tanh outputs (``FIXED_RANGES``).

A twin rounds at every op where a converter fuses some (a convolution, its bias and its activation
are one int8 op in TFLite), so it tends to lose a little more than the artifact: that errs on the
side of passing a faithful artifact, and the fixed bounds still hold for well-conditioned models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KINDS = ("fp16-weights", "fp16-compute", "int8-dynamic", "int8")

# Ops whose second input is a weight matrix or filter; the axes its per-output-channel scale spans.
_WEIGHT_OPS = ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "MatMul", "BatchMatMul", "BatchMatMulV2",
               "BatchMatMulV3", "Conv2DBackpropInput")
# Ops whose outputs a twin does not round: those that move values without computing new ones (rounding
# again would change nothing), and constants (weights, rounded on their own).
_NOT_ROUNDED = ("Identity", "IdentityN", "Reshape", "Squeeze", "ExpandDims", "Transpose", "Const",
                "NoOp", "Shape", "StopGradient", "Snapshot")
_FLOAT_TYPES = (1,)  # DT_FLOAT: a twin rounds fp32 tensors only
# TFLite's dynamic-range quantization leaves weights with fewer elements than this in float, and their
# ops in float (read off its int8-dynamic files, tensorflow 2.20: a 64x16 MatMul weight is int8, a 64x10
# one and EfficientNetB0's 864-element stem filter stay float32).
DYNAMIC_MIN_ELEMENTS = 1024
# Full-integer TFLite gives these ops a fixed int8 output range, whatever calibration saw (its op specs:
# softmax and logistic outputs in steps of 1/256 over [0, 1], tanh in steps of 1/128 over [-1, 1]).
FIXED_RANGES = {"Softmax": (0.0, 1.0), "Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}
BATCH = 128


@dataclass(frozen=True)
class _Site:
    """One float tensor of the graph that the twin rounds: ``tensor`` (``node:k``) and its rank."""
    tensor: str
    rank: int | None


def _const_of(name: str, nodes: dict[str, Any]) -> Any | None:
    """The Const node behind a tensor name, looking through Identity chains (frozen variable reads)."""
    node = nodes.get(name.lstrip("^").split(":")[0])
    while node is not None and node.op == "Identity":
        node = nodes.get(node.input[0].split(":")[0])
    return node if node is not None and node.op == "Const" else None


def _channel_axes(op: Any, rank: int) -> tuple[int, ...]:
    """Axes a weight's 8-bit scale is shared over (all but its output channel)."""
    if op.op == "DepthwiseConv2dNative":
        return (0, 1)                                # [h, w, in, multiplier]: one scale per in x multiplier
    if op.op == "MatMul" and op.attr["transpose_b"].b:
        return tuple(range(1, rank))
    if op.op == "Conv2DBackpropInput":
        return tuple(a for a in range(rank) if a != rank - 2)
    return tuple(range(rank - 1))


def _round_int8_per_channel(w: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    peak = np.max(np.abs(w), axis=axes, keepdims=True) if axes else np.abs(w)
    step = np.where(peak > 0, peak / 127.0, 1.0)
    return (np.clip(np.round(w / step), -127, 127) * step).astype(w.dtype)


def _set_const(node: Any, value: np.ndarray) -> None:
    import tensorflow as tf

    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=tf.float32))


def _round_weights(graph_def, kind: str) -> set[str]:
    """fp16 kinds: every float constant to fp16. int8 kinds: the weights of ``_WEIGHT_OPS`` to 8 bits
    (int8-dynamic: those of ``DYNAMIC_MIN_ELEMENTS`` or more). Returns the ops whose weights were rounded."""
    import tensorflow as tf

    nodes = {n.name: n for n in graph_def.node}
    if kind.startswith("fp16"):
        for node in graph_def.node:
            if node.op == "Const" and node.attr["dtype"].type in _FLOAT_TYPES:
                value = tf.make_ndarray(node.attr["value"].tensor)
                _set_const(node, value.astype(np.float16).astype(np.float32))
        return set()
    smallest = DYNAMIC_MIN_ELEMENTS if kind == "int8-dynamic" else 1
    done: dict[str, bool] = {}
    rounded = set()
    for op in list(graph_def.node):
        if op.op not in _WEIGHT_OPS or len(op.input) < 2:
            continue
        const = _const_of(op.input[1], nodes)
        if const is None or const.attr["dtype"].type not in _FLOAT_TYPES:
            continue
        if const.name not in done:
            value = tf.make_ndarray(const.attr["value"].tensor)
            done[const.name] = value.ndim >= 2 and value.size >= smallest
            if done[const.name]:
                _set_const(const, _round_int8_per_channel(value, _channel_axes(op, value.ndim)))
        if done[const.name]:
            rounded.add(op.name)
    return rounded


def _float_outputs(graph_def) -> dict[str, list[_Site]]:
    """Each node's fp32 outputs and their ranks, read off the graph as TensorFlow imports it."""
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
    sites: dict[str, list[_Site]] = {}
    for op in g.get_operations():
        sites[op.name] = [_Site(f"{op.name}:{i}", t.shape.rank) for i, t in enumerate(op.outputs)
                          if t.dtype == tf.float32]
    return sites


class _Editor:
    """Appends rounding nodes to a GraphDef and rewires the consumers of each rounded tensor."""

    def __init__(self, graph_def) -> None:
        self.graph_def = graph_def
        self.count = 0
        # tensor ("node:k") -> the (consumer node, input index) pairs reading it, indexed once
        self.consumers: dict[str, list[tuple[Any, int]]] = {}
        for node in graph_def.node:
            for i, name in enumerate(node.input):
                if not name.startswith("^"):
                    self.consumers.setdefault(_canonical(name), []).append((node, i))

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from tensorflow.core.framework import attr_value_pb2

        self.count += 1
        name = f"tfship_twin/{op.lower()}_{self.count}"
        node = self.graph_def.node.add(name=name, op=op, input=inputs)
        for key, value in attrs.items():
            node.attr[key].CopyFrom(value if isinstance(value, attr_value_pb2.AttrValue) else _attr(value))
        return name

    def const(self, value: Any, dtype: str = "float32") -> str:
        import tensorflow as tf

        proto = tf.make_tensor_proto(np.asarray(value, dtype=dtype))
        return self.node("Const", [], dtype=_dtype_attr(tf.as_dtype(dtype).as_datatype_enum), value=proto)

    def rewire(self, old: str, new: str, only: str | None = None) -> None:
        """The graph's consumers of ``old`` read ``new`` instead (``only``: just that node, first input)."""
        for node, i in self.consumers.get(_canonical(old), []):
            if only is None or (node.name == only and i == 0):
                node.input[i] = new


def _canonical(tensor: str) -> str:
    return tensor if ":" in tensor else tensor + ":0"


def _attr(value: Any):
    from tensorflow.core.framework import attr_value_pb2, tensor_pb2

    if isinstance(value, bool):
        return attr_value_pb2.AttrValue(b=value)
    if isinstance(value, int):
        return attr_value_pb2.AttrValue(i=value)
    if isinstance(value, float):
        return attr_value_pb2.AttrValue(f=value)
    if isinstance(value, tensor_pb2.TensorProto):
        return attr_value_pb2.AttrValue(tensor=value)
    raise TypeError(value)


def _dtype_attr(enum: int):
    from tensorflow.core.framework import attr_value_pb2

    return attr_value_pb2.AttrValue(type=enum)


def _round_fp16(editor: _Editor, tensor: str) -> str:
    half = editor.node("Cast", [tensor], SrcT=_dtype_attr(1), DstT=_dtype_attr(19), Truncate=False)
    return editor.node("Cast", [half], SrcT=_dtype_attr(19), DstT=_dtype_attr(1), Truncate=False)


def _round_int8_fixed(editor: _Editor, tensor: str, low: float, high: float) -> str:
    """8 bits over [low, high] (widened to hold 0, as TFLite's quantizer nudges it)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        return tensor
    return editor.node("FakeQuantWithMinMaxArgs", [tensor], min=float(low), max=float(high), num_bits=8,
                       narrow_range=False)


def _round_int8_per_image(editor: _Editor, tensor: str, rank: int) -> str:
    """8 bits over each image's own range of this tensor (dynamic-range quantization of an op's input)."""
    f32 = _dtype_attr(1)
    axes = editor.const(list(range(1, rank)), "int32")
    low = editor.node("Min", [tensor, axes], T=f32, Tidx=_dtype_attr(3), keep_dims=True)
    high = editor.node("Max", [tensor, axes], T=f32, Tidx=_dtype_attr(3), keep_dims=True)
    zero = editor.const(0.0)
    low = editor.node("Minimum", [low, zero], T=f32)
    high = editor.node("Maximum", [high, zero], T=f32)
    span = editor.node("Sub", [high, low], T=f32)
    step = editor.node("Maximum", [editor.node("RealDiv", [span, editor.const(255.0)], T=f32),
                                   editor.const(np.finfo(np.float32).tiny)], T=f32)
    levels = editor.node("Round", [editor.node("RealDiv", [editor.node("Sub", [tensor, low], T=f32), step],
                                               T=f32)], T=f32)
    return editor.node("AddV2", [editor.node("Mul", [levels, step], T=f32), low], T=f32)


def _activation_sites(graph_def, sites: dict[str, list[_Site]]) -> list[_Site]:
    """The float outputs a twin rounds: the input's and every computing op's."""
    return [s for node in graph_def.node if node.op not in _NOT_ROUNDED for s in sites.get(node.name, [])]


def _round_every_op_fp16(editor: _Editor, active: list[_Site]) -> dict[str, str]:
    return {site.tensor: _round_fp16(editor, site.tensor) for site in active}


def _round_every_op_int8(editor: _Editor, active: list[_Site], frozen: Any,
                         calibration: np.ndarray | None) -> dict[str, str]:
    if calibration is None:
        raise ValueError("the int8 twin needs the calibration inputs the export used")
    ranges = _ranges(editor.graph_def, frozen.input_tensor, [s.tensor for s in active], calibration)
    ops = {n.name: n.op for n in editor.graph_def.node}
    rounded = {}
    for site, measured in zip(active, ranges):
        low, high = FIXED_RANGES.get(ops[site.tensor.split(":")[0]], measured)
        new = _round_int8_fixed(editor, site.tensor, low, high)
        if new != site.tensor:
            rounded[site.tensor] = new
    return rounded


class Twin:
    """The reference's predict graph with one precision's rounding, ready to run on inputs."""

    def __init__(self, frozen: Any, kind: str, calibration: np.ndarray | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"no precision twin '{kind}' (known: {', '.join(KINDS)})")
        self.frozen, self.kind = frozen, kind
        graph_def = type(frozen.graph_def)()
        graph_def.CopyFrom(frozen.graph_def)
        sites = _float_outputs(graph_def)
        quantized_ops = _round_weights(graph_def, kind)
        editor = _Editor(graph_def)
        rounded: dict[str, str] = {}   # tensor -> its rounded copy, for every consumer
        if kind == "fp16-compute":
            rounded = _round_every_op_fp16(editor, _activation_sites(graph_def, sites))
        elif kind == "int8":
            rounded = _round_every_op_int8(editor, _activation_sites(graph_def, sites), frozen, calibration)
        elif kind == "int8-dynamic":   # only the inputs of the ops whose weights are int8, per op
            ranks = {site.tensor: site.rank for node_sites in sites.values() for site in node_sites}
            for node in [n for n in graph_def.node if n.name in quantized_ops]:
                rank = ranks.get(_canonical(node.input[0]))
                if rank is not None:
                    new = _round_int8_per_image(editor, node.input[0], rank)
                    editor.rewire(node.input[0], new, only=node.name)
        for tensor, new in rounded.items():
            editor.rewire(tensor, new)
        # the tensor to fetch: the output's rounded copy when it was rounded
        self.output = _canonical(rounded.get(_canonical(frozen.output_tensor), frozen.output_tensor))
        self.graph_def = graph_def
        self.rounding_nodes = editor.count

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _run(self.graph_def, self.frozen.input_tensor, [self.output], x)[0]


def _run(graph_def, input_tensor: str, fetches: list[str], x: np.ndarray, reduce=None) -> list[np.ndarray]:
    """Run ``fetches`` of ``graph_def`` over ``x`` in batches (``reduce`` combines batch results)."""
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(graph_def, name="")
        tensors = [g.get_tensor_by_name(f) for f in fetches]
        feed = g.get_tensor_by_name(input_tensor)
        with tf.compat.v1.Session(graph=g) as session:
            parts = [session.run(tensors, {feed: x[i:i + BATCH]}) for i in range(0, len(x), BATCH)]
    if reduce is not None:
        return reduce(parts)
    return [np.concatenate([p[k] for p in parts]) for k in range(len(fetches))]


def _ranges(graph_def, input_tensor: str, tensors: list[str], calibration: np.ndarray) -> list[tuple[float, float]]:
    """Each tensor's min and max over the calibration inputs (what TFLite's calibration records)."""
    probe = type(graph_def)()
    probe.CopyFrom(graph_def)
    editor = _Editor(probe)
    flat, axis = editor.const([-1], "int32"), editor.const(0, "int32")
    fetches = []
    for tensor in tensors:
        values = editor.node("Reshape", [tensor, flat], T=_dtype_attr(1), Tshape=_dtype_attr(3))
        fetches += [editor.node(op, [values, axis], T=_dtype_attr(1), Tidx=_dtype_attr(3), keep_dims=False) + ":0"
                    for op in ("Min", "Max")]

    def combine(parts):
        lows = np.min([[p[2 * k] for k in range(len(tensors))] for p in parts], axis=0)
        highs = np.max([[p[2 * k + 1] for k in range(len(tensors))] for p in parts], axis=0)
        return list(zip(lows.tolist(), highs.tolist()))

    return _run(probe, input_tensor, fetches, calibration, reduce=combine)
