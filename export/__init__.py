"""Export a SavedModel to TFLite, ONNX and CoreML, and verify every artifact against it.

``tfship.export.registry`` lists the formats; each format is one module here with one exporter.
Runners (``tfship.export.runners``) execute each artifact for verification.
"""
