"""Train the MNIST tutorial models and write them as SavedModels in TensorFlow Serving's layout."""
