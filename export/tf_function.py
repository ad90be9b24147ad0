"""The SavedModel's predict signature as a fresh ``tf.function`` — what every converter here accepts.

STACK.md: converters given a Keras 3 / multi-signature SavedModel directly fail, some silently
(TFLite's ``from_saved_model`` keeps no weights and outputs NaN). A new ``tf.function`` wrapping the
loaded signature, with an explicit ``input_signature``, converts correctly everywhere.
"""

from __future__ import annotations

from tfship.export.base import SourceModel


def load_predict_function(source: SourceModel):
    """Return ``(loaded, fn)``: the loaded SavedModel (keep it alive: it owns the variables) and a
    ``tf.function`` mapping the input tensor to ``{output_name: scores}``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(source.path))
    signature = loaded.signatures[source.signature_key]
    in_name, out_name = source.input.name, source.output.name
    spec = tf.TensorSpec(list(source.input.shape), tf.as_dtype(source.input.dtype), name=in_name)

    @tf.function(input_signature=[spec])
    def predict(x):
        return {out_name: signature(**{in_name: x})[out_name]}

    return loaded, predict
