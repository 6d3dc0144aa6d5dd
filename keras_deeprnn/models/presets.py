"""The named architectures: each one a row of configuration, not a class.

A row (`Architecture`) is the single place that says what a named deep RNN
is: the cell factory that builds its recurrent layer, the depth arguments it
fixes and the ones it leaves free, and (optionally) its own search ranges.
What a row supports follows from those: an option of `options.OPTIONS`
exists on a row when the row has everything the option's `where` names.

Rows from outside the package join the same table:

```python
factory = kdr.models.CellFactory("toy", lambda units, depth, options, cell_args:
                                 ToyCell(units, **cell_args))
kdr.models.register_architecture(
    "toy_rnn", factory, title="toy RNN", equation="h_t = tanh(x_t U + h_{t-1} W)",
    free=("num_output_layers",), num_output_layers=1)
kdr.build_model("toy_rnn", input_dim=3, output_dim=3)
```
"""

import dataclasses
import types
import typing

import keras

from keras_deeprnn import _checks
from keras_deeprnn.cells import DeepTransitionCell
from keras_deeprnn.cells import DeepTransitionLSTMCell
from keras_deeprnn.cells import DepthGatedLSTMCell
from keras_deeprnn.cells import GatedFeedbackCell
from keras_deeprnn.cells import HighwayTransitionCell
from keras_deeprnn.cells import StateResetCell
from keras_deeprnn.cells import ZoneoutCell
from keras_deeprnn.layers import DeepRNN
from keras_deeprnn.layers import FusedGRU
from keras_deeprnn.layers import FusedLSTM
from keras_deeprnn.models.options import OPTIONS

DEPTH_DEFAULTS = {
    "num_input_layers": 0,
    "num_transition_layers": 1,
    "shortcut": False,
    "num_output_layers": 0,
    "num_layers": 1,
    "skip_connections": False,
    "residual_connections": False,
}
# What every cell's constructor takes, beside `units`; the `cell_options` of
# a cell factory are added when they are set.
CELL_ARGUMENTS = ("seed", "kernel_initializer", "recurrent_initializer", "dropout",
                  "recurrent_dropout")


@dataclasses.dataclass(frozen=True)
class CellFactory:
    """How an architecture builds the recurrent layer of one level.

    `make_cell(units, depth, options, cell_args)` returns the cell of one
    level: `units` its width, `depth` the resolved depth arguments, `options`
    the model's option values (read-only), `cell_args` the keyword arguments
    a cell takes (`seed`, `kernel_initializer`, `recurrent_initializer`, this
    level's `dropout` and `recurrent_dropout`, and each of `cell_options`
    that is set). The cell is run by `keras_deeprnn.layers.DeepRNN` (with
    zoneout and state resets wrapped around it when asked for).

    An option's `where` can name both kinds of what a factory offers: its
    `cell_options` and its `capabilities`.

    Attributes:
        kind: a short name of the cell, for messages.
        make_cell: see above.
        cell_options: options of `OPTIONS` that the cell takes as keyword
            arguments of the same name: `"weight_noise"`,
            `"recurrent_weight_dropout"`, `"layer_norm"`,
            `"trainable_initial_state"`.
        capabilities: what the cell is, beyond its arguments:
            `"transition_mlp"` (⊕ is an MLP with its own width and activation,
            so `transition_units` and `transition_activation` exist) and
            `"activation"` (`make_cell` passes the option `activation`, φ_h,
            to the cell; without it a non-default `activation` is refused).
        levels_in_one_cell: the cell steps all `num_layers` levels together
            (one recurrent layer, one width).
        make_layer: optional `make_layer(units, cell_args, name, **rnn_args)`,
            a faster layer used when no wrapper needs the cell's step (Keras's
            fused GRU and LSTM).
    """

    kind: str
    make_cell: typing.Callable
    cell_options: frozenset = frozenset()
    capabilities: frozenset = frozenset()
    levels_in_one_cell: bool = False
    make_layer: typing.Callable | None = None

    def __post_init__(self):
        for field in ("cell_options", "capabilities"):
            given = getattr(self, field)
            if isinstance(given, str):
                raise ValueError(f"`{field}` must be a collection of names, not one string. "
                                 f"Received: {field}={given!r}")
            object.__setattr__(self, field, frozenset(given))
        unknown = sorted(self.cell_options - set(OPTIONS))
        if unknown:
            raise ValueError(
                "`cell_options` must name options of keras_deeprnn.models.OPTIONS, which "
                f"are passed to the cell. Received: cell_options={sorted(self.cell_options)}; "
                f"not options: {unknown}")

    def layer(self, units, depth, options, cell_args, rnn_args, name, zoneout=0.0,
              state_resets=False):
        """The recurrent layer of one level."""
        if self.make_layer is not None and not (zoneout or state_resets):
            return self.make_layer(units, cell_args, name=name, **rnn_args)
        cell = self.make_cell(units, depth, options, cell_args)
        if zoneout:
            cell = ZoneoutCell(cell, zoneout=zoneout, seed=cell_args.get("seed"))
        if state_resets:
            cell = StateResetCell(cell)
        return DeepRNN(cell, name=name, **rnn_args)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One named deep RNN.

    `fixed` holds the depth arguments that define it (passing another value
    is an error); `defaults` the ones it leaves free, with their defaults.
    `cell_factory` builds its recurrent layers; `search` overrides the
    tuner's range of an option on this row (`{"num_layers": Search(...)}`).
    """

    name: str
    cell_factory: CellFactory
    title: str
    equation: str
    fixed: typing.Mapping
    defaults: typing.Mapping
    search: typing.Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for field in ("fixed", "defaults", "search"):
            object.__setattr__(self, field, types.MappingProxyType(dict(getattr(self, field))))

    @property
    def free(self):
        return tuple(self.defaults)

    def has(self, requirement):
        """Whether this row has a depth argument free, or a cell option or
        capability of its cell factory, of that name."""
        factory = self.cell_factory
        return requirement in self.defaults or requirement in factory.cell_options \
            or requirement in factory.capabilities

    def supports(self, option):
        """Whether `option` (an `options.Option`) exists on this row."""
        return all(self.has(requirement) for requirement in option.where)

    def search_range(self, option):
        """The tuner's range of `option` on this row."""
        return self.search.get(option.name, option.search)

    def num_recurrent_layers(self, depth):
        return 1 if self.cell_factory.levels_in_one_cell else depth["num_layers"]

    def depth(self, **given):
        """The paper's depth of one step, the nonlinear layers from `x_t` to
        `y_t`, with the depth arguments `given` (`None`: this row's value):

        ```python
        depth = num_input_layers + num_layers * num_transition_layers + num_output_layers + 1
        ```
        """
        depth = self.resolve(**given)
        return (depth["num_input_layers"] + depth["num_layers"] * depth["num_transition_layers"]
                + depth["num_output_layers"] + 1)

    def resolve(self, **given):
        """The full set of depth arguments, with the user's values checked."""
        config = dict(DEPTH_DEFAULTS)
        config.update(self.defaults)
        for key, value in given.items():
            if value is None:
                continue
            if key in self.fixed and value != self.fixed[key]:
                where = [a.name for a in ARCHITECTURES.values() if key in a.defaults]
                if where:
                    rows = f"Architectures where `{key}` is free: {', '.join(where)}."
                else:  # no row leaves it free: name the rows that fix it to this value
                    where = [a.name for a in ARCHITECTURES.values()
                             if a.fixed.get(key) == value]
                    rows = (f"Architectures with `{key}`={value!r}: {', '.join(where)}."
                            if where else f"No architecture has `{key}`={value!r}.")
                raise ValueError(
                    f"Architecture '{self.name}' fixes `{key}`={self.fixed[key]!r}. "
                    f"Received: {key}={value!r}. {rows}"
                )
            config[key] = value
        config.update(self.fixed)
        return config


ARCHITECTURES = {}


def register_architecture(name, cell_factory, title, equation, free=(), search=None,
                          **values):
    """Add a row to `ARCHITECTURES` and return it.

    `free` names the depth arguments the row leaves free; `values` sets the
    defaults of those and the values of the fixed ones (the rest keep
    `DEPTH_DEFAULTS`). Registering a name again replaces the row, so a module
    can be re-imported.

    ```python
    register_architecture("dts_rnn", TRANSITION, "DT(S)-RNN", "h_t = ...",
                          free=("num_transition_layers",), num_transition_layers=2,
                          shortcut=True)
    ```
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"`name` must be a Python identifier, as the command line and the tuner use it. "
            f"Received: name={name!r}")
    if not isinstance(cell_factory, CellFactory):
        raise ValueError(
            "`cell_factory` must be a `keras_deeprnn.models.CellFactory`. "
            f"Received: cell_factory={cell_factory!r}")
    for key in (*free, *values):
        _checks.one_of("free" if key in free else key, key, DEPTH_DEFAULTS)
    value = lambda key: values.get(key, DEPTH_DEFAULTS[key])  # noqa: E731
    fixed = {k: value(k) for k in DEPTH_DEFAULTS if k not in free}
    row = Architecture(name, cell_factory, title, equation, fixed,
                       {k: value(k) for k in free}, dict(search or {}))
    ARCHITECTURES[name] = row
    return row


def get(name):
    if name not in ARCHITECTURES:
        raise ValueError(
            f"Unknown `architecture`. Received: architecture={name!r}. "
            f"Expected one of: {', '.join(ARCHITECTURES)}."
        )
    return ARCHITECTURES[name]


# ---------------------------------------------------------------------------
# The cells of the built-in rows
# ---------------------------------------------------------------------------


def _transition_cell(cell_class):
    def make_cell(units, depth, options, cell_args):
        return cell_class(
            units, num_transition_layers=depth["num_transition_layers"],
            shortcut=depth["shortcut"], transition_units=options["transition_units"],
            activation=options["activation"],
            transition_activation=options["transition_activation"], **cell_args)
    return make_cell


_NOISE = ("weight_noise", "recurrent_weight_dropout")

TRANSITION = CellFactory(
    "transition", _transition_cell(DeepTransitionCell),
    cell_options={*_NOISE, "layer_norm", "trainable_initial_state"},
    capabilities={"transition_mlp", "activation"})
TRANSITION_LSTM = CellFactory(
    "transition_lstm", _transition_cell(DeepTransitionLSTMCell),
    cell_options={*_NOISE, "layer_norm", "trainable_initial_state"},
    capabilities={"transition_mlp", "activation"})
HIGHWAY = CellFactory(
    "highway",
    lambda units, depth, options, cell_args: HighwayTransitionCell(
        units, num_transition_layers=depth["num_transition_layers"],
        activation=options["activation"], **cell_args),
    cell_options={*_NOISE, "trainable_initial_state"}, capabilities={"activation"})
GATED_FEEDBACK = CellFactory(
    "gated_feedback",
    lambda units, depth, options, cell_args: GatedFeedbackCell(
        units, num_layers=depth["num_layers"], activation=options["activation"], **cell_args),
    cell_options={*_NOISE, "trainable_initial_state"}, capabilities={"activation"},
    levels_in_one_cell=True)
DEPTH_GATED_LSTM = CellFactory(
    "dg_lstm",
    lambda units, depth, options, cell_args: DepthGatedLSTMCell(
        units, num_layers=depth["num_layers"], **cell_args),
    cell_options={*_NOISE, "trainable_initial_state"}, levels_in_one_cell=True)
# Keras's own layers: fused when nothing needs the step, their cells otherwise.
GRU = CellFactory(
    "gru", lambda units, depth, options, cell_args: keras.layers.GRUCell(units, **cell_args),
    make_layer=lambda units, cell_args, **rnn_args: FusedGRU(units, **cell_args, **rnn_args))
LSTM = CellFactory(
    "lstm", lambda units, depth, options, cell_args: keras.layers.LSTMCell(units, **cell_args),
    make_layer=lambda units, cell_args, **rnn_args: FusedLSTM(units, **cell_args, **rnn_args))


_row = register_architecture
_row("rnn", TRANSITION, "conventional RNN",
     "h_t = φ(h_{t-1} W + x_t U + b);  y_t = ψ(h_t V + c)")
_row("di_rnn", TRANSITION, "deep input-to-hidden RNN",
     "h_t = φ(h_{t-1} W + g(x_t) U + b), g an MLP", ("num_input_layers",), num_input_layers=1)
_row("dt_rnn", TRANSITION, "deep transition RNN (DT-RNN)",
     "h_t = MLP_L([h_{t-1}, x_t])", ("num_transition_layers",), num_transition_layers=2)
_row("dts_rnn", TRANSITION, "deep transition RNN with shortcuts (DT(S)-RNN)",
     "h_t = φ(MLP_{L-1}([h_{t-1}, x_t]) W_L + h_{t-1} W̄ + x_t Ū + b_L)",
     ("num_transition_layers",), num_transition_layers=2, shortcut=True)
_row("do_rnn", TRANSITION, "deep output RNN (DO-RNN)",
     "h_t = φ(h_{t-1} W + x_t U + b);  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
     ("num_output_layers",), num_output_layers=1)
_row("dot_rnn", TRANSITION, "deep transition + deep output (DOT-RNN)",
     "h_t = MLP_L([h_{t-1}, x_t]);  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
     ("num_transition_layers", "num_output_layers"), num_transition_layers=2,
     num_output_layers=1)
_row("dots_rnn", TRANSITION, "deep transition with shortcuts + deep output (DOT(S)-RNN)",
     "DT(S) transition;  y_t = ψ_0(MLP_K(h_t) V_0 + c_0)",
     ("num_transition_layers", "num_output_layers"), num_transition_layers=2,
     num_output_layers=1, shortcut=True)
_row("dots_lstm", TRANSITION_LSTM, "LSTM with a DT(S) transition + deep output",
     "[i, f, g, o] = DT(S)-MLP([h_{t-1}, x_t]);  c_t = f ⊙ c_{t-1} + i ⊙ g;  y_t = ▷ h_t",
     ("num_transition_layers", "num_output_layers"), num_transition_layers=2,
     num_output_layers=1, shortcut=True)
_row("rhn", HIGHWAY, "Recurrent Highway Network (highway deep transition)",
     "s_l = tanh(s_{l-1} R_H,l + [l=1] x_t W_H) ⊙ t_l + s_{l-1} ⊙ (1 - t_l);  h_t = s_L",
     ("num_transition_layers",), num_transition_layers=3)
_row("srnn", TRANSITION, "stacked RNN (sRNN)",
     "h^l_t = φ(h^l_{t-1} W_l + h^{l-1}_t U_l + b_l), l = 1..N",
     ("num_layers", "skip_connections", "residual_connections"), num_layers=2)
_row("gf_rnn", GATED_FEEDBACK, "gated-feedback RNN (GF-RNN)",
     "h^j_t = tanh(h^{j-1}_t W^j + Σ_i g^{i→j} h^i_{t-1} U^{i→j} + b^j), g global reset gates",
     ("num_layers",), num_layers=3)
_row("deep_gru", GRU, "stacked GRU",
     "h^l_t = GRU(h^{l-1}_t, h^l_{t-1}), l = 1..N",
     ("num_layers", "skip_connections", "residual_connections"), num_layers=2)
_row("deep_lstm", LSTM, "stacked LSTM",
     "(h^l_t, c^l_t) = LSTM(h^{l-1}_t, h^l_{t-1}, c^l_{t-1}), l = 1..N",
     ("num_layers", "skip_connections", "residual_connections"), num_layers=2)
_row("dg_lstm", DEPTH_GATED_LSTM, "Depth-Gated LSTM",
     "c^l_t = d ⊙ c^{l-1}_t + f ⊙ c^l_{t-1} + i ⊙ tanh(...), d the depth gate",
     ("num_layers",), num_layers=2)
del _row
