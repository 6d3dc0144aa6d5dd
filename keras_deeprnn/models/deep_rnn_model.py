"""`DeepRNNModel` and `build_model`: any architecture of the table as a Keras model."""

import contextlib
import dataclasses
import functools
import inspect
import types

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.initializers import SparseInitializer
from keras_deeprnn.layers import DeepInput
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.models import _torch_step
from keras_deeprnn.models.dtype_policy import dtype_policy_scope
from keras_deeprnn.models import hub
from keras_deeprnn.models import options as options_lib
from keras_deeprnn.models import presets

OPTIONS = options_lib.OPTIONS


def _entry_point(run):
    """`run` (a `keras.Model` method that takes data) with the data checked
    first, and the model left usable on JAX if it fails (`_reattached_on_error`)."""

    @functools.wraps(run)
    def entry_point(self, x=None, *args, **kwargs):
        self._check_data(x)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (list, tuple)) and validation:
            self._check_data(validation[0], name="validation_data")
        elif validation is not None:
            self._check_data(validation, name="validation_data")
        with _reattached_on_error(self):
            return run(self, x, *args, **kwargs)

    return entry_point


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepRNNModel(hub.PresetsMixin, _torch_step.TorchStepMixin, keras.Model):
    """A deep RNN of any architecture in `keras_deeprnn.ARCHITECTURES`.

    ```python
    x = inputs                                   # (batch, time, input_dim) or token ids
    x = embedding(x) if vocab_size else x
    x = DeepInput(x)                             # if num_input_layers > 0: g(x_t)
    for level in range(num_layers):              # sRNN levels (1 for DT/DO models)
        h = RNN(cell)(level_input)               # ⊕: transition, GRU, LSTM or DG-LSTM
        level_input = concat([x, h]) if skip_connections else h
    top = concat(all h) if skip_connections else h
    y = DeepOutput(top)                          # ▷: K intermediate layers, then psi_0
    ```

    Every recurrent level is a `keras_deeprnn.layers.DeepRNN`, which computes
    the input projections of the whole sequence outside the time loop;
    `deep_gru`/`deep_lstm` use Keras's own (fused) GRU and LSTM layers
    (`FusedGRU`, `FusedLSTM`: Keras's, with PyTorch's fused kernels on the CPU too). The
    deep input and deep output run on the whole sequence, outside the loop.
    With `bidirectional=True` each level runs forwards and backwards and the
    next level reads both (the deep bidirectional RNN of Dive into Deep
    Learning; for `dg_lstm` and `gf_rnn`, whose levels share one cell, the
    two directions are two whole stacks).

    Args:
        architecture: a name from `keras_deeprnn.ARCHITECTURES`.
        input_dim: features per time step (dense inputs); or
        vocab_size, embedding_dim: token-id inputs through an `Embedding`.
        output_dim: width of the output (`None`: return the top states).
        units: width of every recurrent state, or a list with one width per
            stacked level.
        depth arguments: `num_input_layers`, `num_transition_layers`,
            `shortcut`, `num_output_layers`, `num_layers`, `skip_connections`,
            `residual_connections` (residual: a level adds the level below to
            its output where the widths agree, as Sonnet's residual stacking);
            `None` takes the architecture's default, and an architecture's
            defining values cannot be changed (see `Architecture.fixed`).
        input_units, transition_units, output_units: widths of the
            intermediate layers of g, ⊕ and ▷ (default `units`).
        activation: `φ_h` (not on `deep_gru`, `deep_lstm`, `dg_lstm`, whose
            cells keep tanh); transition_activation: `φ_l` (intermediate);
            both Keras activations, applied unit by unit.
        input_activation, output_hidden_activation: hidden units of g and ▷
            (`"maxout"` and `"lp"` allowed, with `pieces`).
        output_activation: `ψ_0` (`"sigmoid"` for notes, `"softmax"` for words).
        dropout, recurrent_dropout: per-sequence dropout on each level's input
            and state (a number, or a list with one per level; `gf_rnn` and
            `dg_lstm`, whose levels share one cell, take one rate, so a list
            must repeat it); output_dropout: dropout on the intermediate
            layers of ▷.
        recurrent_weight_dropout: DropConnect on the recurrent kernels (the
            weight drop of AWD-LSTM), one mask per batch of sequences.
        layer_norm: layer normalisation inside every transition layer
            (transition architectures).
        trainable_initial_state: learn each level's initial state `h_0`
            (all but `deep_gru`/`deep_lstm`).
        zoneout: zoneout rate on every state of every level (a number, or a
            list with one per recurrent layer, so one for `gf_rnn`/`dg_lstm`;
            Krueger et al. 2017): in training each
            unit keeps its previous value with this probability at each step.
            For `deep_gru`/`deep_lstm` it runs Keras's GRU/LSTM cells in a
            `DeepRNN` instead of the fused layers.
        state_resets: the model takes a second input, `resets` of shape
            `(batch, time)`: 1 where a new sequence starts in that row, whose
            states then return to their initial value (packed streams of
            several sequences per row). Not with `bidirectional`.
        weight_noise: std of Gaussian noise on every kernel in training (the
            authors' code: 0.075); not for `deep_gru`/`deep_lstm`, whose
            Keras layers have no such option.
        kernel_initializer, recurrent_initializer: of every recurrent level;
            `"sparse"` (or `keras_deeprnn.initializers.SparseInitializer()`,
            to choose its arguments) is the paper's sparse initialisation.
        *_regularizer, *_constraint: Keras's (also `"l2:1e-4"`, `"max_norm:3"`), of
            every such weight of the cells, g and ▷; activity: each recurrent layer's.
        dtype: a Keras dtype policy for every layer (`"mixed_float16"`,
            `"mixed_bfloat16"`, ...; default the global one), kept in the
            config so a saved model loads with it.
        bidirectional: deep bidirectional RNN.
        return_sequences, stateful, batch_size, unroll: as in
            `keras.layers.RNN` (`stateful` needs `batch_size`).
        masking: skip padded steps (`mask_value` for dense inputs, id 0 for
            tokens).
        seed: seed of every dropout mask.

    Example:

    ```python
    model = build_model("dots_rnn", input_dim=88, output_dim=88, units=256,
                        output_activation="sigmoid")
    model.compile()          # Adam, gradient-norm clipping at 1, the task's loss
    model.fit(x, y, epochs=1)
    model.save("m.keras")    # ".h5" is refused; by keras.saving.save_model too, but
                             # only after Keras has created the file (an empty one)
    ```

    Reference: Pascanu et al., *How to Construct Deep Recurrent Neural
    Networks*, ICLR 2014.
    """

    def __init__(self, architecture="rnn", **kwargs):
        arguments = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTIONS}
        _check_keras_arguments(kwargs)
        plan = _plan(architecture, arguments)
        policy = _dtype_policy(kwargs.get("dtype"))
        # Layers take the policy in force when they are made.
        with dtype_policy_scope(policy):
            inputs, features, reset_flags = _inputs(plan)
            features = _deep_input(plan, features)
            top = _recurrent_levels(plan, features, reset_flags)
            outputs = _deep_output(plan, top)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.architecture = architecture
        self.depth = plan.depth
        self._config = {"architecture": architecture, **{
            name: _serializable(value) for name, value in plan.given.items()}}
        if policy is not None:
            given = kwargs["dtype"]
            self._config["dtype"] = (given if isinstance(given, str)
                                     else keras.dtype_policies.serialize(policy))

    def call(self, inputs, training=None, mask=None):
        self._check_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    # The entry points check array inputs before Keras traces a step: on JAX,
    # Keras 3.15 detaches the variables' values while fit/evaluate/predict
    # run, and an error raised inside the traced step left them detached, the
    # model broken for good ('NoneType' object is not callable).
    fit = _entry_point(keras.Model.fit)
    evaluate = _entry_point(keras.Model.evaluate)
    predict = _entry_point(keras.Model.predict)
    train_on_batch = _entry_point(keras.Model.train_on_batch)
    test_on_batch = _entry_point(keras.Model.test_on_batch)
    predict_on_batch = _entry_point(keras.Model.predict_on_batch)

    def _check_data(self, x, name="x"):
        """`_check_inputs` for arrays and tensors; datasets and generators are
        checked when traced (and `_reattached_on_error` keeps the model usable).

        A token model's ids are checked against `vocab_size` here, once per
        call and in NumPy, for NumPy arrays and for datasets that say which
        ids they hold (`token_id_range`, as `lm_batches` does): on JAX an id
        the embedding has no row for reads NaN, with no error."""
        vocab_size = self._config.get("vocab_size")
        id_range = getattr(x, "token_id_range", None)
        if vocab_size is not None and id_range is not None:
            _checks.token_ids(name, list(id_range), vocab_size)
        parts = list(x.values()) if isinstance(x, dict) else x
        parts = parts if isinstance(parts, (list, tuple)) else [parts]
        if parts and all(hasattr(p, "shape") and hasattr(p, "ndim") for p in parts):
            sequences = self._check_inputs(x)
            if vocab_size is not None and isinstance(sequences, np.ndarray):
                _checks.token_ids(name, sequences, vocab_size)

    def _check_inputs(self, inputs):
        """Check `inputs` against the model's input; returns their sequences."""
        if not self._config["state_resets"]:
            sequences = self._one_input(inputs)
            self._check_sequences(sequences)
            return sequences
        if isinstance(inputs, dict):
            pair = [inputs.get(k.name) for k in self.inputs]
        else:
            pair = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(pair) != 2 or any(p is None for p in pair):
            raise ValueError(
                f"{self.name} was built with `state_resets=True` and takes two inputs, "
                "[sequences, resets] with resets of shape (batch, time). "
                f"Received: {type(inputs).__name__}"
            )
        sequences, resets = pair
        self._check_sequences(sequences)
        if tuple(resets.shape)[:2] != tuple(sequences.shape)[:2] or len(resets.shape) != 2:
            raise ValueError(
                f"`resets` of {self.name} must have shape {tuple(sequences.shape)[:2]} "
                f"(batch, time), one flag per step. Received: shape={tuple(resets.shape)}"
            )
        return sequences

    def _one_input(self, inputs):
        """The sequences of a one-input model, in any form Keras takes them:
        the array, a list or tuple of one, or a dict keyed by the input's name."""
        name = self.inputs[0].name
        if isinstance(inputs, dict):
            if list(inputs) != [name]:
                raise ValueError(
                    f"{self.name} takes one input, '{name}'; as a dict it needs that key "
                    f"only. Received: a dict with keys {sorted(map(str, inputs))}; expected "
                    f"{{'{name}': sequences}} or the sequences themselves"
                )
            return inputs[name]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(
                    f"{self.name} takes one input, '{name}'. Received: a "
                    f"{type(inputs).__name__} of {len(inputs)}; expected the sequences, "
                    "or a list of one"
                )
            return inputs[0]
        return inputs

    def _check_sequences(self, inputs):
        expected = self._config["input_dim"]
        shape = tuple(inputs.shape)
        rank = 2 if expected is None else 3
        wanted = "(batch, time) token ids" if expected is None else f"(batch, time, {expected})"
        if len(shape) != rank or (expected is not None and shape[-1] not in (None, expected)):
            raise ValueError(
                f"`inputs` of {self.name} must have shape {wanted}. Received: shape={shape}"
            )
        if shape[1] == 0:
            raise ValueError(
                f"`inputs` of {self.name} must have at least one time step, shape {wanted} "
                f"with time >= 1. Received: shape={shape}"
            )

    def stateful_copy(self, batch_size=1, **overrides):
        """A stateful copy of this model with the same weights, fed a few steps
        at a time (generation, streaming); `overrides` change other arguments.

        ```python
        step_model = model.stateful_copy()
        for frame in frames:
            y = step_model(frame[None, None])     # state carries between calls
        ```

        Not for a `bidirectional` model: its backward pass reads each
        sequence from the end, which steps fed a few frames at a time
        cannot give.
        """
        if self._config.get("bidirectional"):
            raise ValueError(
                f"stateful_copy cannot step {self.name}: it is bidirectional, and its "
                "backward pass reads each sequence from its end, which a stateful copy "
                "fed a few steps at a time never sees. Received: bidirectional=True; "
                "expected a model built with bidirectional=False (run the whole "
                "sequence through the model instead)")
        config = {k: v for k, v in self._config.items()}
        config.update(stateful=True, batch_size=batch_size, return_sequences=True, **overrides)
        copy = DeepRNNModel(**config)
        # Stateful states are variables but not weights, so the lists match.
        copy.set_weights(self.get_weights())
        # The states were made from the copy's own initial weights: start
        # them again from the learned h_0 just copied in.
        for layer in copy._flatten_layers(include_self=False, recursive=True):
            if getattr(layer, "stateful", False) and isinstance(layer, keras.layers.RNN):
                layer.reset_state()
        return copy

    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        """Sensible defaults: Adam with gradient-norm clipping at 1 (the
        paper clips at 1) and the loss that matches `output_activation`."""
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)
        if loss is None:
            activation = self._config["output_activation"]
            loss = {
                "sigmoid": "binary_crossentropy",
                "softmax": "sparse_categorical_crossentropy",
            }.get(activation, "mse")
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a reloaded model whose `compile` is overridden;
        # ours only fills in defaults, so the saved arguments replay exactly.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def save(self, filepath, *args, **kwargs):
        hub.refuse_legacy_h5(filepath)
        return super().save(filepath, *args, **kwargs)

    def get_config(self):
        hub.refuse_legacy_h5_config()
        return {"name": self.name, "trainable": self.trainable, **self._config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# `DeepRNNModel(architecture, **options)`: the signature help() and IDEs show
# is the declared options', in declaration order.
DeepRNNModel.__init__.__signature__ = inspect.Signature([
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("architecture", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="rnn"),
    *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option.default)
      for name, option in OPTIONS.items()),
    inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
])


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The checked arguments of one model: what its construction reads."""

    architecture: presets.Architecture
    given: types.MappingProxyType  # every option, as given (the config)
    depth: dict  # the depth arguments, resolved for the architecture
    levels: dict  # per-level options: one value per recurrent layer
    initializers: dict  # the cells' initializers, "sparse" made a SparseInitializer

    def __getattr__(self, name):
        if name == "given":  # not set yet (a copy being made)
            raise AttributeError(name)
        try:
            return self.given[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def num_recurrent_layers(self):
        return self.architecture.num_recurrent_layers(self.depth)

    def cell_args(self, level):
        """The keyword arguments of this level's cell (see `CellFactory`)."""
        args = {name: self.given[name] for name in presets.CELL_ARGUMENTS}
        args.update(self.initializers)
        args.update(dropout=self.levels["dropout"][level],
                    recurrent_dropout=self.levels["recurrent_dropout"][level],
                    **options_lib.weight_arguments(self.given))
        for name in self.architecture.cell_factory.cell_options:
            # Only what is set, so a cell without such an argument still works.
            if OPTIONS[name].is_set(self.given[name]):
                args[name] = self.given[name]
        return args


def _plan(name, arguments):
    """Check every argument against the architecture and resolve its depth."""
    architecture = presets.get(name)
    given = {key: arguments.get(key, option.default) for key, option in OPTIONS.items()}
    depth = architecture.resolve(**{key: given[key] for key in presets.DEPTH_DEFAULTS})
    for key, value in depth.items():
        OPTIONS[key].check(key, value)
    counts = {"stack": depth["num_layers"],
              "layer": architecture.num_recurrent_layers(depth)}
    levels = {}
    for key, option in OPTIONS.items():
        if key in depth:
            continue
        if option.per_level is None:
            option.check(key, given[key])
        else:
            _check_one_layer_list(name, architecture, key, option, given[key])
            levels[key] = option.values(given[key], counts[option.per_level])
        if option.refused_elsewhere and option.is_set(given[key]) \
                and not architecture.supports(option):
            rows = [a.name for a in presets.ARCHITECTURES.values() if a.supports(option)]
            raise ValueError(
                f"`{key}` is not available for '{name}' (its {architecture.cell_factory.kind} "
                f"cells have no such option). Received: {key}={given[key]!r}; use the "
                f"default {option.default!r}, or one of: {', '.join(rows)}."
            )
    _check_together(name, given, depth, levels, counts["layer"])
    # "sparse" (the paper's initialisation, as the command line takes it)
    # stays in the config; the cells get the initializer. Unseeded, it draws
    # from NumPy's generator (`keras.utils.set_random_seed` seeds it), so
    # every level gets its own matrix.
    initializers = {key: SparseInitializer() if given[key] == "sparse" else given[key]
                    for key in ("kernel_initializer", "recurrent_initializer")}
    return _Plan(architecture, types.MappingProxyType(given), depth, levels, initializers)


def _check_one_layer_list(name, architecture, key, option, value):
    """A list of an option with one value per recurrent layer, on a row whose
    levels all step in one cell (one recurrent layer): it takes one value."""
    if option.per_level != "layer" or not architecture.cell_factory.levels_in_one_cell:
        return
    if isinstance(value, (list, tuple)) and len(value) != 1:
        raise ValueError(
            f"'{name}' steps all its levels in one cell, one recurrent layer, so `{key}` "
            f"is one rate for all of them: a number or a list of one. Received: "
            f"{key}={list(value)!r}"
        )


def _check_keras_arguments(kwargs):
    unknown = sorted(set(kwargs) - _KERAS_ARGUMENTS)
    if unknown:
        raise ValueError(
            f"Unknown argument `{unknown[0]}` of DeepRNNModel. Received: "
            f"{unknown[0]}={kwargs[unknown[0]]!r}; expected `architecture`, an option of "
            f"keras_deeprnn.models.OPTIONS ({', '.join(OPTIONS)}) or one of "
            f"{sorted(_KERAS_ARGUMENTS)}."
        )


# What `keras.Model` itself takes (and saved configs hold).
_KERAS_ARGUMENTS = frozenset({"name", "trainable", "dtype"})


def _check_together(name, given, depth, levels, num_recurrent_layers):
    """The checks that read more than one argument."""
    if (given["input_dim"] is None) == (given["vocab_size"] is None):
        raise ValueError(
            "Give exactly one of `input_dim` (features per step) and `vocab_size` "
            f"(token ids). Received: input_dim={given['input_dim']!r}, "
            f"vocab_size={given['vocab_size']!r}"
        )
    if given["state_resets"] and given["bidirectional"]:
        raise ValueError(
            "`state_resets=True` marks where sequences start in a forward stream; a "
            "backward pass would need where they end. Received: bidirectional=True"
        )
    if num_recurrent_layers == 1:
        # One cell steps every level: it takes one value of each per-level option.
        for key, option in OPTIONS.items():
            if option.per_level == "stack" and len(set(levels[key])) > 1:
                what = "one width" if key == "units" else f"one `{key}` rate"
                raise ValueError(
                    f"'{name}' steps all its levels in one cell and needs {what} "
                    f"for all of them. Received: {key}={given[key]!r}"
                )
    if given["stateful"] and given["batch_size"] is None:
        raise ValueError(
            "`stateful=True` needs a fixed `batch_size`. Received: batch_size=None"
        )
    if depth["skip_connections"] and not given["return_sequences"]:
        raise ValueError(
            "`skip_connections=True` reads every level at every step and needs "
            "`return_sequences=True`. Received: return_sequences=False"
        )


def _inputs(plan):
    """The model's inputs, their features (embedded or masked), and the reset flags."""
    batch_size = plan.batch_size
    if plan.vocab_size is not None:
        tokens = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="tokens")
        features = keras.layers.Embedding(
            plan.vocab_size, plan.embedding_dim or plan.levels["units"][0],
            mask_zero=plan.masking, name="embedding",
        )(tokens)
    else:
        tokens = features = keras.Input(batch_shape=(batch_size, None, plan.input_dim),
                                        name="frames")
        if plan.masking:
            features = keras.layers.Masking(plan.mask_value, name="masking")(features)
    if not plan.state_resets:
        return tokens, features, None
    resets = keras.Input(batch_shape=(batch_size, None), name="resets")
    reset_flags = keras.layers.Reshape((-1, 1), name="reset_flags")(resets)
    return [tokens, resets], features, reset_flags


def _noise(plan):
    # The MLPs take weight noise and Keras's weight arguments as the cells do.
    noise = {"weight_noise": plan.weight_noise} if plan.weight_noise else {}
    return {**noise, **options_lib.weight_arguments(plan.given, recurrent=False)}


def _deep_input(plan, features):
    """g(x_t): `num_input_layers` layers on every step, outside the loop."""
    if not plan.depth["num_input_layers"]:
        return features
    return DeepInput(
        plan.input_units or plan.levels["units"][0], num_layers=plan.depth["num_input_layers"],
        activation=plan.input_activation, pieces=plan.pieces, seed=plan.seed,
        name="deep_input", **_noise(plan),
    )(features)


def _recurrent_levels(plan, features, reset_flags):
    """The recurrent layers, level by level; returns what the output reads."""
    factory, depth = plan.architecture.cell_factory, plan.depth
    num_levels = plan.num_recurrent_layers
    levels, level_input = [], features
    for level in range(num_levels):
        last = level == num_levels - 1
        layer = factory.layer(
            plan.levels["units"][level], depth, plan.given, plan.cell_args(level),
            dict(stateful=plan.stateful, unroll=plan.unroll,
                 return_sequences=plan.return_sequences or not last,
                 **options_lib.weight_arguments(plan.given, activity=True)),
            name=f"level_{level}", zoneout=plan.levels["zoneout"][level],
            state_resets=plan.state_resets,
        )
        if plan.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{level}")
        if reset_flags is not None:
            level_input = keras.layers.Concatenate(name=f"with_resets_{level}")(
                [level_input, reset_flags])
        h = layer(level_input)
        if depth["residual_connections"] and levels and h.shape[-1] == levels[-1].shape[-1]:
            # Sonnet's residual stacking: a level adds its input (the level
            # below) where the widths agree.
            h = keras.layers.Add(name=f"residual_{level}")([levels[-1], h])
        levels.append(h)
        level_input = h
        if depth["skip_connections"]:
            level_input = keras.layers.Concatenate(name=f"skip_{level}")([features, h])
    if depth["skip_connections"] and len(levels) > 1:
        return keras.layers.Concatenate(name="all_levels")(levels)
    return levels[-1]


def _deep_output(plan, top):
    """▷: `num_output_layers` intermediate layers, then ψ_0 (none without `output_dim`)."""
    if plan.output_dim is None:
        return top
    return DeepOutput(
        plan.output_dim, num_layers=plan.depth["num_output_layers"],
        hidden_units=plan.output_units or plan.levels["units"][-1],
        hidden_activation=plan.output_hidden_activation,
        activation=plan.output_activation, pieces=plan.pieces, dropout=plan.output_dropout,
        seed=plan.seed, name="deep_output", **_noise(plan),
    )(top)


@contextlib.contextmanager
def _reattached_on_error(model):
    """On JAX, put the variables' values back if fit/evaluate/predict fails.

    Keras 3.15 detaches them for the length of the loop and reattaches them
    at its end, which an exception skips. The values of the last finished
    batch come back first (Keras's `jax_state_sync`); any variable still
    detached (the first batch failed) gets its value from before the call.
    """
    if keras.backend.backend() != "jax":
        yield
        return
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *model.metrics_variables,
                 *(optimizer.variables if optimizer is not None and optimizer.built else [])]
    before = [(v, v.value) for v in variables]
    try:
        yield
    except BaseException:
        model.jax_state_sync()
        for variable, value in before:
            # No public way to ask whether a value is detached.
            if variable._value is None:
                variable.assign(value)
        raise


def _dtype_policy(dtype):
    """The `keras.DTypePolicy` that `dtype` names (a name, a policy or its
    config), or None."""
    if dtype is None:
        return None
    try:
        return keras.dtype_policies.get(dtype)
    except (ValueError, TypeError):
        raise ValueError(
            "`dtype` must be a dtype policy: a name ('float32', 'bfloat16', 'mixed_float16', "
            f"'mixed_bfloat16'), a keras.DTypePolicy or its config, or None. Received: "
            f"dtype={dtype!r}") from None


def _serializable(value):
    if isinstance(value, keras.initializers.Initializer):
        return keras.initializers.serialize(value)
    if isinstance(value, (keras.regularizers.Regularizer, keras.constraints.Constraint)):
        return keras.saving.serialize_keras_object(value)
    return value


def check_arguments(architecture, **kwargs):
    """Run every check of `build_model(architecture, **kwargs)` on its
    options, without building a layer: what a training run checks before it
    reads its data. The input size may be left out (it comes from the data).

    ```python
    check_arguments("deep_gru", layer_norm=True)   # ValueError: not available
    ```
    """
    arguments = {k: kwargs.pop(k) for k in list(kwargs) if k in OPTIONS}
    _check_keras_arguments(kwargs)
    _dtype_policy(kwargs.get("dtype"))
    if arguments.get("input_dim") is None and arguments.get("vocab_size") is None:
        arguments["input_dim"] = 1  # a stand-in: no check reads the size
    _plan(architecture, arguments)


def build_model(architecture, **kwargs):
    """Build the named architecture; see `DeepRNNModel` for every argument.

    ```python
    model = build_model("srnn", input_dim=88, output_dim=88, num_layers=3,
                        skip_connections=True, output_activation="sigmoid")
    ```
    """
    return DeepRNNModel(architecture=architecture, **kwargs)
