"""`DeepRNN`: `keras.layers.RNN` with the state-independent work hoisted out of the loop."""

import keras
from keras import ops
from keras.src import backend as keras_backend
from keras.src import tree


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepRNN(keras.layers.RNN):
    """`keras.layers.RNN` that computes the input projections of a sequence at once.

    A keras-deeprnn cell splits its step into `project_inputs` (everything
    that reads only `x_t`: input dropout and `x_t @ U`) and `recurrent_step`
    (everything that reads the state). This layer runs the first over the
    whole `(batch, time, features)` sequence as one matrix product, then
    loops over time with the second only:

    ```python
    projected = cell.project_inputs(sequence)               # one big matmul
    for t in time: output_t, state = cell.recurrent_step(projected[:, t], state)
    ```

    The numbers are those of `keras.layers.RNN(cell)` with the same weights
    (tests check outputs and gradients); only the work per step shrinks,
    which matters most on torch, whose Keras loop runs in Python. Cells
    without that split (Keras's own, or wrappers) run exactly as in
    `keras.layers.RNN`. Every argument of `keras.layers.RNN` is accepted,
    and `reset_state` also works for cells with nested states (one list per
    level), where `keras.layers.RNN.reset_state` fails in Keras 3.15. With
    `stateful=True` the states are among the layer's non-trainable
    `variables` (not its `weights`), so they carry from batch to batch in
    `fit`, `evaluate` and `predict` on JAX too (Keras 3.15's own RNN loses
    them there).

    Example:

    ```python
    layer = DeepRNN(DeepTransitionCell(64, num_transition_layers=2), return_sequences=True)
    y = layer(np.zeros((8, 100, 88)))
    ```
    """

    def _create_state_variables(self, batch_size):
        super()._create_state_variables(batch_size)
        # keras.layers.RNN keeps these out of the layer's variables, so JAX's
        # stateless train/predict steps drop their updates and every batch
        # starts from zeros. Listed beside the seed-generator states they are
        # in `variables` (JAX carries them) but not in `weights`: a stateful
        # model keeps the weights and saved files of its non-stateful twin.
        for variable in tree.flatten(self.states):
            self._seed_generators.append(_CarriedState(variable))

    def reset_state(self):
        # keras.layers.RNN.reset_state assumes a flat list of states; stacked
        # and depth-gated cells keep one list per level.
        if self.states is not None:
            for v in tree.flatten(self.states):
                v.assign(ops.zeros_like(v.value))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not hasattr(self.cell, "project_inputs"):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        projected = self.cell.project_inputs(sequences, training=training)

        def step(projected_t, states):
            if keras_backend.backend() == "torch" and self.stateful:
                # As in keras.layers.RNN: stateful torch states must not be
                # modified in place while autograd still needs them.
                states = tree.map_structure(ops.copy, states)
            return self.cell.recurrent_step(projected_t, states, training=training)

        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        if keras_backend.backend() == "torch" and mask is None and not self.unroll:
            return self._python_loop(step, projected, initial_state)
        return keras_backend.rnn(
            step,
            projected,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )

    def _python_loop(self, step, projected, states):
        # Keras's torch loop (3.15) runs step 0 twice (once to learn the
        # output shape) and flattens and repacks the states at every step.
        # Without a mask this is the same loop, minus that: outputs in the
        # order the steps run (reversed with go_backwards, as Keras returns
        # them), the last output, the last states.
        inputs = ops.unstack(projected, axis=1)
        outputs = []
        for projected_t in inputs[::-1] if self.go_backwards else inputs:
            output, states = step(projected_t, states)
            if self.return_sequences:
                outputs.append(output)
        if not self.return_sequences:
            return output, ops.expand_dims(output, 1), states
        return output, ops.stack(outputs, axis=1), states


class _CarriedState:
    """Holds a stateful RNN state where Keras looks for seed-generator states."""

    def __init__(self, state):
        self.state = state
