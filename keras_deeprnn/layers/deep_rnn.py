"""`DeepRNN`: `keras.layers.RNN` with the state-independent work hoisted out of the loop."""

import contextlib

import keras
from keras import ops
from keras import tree

from keras_deeprnn import _checks
from keras_deeprnn._keras_private import backend_rnn
from keras_deeprnn._keras_private import get_stateless_scope
from keras_deeprnn.layers import _depth_gated_bptt
from keras_deeprnn.layers import _gated_feedback_bptt
from keras_deeprnn.layers import _highway_bptt
from keras_deeprnn.layers import _transition_bptt
from keras_deeprnn.layers import _transition_lstm_bptt

# The whole-sequence autograd functions (on torch); False leaves every cell
# to the traced step.
WHOLE_SEQUENCE = True
# Each route is `(applies(cell, training, mask, dtype), sequence, nested)`;
# the first that applies runs. A route for one state (`nested` False) is
# `sequence(cell, projected, h0, training, go_backwards) -> states`, the
# `(batch, time, units)` states in the order the steps ran (each also the
# output); a route for a cell's whole state structure (`nested` True) is
# `sequence(cell, projected, initial_state, training, go_backwards) ->
# (outputs, last_states)`, the states in the cell's structure.
SEQUENCE_ROUTES = (
    (_transition_bptt.applies, _transition_bptt.transition_sequence, False),
    (_highway_bptt.applies, _highway_bptt.sequence, False),
    (_depth_gated_bptt.applies, _depth_gated_bptt.sequence, True),
    (_transition_lstm_bptt.applies, _transition_lstm_bptt.sequence, True),
    (_gated_feedback_bptt.applies, _gated_feedback_bptt.sequence, True),
)
# TensorFlow's time loop under XLA sees the cell's weights as tensors read
# once before it (`_WeightsReadOnce`); False reads them at every step, as
# Keras does.
READ_WEIGHTS_ONCE = True


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
    which matters most on torch, whose Keras loop runs in Python. On torch
    the step is also traced once per input shape into a graph of aten
    operations, with the weights, states and per-sequence draws as its
    inputs, and that graph replays every step without `keras.ops`'
    per-call argument checks (see `_TracedSteps`; a step that cannot be
    traced runs as written). A `DeepTransitionCell`, a
    `DeepTransitionLSTMCell`, a `HighwayTransitionCell`, a
    `DepthGatedLSTMCell` and a `GatedFeedbackCell` go further on torch: the
    whole sequence runs as one autograd function whose backward pass through
    time is written by hand (`_transition_bptt`, `_transition_lstm_bptt`,
    `_highway_bptt`, `_depth_gated_bptt`, `_gated_feedback_bptt`: no
    per-step autograd records, weight gradients as
    one matmul over all steps), where that computes what the cell asks for
    (no mask, no layer norm, float32, Keras's own `tanh`, `sigmoid`, `relu`
    or `linear`; `tanh` and `sigmoid` as the Depth-Gated LSTM's); otherwise
    it takes the traced step. Cells without that split (Keras's own, or
    wrappers) run exactly as in `keras.layers.RNN`; so does a
    `StackedCells`, except in training with a level that draws at every
    step (zoneout), where it splits to make those draws before the loop
    (`StackedCells.splits_step`). On TensorFlow under XLA (`jit_compile`)
    the cell's weights are read once, before the time loop
    (`_WeightsReadOnce`): read inside it, their values are new tensors at
    every step, which the loop's gradient stacks (a copy of every recurrent
    kernel per frame) instead of reusing one. Every argument of `keras.layers.RNN` is accepted,
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
        """Set the states of a stateful layer back to the cell's initial state.

        That is the cell's `get_initial_state`: zeros, or the learned `h_0`
        of a cell built with `trainable_initial_state=True`, read now, so a
        reset after training (or after `set_weights`) starts from the
        values learned. keras.layers.RNN assigns zeros, and assumes a flat
        list of states, where stacked and depth-gated cells keep one list
        per level.

        A stateful layer reads `h_0` only here and when its states are
        made: the states then carry from batch to batch as variables, so
        no gradient reaches `h_0` through them, and training a stateful
        layer leaves a learned `h_0` where it was.
        """
        if self.states is None:
            return
        flat = tree.flatten(self.states)
        initial = tree.flatten(self.get_initial_state(int(flat[0].shape[0])))
        for variable, value in zip(flat, initial):
            variable.assign(ops.cast(value, variable.dtype))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        # Once per sequence, outside the loop: a wrong `initial_state` named
        # here, not as an error of the traced loop.
        _checks.states(f"{type(self.cell).__name__} '{self.cell.name}' (the cell of {self.name})",
                       initial_state, self.cell.state_size, sequences.shape[0])
        if not _splits_step(self.cell, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        projected = self.cell.project_inputs(sequences, training=training)

        def step(projected_t, states):
            if keras.backend.backend() == "torch" and self.stateful:
                # As in keras.layers.RNN: stateful torch states must not be
                # modified in place while autograd still needs them.
                states = tree.map_structure(ops.copy, states)
            return self.cell.recurrent_step(projected_t, states, training=training)

        if keras.backend.backend() == "torch" and not self.unroll:
            whole = self._traced_steps.sequence(self.cell, projected, initial_state, mask, training,
                                                self.go_backwards)
            if whole is not None:
                outputs, states = whole
                last = outputs[:, -1]
                return last, outputs if self.return_sequences else ops.expand_dims(last, 1), states
            step = self._traced_steps.step(step, self.cell, projected, initial_state, training) or step
            if mask is None:
                return self._python_loop(step, projected, initial_state)
        reads = contextlib.nullcontext()
        if READ_WEIGHTS_ONCE and not self.unroll and _one_dtype(self) and _compiling_with_xla():
            reads = _WeightsReadOnce(self.cell.trainable_weights)
        with reads:
            return backend_rnn(
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

    @property
    def _traced_steps(self):
        # Built on first use, not in __init__, so the layer's config and
        # saved files stay those of keras.layers.RNN.
        if "_traced_step_cache" not in self.__dict__:
            object.__setattr__(self, "_traced_step_cache", _TracedSteps())
        return self.__dict__["_traced_step_cache"]

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


def _splits_step(cell, training):
    """Whether `cell` runs as `project_inputs` over the whole sequence and
    `recurrent_step` per step. A container that steps whole cells
    (`StackedCells`) says so itself (`splits_step`): it splits only where a
    level draws at every step, to make those draws before the loop."""
    splits = getattr(cell, "splits_step", None)
    if splits is not None:
        return splits(training)
    return hasattr(cell, "project_inputs")


def _one_dtype(layer):
    """Whether `layer` and its cell compute in their variables' dtype, the
    same for both: no autocasting, where reading once is known exact. Under
    mixed precision a `float32` cell's numbers came out different from a
    read at every step, so there the loop reads as Keras's does."""
    policies = (layer.dtype_policy, layer.cell.dtype_policy)
    return len({dtype for p in policies for dtype in (p.compute_dtype, p.variable_dtype)}) == 1


def _compiling_with_xla():
    """Whether this is TensorFlow tracing a function that XLA compiles."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return tf.__internal__.get_enclosing_xla_context() is not None


class _WeightsReadOnce(keras.StatelessScope):
    """Reads `weights` once, on entry; inside, each reads as that tensor.

    TensorFlow's `while_loop` differentiates its body by stacking, step by
    step, every tensor of the body that the gradient needs and that is not
    one of the loop's own inputs passed through. A variable read in the
    body is a new tensor at every step, so the gradient of
    `h @ recurrent_kernel` kept one copy of the kernel per frame (64
    copies of a 128 x 256 kernel at the paper's sizes, under XLA too),
    where a tensor read before the loop is passed through and kept once.
    Same values, same gradients: only where the read happens moves. Used
    under XLA only: without XLA, reading once measured no faster
    (DT(S)-RNN at 256 units: slower; `benchmarks/README.md`).

    `DeepRNN` passes the cell's trainable weights, which nothing assigns in
    a forward pass (a variable read and assigned inside the loop must be
    read at every step). Only the reads change: a variable assigned inside
    (none of the library's cells does; their random draws are made before
    the loop) is assigned as it would be outside, or recorded in an
    enclosing `StatelessScope` (`stateless_call`), as are losses that scope
    collects.
    """

    def __init__(self, weights):
        self.outer = get_stateless_scope()
        # `value` is an enclosing scope's tensor if it maps the variable,
        # else the variable itself on TensorFlow: `copy` reads it, here.
        super().__init__(state_mapping=[(v, ops.copy(v.value)) for v in weights],
                         collect_losses=bool(self.outer and self.outer.collect_losses),
                         initialize_variables=False)

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
        if value is None and self.outer is not None:
            return self.outer.get_current_value(variable)
        return value

    def add_update(self, update):
        if self.outer is not None:
            self.outer.add_update(update)
        else:
            variable, value = update
            variable._direct_assign(value)

    def add_loss(self, loss):
        self.outer.add_loss(loss)


class _CarriedState:
    """Holds a stateful RNN state where Keras looks for seed-generator states."""

    def __init__(self, state):
        self.state = state


_NOT_TRACED = object()


class _TracedSteps:
    """The torch step of a `DeepRNN`, captured once per call signature.

    On torch every `keras.ops` call converts and type-checks its arguments
    in Python before a kernel runs, and a step of a deep cell makes dozens
    of such calls, once per frame. So the step (`cell.recurrent_step`, the
    one copy of the equations) runs once under `torch.fx`'s tracer, which
    records the aten operations it dispatches, and the recording is
    replayed at every step:

    ```python
    graph(projected_t, *states, *variables, *draws) -> (output, *new_states)
    ```

    Everything the step reads is an input of the graph: the states, the
    cell's variables (substituted through `keras.StatelessScope`) and the
    per-sequence draws (dropout masks, weight noise, DropConnect masks:
    every tensor, or dict of tensors, held by the cell, its sublayers and
    their helper objects, all drawn before the loop). So one graph serves
    every batch with new weights and new masks, and autograd records the
    replayed operations as it records the step's own. The tracer runs on
    fake tensors: a step that reads a tensor not among those inputs, or
    branches in Python on tensor values, fails to trace, and a step that
    draws random numbers is refused; the plain step then runs instead, for
    that signature, for good.
    """

    def __init__(self):
        self.graphs = {}

    def sequence(self, cell, projected, initial_state, mask, training, go_backwards):
        """`(outputs, last states)` of a whole sequence from the first of
        `SEQUENCE_ROUTES` that computes what the cell's step computes, or None."""
        import torch

        if (not WHOLE_SEQUENCE or projected.device.type == "meta" or torch.compiler.is_compiling()
                # Every state a tensor of the sequence's dtype.
                or any(getattr(s, "dtype", None) != projected.dtype for s in tree.flatten(initial_state))):
            return None
        # A route for one state takes it as a tensor, not a level's list of states.
        single = len(initial_state) == 1 and not tree.is_nested(initial_state[0])
        for applies, sequence, nested in SEQUENCE_ROUTES:
            if (nested or single) and applies(cell, training, mask, projected.dtype):
                # Listed with the traced steps: a fast path that ran, not the plain step.
                self.graphs.setdefault(("sequence", bool(training), _spec(projected[:, 0])), "sequence")
                if nested:
                    return sequence(cell, projected, initial_state, training, go_backwards)
                states = sequence(cell, projected, initial_state[0], training, go_backwards)
                return states, [states[:, -1]]
        return None

    def step(self, step, cell, projected, initial_state, training):
        """A drop-in replacement for `step`, or None where tracing does not apply."""
        import torch

        if projected.device.type == "meta" or torch.compiler.is_compiling():
            return None  # symbolic shape inference, or inside torch.compile
        flat_states = _flatten(initial_state)
        if len(flat_states) != len(tree.flatten(initial_state)):
            return None  # states in dicts or other containers
        draws = _sequence_draws(cell)
        signature = (
            bool(training),
            _spec(projected[:, 0]),
            tuple(_spec(s) for s in flat_states),
            tuple((id(holder), name, tuple(keys), tuple(_spec(t) for t in leaves))
                  for holder, name, keys, leaves in draws),
        )
        entry = self.graphs.get(signature, _NOT_TRACED)
        if entry is _NOT_TRACED:
            entry = self.graphs[signature] = _trace(step, cell, projected[:, 0], initial_state, draws)
        if entry is None:
            return None
        graph, variables, structure, writes = entry
        inputs = [v.value for v in variables] + [t for *_, leaves in draws for t in leaves]
        for holder, name, key, index in writes:
            # What the step records (the draws it used), as the plain step would.
            holder.__dict__[name][key] = inputs[index]

        def traced(projected_t, states):
            flat = graph(projected_t, *_flatten(states), *inputs)
            return flat[0], _pack(structure, iter(flat[1:]))

        return traced


def _spec(tensor):
    return tuple(tensor.shape), str(tensor.dtype), str(tensor.device)


# keras.tree on torch goes through torch's pytree, tens of microseconds per
# call, at every step; a recurrent state is lists and tuples of tensors.
def _flatten(states):
    if isinstance(states, (list, tuple)):
        return [t for s in states for t in _flatten(s)]
    return [states]


def _pack(structure, flat):
    if isinstance(structure, (list, tuple)):
        return [_pack(s, flat) for s in structure]
    return next(flat)


def _holders(cell):
    """The cell, its sublayers, and the library's helper objects they hold
    (such as the cache of a cell's random draws)."""
    for layer in cell._flatten_layers(include_self=True, recursive=True):
        yield layer
        for value in list(vars(layer).values()):
            if (type(value).__module__.startswith("keras_deeprnn.") and hasattr(value, "__dict__")
                    and not isinstance(value, (keras.layers.Layer, keras.Variable))):
                yield value


def _sequence_draws(cell):
    """`(holder, attribute, keys, leaves)` for every tensor attribute
    (`keys` None) and every dict of tensors (possibly empty) that the cell
    and what it holds keep: the draws made once per batch of sequences."""
    import torch

    def is_tensor(t):
        return isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter)

    found = []
    for holder in _holders(cell):
        for name, value in sorted(vars(holder).items()):
            if is_tensor(value):
                found.append((holder, name, None, [value]))
            elif type(value) is dict and all(is_tensor(t) for t in value.values()):
                keys = sorted(value)
                found.append((holder, name, keys, [value[k] for k in keys]))
    return found


def _trace(step, cell, projected_t, initial_state, draws):
    """`(graph, variables, state structure, writes)` of `step`, or None."""
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx

    variables = list(cell.variables)
    flat_states = _flatten(initial_state)
    n_states, n_variables = len(flat_states), len(variables)
    found = {}

    def replayable(projected_t, *tensors):
        states = _pack(initial_state, iter(tensors[:n_states]))
        extras = tensors[n_states:]
        index = {id(t): i for i, t in enumerate(extras)}
        drawn, stand_ins = iter(extras[n_variables:]), []
        saved = [(holder, name, holder.__dict__[name]) for holder, name, _, _ in draws]
        try:
            for holder, name, keys, leaves in draws:
                # Bypasses Layer.__setattr__: a swap for the trace, not new state.
                values = [next(drawn) for _ in leaves]
                stand_in = values[0] if keys is None else dict(zip(keys, values))
                holder.__dict__[name] = stand_in
                stand_ins.append((holder, name, keys, stand_in, dict(stand_in) if keys is not None else None))
            with keras.StatelessScope(state_mapping=list(zip(variables, extras[:n_variables]))):
                output, new_states = step(projected_t, states)
        finally:
            for holder, name, value in saved:
                holder.__dict__[name] = value
        # Draws the step records in a dict (`last_draws`): replayed per call.
        found["writes"] = [
            (holder, name, key, index.get(id(value)))
            for holder, name, keys, stand_in, before in stand_ins if keys is not None
            for key, value in stand_in.items() if before.get(key) is not value
        ]
        found["structure"] = new_states
        return [output, *_flatten(new_states)]

    inputs = [projected_t, *flat_states, *(v.value for v in variables)]
    inputs += [t for *_, leaves in draws for t in leaves]
    try:
        with torch.no_grad():
            graph = make_fx(replayable, tracing_mode="fake")(*inputs)
    except Exception:  # noqa: BLE001 -- a step the tracer cannot follow runs plainly
        return None
    if any(index is None for *_, index in found["writes"]):
        return None  # the step records a tensor it computed itself
    for node in graph.graph.nodes:
        if torch.Tag.nondeterministic_seeded in getattr(node.target, "tags", ()):
            return None  # a draw inside the step: a replay would repeat it unseeded
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return graph.forward, variables, found["structure"], found["writes"]
