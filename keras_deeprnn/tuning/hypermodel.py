"""`DeepRNNHyperModel`: the table of architectures as one KerasTuner search space."""

import contextlib
import inspect
import time

import keras
import keras_tuner

from keras_deeprnn import _checks
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import DeepRNNModel
from keras_deeprnn.models import build_model
from keras_deeprnn.tuning.distribute import distribution_scope
from keras_deeprnn.tuning.distribute import num_replicas

BUDGET_MODES = ("skip", "derive")
HIDDEN_UNITS = ["tanh", "relu", "maxout", "lp"]
# Widths double from 16 to 1024, so a grid search sees 7 values, not 1009.
WIDTH_RANGE = dict(min_value=16, max_value=1024, step=2, sampling="log")
# The largest `units` a derived width may reach; far beyond any budget here.
MAX_DERIVED_UNITS = 2**16

# name: (where it exists, how it is searched, default). "where" is None for
# every architecture, a depth argument for the architectures that leave it
# free (`Architecture.defaults`), "deep_transition" for those among them
# whose ⊕ is an MLP with its own width (not the highway cell, whose layers
# are all `units` wide), or "weight_noise" for all but Keras's fused
# GRU/LSTM ("layer_norm": the transition cells; "initial_state": those and
# the highway cell). A depth argument that no entry names is left to each
# architecture's default.
SEARCH_SPACE = {
    "architecture": (None, "Choice of the `architectures` given", "the first given"),
    "num_input_layers": ("num_input_layers", "Int 1..3", 1),
    "input_activation": ("num_input_layers", f"Choice {HIDDEN_UNITS}", "tanh"),
    "num_transition_layers": ("num_transition_layers", "Int 2..4", 2),
    "transition_units": ("deep_transition", "Int 16..1024, x2 steps", 128),
    "transition_activation": ("deep_transition", "Choice ['tanh', 'relu']", "tanh"),
    "num_layers": ("num_layers", "Int 2..4", 2),
    "skip_connections": ("skip_connections", "Boolean", False),
    "residual_connections": ("residual_connections", "Boolean", False),
    "units": (None, "Int 16..1024, x2 steps", 128),
    "num_output_layers": ("num_output_layers", "Int 1..3", 1),
    "output_units": ("num_output_layers", "Int 16..1024, x2 steps", 128),
    "output_hidden_activation": ("num_output_layers", f"Choice {HIDDEN_UNITS}", "tanh"),
    "output_dropout": ("num_output_layers", "Float 0..0.5, step 0.1", 0.0),
    "dropout": (None, "Float 0..0.5, step 0.1", 0.0),
    "weight_noise": ("weight_noise", "Float 0..0.1, step 0.025", 0.0),
    "recurrent_weight_dropout": ("weight_noise", "Float 0..0.5, step 0.1", 0.0),
    "zoneout": (None, "Float 0..0.3, step 0.1", 0.0),
    "layer_norm": ("layer_norm", "Boolean", False),
    "trainable_initial_state": ("initial_state", "Boolean", False),
    "learning_rate": (None, "Float 1e-4..1e-2, log", 1e-3),
    "clipnorm": (None, "Choice [0.5, 1.0, 2.0, 5.0]", 1.0),
}
OPTIMIZER_DIMENSIONS = ("learning_rate", "clipnorm")
# In "derive" mode these follow from the budget instead of being searched.
WIDTH_DIMENSIONS = ("units", "transition_units", "output_units")

_MODEL_ARGUMENTS = frozenset(inspect.signature(DeepRNNModel.__init__).parameters) - {
    "self", "kwargs"}
_SET_BY_HYPERMODEL = {"architecture", "input_dim", "output_dim", "output_activation"}


def _declare(hp, name):
    """The KerasTuner declaration of each searched dimension (see SEARCH_SPACE)."""
    if name in ("num_input_layers", "num_output_layers"):
        return hp.Int(name, 1, 3, default=1)
    if name in ("num_transition_layers", "num_layers"):
        return hp.Int(name, 2, 4, default=2)
    if name in ("skip_connections", "residual_connections", "layer_norm",
                "trainable_initial_state"):
        return hp.Boolean(name, default=False)
    if name in WIDTH_DIMENSIONS:
        return hp.Int(name, default=128, **WIDTH_RANGE)
    if name in ("input_activation", "output_hidden_activation"):
        return hp.Choice(name, HIDDEN_UNITS, default="tanh")
    if name == "transition_activation":
        return hp.Choice(name, ["tanh", "relu"], default="tanh")
    if name in ("dropout", "output_dropout"):
        return hp.Float(name, 0.0, 0.5, step=0.1, default=0.0)
    if name == "weight_noise":
        return hp.Float(name, 0.0, 0.1, step=0.025, default=0.0)
    if name == "recurrent_weight_dropout":
        return hp.Float(name, 0.0, 0.5, step=0.1, default=0.0)
    if name == "zoneout":
        return hp.Float(name, 0.0, 0.3, step=0.1, default=0.0)
    if name == "learning_rate":
        return hp.Float(name, 1e-4, 1e-2, sampling="log", default=1e-3)
    if name == "clipnorm":
        return hp.Choice(name, [0.5, 1.0, 2.0, 5.0], default=1.0)
    raise ValueError(f"Unknown search dimension. Received: {name!r}")


def _exists(where, architecture):
    if where is None:
        return True
    if where == "weight_noise":
        return architecture.cell not in ("gru", "lstm")
    if where == "layer_norm":
        return architecture.cell in ("transition", "transition_lstm")
    if where == "initial_state":
        return architecture.cell in ("transition", "transition_lstm", "highway")
    if where == "deep_transition":
        return (architecture.cell in ("transition", "transition_lstm")
                and "num_transition_layers" in architecture.defaults)
    return where in architecture.defaults


class DeepRNNHyperModel(keras_tuner.HyperModel):
    """Every architecture of `keras_deeprnn.ARCHITECTURES` as one search space.

    A trial picks an `architecture`, then only the dimensions that exist for
    it (KerasTuner conditional hyperparameters): a DT(S)-RNN gets
    `num_transition_layers`, an sRNN `num_layers` and `skip_connections`, a
    conventional RNN neither. Every dimension has a stable name and a default
    (`SEARCH_SPACE`):

    ```python
    architecture = Choice(architectures)               # default: the first
    with conditional_scope("architecture", where each is free):
        num_input_layers, input_activation             # di_rnn
        num_transition_layers  Int 2..4                # dt/dts/dot/dots(_lstm), rhn
        transition_units, transition_activation        # dt/dts/dot/dots(_lstm)
        num_output_layers      Int 1..3                # do/dot/dots(_lstm), with
        output_units, output_hidden_activation, output_dropout
        num_layers             Int 2..4                # the stacks, gf_rnn, dg_lstm
        skip_connections, residual_connections         # srnn, deep_gru, deep_lstm
        weight_noise           0..0.1                  # all but deep_gru/deep_lstm
        recurrent_weight_dropout 0..0.5                # all but deep_gru/deep_lstm
        layer_norm             Boolean                 # rnn, dt/dts/do/dot/dots(_lstm)
        trainable_initial_state Boolean                # those and rhn
    units Int 16..1024 (x2), dropout 0..0.5, zoneout 0..0.3, learning_rate 1e-4..1e-2
    (log), clipnorm
    model = build_model(architecture, **active values)
    model.compile(Adam(learning_rate, clipnorm=clipnorm), weighted_metrics=[FrameNLL()])
    ```

    Parameter budget (`max_params`), the paper's way of comparing deep and
    shallow models at equal size:

    * `budget_mode="skip"`: a trial whose model has more than `max_params`
      parameters fails with `keras_tuner.errors.FailedTrialError` and the
      search moves on. The check runs at the start of `fit`, not in `build`:
      KerasTuner also calls `build` with the default values while it
      discovers the conditional space, and that must not fail.
    * `budget_mode="derive"`: `units` is not searched; every hidden width
      (`units`, `transition_units`, `output_units`) is the largest `n` with
      `params(n) <= max_params`, found by bisection on the parameter count of
      the built model. It is recorded as the trial metric `units`.

    Every trial also records the metrics `num_params` and `fit_seconds`
    (wall time of `fit`), which `keras_deeprnn.tuning.report` tabulates.

    KerasTuner clears the Keras session before each trial, so the dtype
    policy and the distribution are set inside `build` and `fit`.

    Args:
        architectures: names from `ARCHITECTURES` to search over (default
            all, in table order).
        input_dim, output_dim: features per step in and out (88 notes).
        output_activation: `ψ_0`; with `"sigmoid"` the objective is
            `val_frame_nll`, otherwise `val_loss` (see `objective`).
        max_params: parameter budget, or `None` for none.
        budget_mode: `"skip"` or `"derive"` (needs `max_params`).
        fixed: `{name: value}`. A name of `SEARCH_SPACE` becomes a
            `Fixed` hyperparameter (recorded in every trial where it
            exists); any other `build_model` argument (`recurrent_dropout`,
            `recurrent_initializer`, ...) is passed through unchanged.
        distribute: `None` or `"data_parallel"` (see `distribution_scope`).
        dtype_policy: e.g. `"mixed_float16"`, set for each model built.
        name, tunable: as in `keras_tuner.HyperModel`.

    Example:

    ```python
    import keras_tuner
    hypermodel = DeepRNNHyperModel(["rnn", "dts_rnn", "srnn"], max_params=50_000,
                                   budget_mode="derive")
    tuner = keras_tuner.RandomSearch(hypermodel, objective=keras_tuner.Objective(
        "val_frame_nll", "min"), max_trials=20, directory="runs")
    tuner.search(train_batches, validation_data=valid_batches, epochs=10)
    ```

    Reference: Pascanu et al., *How to Construct Deep Recurrent Neural
    Networks*, ICLR 2014 (models compared at a matched parameter count).
    """

    def __init__(
        self,
        architectures=None,
        input_dim=88,
        output_dim=88,
        output_activation="sigmoid",
        max_params=None,
        budget_mode="skip",
        fixed=None,
        distribute=None,
        dtype_policy=None,
        name=None,
        tunable=True,
    ):
        # === Arguments ===
        if architectures is None:
            architectures = list(ARCHITECTURES)
        if isinstance(architectures, str):
            architectures = [a.strip() for a in architectures.split(",") if a.strip()]
        architectures = list(architectures)
        if not architectures:
            raise ValueError(
                "`architectures` must name at least one architecture. Received: "
                f"architectures={architectures!r}; expected names from {list(ARCHITECTURES)}"
            )
        for architecture in architectures:
            _checks.one_of("architectures", architecture, ARCHITECTURES)
        if len(set(architectures)) != len(architectures):
            raise ValueError(f"`architectures` has duplicates. Received: {architectures!r}")
        _checks.positive_int("input_dim", input_dim)
        _checks.positive_int("output_dim", output_dim)
        _checks.optional_positive_int("max_params", max_params)
        _checks.one_of("budget_mode", budget_mode, BUDGET_MODES)
        if budget_mode == "derive" and max_params is None:
            raise ValueError(
                "`budget_mode='derive'` derives `units` from `max_params`. "
                "Received: max_params=None; expected a positive integer"
            )
        fixed = dict(fixed or {})
        for key in fixed:
            if key in _SET_BY_HYPERMODEL:
                raise ValueError(
                    f"`fixed` cannot set `{key}`; it is an argument of DeepRNNHyperModel "
                    f"(`architectures=[...]` for the architecture). Received: fixed={fixed!r}"
                )
            if key not in SEARCH_SPACE and key not in _MODEL_ARGUMENTS:
                raise ValueError(
                    f"`fixed` has an unknown name `{key}`. Received: fixed={fixed!r}; expected "
                    f"names of SEARCH_SPACE ({', '.join(SEARCH_SPACE)}) or `build_model` arguments"
                )
        if budget_mode == "derive" and set(fixed) & set(WIDTH_DIMENSIONS):
            raise ValueError(
                "With `budget_mode='derive'` the widths come from the budget, so `fixed` cannot "
                f"set {sorted(set(fixed) & set(WIDTH_DIMENSIONS))}. Received: fixed={fixed!r}"
            )
        if distribute is not None:
            num_replicas(distribute)  # checks the kind and that the backend has it
        super().__init__(name=name, tunable=tunable)
        self.architectures = architectures
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.output_activation = output_activation
        self.max_params = max_params
        self.budget_mode = budget_mode
        self.fixed = fixed
        self.distribute = distribute
        self.dtype_policy = dtype_policy

    @property
    def objective(self):
        """The metric a tuner should minimise: `val_frame_nll` for notes."""
        return "val_frame_nll" if self.output_activation == "sigmoid" else "val_loss"

    def where(self, name):
        """The architectures (of those searched) in which dimension `name` exists."""
        dimension_where = SEARCH_SPACE[name][0]
        return [a for a in self.architectures if _exists(dimension_where, ARCHITECTURES[a])]

    def declare(self, hp):
        """Declare every dimension on `hp` and return this trial's settings.

        Returns `{"architecture": ..., build_model arguments ...,
        "learning_rate": ..., "clipnorm": ...}` holding only the dimensions
        active for the chosen architecture (inactive ones are left to the
        architecture's defaults), plus the pass-through entries of `fixed`.
        """
        config = {"architecture": self._dimension(hp, "architecture")}
        for name in SEARCH_SPACE:
            if name == "architecture":
                continue
            if self.budget_mode == "derive" and name in WIDTH_DIMENSIONS:
                continue
            value = self._dimension(hp, name)
            if value is not None:
                config[name] = value
        config.update({k: v for k, v in self.fixed.items() if k not in SEARCH_SPACE})
        return config

    def build(self, hp):
        config = self.declare(hp)
        optimizer = {key: config.pop(key) for key in OPTIMIZER_DIMENSIONS}
        architecture = config.pop("architecture")
        if self.budget_mode == "derive":
            units = self.derive_units(architecture, **config)
            config.update(units=units, transition_units=units, output_units=units)
        with _dtype_policy(self.dtype_policy), distribution_scope(self.distribute):
            model = build_model(architecture, **self._model_arguments(config))
            model.compile(
                optimizer=keras.optimizers.Adam(
                    learning_rate=optimizer["learning_rate"], clipnorm=optimizer["clipnorm"]
                ),
                weighted_metrics=[FrameNLL()] if self.output_activation == "sigmoid" else None,
            )
        return model

    def fit(self, hp, model, *args, **kwargs):
        num_params = model.count_params()
        over_budget = self.max_params is not None and num_params > self.max_params
        if self.budget_mode == "skip" and over_budget:
            raise keras_tuner.errors.FailedTrialError(
                f"The model has {num_params} parameters, over the budget max_params="
                f"{self.max_params}; trial skipped."
            )
        start = time.perf_counter()
        with distribution_scope(self.distribute):
            history = model.fit(*args, **kwargs)
        seconds = time.perf_counter() - start
        # Constant series beside the per-epoch ones, so KerasTuner records
        # them at the best epoch with the objective.
        epochs = max(len(history.epoch), 1)
        units = model.get_config().get("units", 0)
        for key, value in (("num_params", num_params), ("units", units), ("fit_seconds", seconds)):
            history.history[key] = [float(value)] * epochs
        return history

    def count_params(self, architecture, **config):
        """Parameters of `build_model(architecture, **config)` with this
        hypermodel's input and output, built without initialising a weight.

        The uncounted models' variables stay registered with Keras until the
        session is cleared, so the session is cleared afterwards (as KerasTuner
        does before every trial); the dtype policy and distribution survive.
        """
        with _counting() as count:
            return count(architecture, self._model_arguments(config))

    def derive_units(self, architecture, **config):
        """The largest `units` (every hidden width) whose model fits `max_params`.

        Bisection on the exact parameter count (which grows with `units`):

        ```python
        lo, hi = 1, 2
        while params(hi) <= max_params: lo, hi = hi, 2 * hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if params(mid) <= max_params else (lo, mid)
        return lo
        ```

        Raises `keras_tuner.errors.FailedTrialError` when even `units=1` is
        over the budget (the input and output layers alone may be).
        """
        if self.max_params is None:
            raise ValueError("`derive_units` needs `max_params`. Received: max_params=None")
        with _counting() as count:

            def params(units):
                widths = dict(units=units, transition_units=units, output_units=units)
                return count(architecture, self._model_arguments(dict(config, **widths)))

            smallest = params(1)
            if smallest > self.max_params:
                raise keras_tuner.errors.FailedTrialError(
                    f"'{architecture}' has {smallest} parameters at units=1, over the "
                    f"budget max_params={self.max_params}; trial skipped."
                )
            lo, hi = 1, 2
            while hi <= MAX_DERIVED_UNITS and params(hi) <= self.max_params:
                lo, hi = hi, 2 * hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if params(mid) <= self.max_params else (lo, mid)
            return lo

    def _dimension(self, hp, name):
        where = self.where(name)
        if not where:
            return None
        if name == "architecture" or len(where) == len(self.architectures):
            return self._declare_one(hp, name)
        with hp.conditional_scope("architecture", where):
            return self._declare_one(hp, name)

    def _declare_one(self, hp, name):
        if name == "architecture":
            return hp.Choice(name, self.architectures, default=self.architectures[0])
        if name in self.fixed:
            return hp.Fixed(name, self.fixed[name])
        return _declare(hp, name)

    def _model_arguments(self, config):
        return dict(
            config,
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            output_activation=self.output_activation,
        )


@contextlib.contextmanager
def _dtype_policy(policy):
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def _counting():
    """Yields `count(architecture, kwargs)`; clears the session on exit."""
    policy = keras.config.dtype_policy()
    distribution = keras.distribution.distribution()

    def count(architecture, kwargs):
        # No weight is initialised: on JAX that would compile one program per
        # new shape, seconds per model.
        with keras.StatelessScope(initialize_variables=False):
            return build_model(architecture, **kwargs).count_params()

    try:
        yield count
    finally:
        keras.backend.clear_session(free_memory=False)
        keras.config.set_dtype_policy(policy)
        if distribution is not None:
            keras.distribution.set_distribution(distribution)
