"""Cell wrappers that act on the state between steps: zoneout and per-example resets.

Both wrap any cell whose output is one of its states (every transition,
highway, gated-feedback and depth-gated cell here, and Keras's own
`SimpleRNNCell`, `GRUCell` and `LSTMCell`) and keep the split into
`project_inputs` (run once per sequence by `keras_deeprnn.layers.DeepRNN`)
and `recurrent_step` (run at every step). What a wrapper needs per step
rides along as extra trailing features of the projected inputs: the
zoneout draws of every step are made with the input projections, outside
the time loop, where JAX's traced loop allows random draws.
"""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells import base
from keras_deeprnn.layers.regularization import RandomDraws


class _StateWrapper(base.InnerCellMasks, base.DropoutRNNCell, keras.layers.Layer):
    """What the wrappers share: the wrapped cell's states, masks and config."""

    def __init__(self, cell, **kwargs):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not hasattr(cell, "state_size") or not hasattr(cell, "call"):
            raise ValueError(
                f"`cell` must be an RNN cell (with `call` and `state_size`). Received: cell={cell!r}"
            )
        index = base.output_state_index(cell)
        super().__init__(**kwargs)
        self.cell = cell
        self.output_state_index = index
        self.state_size = cell.state_size
        self.output_size = base.cell_output_size(cell)
        self.state_widths = [int(w) for w in keras.tree.flatten(cell.state_size)]

    def _build_cell(self, input_shape):
        if not self.cell.built:
            self.cell.build(tuple(input_shape))
        self._input_dim = input_shape[-1]

    # Per-step draws (`step_draw_width`, `make_step_draws`, `project_inputs(...,
    # step_draws=...)`): the wrapped cell's first, then the wrapper's own, so
    # a container can draw them all before its time loop.
    def _inner_step_draw_width(self, training):
        return base.step_draw_width(self.cell, training)

    def _own_step_draw_width(self, training):
        return 0

    def step_draw_width(self, training=False):
        """How many numbers a step draws at random, all made before the time loop."""
        return self._inner_step_draw_width(training) + self._own_step_draw_width(training)

    def make_step_draws(self, leading_shape, training=False):
        """The random draws of every position of `leading_shape` (`(batch,
        time)` for a sequence, `(batch,)` for one step), made now, or None
        where the step draws nothing. A container that steps this cell
        (`StackedCells`) calls it before its time loop and hands each step
        its slice through `project_inputs(..., step_draws=...)`."""
        draws = []
        if self._inner_step_draw_width(training):
            draws.append(self.cell.make_step_draws(leading_shape, training))
        if self._own_step_draw_width(training):
            draws.append(self._make_own_step_draws(leading_shape, training))
        if not draws:
            return None
        return ops.concatenate([ops.cast(d, self.compute_dtype) for d in draws], axis=-1)

    def _project_cell(self, inputs, training, step_draws=None):
        if not hasattr(self.cell, "project_inputs"):
            return inputs
        inner = self._inner_step_draw_width(training)
        if inner and step_draws is not None:
            return self.cell.project_inputs(inputs, training=training,
                                            step_draws=step_draws[..., :inner])
        return self.cell.project_inputs(inputs, training=training)

    def _step_cell(self, projected, states, training):
        if hasattr(self.cell, "recurrent_step"):
            return self.cell.recurrent_step(projected, states, training=training)
        return self.cell(projected, states, training=training)

    def _structure(self, flat, states):
        return keras.tree.pack_sequence_as(states, flat)

    def call(self, inputs, states, training=False):
        base.check_states_once(self, inputs, states)
        return self.recurrent_step(self.project_inputs(inputs, training), states, training)

    def get_initial_state(self, batch_size=None):
        return base.zero_state(self.cell, batch_size, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell)}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class ZoneoutCell(RandomDraws, _StateWrapper):
    """Zoneout (Krueger et al. 2017) on every state of the wrapped cell.

    At each training step each unit of each state keeps its previous value
    with probability `zoneout` instead of taking the new one; at inference
    the expectation is used:

    ```python
    output, new = cell(x_t, old)                   # every state tensor s
    if training: keep = uniform(s.shape) < zoneout # a fresh draw per step and unit
                 s = keep * old_s + (1 - keep) * new_s
    else:        s = zoneout * old_s + (1 - zoneout) * new_s
    output = the zoned version of the state the cell outputs (h)
    ```

    Unlike the per-sequence dropout masks, zoneout draws anew at every
    step; `project_inputs` draws all steps' decisions at once with the input
    projections, so inside `keras_deeprnn.layers.DeepRNN` (which every
    `build_model` level uses) it runs on every backend, as `DeepRNN`'s own
    cell or as levels of a `StackedCells`, which draws every level's
    decisions of the sequence before the loop, each level its own
    (`make_step_draws`). In a plain `keras.layers.RNN` each step draws for
    itself: fine on TensorFlow and torch; JAX's traced loop cannot draw, so
    there training on JAX is refused with a clear error, as it is inside a
    container that calls the cell step by step (`DeepOutputCell`).

    The keep decisions of a training call are its random draw `"zoneout"`
    (1 = keep the previous value; the flattened states side by side, of
    shape `(batch, time, total state width)` inside `DeepRNN`, `(batch,
    total state width)` per step in `keras.layers.RNN`), readable through
    `last_draws` and fixable through `fix_draws` (`keras_deeprnn.layers.regularization`).
    Inside `DeepRNN` the decisions `[:, t]` belong to the step that reads
    `x_t`, in whatever order the loop runs the steps (last first with
    `go_backwards`, as in the backward half of `keras.layers.Bidirectional`);
    a step that a mask skips keeps every state and leaves its decisions
    unused. Every call draws anew, so a `stateful` layer fed a sequence in
    pieces draws each piece's decisions. They are made in the cell's compute
    dtype, as are the kept or updated states (`float16` under the global
    `mixed_float16` policy; a `float32` cell inside a layer given
    `dtype="mixed_float16"` stays `float32`).

    Args:
        cell: the cell to wrap; its output must be one of its states.
        zoneout: probability that a unit keeps its previous value.
        seed: seed of the zoneout draws.

    Example:

    ```python
    cell = ZoneoutCell(DeepTransitionCell(64, num_transition_layers=2), zoneout=0.1)
    y = DeepRNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```
    """

    def __init__(self, cell, zoneout=0.1, seed=None, **kwargs):
        zoneout = _checks.rate("zoneout", zoneout)
        seed = _checks.seed("seed", seed)
        super().__init__(cell, **kwargs)
        self.zoneout = zoneout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self._build_cell(input_shape)

    @property
    def _draws(self):
        return sum(self.state_widths)

    def _own_step_draw_width(self, training):
        return self._draws if training and self.zoneout > 0 else 0

    def _make_own_step_draws(self, leading_shape, training):
        if len(leading_shape) == 1 and keras.backend.backend() == "jax":
            # One step's draws: the cell is stepped by a loop that did not
            # draw the sequence's first (keras.layers.RNN, DeepOutputCell),
            # also where a wrapper or a stack around it does the calling.
            raise RuntimeError(
                "ZoneoutCell was called step by step in training, drawing at every step, "
                "which JAX's traced time loop cannot do. On JAX it trains inside "
                "keras_deeprnn.layers.DeepRNN, as its cell or as a level of the StackedCells "
                "that is its cell: those make every step's draws before the loop. Inside "
                "keras.layers.RNN it cannot: use DeepRNN. Nor inside a container cell that "
                "calls it per step (DeepOutputCell): apply the deep output to the sequence "
                "DeepRNN returns (a DeepOutput layer after it), as build_model does. "
                "Received: a per-step call in training with zoneout={}".format(self.zoneout)
            )
        shape = (*leading_shape, self._draws)

        def make():
            keep = keras.random.uniform(shape, dtype=self.compute_dtype, seed=self.seed_generator)
            return ops.cast(ops.less(keep, self.zoneout), self.compute_dtype)

        self.forget_draws()  # a new draw for every sequence (every step in keras.layers.RNN)
        return self.draw("zoneout", make)

    def project_inputs(self, inputs, training=False, step_draws=None):
        """The wrapped cell's projection, then the keep decisions: `step_draws`'
        last columns where a container drew them (`make_step_draws`), else drawn now."""
        projected = self._project_cell(inputs, training, step_draws)
        own = self._own_step_draw_width(training)
        if not own:
            return projected
        if step_draws is not None:
            keep = step_draws[..., -own:]
        else:
            keep = self._make_own_step_draws(ops.shape(inputs)[:-1], training)
        return ops.concatenate([projected, ops.cast(keep, projected.dtype)], axis=-1)

    def recurrent_step(self, projected, states, training=False):
        drawn = training and self.zoneout > 0
        if drawn:
            projected, keep = projected[:, : -self._draws], projected[:, -self._draws :]
        _, new_states = self._step_cell(projected, states, training)
        old, new = keras.tree.flatten(states), keras.tree.flatten(new_states)
        zoned, start = [], 0
        for old_s, new_s, width in zip(old, new, self.state_widths):
            if drawn:
                k = keep[:, start : start + width]
                zoned.append(k * old_s + (1 - k) * new_s)
            else:
                zoned.append(self.zoneout * old_s + (1 - self.zoneout) * new_s)
            start += width
        return zoned[self.output_state_index], self._structure(zoned, new_states)

    def get_config(self):
        return {**super().get_config(), "zoneout": self.zoneout, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class StateResetCell(_StateWrapper):
    """Per-example state reset, for packed streams of several sequences.

    The last input feature is a reset flag: where it is 1, that example's
    states return to the cell's initial state (zeros, or the learned
    `h_0`) before the step reads its input, so one row of a batch can hold
    sequence after sequence without the state of one leaking into the next:

    ```python
    x_t, r_t = inputs[:, :-1], inputs[:, -1:]      # r_t = 1: a new sequence starts
    old = r_t * initial_state + (1 - r_t) * old     # per example, every state tensor
    output, new = cell(x_t, old)
    ```

    Args:
        cell: the cell to wrap; its output must be one of its states.

    Example:

    ```python
    cell = StateResetCell(DeepTransitionCell(64))
    flags = np.zeros((4, 20, 1)); flags[:, 10] = 1  # second sequence starts at step 10
    y = DeepRNN(cell, return_sequences=True)(np.concatenate([x, flags], axis=-1))
    ```
    """

    def build(self, input_shape):
        if input_shape[-1] is None or input_shape[-1] < 2:
            raise ValueError(
                "StateResetCell reads its reset flag from the last input feature and "
                f"needs at least one feature besides it. Received: input_shape={tuple(input_shape)}"
            )
        self._build_cell((*input_shape[:-1], input_shape[-1] - 1))

    def project_inputs(self, inputs, training=False, step_draws=None):
        projected = self._project_cell(inputs[..., :-1], training, step_draws)
        flags = ops.cast(inputs[..., -1:], projected.dtype)
        return ops.concatenate([projected, flags], axis=-1)

    def recurrent_step(self, projected, states, training=False):
        projected, flags = projected[:, :-1], projected[:, -1:]
        initial = keras.tree.flatten(base.zero_state(self.cell, base.batch_size_of(states), self.compute_dtype))
        flat = [
            flags * ops.cast(init, s.dtype) + (1 - flags) * s
            for init, s in zip(initial, keras.tree.flatten(states))
        ]
        return self._step_cell(projected, self._structure(flat, states), training)
