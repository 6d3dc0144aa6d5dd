"""Every option of `build_model`, declared once.

An `Option` says what a model argument is: its default, how it is checked,
what it means (`help`, which the command line shows), where it exists and how
the tuner searches it. `DeepRNNModel`'s arguments, checks and config, the
tuner's conditional dimensions, the `train` command's model flags and
`TrainConfig`'s model fields are all read from `OPTIONS`:

```python
option = OPTIONS["weight_noise"]
option.default            # 0.0
option.where              # ("weight_noise",): the cells that support it
option.search.describe()  # "Float 0..0.1, step 0.025"
option.check("weight_noise", 0.05)
```

`where` names what a row needs for the option to exist: depth arguments the
row leaves free (`num_output_layers` for the deep output's widths) and
capabilities of its cell factory (`layer_norm`, `weight_noise`, ...). Where
`refused_elsewhere` is set, a value other than the default on a row without
them is an error; otherwise the option is only inactive there (and not a
search dimension).
"""

import dataclasses
import typing

import keras

from keras_deeprnn import _checks
from keras_deeprnn.layers import units as units_lib

HIDDEN_UNITS = ("tanh", "relu", "maxout", "lp")


@dataclasses.dataclass(frozen=True)
class Search:
    """How the tuner searches one option: a KerasTuner `Int`, `Float`,
    `Boolean` or `Choice` with a default.

    ```python
    Search("int", default=2, low=2, high=4).declare(hp, "num_layers")
    # hp.Int("num_layers", 2, 4, default=2)
    ```
    """

    kind: str
    default: typing.Any
    low: typing.Any = None
    high: typing.Any = None
    step: typing.Any = None
    sampling: str | None = None
    values: tuple = ()

    def __post_init__(self):
        _checks.one_of("kind", self.kind, ("int", "float", "boolean", "choice"))

    def declare(self, hp, name):
        """Declare this range on `hp` (a `keras_tuner.HyperParameters`)."""
        if self.kind == "int":
            extra = {} if self.step is None else {"step": self.step}
            return hp.Int(name, self.low, self.high, sampling=self.sampling,
                          default=self.default, **extra)
        if self.kind == "float":
            return hp.Float(name, self.low, self.high, step=self.step, sampling=self.sampling,
                            default=self.default)
        if self.kind == "boolean":
            return hp.Boolean(name, default=self.default)
        return hp.Choice(name, list(self.values), default=self.default)

    def describe(self):
        """The range in words, as `SEARCH_SPACE` and the README show it."""
        if self.kind == "boolean":
            return "Boolean"
        if self.kind == "choice":
            return f"Choice {list(self.values)}"
        text = f"{self.kind.capitalize()} {self.low:g}..{self.high:g}"
        if self.sampling == "log" and self.step:
            return f"{text}, x{self.step} steps"
        if self.sampling == "log":
            return f"{text}, log"
        return f"{text}, step {self.step}" if self.step else text


# Widths double from 16 to 1024, so a grid search sees 7 values, not 1009.
WIDTH_SEARCH = Search("int", 128, 16, 1024, step=2, sampling="log")
HIDDEN_UNITS_SEARCH = Search("choice", "tanh", values=HIDDEN_UNITS)


@dataclasses.dataclass(frozen=True)
class Option:
    """One argument of `DeepRNNModel` / `build_model`.

    Attributes:
        name: the argument's name.
        default: its value when not given (`None` on a depth argument: the
            architecture's default).
        check: `check(name, value)` raises a `ValueError` naming the argument,
            the value and what was expected; it gets each level's value of a
            per-level option.
        help: one line, for the command line and the README.
        where: what a row needs for the option to exist (see the module).
        refused_elsewhere: a non-default value where it does not exist is an error.
        search: the tuner's range, or `None` when it is not searched.
        per_level: `"stack"` (one value per stacked level, `num_layers`),
            `"layer"` (one per recurrent layer) or `None` (a single value).
        train: a field of `TrainConfig` and a flag of `keras-deeprnn train`.
        annotation: the type of that field.
    """

    name: str
    default: typing.Any
    check: typing.Callable
    help: str
    where: tuple = ()
    refused_elsewhere: bool = False
    search: Search | None = None
    per_level: str | None = None
    train: bool = False
    annotation: typing.Any = typing.Any

    @property
    def value_type(self):
        """The type of one value (of one level): `bool`, `int`, `float` or `str`."""
        types_ = typing.get_args(self.annotation) or (self.annotation,)
        return next((t for t in (bool, int, float) if t in types_), str)

    def values(self, value, num_levels):
        """One checked value per level: a scalar repeated, or a list of `num_levels`."""
        if self.per_level is None:
            return self.check(self.name, value)
        if isinstance(value, (list, tuple)):
            if len(value) != num_levels:
                raise ValueError(
                    f"`{self.name}` as a list needs one value per level ({num_levels}). "
                    f"Received: {self.name}={list(value)!r}"
                )
            return [self.check(self.name, v) for v in value]
        return [self.check(self.name, value)] * num_levels

    def is_set(self, value):
        """Whether `value` asks for something (a default or a zero does not)."""
        if isinstance(value, (list, tuple)):
            return any(self.is_set(v) for v in value)
        return value is not None and value is not False and value != 0 \
            and value != self.default


# --- checks that take `None` or several types --------------------------------


def _optional(check):
    def optional(name, value):
        return None if value is None else check(name, value)
    return optional


def _activation(name, value):
    units_lib.resolve(name, value)
    return value


def _keras_activation(name, value):
    """An activation applied unit by unit: maxout and lp pool several
    pre-activations per unit, which only the hidden layers of g and ▷ build."""
    if isinstance(value, str) and value in units_lib.POOLED_UNITS:
        raise ValueError(
            f"`{name}` must be a Keras activation; {' and '.join(units_lib.POOLED_UNITS)} "
            "pool several pre-activations per unit and are allowed only for "
            f"`input_activation` and `output_hidden_activation`. Received: {name}={value!r}")
    return _activation(name, value)


def _initializer(name, value):
    if value == "sparse":
        return value  # the paper's: build_model makes a `SparseInitializer()`
    try:
        keras.initializers.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` must be a Keras initializer (a name, a config or an instance) or "
            f"'sparse' (the paper's). Received: {name}={value!r}") from None
    return value


def _anything(name, value):
    return value


# `name:number`, the command line's way to give a Keras regularizer or
# constraint its strength: `l2:1e-4`, `max_norm:3`.
_SHORT_FORMS = {
    "regularizer": {"l1": ("L1", "l1"), "l2": ("L2", "l2")},
    "constraint": {"max_norm": ("MaxNorm", "max_value")},
}


def keras_weight_object(name, value):
    """The Keras regularizer or constraint `value` names (kind from `name`'s
    ending), or None: a Keras name (`"l2"`, `"max_norm"`), a config dict, an
    instance, or the short form `"l2:1e-4"` / `"max_norm:3"`.

    ```python
    keras_weight_object("kernel_regularizer", "l2:1e-4")   # keras.regularizers.L2(1e-4)
    ```
    """
    kind = name.rsplit("_", 1)[-1]
    get = keras.regularizers.get if kind == "regularizer" else keras.constraints.get
    if isinstance(value, str) and ":" in value:
        key, _, number = value.partition(":")
        forms = _SHORT_FORMS[kind]
        try:
            class_name, argument = forms[key.strip()]
            value = {"class_name": class_name, "config": {argument: float(number)}}
        except (KeyError, ValueError):
            raise ValueError(
                f"`{name}` as NAME:NUMBER takes NAME in {sorted(forms)} and a number, e.g. "
                f"{next(iter(forms))}:0.001. Received: {name}={value!r}") from None
    return _checks.keras_object(name, value, get)


def _weight_object(name, value):
    keras_weight_object(name, value)
    return value


def _seed(name, value):
    return _checks.seed(name, value)


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
    return value


def _declare(*options):
    return {option.name: option for option in options}


OptionalInt = typing.Optional[int]
OptionalBool = typing.Optional[bool]

OPTIONS = _declare(
    # --- what goes in and out ---
    Option("input_dim", None, _optional(_checks.positive_int),
           "features per time step (dense inputs); give it or `vocab_size`"),
    Option("vocab_size", None, _optional(_checks.positive_int),
           "token ids in, through an Embedding; give it or `input_dim`"),
    Option("embedding_dim", None, _optional(_checks.positive_int),
           "width of the embedding (default: the first level's units)"),
    Option("output_dim", None, _optional(_checks.positive_int),
           "width of the output (None: return the top states)"),
    Option("output_activation", None, _optional(_keras_activation),
           "psi_0 of the output: sigmoid for notes, softmax for tokens"),
    # --- depth: None takes the architecture's default ---
    Option("num_input_layers", None, _optional(_checks.non_negative_int),
           "layers of the deep input function g", where=("num_input_layers",),
           search=Search("int", 1, 1, 3), train=True, annotation=OptionalInt),
    Option("input_activation", "tanh", _activation,
           "g's units: a Keras activation, maxout or lp", where=("num_input_layers",),
           search=HIDDEN_UNITS_SEARCH, train=True, annotation=str),
    Option("num_transition_layers", None, _optional(_checks.positive_int),
           "layers L of the deep transition", where=("num_transition_layers",),
           search=Search("int", 2, 2, 4), train=True, annotation=OptionalInt),
    Option("transition_units", None, _optional(_checks.positive_int),
           "width of the transition's inner layers (default: units)",
           where=("num_transition_layers", "transition_mlp"), search=WIDTH_SEARCH,
           train=True, annotation=OptionalInt),
    Option("transition_activation", None, _optional(_keras_activation),
           "phi_l of the transition's inner layers (default: activation)",
           where=("num_transition_layers", "transition_mlp"),
           search=Search("choice", "tanh", values=("tanh", "relu")), train=True,
           annotation=typing.Optional[str]),
    Option("shortcut", None, _optional(_checks.boolean),
           "DT(S): the top transition layer also reads h_{t-1} and x_t",
           where=("shortcut",), annotation=OptionalBool),
    Option("num_layers", None, _optional(_checks.positive_int),
           "stacked levels N", where=("num_layers",), search=Search("int", 2, 2, 4),
           train=True, annotation=OptionalInt),
    Option("skip_connections", None, _optional(_checks.boolean),
           "every level sees the input, the output sees every level",
           where=("skip_connections",), search=Search("boolean", False), train=True,
           annotation=OptionalBool),
    Option("residual_connections", None, _optional(_checks.boolean),
           "a level adds the level below to its output where the widths agree",
           where=("residual_connections",), search=Search("boolean", False), train=True,
           annotation=OptionalBool),
    # --- width and units ---
    Option("units", 128, _checks.positive_int,
           "width of every state, or one per stacked level", search=WIDTH_SEARCH,
           per_level="stack", train=True, annotation=typing.Union[int, list]),
    Option("num_output_layers", None, _optional(_checks.non_negative_int),
           "intermediate layers K of the deep output", where=("num_output_layers",),
           search=Search("int", 1, 1, 3), train=True, annotation=OptionalInt),
    Option("output_units", None, _optional(_checks.positive_int),
           "width of the deep output's layers (default: the top level's units)",
           where=("num_output_layers",), search=WIDTH_SEARCH, train=True,
           annotation=OptionalInt),
    Option("output_hidden_activation", "tanh", _activation,
           "the deep output's units: a Keras activation, maxout or lp",
           where=("num_output_layers",), search=HIDDEN_UNITS_SEARCH, train=True,
           annotation=str),
    Option("output_dropout", 0.0, _checks.rate,
           "dropout on the deep output's intermediate layers",
           where=("num_output_layers",), search=Search("float", 0.0, 0.0, 0.5, step=0.1),
           train=True, annotation=float),
    Option("input_units", None, _optional(_checks.positive_int),
           "width of g's layers (default: the first level's units)", train=True,
           annotation=OptionalInt),
    Option("activation", "tanh", _keras_activation,
           "phi_h of the state (not deep_gru, deep_lstm, dg_lstm: their cells keep tanh)",
           where=("activation",), refused_elsewhere=True, train=True, annotation=str),
    Option("pieces", 2, _checks.positive_int,
           "pre-activations pooled by a maxout or lp unit", train=True, annotation=int),
    # --- regularisation ---
    Option("dropout", 0.0, _checks.rate,
           "variational dropout on each level's input (a number or one per level)",
           search=Search("float", 0.0, 0.0, 0.5, step=0.1), per_level="stack", train=True,
           annotation=typing.Union[float, list]),
    Option("recurrent_dropout", 0.0, _checks.rate,
           "variational dropout on each level's state (a number or one per level)",
           per_level="stack", train=True, annotation=typing.Union[float, list]),
    Option("weight_noise", 0.0, _checks.non_negative_finite,
           "std of Gaussian noise on every kernel in training (the authors' code: 0.075)",
           where=("weight_noise",), refused_elsewhere=True,
           search=Search("float", 0.0, 0.0, 0.1, step=0.025), train=True, annotation=float),
    Option("recurrent_weight_dropout", 0.0, _checks.rate,
           "DropConnect on the recurrent kernels, one mask per batch",
           where=("recurrent_weight_dropout",), refused_elsewhere=True,
           search=Search("float", 0.0, 0.0, 0.5, step=0.1), train=True, annotation=float),
    Option("zoneout", 0.0, _checks.rate,
           "zoneout rate on every state (a number or one per recurrent layer)",
           search=Search("float", 0.0, 0.0, 0.3, step=0.1), per_level="layer", train=True,
           annotation=typing.Union[float, list]),
    Option("layer_norm", False, _checks.boolean,
           "layer normalisation inside every transition layer", where=("layer_norm",),
           refused_elsewhere=True, search=Search("boolean", False), train=True,
           annotation=bool),
    Option("trainable_initial_state", False, _checks.boolean,
           "learn each level's initial state", where=("trainable_initial_state",),
           refused_elsewhere=True, search=Search("boolean", False), train=True,
           annotation=bool),
    Option("state_resets", False, _checks.boolean,
           "a second input `resets` (batch, time): 1 where a new sequence starts"),
    # --- Keras's weight and output penalties, and weight projections ---
    *(Option(name, None, _optional(_weight_object), help_text, train=True,
             annotation=typing.Optional[str])
      for name, help_text in (
          ("kernel_regularizer", "Keras regularizer of every input and feed-forward kernel "
                                 "(cells, g and the deep output), e.g. l2 or l2:1e-4"),
          ("recurrent_regularizer", "Keras regularizer of every recurrent kernel, e.g. l2:1e-4"),
          ("bias_regularizer", "Keras regularizer of every bias, e.g. l1:1e-5"),
          ("activity_regularizer", "Keras regularizer of each recurrent layer's output "
                                   "sequence, e.g. l2:1e-5"),
          ("kernel_constraint", "Keras constraint of every input and feed-forward kernel, "
                                "e.g. max_norm:3"),
          ("recurrent_constraint", "Keras constraint of every recurrent kernel, e.g. max_norm:3"),
          ("bias_constraint", "Keras constraint of every bias, e.g. non_neg"),
      )),
    # --- initialisation ---
    Option("kernel_initializer", "glorot_uniform", _initializer,
           "initializer of every recurrent level's input kernels"),
    Option("recurrent_initializer", "orthogonal", _initializer,
           "a Keras initializer, or sparse (the paper's: 20 non-zero weights per unit, "
           "spectral norm 1)", train=True, annotation=str),
    # --- how the sequence runs ---
    Option("bidirectional", False, _checks.boolean,
           "every level runs forwards and backwards"),
    Option("return_sequences", True, _checks.boolean, "an output at every step"),
    Option("stateful", False, _checks.boolean, "states carry over between batches"),
    Option("batch_size", None, _optional(_checks.positive_int),
           "fixed batch size (needed by `stateful`)"),
    Option("unroll", False, _checks.boolean, "unroll the time loop"),
    Option("masking", False, _checks.boolean,
           "skip padded steps (`mask_value` for frames, id 0 for tokens)"),
    Option("mask_value", 0.0, _number, "the value of a padded frame"),
    Option("seed", None, _seed, "seed of every dropout mask and noise draw"),
)
"""`name: Option` for every argument of `DeepRNNModel` but `architecture`."""

WEIGHT_ARGUMENTS = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint")
"""The options every cell (and, but the recurrent ones, every MLP) takes as they are."""


def weight_arguments(values, recurrent=True, activity=False):
    """The Keras objects of the `WEIGHT_ARGUMENTS` set in `values` (a
    mapping of option values); without the recurrent ones for an MLP; with
    `activity=True`, only `activity_regularizer` (a recurrent layer's)."""
    names = ("activity_regularizer",) if activity else WEIGHT_ARGUMENTS
    return {name: keras_weight_object(name, values[name]) for name in names
            if values.get(name) is not None and (recurrent or "recurrent" not in name)}


TRAIN_FIELDS = tuple(name for name, option in OPTIONS.items() if option.train)
"""The options that are also `TrainConfig` fields and `train` flags."""


def train_fields(defaults=None):
    """`dataclasses.make_dataclass` fields for the options with `train=True`:
    `(name, annotation, field)`, with `defaults` overriding the options' own.

    ```python
    ModelFields = dataclasses.make_dataclass("ModelFields", train_fields({"units": 200}))
    ```
    """
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(TRAIN_FIELDS)
    if unknown:
        raise ValueError(f"`defaults` names options that are not training fields. Received: "
                         f"{sorted(unknown)}; expected names from {list(TRAIN_FIELDS)}")
    return [(name, OPTIONS[name].annotation,
             dataclasses.field(default=defaults.get(name, OPTIONS[name].default)))
            for name in TRAIN_FIELDS]


def searched():
    """The options the tuner searches, in declaration order."""
    return {name: option for name, option in OPTIONS.items() if option.search is not None}


def widths():
    """The options the tuner searches as widths (over `WIDTH_SEARCH`), in
    declaration order: what a parameter budget sets when it derives `units`."""
    return {name: option for name, option in searched().items()
            if option.search == WIDTH_SEARCH}
