"""`DeepRNNModel` and `build_model`: any architecture of the table as a Keras model."""

import keras

from keras_deeprnn import _checks
from keras_deeprnn.cells import DeepTransitionCell
from keras_deeprnn.cells import DeepTransitionLSTMCell
from keras_deeprnn.cells import DepthGatedLSTMCell
from keras_deeprnn.cells import GatedFeedbackCell
from keras_deeprnn.cells import HighwayTransitionCell
from keras_deeprnn.cells import StateResetCell
from keras_deeprnn.cells import ZoneoutCell
from keras_deeprnn.layers import DeepInput
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import DeepRNN
from keras_deeprnn.layers import FusedLSTM
from keras_deeprnn.layers import units as units_lib
from keras_deeprnn.models import presets


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepRNNModel(keras.Model):
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
    (`FusedLSTM`: Keras's LSTM, with PyTorch's fused kernel on the CPU too). The
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
        num_input_layers, num_transition_layers, shortcut, num_output_layers,
        num_layers, skip_connections, residual_connections: the depth
            arguments (residual: a level adds the level below to its output
            where the widths agree, as Sonnet's residual stacking); `None` takes the
            architecture's default, and an architecture's defining values
            cannot be changed (see `Architecture.fixed`).
        input_units, transition_units, output_units: widths of the
            intermediate layers of g, ⊕ and ▷ (default `units`).
        activation: `φ_h`; transition_activation: `φ_l` (intermediate).
        input_activation, output_hidden_activation: hidden units of g and ▷
            (`"maxout"` and `"lp"` allowed, with `pieces`).
        output_activation: `ψ_0` (`"sigmoid"` for notes, `"softmax"` for words).
        dropout, recurrent_dropout: per-sequence dropout on each level's input
            and state (a number, or a list with one per level); output_dropout:
            dropout on the intermediate layers of ▷.
        recurrent_weight_dropout: DropConnect on the recurrent kernels (the
            weight drop of AWD-LSTM), one mask per batch of sequences.
        layer_norm: layer normalisation inside every transition layer
            (transition architectures).
        trainable_initial_state: learn each level's initial state (transition
            architectures and rhn).
        zoneout: zoneout rate on every state of every level (a number, or a
            list with one per level; Krueger et al. 2017): in training each
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
        kernel_initializer, recurrent_initializer: of every recurrent level
            (`keras_deeprnn.initializers.SparseInitializer()` is the paper's
            sparse initialisation).
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
    ```

    Reference: Pascanu et al., *How to Construct Deep Recurrent Neural
    Networks*, ICLR 2014.
    """

    def __init__(
        self,
        architecture="rnn",
        input_dim=None,
        output_dim=None,
        units=128,
        num_input_layers=None,
        num_transition_layers=None,
        shortcut=None,
        num_output_layers=None,
        num_layers=None,
        skip_connections=None,
        residual_connections=None,
        input_units=None,
        transition_units=None,
        output_units=None,
        activation="tanh",
        transition_activation=None,
        input_activation="tanh",
        output_hidden_activation="tanh",
        output_activation=None,
        pieces=2,
        dropout=0.0,
        recurrent_dropout=0.0,
        output_dropout=0.0,
        weight_noise=0.0,
        recurrent_weight_dropout=0.0,
        layer_norm=False,
        trainable_initial_state=False,
        zoneout=0.0,
        state_resets=False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bidirectional=False,
        vocab_size=None,
        embedding_dim=None,
        return_sequences=True,
        stateful=False,
        batch_size=None,
        unroll=False,
        masking=False,
        mask_value=0.0,
        seed=None,
        **kwargs,
    ):
        # === Arguments ===
        arch = presets.get(architecture)
        depth = arch.resolve(
            num_input_layers=num_input_layers,
            num_transition_layers=num_transition_layers,
            shortcut=shortcut,
            num_output_layers=num_output_layers,
            num_layers=num_layers,
            skip_connections=skip_connections,
            residual_connections=residual_connections,
        )
        for key in ("num_input_layers", "num_output_layers"):
            _checks.non_negative_int(key, depth[key])
        for key in ("num_transition_layers", "num_layers"):
            _checks.positive_int(key, depth[key])
        # these cells step all their levels together: one recurrent layer
        num_levels = 1 if arch.cell in ("dg_lstm", "gated_feedback") else depth["num_layers"]
        level_units = _per_level("units", units, depth["num_layers"], _checks.positive_int)
        level_dropout = _per_level("dropout", dropout, depth["num_layers"], _checks.rate)
        level_recurrent_dropout = _per_level(
            "recurrent_dropout", recurrent_dropout, depth["num_layers"], _checks.rate
        )
        level_zoneout = _per_level("zoneout", zoneout, num_levels, _checks.rate)
        if state_resets and bidirectional:
            raise ValueError(
                "`state_resets=True` marks where sequences start in a forward stream; a "
                "backward pass would need where they end. Received: bidirectional=True"
            )
        if num_levels == 1 and len(set(level_units)) > 1:
            raise ValueError(
                f"'{architecture}' steps all its levels in one cell and needs one width "
                f"for all of them. Received: units={units!r}"
            )
        if (layer_norm or trainable_initial_state) and arch.cell not in ("transition", "transition_lstm"):
            options = "layer_norm" if layer_norm else "trainable_initial_state"
            if not (options == "trainable_initial_state" and arch.cell == "highway"):
                raise ValueError(
                    f"`{options}=True` is available for the transition architectures"
                    f"{' and rhn' if options == 'trainable_initial_state' else ''}. "
                    f"Received: architecture={architecture!r}"
                )
        if (input_dim is None) == (vocab_size is None):
            raise ValueError(
                "Give exactly one of `input_dim` (features per step) and `vocab_size` "
                f"(token ids). Received: input_dim={input_dim!r}, vocab_size={vocab_size!r}"
            )
        if input_dim is not None:
            _checks.positive_int("input_dim", input_dim)
        else:
            _checks.positive_int("vocab_size", vocab_size)
        _checks.optional_positive_int("output_dim", output_dim)
        for key, value in (("input_activation", input_activation),
                           ("output_hidden_activation", output_hidden_activation)):
            units_lib.resolve(key, value)
        for key, value in (("weight_noise", weight_noise),
                           ("recurrent_weight_dropout", recurrent_weight_dropout)):
            if value and arch.cell in ("gru", "lstm"):
                raise ValueError(
                    f"`{key}` is not available for '{architecture}' (Keras's fused "
                    f"{arch.cell.upper()} layers). Received: {key}={value!r}; use {key}=0, "
                    "or 'dg_lstm'/'srnn'/'dots_lstm' for a model with it."
                )
        if stateful and batch_size is None:
            raise ValueError(
                "`stateful=True` needs a fixed `batch_size`. Received: batch_size=None"
            )
        if depth["skip_connections"] and not return_sequences:
            raise ValueError(
                "`skip_connections=True` reads every level at every step and needs "
                "`return_sequences=True`. Received: return_sequences=False"
            )
        rnn_kwargs = dict(stateful=stateful, unroll=unroll)
        cell_kwargs = dict(
            seed=seed, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
        )
        if weight_noise:
            cell_kwargs["weight_noise"] = weight_noise
        if recurrent_weight_dropout:
            cell_kwargs["recurrent_weight_dropout"] = recurrent_weight_dropout
        if layer_norm:
            cell_kwargs["layer_norm"] = True
        if trainable_initial_state:
            cell_kwargs["trainable_initial_state"] = True
        noise = dict(weight_noise=weight_noise) if weight_noise else {}

        # === Functional model ===
        resets = None
        if state_resets:
            resets = keras.Input(batch_shape=(batch_size, None), name="resets")
            reset_flags = keras.layers.Reshape((-1, 1), name="reset_flags")(resets)
        if vocab_size is not None:
            inputs = keras.Input(batch_shape=(batch_size, None), dtype="int32", name="tokens")
            features = keras.layers.Embedding(
                vocab_size, embedding_dim or level_units[0], mask_zero=masking, name="embedding"
            )(inputs)
        else:
            inputs = keras.Input(batch_shape=(batch_size, None, input_dim), name="frames")
            features = inputs
            if masking:
                features = keras.layers.Masking(mask_value, name="masking")(features)
        if depth["num_input_layers"]:
            features = DeepInput(
                input_units or level_units[0], num_layers=depth["num_input_layers"],
                activation=input_activation, pieces=pieces, seed=seed, name="deep_input", **noise,
            )(features)

        levels, level_input = [], features
        for level in range(num_levels):
            last = level == num_levels - 1
            layer = _recurrent_layer(
                arch.cell, level_units[level], depth, activation, transition_activation,
                transition_units,
                dict(cell_kwargs, dropout=level_dropout[level],
                     recurrent_dropout=level_recurrent_dropout[level]),
                dict(rnn_kwargs, return_sequences=return_sequences or not last),
                name=f"level_{level}", zoneout=level_zoneout[level], state_resets=state_resets,
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{level}")
            if state_resets:
                level_input = keras.layers.Concatenate(name=f"with_resets_{level}")(
                    [level_input, reset_flags])
            h = layer(level_input)
            if (depth["residual_connections"] and levels
                    and h.shape[-1] == levels[-1].shape[-1]):
                # Sonnet's residual stacking: a level adds its input (the
                # level below) where the widths agree.
                h = keras.layers.Add(name=f"residual_{level}")([levels[-1], h])
            levels.append(h)
            level_input = levels[-1]
            if depth["skip_connections"]:
                level_input = keras.layers.Concatenate(name=f"skip_{level}")([features, levels[-1]])
        top = levels[-1]
        if depth["skip_connections"] and len(levels) > 1:
            top = keras.layers.Concatenate(name="all_levels")(levels)
        outputs = top
        if output_dim is not None:
            outputs = DeepOutput(
                output_dim, num_layers=depth["num_output_layers"],
                hidden_units=output_units or level_units[-1],
                hidden_activation=output_hidden_activation,
                activation=output_activation, pieces=pieces, dropout=output_dropout,
                seed=seed, name="deep_output", **noise,
            )(top)
        model_inputs = inputs if resets is None else [inputs, resets]
        super().__init__(inputs=model_inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.architecture = architecture
        self.depth = depth
        self._config = dict(
            architecture=architecture, input_dim=input_dim, output_dim=output_dim, units=units,
            num_input_layers=num_input_layers, num_transition_layers=num_transition_layers,
            shortcut=shortcut, num_output_layers=num_output_layers, num_layers=num_layers,
            skip_connections=skip_connections, residual_connections=residual_connections,
            layer_norm=layer_norm, trainable_initial_state=trainable_initial_state,
            zoneout=zoneout, state_resets=state_resets,
            input_units=input_units, transition_units=transition_units, output_units=output_units,
            activation=activation, transition_activation=transition_activation,
            input_activation=input_activation, output_hidden_activation=output_hidden_activation,
            output_activation=output_activation, pieces=pieces, dropout=dropout,
            recurrent_dropout=recurrent_dropout, output_dropout=output_dropout,
            weight_noise=weight_noise, recurrent_weight_dropout=recurrent_weight_dropout,
            kernel_initializer=_serializable(kernel_initializer),
            recurrent_initializer=_serializable(recurrent_initializer),
            bidirectional=bidirectional, vocab_size=vocab_size, embedding_dim=embedding_dim,
            return_sequences=return_sequences, stateful=stateful, batch_size=batch_size,
            unroll=unroll, masking=masking, mask_value=mask_value, seed=seed,
        )

    def call(self, inputs, training=None, mask=None):
        expected = self._config["input_dim"]
        if self._config["state_resets"]:
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
            self._check_inputs(sequences, expected)
            if tuple(resets.shape)[:2] != tuple(sequences.shape)[:2] or len(resets.shape) != 2:
                raise ValueError(
                    f"`resets` of {self.name} must have shape {tuple(sequences.shape)[:2]} "
                    f"(batch, time), one flag per step. Received: shape={tuple(resets.shape)}"
                )
        else:
            self._check_inputs(inputs, expected)
        return super().call(inputs, training=training, mask=mask)

    def _check_inputs(self, inputs, expected):
        shape = tuple(inputs.shape)
        rank = 2 if expected is None else 3
        if len(shape) != rank or (expected is not None and shape[-1] not in (None, expected)):
            wanted = "(batch, time) token ids" if expected is None else f"(batch, time, {expected})"
            raise ValueError(
                f"`inputs` of {self.name} must have shape {wanted}. Received: shape={shape}"
            )

    def stateful_copy(self, batch_size=1, **overrides):
        """A stateful copy of this model with the same weights, fed a few steps
        at a time (generation, streaming); `overrides` change other arguments.

        ```python
        step_model = model.stateful_copy()
        for frame in frames:
            y = step_model(frame[None, None])     # state carries between calls
        ```
        """
        config = {k: v for k, v in self._config.items()}
        config.update(stateful=True, batch_size=batch_size, return_sequences=True, **overrides)
        copy = DeepRNNModel(**config)
        # Stateful states are variables but not weights, so the lists match.
        copy.set_weights(self.get_weights())
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

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _per_level(name, value, num_levels, check):
    """One value per stacked level, from a scalar or a list of `num_levels`."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_levels:
            raise ValueError(
                f"`{name}` as a list needs one value per level ({num_levels}). "
                f"Received: {name}={list(value)!r}"
            )
        return [check(name, v) for v in value]
    return [check(name, value)] * num_levels


def _serializable(initializer):
    if isinstance(initializer, (str, dict)) or initializer is None:
        return initializer
    return keras.initializers.serialize(initializer)


def _recurrent_layer(kind, units, depth, activation, transition_activation, transition_units,
                     cell_kwargs, rnn_kwargs, name, zoneout=0.0, state_resets=False):
    wrapped = bool(zoneout or state_resets)
    if kind in ("gru", "lstm") and not wrapped:
        layer = keras.layers.GRU if kind == "gru" else FusedLSTM
        return layer(units, name=name, **cell_kwargs, **rnn_kwargs)
    if kind in ("gru", "lstm"):
        # The state wrappers need the step: Keras's cells in a DeepRNN.
        cell_class = keras.layers.GRUCell if kind == "gru" else keras.layers.LSTMCell
        cell = cell_class(units, **cell_kwargs)
    elif kind == "dg_lstm":
        cell = DepthGatedLSTMCell(units, num_layers=depth["num_layers"], **cell_kwargs)
    elif kind == "gated_feedback":
        cell = GatedFeedbackCell(
            units, num_layers=depth["num_layers"], activation=activation, **cell_kwargs
        )
    elif kind == "highway":
        cell = HighwayTransitionCell(
            units, num_transition_layers=depth["num_transition_layers"], activation=activation,
            **cell_kwargs,
        )
    else:
        cell_class = DeepTransitionLSTMCell if kind == "transition_lstm" else DeepTransitionCell
        cell = cell_class(
            units,
            num_transition_layers=depth["num_transition_layers"],
            shortcut=depth["shortcut"],
            transition_units=transition_units,
            activation=activation,
            transition_activation=transition_activation,
            **cell_kwargs,
        )
    if zoneout:
        cell = ZoneoutCell(cell, zoneout=zoneout, seed=cell_kwargs.get("seed"))
    if state_resets:
        cell = StateResetCell(cell)
    return DeepRNN(cell, name=name, **rnn_kwargs)


def build_model(architecture, **kwargs):
    """Build the named architecture; see `DeepRNNModel` for every argument.

    ```python
    model = build_model("srnn", input_dim=88, output_dim=88, num_layers=3,
                        skip_connections=True, output_activation="sigmoid")
    ```
    """
    return DeepRNNModel(architecture=architecture, **kwargs)
