"""The few pieces of Keras that have no public path, imported in one place.

Keras 3 keeps its backend-agnostic time loop (`keras.src.backend.rnn`), the
base class of its dropout cells (`DropoutRNNCell`), its autocast scope and
the accessor of the current `keras.StatelessScope` out of the public API.
The library needs all four: the loop to run a
cell's recurrent step without `keras.layers.RNN`'s per-step input work, the
base class so that `keras.layers.RNN` primes our cells' dropout masks as it
does its own, and the autocast scope so that a cell stepped directly (not
through `Layer.__call__`) still computes in its own dtype policy, and the
stateless scope so that `DeepRNN` can read its cell's weights once before
TensorFlow's time loop without hiding an enclosing scope. If a
Keras release moves any of them, this module fails at import with a message that
names the version, and `tests/test_keras_private.py` fails with it.
"""

import keras

try:
    from keras.src.backend import AutocastScope, get_autocast_scope, get_stateless_scope
    from keras.src.backend import rnn as backend_rnn
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
except ImportError as err:  # pragma: no cover - only on an unsupported Keras
    raise ImportError(
        f"keras-deeprnn needs Keras's internal `backend.rnn` loop and "
        f"`DropoutRNNCell`, which Keras {keras.__version__} no longer has at "
        f"the expected paths ({err}). Install a Keras version that "
        "keras-deeprnn supports (see its pyproject.toml)."
    ) from err

__all__ = ["AutocastScope", "DropoutRNNCell", "backend_rnn", "get_autocast_scope",
           "get_stateless_scope"]
