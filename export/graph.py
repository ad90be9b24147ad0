"""The predict signature, resolved once into a frozen graph that every converter receives.

Freezing = variables become constants and every nested function call is inlined, so converters see
one flat graph of ordinary ops. Both tf2onnx (``tf_loader.from_function``, tf_loader.py:368-376) and
coremltools (``TF2Loader._graph_def_from_concrete_fn``, tensorflow2/load.py:321-338) freeze with
``convert_variables_to_constants_v2(fn, lower_control_flow=False, aggressive_inlining=True)``
themselves, but that leaves two kinds of node they cannot convert (docs/FINDINGS.md):

- calls to functions marked ``_noinline`` (Keras 3 compiles grouped/depthwise convolutions as
  ``_conv_xla`` with ``jit_compile=True``, i.e. ``_noinline`` + ``_XlaMustCompile``): grappler keeps them as
  ``StatefulPartitionedCall`` and coremltools fails with "Conversion for TF op 'StatefulPartitionedCall'
  not implemented"; we drop those two attributes (they only ask for XLA) and inline again;
- captured variables handed to tf2onnx became extra graph inputs; freezing first removes them.

``without_erfc()`` gives the same graph with ``Erfc`` (Keras 3's exact GELU is ``0.5 x erfc(-x/sqrt 2)``)
rewritten to ``1 - Erf``, for tf2onnx (no Erfc handler) and coremltools (none for NeuralNetwork,
STACK.md); the identity is exact up to fp32 rounding. TFLite keeps ``Erfc``: its converter fuses that
GELU pattern but has no builtin ``Erf`` ("'tf.Erf' op is neither a custom op nor a flex op").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

# Function attributes that only request XLA compilation; removing them lets grappler inline the call.
_XLA_ONLY_ATTRS = ("_noinline", "_XlaMustCompile")


@dataclass(frozen=True)
class FrozenPredict:
    """The frozen predict function: one input (the signature's name), ``{output_name: scores}``."""

    function: Any               # tf ConcreteFunction without variables or function calls
    graph_def: Any              # its GraphDef (no library functions)
    input_tensor: str           # graph tensor name of the input, e.g. "images:0"
    output_tensor: str          # graph tensor name of the scores, e.g. "scores:0"
    input_name: str
    output_name: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = self.function(tf.constant(x))
        return (out[self.output_name] if isinstance(out, dict) else out[0]).numpy()

    def without_erfc(self) -> Any:
        """A copy of ``graph_def`` with ``Erfc(x)`` as ``1 - Erf(x)`` (for tf2onnx and coremltools)."""
        graph_def = type(self.graph_def)()
        graph_def.CopyFrom(self.graph_def)
        _rewrite_erfc(graph_def)
        return graph_def

    def wrap(self, spec: Any, adapt=None, graph_def: Any = None):
        """A concrete function over ``spec`` importing this graph (``adapt(x)`` feeds the input), e.g. an
        NHWC image reshaped to a flat input for CoreML. The imported nodes are plain ops, not a call."""
        import tensorflow as tf

        def body(x):
            fed = adapt(x) if adapt is not None else x
            (y,) = tf.graph_util.import_graph_def(graph_def if graph_def is not None else self.graph_def,
                                                  input_map={self.input_tensor: fed},
                                                  return_elements=[self.output_tensor], name="frozen")
            return {self.output_name: tf.identity(y, name=self.output_name)}

        return tf.compat.v1.wrap_function(body, [spec])


def _clear_xla_only(graph_def) -> bool:
    """Drop XLA-only attributes and give every library function a fresh name (the eager context still
    holds the originals under the old names, and re-importing a different body under a known name
    fails). Returns whether any function call is left to inline."""
    functions = graph_def.library.function
    if not functions:
        return False
    suffix = "_tfship_" + uuid.uuid4().hex[:8]
    renamed = {f.signature.name: f.signature.name + suffix for f in functions}
    for f in functions:
        f.signature.name = renamed[f.signature.name]
        for attr in _XLA_ONLY_ATTRS:
            if attr in f.attr:
                del f.attr[attr]

    def fix(nodes) -> None:
        for node in nodes:
            for attr in _XLA_ONLY_ATTRS:
                if attr in node.attr:
                    del node.attr[attr]
            for value in node.attr.values():
                if value.HasField("func") and value.func.name in renamed:
                    value.func.name = renamed[value.func.name]

    fix(graph_def.node)
    for f in functions:
        fix(f.node_def)
    return True


def _rewrite_erfc(graph_def) -> int:
    """``Erfc(x)`` -> ``1 - Erf(x)`` in place, keeping the node's name so its consumers are unchanged."""
    from tensorflow.core.framework import attr_value_pb2, tensor_pb2, tensor_shape_pb2

    count = 0
    for node in list(graph_def.node):
        if node.op != "Erfc":
            continue
        dtype = node.attr["T"].type
        erf = graph_def.node.add(name=f"{node.name}/tfship_erf", op="Erf", input=list(node.input))
        erf.attr["T"].type = dtype
        erf.device = node.device
        one = graph_def.node.add(name=f"{node.name}/tfship_one", op="Const")
        one.attr["dtype"].type = dtype
        one.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tensor_pb2.TensorProto(
            dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[1.0])))
        node.op = "Sub"
        del node.input[:]
        node.input.extend([one.name, erf.name])
        count += 1
    return count


def freeze(signature: Any, input_spec: Any, input_name: str, output_name: str) -> FrozenPredict:
    """Freeze ``signature`` (a loaded SavedModel signature) taking ``input_spec`` into one flat graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[input_spec])
    def predict(x):
        return {output_name: signature(**{input_name: x})[output_name]}

    frozen = convert_variables_to_constants_v2(predict.get_concrete_function(), lower_control_flow=False,
                                               aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def()
    _clear_xla_only(graph_def)
    first = FrozenPredict(frozen, graph_def, frozen.inputs[0].name, frozen.outputs[0].name, input_name, output_name)
    # Import the edited graph and inline again: the result has no function calls left, and its input and
    # output carry the signature's names (TFLite's signature and tf2onnx's graph take them from here).
    again = convert_variables_to_constants_v2(first.wrap(input_spec), lower_control_flow=False,
                                              aggressive_inlining=True)
    graph_def = again.graph.as_graph_def()
    left = sorted({n.op for n in graph_def.node if n.op in ("PartitionedCall", "StatefulPartitionedCall")})
    if left:
        from tfship.export.errors import ExportError

        raise ExportError("freeze", f"function calls ({', '.join(left)}) remain in the frozen predict graph",
                          "run with --debug and report it")
    return FrozenPredict(again, graph_def, again.inputs[0].name, again.outputs[0].name, input_name, output_name)
