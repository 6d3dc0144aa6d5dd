"""Language-model batches: a token stream cut into the contiguous windows a
stateful recurrent model reads in order, and the callback that restarts its
state at every pass.

The streams come from `keras_deeprnn.data.text` (or any 1-D array of ids):

```python
corpus = load_text("abc_folk")
train = lm_batches(corpus.train, batch_size=32, seq_len=100)
model.fit(train, shuffle=False, callbacks=[ResetStatesAtEpochStart()])
```
"""

import warnings

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.layers import DeepRNN


class LanguageModelBatches(keras.utils.PyDataset):
    """Contiguous windows of a token stream, in order, for a stateful model.

    The stream is cut into `batch_size` parallel streams, row `b` of which
    continues where the same row of the previous window stopped:

        L = len(tokens) // batch_size
        streams = tokens[:batch_size * L].reshape(batch_size, L)   # stream b = tokens[b*L:(b+1)*L]
        x_k = streams[:, k*seq_len     : (k+1)*seq_len]
        y_k = streams[:, k*seq_len + 1 : (k+1)*seq_len + 1]       # next tokens
        num_batches = (L - 1) // seq_len                           # the tail is dropped

    Because row `b` of window `k + 1` is the text right after row `b` of
    window `k`, a recurrent layer built with `stateful=True` and a fixed
    batch size (`keras.Input(batch_shape=(batch_size, seq_len))`) carries its
    state from one window to the next, as in truncated backpropagation
    through time. Reset the state at each epoch with
    `ResetStatesAtEpochStart`.

    Windows must be read in order. `model.fit` shuffles the batches of a
    `PyDataset` unless told otherwise, so call it with `shuffle=False`;
    indexing out of order (`ds[k]` not following `ds[k - 1]` or
    `ds[0]`) raises an error rather than train on broken state. Use
    `window(k)` to look at any window.

    `token_id_range` is `(smallest, largest)` of the ids its streams hold
    (a tail that no window reaches included); a `DeepRNNModel` given this
    dataset reads it when `fit`, `evaluate` or `predict` starts and refuses
    ids at or above its `vocab_size`, which its embedding has no row for (on
    JAX they would read NaN, with no error). A pipeline made from it (such
    as `tf.data`) does not carry it.

    Example:

    >>> ds = lm_batches(np.arange(20), batch_size=2, seq_len=3)
    >>> x, y = ds[0]
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [10, 11, 12]], [[1, 2, 3], [11, 12, 13]])
    >>> len(ds)
    3
    """

    def __init__(self, tokens, batch_size, seq_len):
        tokens = _check_tokens(tokens)
        batch_size = _checks.positive_int("batch_size", batch_size)
        seq_len = _checks.positive_int("seq_len", seq_len)
        needed = batch_size * (seq_len + 1)
        if len(tokens) < needed:
            raise ValueError(
                f"lm_batches needs at least batch_size * (seq_len + 1) = "
                f"{batch_size} * ({seq_len} + 1) = {needed} tokens for one "
                f"batch (each window's targets reach one token further); "
                f"received {len(tokens)} tokens with batch_size={batch_size}, "
                f"seq_len={seq_len}."
            )
        super().__init__()
        self.batch_size = batch_size
        self.seq_len = seq_len
        length = len(tokens) // batch_size
        self.streams = tokens[: batch_size * length].reshape(batch_size, length)
        self._num_batches = (length - 1) // seq_len
        # What a token model checks against its vocab_size before it reads a window.
        self.token_id_range = (int(self.streams.min()), int(self.streams.max()))
        self._last_index = None

    @property
    def num_batches(self):
        return self._num_batches

    def __len__(self):
        return self._num_batches

    def window(self, index):
        """Window `index` as `(x, y)`, in any order."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"A window index must be an int; received {index!r}."
            )
        if not 0 <= index < self._num_batches:
            raise IndexError(
                f"Window index {index} is out of range: there are "
                f"{self._num_batches} windows."
            )
        start = int(index) * self.seq_len
        x = self.streams[:, start : start + self.seq_len]
        y = self.streams[:, start + 1 : start + self.seq_len + 1]
        return x.copy(), y.copy()

    def __getitem__(self, index):
        x, y = self.window(index)
        last = self._last_index
        if last is not None and index not in (0, last, last + 1):
            raise ValueError(
                f"lm_batches serves windows in order so that a stateful "
                f"model's state carries from one to the next, but window "
                f"{index} was requested right after window {last}: the "
                "batches are being shuffled. Pass shuffle=False to "
                "model.fit(), or use .window(k) to look at one window."
            )
        self._last_index = int(index)
        return x, y


def lm_batches(tokens, batch_size, seq_len):
    """The standard batching for language models: contiguous windows, in order.

    See `LanguageModelBatches` for the layout. Train a model built with
    `stateful=True` and `keras.Input(batch_shape=(batch_size, seq_len))` on
    it with `model.fit(ds, shuffle=False, callbacks=[ResetStatesAtEpochStart()])`;
    a validation set needs the same `batch_size`. (With the JAX backend,
    only `keras_deeprnn.layers.DeepRNN` carries RNN state inside `fit`; see
    `ResetStatesAtEpochStart`.)

    Args:
        tokens: 1-D sequence of non-negative integer token ids.
        batch_size: number of parallel streams (rows of a batch).
        seq_len: time steps per window.

    Returns:
        A `keras.utils.PyDataset` of `(x, y)` int32 pairs of shape
        `(batch_size, seq_len)`, `y` being `x` moved one token on.

    Example:

    >>> ds = lm_batches(np.arange(20), batch_size=2, seq_len=3)
    >>> [x[:, 0].tolist() for x, _ in ds]
    [[0, 10], [3, 13], [6, 16]]
    """
    return LanguageModelBatches(tokens, batch_size, seq_len)


def _check_tokens(tokens):
    array = np.asarray(tokens)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.integer) or array.size == 0
    ):
        raise ValueError(
            "`tokens` must be a 1-D sequence of integer token ids; received "
            f"an array of shape {array.shape} and dtype {array.dtype}."
        )
    if array.size and (
        array.min() < 0 or array.max() > np.iinfo(np.int32).max
    ):
        raise ValueError(
            "`tokens` must be non-negative ids that fit in int32; received "
            f"values from {array.min()} to {array.max()}."
        )
    return array.astype(np.int32)


class ResetStatesAtEpochStart(keras.callbacks.Callback):
    """Reset the state of every stateful recurrent layer when a pass begins.

    With `lm_batches` the state of a `stateful=True` layer carries across
    the windows of one pass over the stream; at the start of the next pass
    (`on_epoch_begin`) and of an evaluation (`on_test_begin`) the text starts
    again from its beginning, so the carried state must start again from
    the initial state (zeros; a `DeepRNN` whose cell learned `h_0`, that).
    Layers nested in sub-models or inside other layers are reached too; only
    layers whose `stateful` attribute is true are reset, so preprocessing
    layers (which also have a `reset_state`, meaning "forget the adapted
    vocabulary") are left alone.

    Backends: the state carries inside `fit`, `evaluate` and `predict` on
    every backend for `keras_deeprnn.layers.DeepRNN` (every model of
    `build_model`). Keras 3.15's own RNN layers keep their state variables
    out of the model variables that JAX's compiled steps return, so with JAX
    each of their batches starts from a zero state (eager calls, `model(x)`,
    do carry it); this callback warns when training starts on JAX with such
    a layer in the model.

    Example:

    >>> model.fit(  # doctest: +SKIP
    ...     lm_batches(corpus.train, 32, 100),
    ...     validation_data=lm_batches(corpus.valid, 32, 100),
    ...     shuffle=False,
    ...     callbacks=[ResetStatesAtEpochStart()],
    ... )
    """

    def on_train_begin(self, logs=None):
        losing = [l for l in _stateful_layers(self.model) if not isinstance(l, DeepRNN)]
        if keras.backend.backend() == "jax" and losing:
            warnings.warn(
                f"With the JAX backend, Keras {keras.version()} does not "
                "carry the state of stateful RNN layers from one batch to "
                "the next inside fit(), evaluate() or predict(): their state "
                "variables are not among the model variables that the "
                "compiled JAX steps update, so every window starts from a "
                "zero state. Use keras_deeprnn.layers.DeepRNN (as every "
                "build_model model does), or the TensorFlow or PyTorch backend. "
                f"Affected layers: {[l.name for l in losing]}",
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        reset_stateful_layers(self.model)

    def on_test_begin(self, logs=None):
        reset_stateful_layers(self.model)


def reset_stateful_layers(model):
    """Call `reset_state()` on every layer of `model` built with `stateful=True`.

    Returns the number of layers reset.
    """
    layers = _stateful_layers(model)
    for layer in layers:
        layer.reset_state()
    return len(layers)


def _stateful_layers(model):
    # `_flatten_layers` is how Keras itself walks nested layers (sub-models
    # and layers held as attributes); `model.layers` stops at the top level.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if getattr(layer, "stateful", False)
        and callable(getattr(layer, "reset_state", None))
    ]
