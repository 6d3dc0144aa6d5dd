"""`DeepRNNHyperModel`: the table of architectures as one KerasTuner search space."""

import time

import keras
import keras_tuner

from keras_deeprnn import _checks
from keras_deeprnn.compilation import choose_jit_compile
from keras_deeprnn.metrics import FrameNLL
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import OPTIONS
from keras_deeprnn.models import build_model
from keras_deeprnn.models import options as options_lib
from keras_deeprnn.models.dtype_policy import dtype_policy_scope
from keras_deeprnn.tuning.distribute import distribution_scope
from keras_deeprnn.tuning.distribute import num_replicas
from keras_deeprnn.tuning.budget import MAX_DERIVED_UNITS
from keras_deeprnn.tuning.budget import counting
from keras_deeprnn.tuning.sizes import feature_widths
from keras_deeprnn.tuning.space import OPTIMIZER_DIMENSIONS
from keras_deeprnn.tuning.space import SEARCH_SPACE
from keras_deeprnn.tuning.space import WIDTH_DIMENSIONS
from keras_deeprnn.tuning.space import declare
from keras_deeprnn.tuning.space import describe_dimensions
from keras_deeprnn.tuning.space import exists

BUDGET_MODES = ("skip", "derive")

_MODEL_ARGUMENTS = frozenset(OPTIONS)
_SET_BY_HYPERMODEL = {"architecture", "input_dim", "output_dim", "output_activation"}


class DeepRNNHyperModel(keras_tuner.HyperModel):
    """Every architecture of `keras_deeprnn.ARCHITECTURES` as one search space.

    A trial picks an `architecture`, then only the dimensions that exist for
    it (KerasTuner conditional hyperparameters): a DT(S)-RNN gets
    `num_transition_layers`, an sRNN `num_layers` and `skip_connections`, a
    conventional RNN neither. Every dimension has a stable name and a default
    (`SEARCH_SPACE`); where each exists follows from the rows of
    `ARCHITECTURES` (what their cells support, the depth they leave free), as
    they are on import (`describe_dimensions`):

    ```python
    architecture = Choice(architectures)               # default: the first
    <the dimensions, from the rows>
    model = build_model(architecture, **active values)
    model.compile(Adam(learning_rate, clipnorm=clipnorm), weighted_metrics=[FrameNLL()],
                  jit_compile=choose_jit_compile(model, batch_size, steps=train_steps))
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
    A tuner of `keras_deeprnn.tuning.TUNERS` made without `objective=`
    minimises the hypermodel's `objective` (the task's validation measure);
    give a stock KerasTuner tuner `objective=hypermodel.objective`.

    KerasTuner's own knobs work as with any hypermodel: a tuner's
    `hyperparameters=` (a `keras_tuner.HyperParameters`) overrides the
    dimensions it names, and with `tune_new_entries=False` the others stay
    at their defaults; an entry that is a `build_model` argument but not a
    dimension (`hp.Fixed("recurrent_dropout", 0.2)`) is passed to
    `build_model`. A tuner's `max_model_size=` fails oversized trials as
    `max_params` does with `budget_mode="skip"`.

    `input_dim` and `output_dim` left at `None` come from the data: the
    tuners of `keras_deeprnn.tuning.TUNERS` read them from the first batch
    of `search`'s training data (`adapt`); call `adapt(x, y)` yourself
    before a stock KerasTuner tuner's `search`.

    KerasTuner clears the Keras session before each trial, so the dtype
    policy and the distribution are set inside `build` and `fit`.

    Args:
        architectures: names from `ARCHITECTURES` to search over (default
            all, in table order).
        input_dim, output_dim: features per step in and out; `None`: from
            the data (see `adapt`).
        output_activation: `ψ_0`; with `"sigmoid"` the objective is
            `val_frame_nll`, otherwise `val_loss` (see `objective`).
        max_params: parameter budget, or `None` for none. With
            `budget_mode="skip"` it is KerasTuner's `max_model_size`; it is
            here for `"derive"`, which KerasTuner has no counterpart of.
        budget_mode: `"skip"` or `"derive"` (needs `max_params`).
        fixed: `{name: value}`, the short form of a tuner's
            `hyperparameters=` of `Fixed` entries: a name of `SEARCH_SPACE`
            becomes a `Fixed` hyperparameter (recorded in every trial where
            it exists, and only there: a `Fixed` entry of `hyperparameters=`
            is in every trial); any other `build_model` argument is passed
            through to the rows where it exists (`activation` is not passed
            to `deep_gru`, `deep_lstm` or `dg_lstm`). What it adds: the names are checked here, at once,
            against the search space and `build_model`'s arguments, and
            values that are not JSON (an initializer instance) are allowed.
        distribute: `None` or `"data_parallel"` (see `distribution_scope`).
        dtype_policy: e.g. `"mixed_float16"`, set for each model built.
        task: a `keras_deeprnn.tasks.Task`; trials then compile with its
            `loss()` and `metrics()` as `train` does, and `objective` is its
            `monitor`. `None`: the model's default loss and `FrameNLL`.
        batch_size, train_steps: the batch size trials train with and the
            most training steps a trial takes (epochs times batches per
            epoch), when known. They only inform `jit_compile`, chosen as
            `train` chooses it (`keras_deeprnn.compilation.choose_jit_compile`:
            on TensorFlow on a CPU, XLA for models up to 128 units and batches
            up to 16, in runs of at least 100 steps). `run_search` gives
            the batch size; the tuners of `keras_deeprnn.tuning.TUNERS` count
            `train_steps` left at `None` from each `search`'s training data,
            for that search.
        name, tunable: as in `keras_tuner.HyperModel`.

    Example:

    ```python
    import keras_tuner
    hypermodel = DeepRNNHyperModel(["rnn", "dts_rnn", "srnn"], max_params=50_000,
                                   budget_mode="derive")
    hypermodel.adapt(train_batches)          # input and output sizes from the data
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout", 0.2)
    tuner = TUNERS["random"](hypermodel, hyperparameters=hp, max_trials=20,
                             directory="runs")   # objective: val_frame_nll, minimised
    tuner.search(train_batches, validation_data=valid_batches, epochs=10)
    ```

    Reference: Pascanu et al., *How to Construct Deep Recurrent Neural
    Networks*, ICLR 2014 (models compared at a matched parameter count).
    """

    def __init__(
        self,
        architectures=None,
        input_dim=None,
        output_dim=None,
        output_activation="sigmoid",
        max_params=None,
        budget_mode="skip",
        fixed=None,
        distribute=None,
        dtype_policy=None,
        task=None,
        batch_size=None,
        train_steps=None,
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
        _checks.optional_positive_int("input_dim", input_dim)
        _checks.optional_positive_int("output_dim", output_dim)
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
        _checks.optional_positive_int("batch_size", batch_size)
        _checks.optional_positive_int("train_steps", train_steps)
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
        self.task = task
        self.batch_size = batch_size
        self.train_steps = train_steps

    @property
    def objective(self):
        """The metric a tuner should minimise: the task's `monitor`, else
        `val_frame_nll` for notes."""
        if self.task is not None:
            return self.task.monitor
        return "val_frame_nll" if self.output_activation == "sigmoid" else "val_loss"

    def adapt(self, x, y=None):
        """Take `input_dim` and `output_dim` (those left at `None`) from data.

        `x` is what `fit` takes: an array with `y` beside it, or batches of
        `(x, y[, sample_weight])` (a `keras.utils.PyDataset`, a `tf.data`
        dataset, a torch `DataLoader`, a list). A one-shot iterator cannot
        be read twice: give the sizes instead.

        ```python
        hypermodel = DeepRNNHyperModel(["rnn", "srnn"])
        hypermodel.adapt(np.zeros((32, 50, 12)), np.zeros((32, 50, 12)))
        hypermodel.input_dim, hypermodel.output_dim      # (12, 12)
        ```
        """
        if self.input_dim is not None and self.output_dim is not None:
            return
        x_width, y_width = feature_widths(x, y)
        if self.input_dim is None:
            self.input_dim = x_width
        if self.output_dim is None:
            self.output_dim = y_width

    def where(self, name):
        """The architectures (of those searched) in which dimension `name` exists."""
        return [a for a in self.architectures if exists(name, ARCHITECTURES[a])]

    def dimensions(self):
        """The names of every dimension, in `SEARCH_SPACE` order."""
        return ["architecture", *options_lib.searched(), *OPTIMIZER_DIMENSIONS]

    def declare(self, hp):
        """Declare every dimension on `hp` and return this trial's settings.

        Returns `{"architecture": ..., build_model arguments ...,
        "learning_rate": ..., "clipnorm": ...}` holding only the dimensions
        active for the chosen architecture (inactive ones are left to the
        architecture's defaults), plus the pass-through entries of `fixed`.
        """
        config = {"architecture": self._dimension(hp, "architecture")}
        for name in self.dimensions():
            if name == "architecture":
                continue
            if self.budget_mode == "derive" and name in WIDTH_DIMENSIONS:
                continue
            value = self._dimension(hp, name)
            if value is not None:
                config[name] = value
        row = ARCHITECTURES[config["architecture"]]
        config.update({k: v for k, v in self.fixed.items()
                       if k not in self.dimensions() and _exists(k, row)})
        # Entries of a tuner's `hyperparameters=` that are model arguments.
        for name, value in hp.values.items():
            if (name in _MODEL_ARGUMENTS and name not in config and name not in _SET_BY_HYPERMODEL
                    and name not in self.dimensions() and hp.is_active(name)
                    and _exists(name, row)):
                config[name] = value
        return config

    def build(self, hp):
        config = self.declare(hp)
        optimizer = {key: config.pop(key) for key in OPTIMIZER_DIMENSIONS}
        architecture = config.pop("architecture")
        if self.budget_mode == "derive":
            units = self.derive_units(architecture, **config)
            config.update(dict.fromkeys(WIDTH_DIMENSIONS, units))
        with dtype_policy_scope(self.dtype_policy, "dtype_policy"), \
                distribution_scope(self.distribute):
            model = build_model(architecture, **self._model_arguments(config))
            adam = keras.optimizers.Adam(learning_rate=optimizer["learning_rate"],
                                         clipnorm=optimizer["clipnorm"])
            # As `train` compiles: the task's loss, fresh (stateful) metrics,
            # and XLA on TensorFlow's CPU for the narrow models it speeds up.
            if self.task is not None:
                losses = dict(loss=self.task.loss(), weighted_metrics=self.task.metrics())
            else:
                losses = dict(weighted_metrics=[FrameNLL()]
                              if self.output_activation == "sigmoid" else None)
            model.compile(optimizer=adam, **losses, jit_compile=choose_jit_compile(
                model, batch_size=self.batch_size, steps=self.train_steps))
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
        with counting() as count:
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
        with counting() as count:

            def params(units):
                widths = dict.fromkeys(WIDTH_DIMENSIONS, units)
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
        if name == "architecture":
            return hp.Choice(name, self.architectures, default=self.architectures[0])
        if name in self.fixed:
            return self._in_scope(hp, where, lambda: hp.Fixed(name, self.fixed[name]))
        # Rows may narrow an option's range: one declaration per distinct
        # range, each under the condition of the rows that use it.
        by_range = {}
        for architecture in where:
            row = ARCHITECTURES[architecture]
            search = row.search_range(OPTIONS[name]) if name in OPTIONS else None
            by_range.setdefault(search, []).append(architecture)
        value = None
        for rows in by_range.values():
            declared = self._in_scope(hp, rows, lambda: declare(hp, name, ARCHITECTURES[rows[0]]))
            if declared is not None:  # the declaration of the chosen row's range
                value = declared
        return value

    def _in_scope(self, hp, rows, declare):
        if len(rows) == len(self.architectures):
            return declare()
        with hp.conditional_scope("architecture", rows):
            return declare()

    def _model_arguments(self, config):
        if self.input_dim is None or self.output_dim is None:
            raise ValueError(
                "DeepRNNHyperModel does not know its input and output sizes yet. Received: "
                f"input_dim={self.input_dim!r}, output_dim={self.output_dim!r}; expected "
                "them from the data: search with a tuner of keras_deeprnn.tuning.TUNERS, call "
                "`hypermodel.adapt(x, y)` before `search`, or pass `input_dim=` and `output_dim=`"
            )
        return dict(
            config,
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            output_activation=self.output_activation,
        )


def _exists(name, row):
    """Whether a pass-through model argument exists on `row` (an option a
    row lacks, as `activation` on `deep_gru`, is left to that row's default)."""
    return name not in OPTIONS or row.supports(OPTIONS[name])


DeepRNNHyperModel.__doc__ = DeepRNNHyperModel.__doc__.replace(
    "<the dimensions, from the rows>", describe_dimensions().replace("\n", "\n    "))
