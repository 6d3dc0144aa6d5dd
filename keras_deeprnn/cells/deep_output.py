"""The predict operator ▷ inside a cell: output ▷(h_t), state h_t."""

import keras
from keras import ops

from keras_deeprnn.cells import base
from keras_deeprnn.layers.mlp import DeepOutput


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepOutputCell(base.InnerCellMasks, base.DropoutRNNCell, keras.layers.Layer):
    """Wraps any RNN cell so its output passes through a deep output function.

    ```python
    h_out, new_inner_states = cell(x, inner_states)     # the ⊕ operator
    y = output_layer(h_out)                             # the ▷ operator
    output, new_states = y, [y] + new_inner_states
    ```

    Wrapping a `DeepTransitionCell` gives a DOT-RNN (DOT(S) with shortcuts) as
    one cell, usable inside `keras.layers.RNN`, `StackedRNNCells` and
    `Bidirectional`. The results equal the cell followed by the same
    `DeepOutput` applied to the sequence (tested).

    The first state is a copy of the last output `y`, read by nothing in the
    step. It is there because Keras's JAX loop returns `states[0]` as the
    output of a masked (padded) step; without it a padded step would output
    the inner state instead of `y`. `return_state=True` therefore returns
    `[y, *inner_states]`.

    Args:
        cell: the inner cell (any Keras RNN cell).
        output_layer: a `keras_deeprnn.layers.DeepOutput` (or any layer that
            maps `(batch, features)` to `(batch, output_size)` with an
            `output_size` or `units` attribute), or its config dict.

    Example:

    ```python
    cell = DeepOutputCell(DeepTransitionCell(64, num_transition_layers=2, shortcut=True),
                          DeepOutput(88, num_layers=1, activation="sigmoid"))
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```

    Reference: Pascanu et al. 2014, DO-RNN and DOT-RNN.
    """

    def __init__(self, cell, output_layer, **kwargs):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if isinstance(output_layer, dict):
            output_layer = keras.saving.deserialize_keras_object(output_layer)
        if not hasattr(cell, "state_size") or not hasattr(cell, "call"):
            raise ValueError(
                f"`cell` must be an RNN cell (with `call` and `state_size`). Received: cell={cell!r}"
            )
        if not isinstance(output_layer, keras.layers.Layer):
            raise ValueError(
                "`output_layer` must be a Keras layer such as DeepOutput. "
                f"Received: output_layer={output_layer!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.output_layer = output_layer
        self.output_size = getattr(output_layer, "output_size", None) or output_layer.units
        self.state_size = [self.output_size] + base.as_list(cell.state_size)

    output_state_index = None  # the output is ▷'s, not a state of the transition

    # The random draws of ▷ (dropout, weight noise), like the inner cell's,
    # are made once per batch of sequences, before the time loop (inside
    # JAX's traced loop a draw would leak a tracer), and shared by every step.
    def get_dropout_mask(self, step_input):
        super().get_dropout_mask(step_input)
        self._prime_output_draws(base.batch_size_of(step_input))

    def prime_dropout_masks(self, batch_size):
        super().prime_dropout_masks(batch_size)
        self._prime_output_draws(batch_size)

    def reset_dropout_mask(self):
        super().reset_dropout_mask()
        if hasattr(self.output_layer, "release_sequence_draws"):
            self.output_layer.release_sequence_draws()

    def _prime_output_draws(self, batch_size):
        if hasattr(self.output_layer, "prime_sequence_draws"):
            self.output_layer.prime_sequence_draws(batch_size)

    def build(self, input_shape):
        # Either may arrive built: passed in by the caller, or rebuilt by
        # `from_config`, whose deserialisation builds each from its build config.
        if not self.cell.built:
            self.cell.build(input_shape)
        if not self.output_layer.built:
            self.output_layer.build((input_shape[0], base.cell_output_size(self.cell)))
        self._input_dim = input_shape[-1]

    def call(self, inputs, states, training=False):
        base.check_states_once(self, inputs, states)
        h, new_inner = self.cell(inputs, list(states[1:]), training=training)
        y = self.output_layer(h, training=training)
        return y, [y] + base.as_list(new_inner)

    def get_initial_state(self, batch_size=None):
        y0 = ops.zeros((batch_size, self.output_size), dtype=self.compute_dtype)
        return [y0] + base.zero_state(self.cell, batch_size, self.compute_dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "cell": keras.saving.serialize_keras_object(self.cell),
            "output_layer": keras.saving.serialize_keras_object(self.output_layer),
        }
