"""One runner per format: load an artifact once, ``run({input: x}) -> {output: scores}``.

The registry (``tfship.export.registry``) maps a format name to its runner class.
"""
