"""TF Serving's test models rebuilt with TF2 (tensorflow_serving/servables/tensorflow/testdata/
saved_model_half_plus_two.py, export_counter.py; tensorflow/cc/saved_model/testdata/half_plus_two).

The TF1 originals are graphs fed through ``Session::Run``: ``x`` is a tensor inside the graph
(``tf.identity`` of a ``parse_example`` output), so a fed value of any shape is accepted and the
declared [-1, 1] shape is only metadata. A TF2 function checks its inputs against its input
signature, so the functions here accept any shape and the SignatureDef map in ``saved_model.pb`` is
rewritten afterwards to say what the TF1 models say: the method names (TF2 writes
``tensorflow/serving/predict`` for every signature), the tensor names (``x:0``, ``tf_example:0``...)
and the declared shapes. ``tf.saved_model.load`` restores functions from the object graph, never from
that map, so the rewrite changes what metadata reports and nothing that runs.
"""

from __future__ import annotations

from pathlib import Path

PREDICT, CLASSIFY, REGRESS = ("tensorflow/serving/predict", "tensorflow/serving/classify",
                              "tensorflow/serving/regress")
VERSION_FOLDER = "00000123"
# (signature, method, {input alias: (tensor name, dtype, shape)}, {output alias: (tensor name, shape)})
# as in saved_model_half_plus_two_2_versions_metadata.json; None: unknown rank.
_F, _S = 1, 7
_COL = (-1, 1)
SIGNATURES = {
    "serving_default": (PREDICT, {"x": ("x:0", _F, _COL)}, {"y": ("y:0", _COL)}),
    "regress_x_to_y": (REGRESS, {"inputs": ("tf_example:0", _S, None)}, {"outputs": ("y:0", _COL)}),
    "regress_x_to_y2": (REGRESS, {"inputs": ("tf_example:0", _S, None)}, {"outputs": ("y2:0", _COL)}),
    "regress_x2_to_y3": (REGRESS, {"inputs": ("x2:0", _F, _COL)}, {"outputs": ("y3:0", _COL)}),
    "classify_x_to_y": (CLASSIFY, {"inputs": ("tf_example:0", _S, None)}, {"scores": ("y:0", _COL)}),
    "classify_x2_to_y3": (CLASSIFY, {"inputs": ("x2:0", _F, _COL)}, {"scores": ("y3:0", _COL)}),
}
# saved_model_half_plus_two_cpu and half_plus_three: the export script's map, without classify_x2_to_y3.
CPU_SIGNATURES = [s for s in SIGNATURES if s != "classify_x2_to_y3"]


def half_plus_two(base: Path, b: float = 2.0, folder: str = VERSION_FOLDER) -> Path:
    """y = 0.5 x + b, y2 = 0.5 x + 3, y3 = 0.5 x2 + 3 under ``base/folder``, with TF1's signature map
    (tensorflow/cc/saved_model/testdata/half_plus_two: six signatures)."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = tf.Variable(0.5), tf.Variable(b), tf.Variable(3.0)

        def parse(self, serialized):
            spec = {"x": tf.io.FixedLenFeature([1], tf.float32),
                    "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
            return tf.io.parse_example(serialized, spec)

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
        def predict(self, x):
            return {"y": self.a * x + self.b}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="inputs")])
        def regress_xy(self, inputs):
            return {"outputs": self.a * self.parse(inputs)["x"] + self.b}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="inputs")])
        def regress_xy2(self, inputs):
            return {"outputs": self.a * self.parse(inputs)["x"] + self.c}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="inputs")])
        def regress_x2y3(self, inputs):
            return {"outputs": self.a * inputs + self.c}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.string, name="inputs")])
        def classify_xy(self, inputs):
            return {"scores": self.a * self.parse(inputs)["x"] + self.b}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="inputs")])
        def classify_x2y3(self, inputs):
            return {"scores": self.a * inputs + self.c}

    m = HalfPlusTwo()
    functions = {"serving_default": m.predict, "regress_x_to_y": m.regress_xy, "regress_x_to_y2": m.regress_xy2,
                 "regress_x2_to_y3": m.regress_x2y3, "classify_x_to_y": m.classify_xy,
                 "classify_x2_to_y3": m.classify_x2y3}
    path = base / folder
    tf.saved_model.save(m, str(path), signatures=functions)
    rewrite_signatures(path, SIGNATURES)
    return path


def copy_version(source: Path, base: Path, folder: str = VERSION_FOLDER, signatures=None, methods=None) -> Path:
    """A copy of a version folder, its signature map cut to ``signatures`` and, with ``methods``,
    every method name set to it (``PREDICT``: what native TF2 exports write, as in
    saved_model_half_plus_two_tf2_cpu)."""
    import shutil

    path = base / folder
    shutil.copytree(source, path)
    table = {k: v for k, v in SIGNATURES.items() if signatures is None or k in signatures}
    if methods is not None:
        table = {k: (methods, i, o) for k, (_, i, o) in table.items()}
    rewrite_signatures(path, table)
    return path


def counter(base: Path, folder: str = VERSION_FOLDER) -> Path:
    """export_counter.py: a float counter with get/incr/incr_by/reset signatures (stateful)."""
    import tensorflow as tf

    class Counter(tf.Module):
        def __init__(self):
            super().__init__()
            self.counter = tf.Variable(0.0)

        @tf.function(input_signature=[])
        def get_counter(self):
            return {"output": tf.identity(self.counter)}

        @tf.function(input_signature=[])
        def incr_counter(self):
            return {"output": self.counter.assign_add(1.0)}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="delta")])
        def incr_counter_by(self, delta):
            return {"output": self.counter.assign_add(delta)}

        @tf.function(input_signature=[])
        def reset_counter(self):
            return {"output": self.counter.assign(0.0)}

    m = Counter()
    path = base / folder
    tf.saved_model.save(m, str(path), signatures={"get_counter": m.get_counter, "incr_counter": m.incr_counter,
                                                  "incr_counter_by": m.incr_counter_by,
                                                  "reset_counter": m.reset_counter})
    return path


def rewrite_signatures(path: Path, table: dict) -> None:
    """Make ``saved_model.pb``'s SignatureDef map exactly ``table``: method names, tensor names and
    declared shapes as TF1 wrote them; other entries removed (TF2's ``__saved_model_init_op``, which a
    TF1 model does not have and TF Serving's metadata files do not list; loading does not need it)."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    defs = model.meta_graphs[0].signature_def
    for name in [n for n in defs if n not in table]:
        del defs[name]
    for name, (method, inputs, outputs) in table.items():
        sig = defs[name]
        sig.method_name = method
        for alias, (tensor, dtype, shape) in inputs.items():
            _set(sig.inputs[alias], tensor, dtype, shape)
        for alias, (tensor, shape) in outputs.items():
            _set(sig.outputs[alias], tensor, _F, shape)
    pb.write_bytes(model.SerializeToString())


def _set(info, tensor: str, dtype: int, shape) -> None:
    info.name, info.dtype = tensor, dtype
    info.tensor_shape.Clear()
    if shape is None:
        info.tensor_shape.unknown_rank = True
    for size in shape or ():
        info.tensor_shape.dim.add(size=size)
