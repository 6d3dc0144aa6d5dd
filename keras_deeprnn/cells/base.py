"""What every keras-deeprnn cell shares: the base class `DeepCell`, per-sequence
dropout and state plumbing.

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

import functools
import inspect

import keras
from keras import ops

from keras_deeprnn import _checks
# keras.layers.RNN primes and resets dropout masks only for instances of this
# class, which has no public path; nor have Keras's autocast scopes.
from keras_deeprnn._keras_private import AutocastScope
from keras_deeprnn._keras_private import DropoutRNNCell
from keras_deeprnn._keras_private import get_autocast_scope
from keras_deeprnn.layers.regularization import RandomDraws
from keras_deeprnn.cells import weight_arguments
from keras_deeprnn.layers.regularization import WeightNoise


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
    return ops.shape(keras.tree.flatten(tensors)[0])[0]


def check_states_once(cell, inputs, states):
    """Refuse, on a cell's first call, states not shaped as its `state_size`.

    keras.layers.RNN calls a cell at every time step (in Python, on torch),
    so the structure is checked on the first call only; `DeepRNN` checks
    its initial states once per sequence. A wrong structure would otherwise
    surface as an index or broadcasting error deep in the step, or not at
    all (an extra state is ignored).
    """
    if cell.__dict__.get("_states_checked"):
        return
    rows = getattr(inputs, "shape", (None,))[0]
    _checks.states(f"{type(cell).__name__} '{cell.name}'", states, cell.state_size,
                   None if rows is None else rows)
    cell._states_checked = True


def zero_state(cell, batch_size, dtype):
    """Initial state of any cell, as the flat-or-nested list Keras expects."""
    fn = getattr(cell, "get_initial_state", None)
    if fn is not None:
        return as_list(fn(batch_size=batch_size))
    return [ops.zeros((batch_size, d), dtype=dtype) for d in as_list(cell.state_size)]


def step_draw_width(cell, training):
    """How many numbers a step of `cell` draws at random that a container
    makes before its time loop (`make_step_draws`); 0 for a cell without."""
    width = getattr(cell, "step_draw_width", None)
    return width(training) if width is not None else 0


def prime_dropout_masks(cell, batch_size, input_dim):
    """Make a cell's per-sequence dropout masks now, outside any traced loop."""
    if hasattr(cell, "prime_dropout_masks"):
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
        "weight_noise": _checks.non_negative_finite("weight_noise", weight_noise),
        "recurrent_weight_dropout": _checks.rate("recurrent_weight_dropout", recurrent_weight_dropout),
    }


class CellRegularization(WeightNoise, DropoutRNNCell):
    """Variational dropout, weight noise and DropConnect of a cell, drawn once
    per batch of sequences (the same masks at every step).

    ```python
    x_dropped = x * draws["dropout"][:, start : start + width]            # input
    h_dropped = h_prev * draws["recurrent_dropout"][:, start : start + width]
    W_seen = (W + draws["weight_noise/W"]) * draws["recurrent_weight_dropout/W"]
    ```

    The input mask is `input_dropout_width` wide (the input features; cells
    with levels append the dropout between levels), the recurrent mask
    `recurrent_dropout_width` (the state; one slice per level). Every draw
    goes through `RandomDraws`, so `last_draws` and `fix_draws` read and
    fix them by the keys above.
    """

    dropout = 0.0
    recurrent_dropout = 0.0

    @property
    def input_dropout_width(self):
        return self._input_dim

    @property
    def recurrent_dropout_width(self):
        return first_state_size(self)

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

    def _sequence_mask(self, batch_size, width, rate):
        ones = ops.ones((batch_size, width), dtype=self.compute_dtype)
        return keras.random.dropout(ones, rate=rate, seed=self.seed_generator)

    def get_dropout_mask(self, step_input):
        self.make_weight_draws()
        if self.dropout == 0:
            return None
        return self.make_draw("dropout", lambda: self._sequence_mask(
            batch_size_of(step_input), self.input_dropout_width, self.dropout))

    def get_recurrent_dropout_mask(self, step_input):
        if self.recurrent_dropout == 0:
            return None
        return self.make_draw("recurrent_dropout", lambda: self._sequence_mask(
            batch_size_of(step_input), self.recurrent_dropout_width, self.recurrent_dropout))

    def reset_dropout_mask(self):
        self.forget_draws()

    def reset_recurrent_dropout_mask(self):
        self.forget_draws("recurrent_dropout")

    def prime_dropout_masks(self, batch_size):
        probe = ops.zeros((batch_size, 1), dtype=self.compute_dtype)
        self.get_dropout_mask(probe)
        self.get_recurrent_dropout_mask(probe)

    def apply_input_dropout(self, inputs, training, start=0):
        """Drop input features with the sequence's mask; rank 2 or 3 inputs.

        `start` picks the slice of the mask, for the dropout between levels."""
        if not training or self.dropout == 0:
            return inputs
        self.get_dropout_mask(inputs)
        mask = self.cached_draw("dropout")
        mask = mask[:, start : start + inputs.shape[-1]]
        if len(inputs.shape) == 3:
            mask = ops.expand_dims(mask, 1)
        return inputs * mask

    def apply_recurrent_dropout(self, state, training, start=0):
        if not training or self.recurrent_dropout == 0:
            return state
        self.get_recurrent_dropout_mask(state)
        mask = self.cached_draw("recurrent_dropout")
        return state * mask[:, start : start + state.shape[-1]]


def _constructor_arguments(cls):
    """The names `cls(...)` takes: its `__init__`'s, and through `**kwargs`
    those of the classes above it, down to `DeepCell`."""
    names = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(vars(klass)["__init__"]).parameters.values())[1:]
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names:
                names.append(p.name)
        if klass is DeepCell or not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def _serialize(value):
    if isinstance(value, (list, tuple)):
        return [_serialize(v) for v in value]
    if isinstance(value, keras.initializers.Initializer):
        return keras.initializers.serialize(value)
    if isinstance(value, keras.regularizers.Regularizer):
        return keras.regularizers.serialize(value)
    if isinstance(value, keras.constraints.Constraint):
        return keras.constraints.serialize(value)
    if isinstance(value, keras.layers.Layer):
        return keras.saving.serialize_keras_object(value)
    if callable(value):
        return keras.activations.serialize(value)
    return value


def _checked_build(build):
    """A cell's `build`, with the base class's work around it: the feature
    check before, the learned `h_0` after (unless the cell made it itself)."""

    @functools.wraps(build)
    def wrapper(self, input_shape):
        if getattr(self, "_in_build", False):  # a subclass's build calling super().build
            return build(self, input_shape)
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known feature size (the last axis of its "
                f"input). Received: input_shape={tuple(input_shape)}"
            )
        self._input_dim = int(input_dim)
        self._in_build = True
        try:
            build(self, input_shape)
        finally:
            self._in_build = False
        if self.trainable_initial_state and getattr(self, "initial_state", None) is None:
            self.add_initial_state_weight()

    return wrapper


def _as_layer_call(method, cast_inputs):
    """A step method, run in the cell's dtype as `Layer.__call__` runs `call`.

    `DeepRNN` calls `project_inputs` and `recurrent_step` directly, inside
    the RNN layer's autocast scope and on tensors of the RNN layer's dtype,
    neither of which need be the cell's (a `float16` or `mixed_float16` RNN
    around a `float32` cell): the inputs are cast to the cell's compute
    dtype and its variables read in that dtype, as a call would.
    """

    @functools.wraps(method)
    def wrapper(self, inputs, *args, **kwargs):
        dtype = self.compute_dtype
        if cast_inputs and keras.backend.standardize_dtype(inputs.dtype) != dtype:
            inputs = ops.cast(inputs, dtype)
        scope = get_autocast_scope()
        if (scope.dtype == dtype) if scope is not None else (dtype == self.variable_dtype):
            return method(self, inputs, *args, **kwargs)
        with AutocastScope(dtype):
            return method(self, inputs, *args, **kwargs)

    return wrapper


class DeepCell(weight_arguments.WeightArguments, CellRegularization, keras.layers.Layer):
    """Base class of a keras-deeprnn cell: a subclass writes the equations only.

    A cell splits its step into what reads only the input and what reads
    the state, and writes four members:

    ```python
    class MyCell(DeepCell):
        def __init__(self, units, my_option=1.0, **kwargs):   # validate, then store
            super().__init__(units, **kwargs)
            self.my_option = my_option
        def build(self, input_shape):             # add_weight(...) with fixed names
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    name="recurrent_kernel")
        def project_inputs(self, inputs, training=False):    # x_t only, any rank
            x = self.apply_input_dropout(inputs, training)
            return ops.matmul(x, self.noisy(self.kernel, training))
        def recurrent_step(self, projected, states, training=False):
            h_prev = self.apply_recurrent_dropout(states[0], training)
            h = ops.tanh(projected + ops.matmul(h_prev, self.noisy(self.recurrent_kernel, training)))
            return h, [h]
    ```

    The base class supplies the rest of the Keras cell contract:

    - `call(inputs, states, training)` = `recurrent_step(project_inputs(inputs))`;
      `keras_deeprnn.layers.DeepRNN` runs `project_inputs` on the whole
      sequence at once instead; both run in the cell's compute dtype, as
      a call would, whatever the RNN layer's dtype.
    - `state_size = output_size = units` (one state `h`; a cell with more
      sets `state_size` in its constructor) and `get_initial_state`: zeros
      of every state, the first starting at the learned vector
      `initial_state` when `trainable_initial_state=True`.
    - In `build`: a clear error when the feature size is unknown,
      `self._input_dim`, and the `initial_state` weight after the cell's own.
    - `get_config` from the constructor's arguments (the cell's, and through
      `**kwargs` its parents'), each read back from the attribute of the
      same name; activations, initializers and layers are serialised.
    - Regularisation in training (`CellRegularization`): variational input
      and recurrent dropout (`apply_input_dropout`, `apply_recurrent_dropout`),
      weight noise on every `*kernel*` variable and DropConnect on every
      `recurrent_kernel*` variable (`noisy`), all one draw per batch of
      sequences, readable through `last_draws` and fixable through
      `fix_draws` (keys `dropout`, `recurrent_dropout`,
      `weight_noise/<name>`, `recurrent_weight_dropout/<name>`).
    - Keras's weight penalties and projections (`add_weight`): a weight
      named `recurrent_kernel*` takes `recurrent_regularizer` and
      `recurrent_constraint`, any other `*kernel*` (`input_kernel`,
      `kernel_{l}`, `transition_kernel_{i}`) `kernel_regularizer` and
      `kernel_constraint`, a `bias*` or `*_bias_{i}` `bias_regularizer`
      and `bias_constraint` (`cells.weight_arguments`); peepholes, layer-norm
      gains and the learned `h_0` take none. The penalties are in
      `layer.losses` (and a model's), the projections run after each
      optimizer step, as for `keras.layers.LSTMCell`.

    A cell takes no `activity_regularizer`: it runs inside the time loop,
    where no loss can be added; give it to the sequence layer
    (`keras.layers.RNN` or `DeepRNN`), which regularises the output.

    Args:
        units: width of the state `h`.
        use_bias: whether the cell's layers have biases.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras
            initializers of the input and feed-forward kernels, the
            recurrent kernels and the biases (a subclass uses them in
            `build`).
        dropout, recurrent_dropout: per-sequence dropout rates on the input
            and on the state read by the step.
        weight_noise: std of Gaussian noise added to every kernel in training.
        recurrent_weight_dropout: DropConnect rate on the recurrent kernels.
        trainable_initial_state: learn `h_0` instead of starting from zeros.
        seed: seed of every random draw of the cell.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Keras
            regularizers (`"l2"`, `keras.regularizers.L2(1e-4)`, ...) of the
            input and feed-forward kernels, the recurrent kernels and the
            biases.
        kernel_constraint, recurrent_constraint, bias_constraint: Keras
            constraints (`"max_norm"`, `keras.constraints.MaxNorm(3)`, ...)
            of the same weights.

    Example:

    ```python
    cell = DeepTransitionCell(32, kernel_regularizer=keras.regularizers.L2(1e-4),
                              recurrent_constraint="max_norm")
    model = keras.Sequential([keras.Input((None, 8)), keras.layers.RNN(cell)])
    model.losses   # one L2 penalty per input and transition kernel
    ```
    """

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout=0.0,
        recurrent_dropout=0.0,
        weight_noise=0.0,
        recurrent_weight_dropout=0.0,
        trainable_initial_state=False,
        seed=None,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        units = _checks.positive_int("units", units)
        seed = _checks.seed("seed", seed)
        use_bias = _checks.boolean("use_bias", use_bias)
        trainable_initial_state = _checks.boolean("trainable_initial_state", trainable_initial_state)
        initializers = {
            name: _checks.keras_object(name, value, keras.initializers.get)
            for name, value in (("kernel_initializer", kernel_initializer),
                                ("recurrent_initializer", recurrent_initializer),
                                ("bias_initializer", bias_initializer))
        }
        regularization = check_regularization(
            dropout, recurrent_dropout, weight_noise, recurrent_weight_dropout
        )
        keras_arguments = weight_arguments.checked(type(self).__name__, {
            "kernel_regularizer": kernel_regularizer, "recurrent_regularizer": recurrent_regularizer,
            "bias_regularizer": bias_regularizer, "kernel_constraint": kernel_constraint,
            "recurrent_constraint": recurrent_constraint, "bias_constraint": bias_constraint,
        }, kwargs)
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias
        for name, value in initializers.items():
            setattr(self, name, value)
        for key, value in {**regularization, **keras_arguments}.items():
            setattr(self, key, value)
        self.trainable_initial_state = trainable_initial_state
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.initial_state = None
        self.state_size = units
        self.output_size = units

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in vars(cls):
            cls.build = _checked_build(vars(cls)["build"])
        if "project_inputs" in vars(cls):
            cls.project_inputs = _as_layer_call(vars(cls)["project_inputs"], cast_inputs=True)
        if "recurrent_step" in vars(cls):
            cls.recurrent_step = _as_layer_call(vars(cls)["recurrent_step"], cast_inputs=False)

    def project_inputs(self, inputs, training=False):
        """Everything of a step that reads only `x_t` (any leading axes)."""
        raise NotImplementedError(f"{type(self).__name__} must define `project_inputs`.")

    def recurrent_step(self, projected, states, training=False):
        """The rest of the step: `(output, new_states)` from `project_inputs`' result."""
        raise NotImplementedError(f"{type(self).__name__} must define `recurrent_step`.")

    def call(self, inputs, states, training=False):
        if not isinstance(states, (list, tuple)):
            states = [states]  # one state alone, as Keras's own cells take it
        check_states_once(self, inputs, states)
        return self.recurrent_step(self.project_inputs(inputs, training), states, training)

    def get_initial_state(self, batch_size=None):
        def zeros(size):
            if isinstance(size, (list, tuple)):  # plain lists: JAX refuses Keras's tracked ones
                return [zeros(s) for s in size]
            return ops.zeros((batch_size, size), dtype=self.compute_dtype)

        states = zeros(as_list(self.state_size))
        if self.trainable_initial_state:
            first = states
            while isinstance(first[0], list):
                first = first[0]
            first[0] = self.initial_h(batch_size)
        return states

    def get_config(self):
        config = {name: _serialize(getattr(self, name)) for name in _constructor_arguments(type(self))}
        return {**super().get_config(), **config}
