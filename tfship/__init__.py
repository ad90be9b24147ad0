"""tfship: train the TensorFlow MNIST tutorial models, export them everywhere, prove parity, serve them.

Importing this package (or ``tfship.clients``) never imports TensorFlow; the heavy stacks are
imported inside the functions that need them.
"""

__version__ = "0.1.0"
