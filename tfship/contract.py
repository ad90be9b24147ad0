"""The SavedModel contract tfship writes (see docs/SAVEDMODEL.md).

The names are those of TensorFlow Serving's own MNIST example (``mnist_saved_model.py``), so its
example client works unchanged against a tfship model.
"""

from __future__ import annotations

PREDICT_SIGNATURE = "predict_images"
PREDICT_INPUT = "images"
PREDICT_OUTPUT = "scores"

CLASSIFY_SIGNATURE = "serving_default"
CLASSIFY_INPUT = "inputs"
CLASSIFY_FEATURE = "x"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"

LABELS_ASSET = "labels.txt"

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
MNIST_LABELS = tuple(str(i) for i in range(NUM_CLASSES))

# The model name TF Serving's MNIST example and our docs use.
DEFAULT_MODEL_NAME = "mnist"
