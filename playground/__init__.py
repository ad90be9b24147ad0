"""``tfship playground``: a web page to try any model served behind TensorFlow Serving's REST API.

One static page (HTML, CSS and JavaScript shipped in this package; no build step, nothing fetched from
the internet) plus a small Starlette app that serves it and forwards ``/v1/...`` to the model server,
so the browser needs no CORS from TF Serving. No TensorFlow is imported here.
"""
