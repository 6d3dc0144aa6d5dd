"""Stacked RNN (sRNN) as one cell, with optional skip connections."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells import base


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class StackedCells(base.DropoutRNNCell, keras.layers.Layer):
    """A stack of RNN cells stepped together: the sRNN of the paper.

    ```python
    level_input = x
    for l, cell in enumerate(cells):
        if skip_connections and l > 0:
            level_input = concatenate([x, outputs[l - 1]])   # input reaches every level
        outputs[l], states[l] = cell(level_input, states[l])
        level_input = outputs[l]
    output = concatenate(outputs) if skip_connections else outputs[-1]
    ```

    Without skip connections this computes what `keras.layers.StackedRNNCells`
    computes. With them it follows Graves (2013) and Haiku's
    `deep_rnn_with_skip_connections`: each level above the first also sees
    `x_t`, and the output concatenates every level, so a readout sees all
    time scales.

    Why not a subclass of `StackedRNNCells`: `keras.layers.RNN` replays a
    `StackedRNNCells` level by level on `x_0` to make dropout masks, feeding
    each level only the level below, which breaks as soon as a level also
    reads `x_t`. This class primes its cells' masks itself instead.

    States: one list per level; with skip connections, one more list at the
    end holding the last output (Keras's JAX loop returns `states[-1][0]` as
    the output of a masked step of a nested-state cell).

    Example:

    ```python
    cell = StackedCells([DeepTransitionCell(64) for _ in range(3)], skip_connections=True)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))  # (4, 20, 192)
    ```

    Reference: Pascanu et al. 2014, stacked RNN; Graves 2013, *Generating
    Sequences with Recurrent Neural Networks*, skip connections.
    """

    def __init__(self, cells, skip_connections=False, **kwargs):
        if not isinstance(cells, (list, tuple)):
            raise ValueError(
                "`cells` must be a list of RNN cells, one per level. "
                f"Received: cells={cells!r}")
        skip_connections = _checks.boolean("skip_connections", skip_connections)
        cells = [
            keras.saving.deserialize_keras_object(c) if isinstance(c, dict) else c for c in cells
        ]
        if not cells:
            raise ValueError("`cells` must hold at least one RNN cell. Received: cells=[]")
        for c in cells:
            if not hasattr(c, "state_size") or not hasattr(c, "call"):
                raise ValueError(
                    f"Every entry of `cells` must be an RNN cell. Received: {c!r}"
                )
        super().__init__(**kwargs)
        self.cells = cells
        self.skip_connections = skip_connections
        sizes = [base.cell_output_size(c) for c in cells]
        self.output_size = sum(sizes) if self.skip_connections else sizes[-1]
        self.state_size = [base.as_list(c.state_size) for c in cells]
        if self.skip_connections:
            self.state_size.append([self.output_size])

    @property
    def output_state_index(self):
        """The top level's output state in the flattened states; None with
        skip connections, whose output is the concatenation of all levels."""
        if self.skip_connections:
            return None
        below = sum(len(keras.tree.flatten(c.state_size)) for c in self.cells[:-1])
        return below + base.output_state_index(self.cells[-1])

    def build(self, input_shape):
        self._input_dim = input_shape[-1]
        width = self._input_dim
        self._level_input_dims = []
        for level, cell in enumerate(self.cells):
            self._level_input_dims.append(width)
            if not cell.built:
                cell.build((input_shape[0], width))
            width = base.cell_output_size(cell)
            if self.skip_connections:
                width += self._input_dim

    def call(self, inputs, states, training=False):
        base.check_states_once(self, inputs, states)
        outputs, new_states = [], []
        level_input = inputs
        for level, cell in enumerate(self.cells):
            if self.skip_connections and level > 0:
                level_input = ops.concatenate([inputs, outputs[-1]], axis=-1)
            output, level_states = cell(level_input, list(states[level]), training=training)
            outputs.append(output)
            new_states.append(base.as_list(level_states))
            level_input = output
        if not self.skip_connections:
            return outputs[-1], new_states
        output = ops.concatenate(outputs, axis=-1)
        return output, new_states + [[output]]

    def get_initial_state(self, batch_size=None):
        states = [base.zero_state(c, batch_size, self.compute_dtype) for c in self.cells]
        if self.skip_connections:
            states.append([ops.zeros((batch_size, self.output_size), dtype=self.compute_dtype)])
        return states

    def get_dropout_mask(self, step_input):
        self.prime_dropout_masks(base.batch_size_of(step_input))

    def get_recurrent_dropout_mask(self, step_input):
        return None

    def prime_dropout_masks(self, batch_size):
        for cell, width in zip(self.cells, self._level_input_dims):
            base.prime_dropout_masks(cell, batch_size, width)

    def reset_dropout_mask(self):
        for cell in self.cells:
            base.reset_dropout_masks(cell)

    def reset_recurrent_dropout_mask(self):
        pass

    def get_config(self):
        return {
            **super().get_config(),
            "cells": [keras.saving.serialize_keras_object(c) for c in self.cells],
            "skip_connections": self.skip_connections,
        }
