"""The few pieces of Keras that have no public path, imported in one place.

Keras 3 keeps its backend-agnostic time loop (`keras.src.backend.rnn`), the
base class of its dropout cells (`DropoutRNNCell`), its autocast scope, the
accessor of the current `keras.StatelessScope` and its global state out of
the public API. The library needs all five: the loop to run a cell's
recurrent step without `keras.layers.RNN`'s per-step input work, the base
class so that `keras.layers.RNN` primes our cells' dropout masks as it does
its own, the autocast scope so that a cell stepped directly (not through
`Layer.__call__`) still computes in its own dtype policy, the stateless
scope so that `DeepRNN` can read its cell's weights once before
TensorFlow's time loop without hiding an enclosing scope, and the global
state to see that a model's config is being written into a legacy `.h5`
file (`in_legacy_h5_format`). If a Keras release moves any of them, this
module fails at import with a message that names the version, and
`tests/test_keras_private.py` fails with it.
"""

import keras

try:
    from keras.src.backend import AutocastScope, get_autocast_scope, get_stateless_scope
    from keras.src.backend import rnn as backend_rnn
    from keras.src.backend.common import global_state
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
except ImportError as err:  # pragma: no cover - only on an unsupported Keras
    raise ImportError(
        f"keras-deeprnn needs Keras's internal `backend.rnn` loop, "
        f"`DropoutRNNCell`, autocast and stateless scopes and global state, which Keras "
        f"{keras.__version__} no longer has at "
        f"the expected paths ({err}). Install a Keras version that "
        "keras-deeprnn supports (see its pyproject.toml)."
    ) from err

__all__ = ["AutocastScope", "DropoutRNNCell", "backend_rnn", "get_autocast_scope",
           "get_stateless_scope", "in_legacy_h5_format"]


def in_legacy_h5_format():
    """Whether Keras is writing (or reading) a model in its legacy HDF5 format.

    `keras.saving.save_model(model, "m.h5")` goes straight to Keras's legacy
    writer, past `Model.save`; the first call it makes on the model is
    `get_config`, inside the scope Keras sets for that format (the flag its
    own functional and sequential models read to pick the legacy config).
    """
    return bool(global_state.get_global_attribute("use_legacy_config", False))
