"""What every keras-deeprnn cell shares: per-sequence dropout and state plumbing.

Two facts of Keras 3.15 shape this module:

* `keras.layers.RNN` makes dropout masks once, before its loop, only for a
  top-level `DropoutRNNCell` (and the cells of a `StackedRNNCells`); a mask
  made inside JAX's `lax.scan` would leak a tracer. Containers here
  therefore prime the masks of every cell they hold, and cells size their
  masks from the batch alone, so priming needs no real input.
* Under JAX a masked (padded) step returns `states[0]` (for nested states,
  `states[-1][0]`) as the step's output. A cell whose output is not that
  state keeps a copy of its last output there (see `DeepOutputCell`).
"""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras.src import tree
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell


def as_list(state_size):
    return list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]


def first_state_size(cell):
    size = as_list(cell.state_size)[0]
    while isinstance(size, (list, tuple)):
        size = size[0]
    return size


def cell_output_size(cell):
    size = getattr(cell, "output_size", None)
    return size if size is not None else first_state_size(cell)


def output_state_index(cell):
    """Index, in the flattened state list, of the state a cell outputs."""
    index = getattr(cell, "output_state_index", 0)
    if index is None:
        raise ValueError(
            f"{type(cell).__name__} outputs something that is not one of its states "
            "(a deep output, or the concatenated levels of a skip stack), so a state "
            "wrapper cannot tell what to output; wrap the recurrent cell inside it instead. "
            f"Received: cell={cell!r}"
        )
    return index


def batch_size_of(tensors):
    """The batch size of a tensor or of the first tensor of a nested state."""
    return ops.shape(tree.flatten(tensors)[0])[0]


def zero_state(cell, batch_size, dtype):
    """Initial state of any cell, as the flat-or-nested list Keras expects."""
    fn = getattr(cell, "get_initial_state", None)
    if fn is not None:
        return as_list(fn(batch_size=batch_size))
    return [ops.zeros((batch_size, d), dtype=dtype) for d in as_list(cell.state_size)]


def prime_dropout_masks(cell, batch_size, input_dim):
    """Make a cell's per-sequence dropout masks now, outside any traced loop."""
    if isinstance(cell, SequenceDropoutMixin) or hasattr(cell, "prime_dropout_masks"):
        cell.prime_dropout_masks(batch_size)
    elif isinstance(cell, DropoutRNNCell):
        dtype = cell.compute_dtype
        cell.get_dropout_mask(ops.zeros((batch_size, input_dim), dtype=dtype))
        cell.get_recurrent_dropout_mask(
            ops.zeros((batch_size, first_state_size(cell)), dtype=dtype)
        )


def reset_dropout_masks(cell):
    if isinstance(cell, DropoutRNNCell):
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()


class InnerCellMasks:
    """Mask priming for a cell that wraps another (`self.cell`, read with
    `self._input_dim` input features): keras.layers.RNN primes the masks of
    a top-level DropoutRNNCell only, so the wrapper passes that on."""

    def get_dropout_mask(self, step_input):
        prime_dropout_masks(self.cell, batch_size_of(step_input), self._input_dim)

    def get_recurrent_dropout_mask(self, step_input):
        return None

    def prime_dropout_masks(self, batch_size):
        prime_dropout_masks(self.cell, batch_size, self._input_dim)

    def reset_dropout_mask(self):
        reset_dropout_masks(self.cell)

    def reset_recurrent_dropout_mask(self):
        pass


def check_regularization(dropout, recurrent_dropout, weight_noise, recurrent_weight_dropout):
    """Validated values of the regularisation arguments every cell takes."""
    return {
        "dropout": _checks.rate("dropout", dropout),
        "recurrent_dropout": _checks.rate("recurrent_dropout", recurrent_dropout),
        "weight_noise": _checks.non_negative_float("weight_noise", weight_noise),
        "recurrent_weight_dropout": _checks.rate("recurrent_weight_dropout", recurrent_weight_dropout),
    }


class SequenceDropoutMixin(DropoutRNNCell):
    """Variational dropout and weight noise, drawn once per batch of sequences.

    Dropout masks are sized from the batch only. Weight noise (Graves 2011;
    std 0.075 in Pascanu et al.'s code) adds `normal(0, weight_noise)` to
    every kernel named by `noisy_weights()` (biases stay clean), and
    DropConnect on the recurrent kernels (`recurrent_weight_dropout`, the
    weight drop of AWD-LSTM, Merity et al. 2018) zeroes entries of every
    kernel named by `recurrent_weights()`, both for the whole batch of
    sequences, in training only.

    A subclass sets `dropout`, `recurrent_dropout`, `weight_noise`,
    `recurrent_weight_dropout`, `seed_generator`, the two widths
    `input_dropout_width` and `recurrent_dropout_width` (known after
    `build`), `noisy_weights()` and `recurrent_weights()`.
    """

    recurrent_weight_dropout = 0.0

    def set_regularization(self, regularization, seed):
        """Store `check_regularization`'s values and the seed of every draw."""
        for key, value in regularization.items():
            setattr(self, key, value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def regularization_config(self):
        keys = ("dropout", "recurrent_dropout", "weight_noise", "recurrent_weight_dropout", "seed")
        return {key: getattr(self, key) for key in keys}

    def add_initial_state_weight(self):
        """The learned `h_0` of `trainable_initial_state=True`, or None."""
        self.initial_state = (
            self.add_weight(shape=(self.units,), initializer="zeros", name="initial_state")
            if self.trainable_initial_state
            else None
        )

    def initial_h(self, batch_size):
        # zeros + vector, not broadcast_to: torch's loop writes into states
        # and refuses a broadcast view.
        zeros = ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        if getattr(self, "initial_state", None) is None:
            return zeros
        return zeros + ops.cast(self.initial_state, self.compute_dtype)

    def noisy_weights(self):
        return []

    def recurrent_weights(self):
        return []

    def _prime_weight_noise(self):
        if self.weight_noise > 0 and getattr(self, "_weight_noise", None) is None:
            self._weight_noise = {
                v.path: keras.random.normal(
                    v.shape, stddev=self.weight_noise, dtype=self.compute_dtype,
                    seed=self.seed_generator,
                )
                for v in self.noisy_weights()
            }
        if self.recurrent_weight_dropout > 0 and getattr(self, "_weight_drop", None) is None:
            self._weight_drop = {
                v.path: keras.random.dropout(
                    ops.ones(v.shape, dtype=self.compute_dtype), self.recurrent_weight_dropout,
                    seed=self.seed_generator,
                )
                for v in self.recurrent_weights()
            }

    def noisy(self, variable, training):
        """`variable` as this training batch sees it: with its weight noise
        and its DropConnect mask, where the cell uses them."""
        if not training or (self.weight_noise == 0 and self.recurrent_weight_dropout == 0):
            return variable
        self._prime_weight_noise()
        value = variable
        if self.weight_noise > 0 and variable.path in self._weight_noise:
            value = ops.add(value, self._weight_noise[variable.path])
        if self.recurrent_weight_dropout > 0 and variable.path in self._weight_drop:
            value = ops.multiply(value, self._weight_drop[variable.path])
        return value

    def reset_dropout_mask(self):
        super().reset_dropout_mask()
        self._weight_noise = None
        self._weight_drop = None

    def _sequence_mask(self, batch_size, width, rate):
        ones = ops.ones((batch_size, width), dtype=self.compute_dtype)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        self._prime_weight_noise()
        if getattr(self, "_dropout_mask", None) is None and self.dropout > 0:
            self._dropout_mask = self._sequence_mask(
                batch_size_of(step_input), self.input_dropout_width, self.dropout
            )
        return getattr(self, "_dropout_mask", None)

    def get_recurrent_dropout_mask(self, step_input):
        if getattr(self, "_recurrent_dropout_mask", None) is None and self.recurrent_dropout > 0:
            self._recurrent_dropout_mask = self._sequence_mask(
                batch_size_of(step_input), self.recurrent_dropout_width, self.recurrent_dropout
            )
        return getattr(self, "_recurrent_dropout_mask", None)

    def prime_dropout_masks(self, batch_size):
        probe = ops.zeros((batch_size, 1), dtype=self.compute_dtype)
        self.get_dropout_mask(probe)
        self.get_recurrent_dropout_mask(probe)

    def apply_input_dropout(self, inputs, training):
        """Drop input features with the sequence's mask; rank 2 or 3 inputs."""
        if not training or self.dropout == 0:
            return inputs
        mask = self.get_dropout_mask(inputs)
        if len(inputs.shape) == 3:
            mask = ops.expand_dims(mask, 1)
        return inputs * mask

    def apply_recurrent_dropout(self, state, training, start=0):
        if not training or self.recurrent_dropout == 0:
            return state
        mask = self.get_recurrent_dropout_mask(state)
        width = state.shape[-1]
        return state * mask[:, start : start + width]
