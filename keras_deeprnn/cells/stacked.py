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

    Levels that draw anew at every step (`ZoneoutCell`, also inside a
    `StateResetCell` or a nested stack) cannot draw inside JAX's traced time
    loop. Inside `keras_deeprnn.layers.DeepRNN` in training the stack
    therefore draws every such level's decisions for the whole sequence
    before the loop (`make_step_draws`, each level its own) and hands each
    step its slice, so it trains on every backend. A stack with no such
    level, and every stack at inference, is stepped as `keras.layers.RNN`
    steps it. In a plain `keras.layers.RNN` the levels draw at each step:
    fine on TensorFlow and torch, refused with a clear error on JAX.

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
        return self._step(inputs, states, training)

    # A level whose step draws at random (a `ZoneoutCell`: new keep decisions
    # at every step) cannot draw inside JAX's traced time loop. Inside
    # `keras_deeprnn.layers.DeepRNN` the stack therefore makes every level's
    # draws of the whole sequence before the loop (`project_inputs`) and
    # hands each step its slice, each level its own; a stack without such
    # levels is called step by step, as `keras.layers.RNN` calls it.
    def _level_draw_widths(self, training):
        return [base.step_draw_width(c, training) for c in self.cells]

    def step_draw_width(self, training=False):
        """How many numbers a step of all levels draws at random (zoneout's
        keep decisions), all made before the time loop."""
        return sum(self._level_draw_widths(training))

    def splits_step(self, training=False):
        """Whether `DeepRNN` runs `project_inputs` over the sequence, then
        `recurrent_step` per step: only where a level draws at every step."""
        return self.step_draw_width(training) > 0

    def make_step_draws(self, leading_shape, training=False):
        """Every level's random draws for every position of `leading_shape`
        (`(batch, time)` for a sequence), made now, side by side in level
        order, or None where no level draws."""
        draws = [
            ops.cast(c.make_step_draws(leading_shape, training), self.compute_dtype)
            for c, width in zip(self.cells, self._level_draw_widths(training)) if width
        ]
        return ops.concatenate(draws, axis=-1) if draws else None

    def project_inputs(self, inputs, training=False, step_draws=None):
        """The inputs, followed by the levels' draws of every step
        (`make_step_draws`, made now unless given)."""
        if step_draws is None:
            step_draws = self.make_step_draws(ops.shape(inputs)[:-1], training)
        if step_draws is None:
            return inputs
        return ops.concatenate([inputs, ops.cast(step_draws, inputs.dtype)], axis=-1)

    def recurrent_step(self, projected, states, training=False):
        total = self.step_draw_width(training)
        if not total:
            return self._step(projected, states, training)
        return self._step(projected[:, :-total], states, training, draws=projected[:, -total:])

    def _step(self, inputs, states, training, draws=None):
        widths = self._level_draw_widths(training) if draws is not None else [0] * len(self.cells)
        outputs, new_states = [], []
        level_input, start = inputs, 0
        for level, (cell, width) in enumerate(zip(self.cells, widths)):
            if self.skip_connections and level > 0:
                level_input = ops.concatenate([inputs, outputs[-1]], axis=-1)
            if width:
                # The level's projection with its slice of the draws made
                # before the loop, then its step: what its call would do,
                # without drawing.
                projected = cell.project_inputs(level_input, training=training,
                                                step_draws=draws[:, start : start + width])
                output, level_states = cell.recurrent_step(projected, list(states[level]),
                                                           training=training)
                start += width
            else:
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
