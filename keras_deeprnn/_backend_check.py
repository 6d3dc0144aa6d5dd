"""A bad `KERAS_BACKEND` as one line from the command, not Keras's traceback.

Imported first by the package: Keras fails on import with an unknown
backend, before the command line could catch anything. A program that
imports the package still gets Keras's own error.
"""

import os
import sys

# The values Keras 3 accepts for KERAS_BACKEND.
KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


def running_the_command(argv=None):
    """Whether this process is `keras-deeprnn` or `python -m keras_deeprnn[...]`
    (while Python locates a `-m` module, `sys.argv[0]` is `"-m"`)."""
    argv = sys.argv if argv is None else argv
    first = argv[0] if argv else ""
    return first == "-m" or os.path.basename(first) in ("keras-deeprnn", "keras-deeprnn.exe")


def check_backend(environ=None, argv=None):
    environ = os.environ if environ is None else environ
    name = environ.get("KERAS_BACKEND")
    if name is None or name in KERAS_BACKENDS or not running_the_command(argv):
        return
    sys.stderr.write(
        f"keras-deeprnn: error: KERAS_BACKEND must be one of tensorflow, jax or torch. "
        f"Received: KERAS_BACKEND={name!r}\n")
    raise SystemExit(2)


check_backend()
