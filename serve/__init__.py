"""Serve SavedModels behind TensorFlow Serving's REST and gRPC APIs (``tfship serve``), and write the
``tensorflow/serving`` container's config files. See docs/SERVING.md.

The core (:mod:`.core`, :mod:`.manager`, :mod:`.servable`, :mod:`.batching`) knows nothing of HTTP
or gRPC; :mod:`.rest` and :mod:`.grpc_service` translate. Nothing here imports TensorFlow at import
time.
"""
