"""Every cell configuration under test, each with its NumPy reference.

A case makes a fresh cell and knows how to compute the cell's output
sequence in NumPy from the cell's own weights (the equations of its class docstring).
"""

import dataclasses

import numpy as np

import reference as ref
from keras_deeprnn import build_model
from keras_deeprnn import cells
from keras_deeprnn import layers

INPUT_DIM = 3
UNITS = 4
OUTPUT_DIM = 2


def weights_of(layer):
    return {v.name: np.asarray(v.numpy(), dtype=np.float64) for v in layer.weights}


@dataclasses.dataclass
class Case:
    id: str
    make: object          # () -> cell
    reference: object     # (cell, x, get=weights_of) -> outputs (batch, time, output)
    output_size: int
    param_count: int      # counted by hand from the docstrings' weight shapes
    # Absolute tolerance of the float32 layer against the float64 reference.
    # Layer normalisation over 3 units divides by a standard deviation that
    # can be a few hundredths, which multiplies float32's rounding tenfold.
    atol: float = 1e-5


def _dt(**kw):
    kw.setdefault("bias_initializer", "random_normal")
    return lambda: cells.DeepTransitionCell(UNITS, **kw)


def _dt_ref(cell, x, get=weights_of, wrap=ref.plain):
    return ref.dt_sequence(
        x, get(cell), cell.units, wrap=wrap,
        num_transition_layers=cell.num_transition_layers, shortcut=cell.shortcut,
        activation=cell.activation.__name__,
        transition_activation=cell.transition_activation.__name__,
    )


def _dg(num_layers, **kw):
    return lambda: cells.DepthGatedLSTMCell(
        UNITS, num_layers=num_layers, peephole_initializer="random_normal",
        bias_initializer="random_normal", **kw,
    )


def _dg_ref(cell, x, get=weights_of, wrap=ref.plain):
    w = get(cell)
    per_level = [
        {k: w[f"{k}_{l}"] for k in ("kernel", "recurrent_kernel", "peephole", "bias")}
        for l in range(cell.num_layers)
    ]
    return ref.dg_lstm_sequence(x, per_level, cell.units, cell.num_layers, wrap=wrap,
                                h0=w.get("initial_state", 0.0))


def _dt_lstm(**kw):
    return lambda: cells.DeepTransitionLSTMCell(UNITS, **kw)


def _dt_lstm_ref(cell, x, get=weights_of, wrap=ref.plain):
    return ref.dt_lstm_sequence(
        x, get(cell), cell.units, wrap=wrap, num_transition_layers=cell.num_transition_layers,
        shortcut=cell.shortcut, transition_activation=cell.transition_activation.__name__,
    )


def _rhn(layers_, **kw):
    return lambda: cells.HighwayTransitionCell(UNITS, num_transition_layers=layers_,
                                               transform_bias=-1.0, **kw)


def _rhn_ref(cell, x, get=weights_of):
    return ref.rhn_sequence(x, get(cell), cell.units, cell.num_transition_layers)


def _gf(num_layers, **kw):
    return lambda: cells.GatedFeedbackCell(UNITS, num_layers=num_layers,
                                           bias_initializer="random_normal", **kw)


def _gf_ref(cell, x, get=weights_of):
    return ref.gated_feedback_sequence(x, get(cell), cell.units, cell.num_layers)


def _stacked(skip):
    return lambda: cells.StackedCells(
        [cells.DeepTransitionCell(UNITS, bias_initializer="random_normal"),
         cells.DeepTransitionCell(UNITS, num_transition_layers=2, shortcut=True,
                                  bias_initializer="random_normal")],
        skip_connections=skip,
    )


def _stacked_ref(cell, x, get=weights_of):
    outputs, level_input = [], x
    for level, sub in enumerate(cell.cells):
        if cell.skip_connections and level > 0:
            level_input = np.concatenate([x, outputs[-1]], axis=-1)
        outputs.append(_dt_ref(sub, level_input, get))
        level_input = outputs[-1]
    return np.concatenate(outputs, axis=-1) if cell.skip_connections else outputs[-1]


def _deep_output(hidden_activation, num_layers=1):
    return lambda: cells.DeepOutputCell(
        cells.DeepTransitionCell(UNITS, num_transition_layers=2, shortcut=True,
                                 bias_initializer="random_normal"),
        layers.DeepOutput(OUTPUT_DIM, num_layers=num_layers, hidden_units=3,
                          hidden_activation=hidden_activation, activation="sigmoid",
                          bias_initializer="random_normal"),
    )


def _deep_output_ref(cell, x, get=weights_of):
    h = _dt_ref(cell.cell, x, get)
    head = cell.output_layer
    acts = [head.hidden_activation if isinstance(head.hidden_activation, str)
            else head.hidden_activation.__name__] * head.num_layers + ["sigmoid"]
    widths = [head.hidden_units or head.units] * head.num_layers + [head.units]
    return ref.mlp(h, get(head), widths, acts, head.pieces)


def _zoneout(make, rate=0.3):
    return lambda: cells.ZoneoutCell(make(), zoneout=rate, seed=3)


def _wrapped_ref(inner_ref, wrap):
    """The reference of the wrapped cell, its steps wrapped by `wrap(cell)`."""
    def reference(cell, x, get=weights_of):
        inner = cell.cell
        while isinstance(inner, (cells.ZoneoutCell, cells.StateResetCell)):
            inner = inner.cell
        return inner_ref(inner, x, get, wrap=wrap(cell))
    return reference


CASES = [
    Case("rnn", _dt(), _dt_ref, UNITS, 32),
    Case("dt_L2", _dt(num_transition_layers=2), _dt_ref, UNITS, 52),
    Case("dt_L3_relu", _dt(num_transition_layers=3, transition_activation="relu"), _dt_ref, UNITS, 72),
    Case("dts_L2", _dt(num_transition_layers=2, shortcut=True), _dt_ref, UNITS, 80),
    Case("dts_L2_no_bias", _dt(num_transition_layers=2, shortcut=True, use_bias=False), _dt_ref,
         UNITS, 72),
    Case("dts_L3_narrow", _dt(num_transition_layers=3, shortcut=True, transition_units=3), _dt_ref, UNITS, 80),
    Case("dg_lstm_1", _dg(1), _dg_ref, UNITS, 176),
    Case("dg_lstm_3", _dg(3), _dg_ref, UNITS, 544),
    # Every level's h_0 learned: one row of initial_state per level.
    Case("dg_lstm_3_h0", _dg(3, trainable_initial_state=True), _dg_ref, UNITS, 544 + 3 * UNITS),
    Case("dts_L3_layernorm_h0", _dt(num_transition_layers=3, shortcut=True, transition_units=3,
                                    layer_norm=True, trainable_initial_state=True),
         _dt_ref, UNITS, 80 + 2 * (3 + 3 + 4) + 4, atol=1e-4),
    Case("lstm_L1", _dt_lstm(num_transition_layers=1), _dt_lstm_ref, UNITS, 128),
    Case("dts_lstm_L2", _dt_lstm(num_transition_layers=2, shortcut=True), _dt_lstm_ref, UNITS, 224),
    # Without biases: the top layer of the DT-LSTM has no forget-gate bias to start at 1.
    Case("dt_lstm_L3_no_bias", _dt_lstm(num_transition_layers=3, use_bias=False), _dt_lstm_ref,
         UNITS, 108),
    Case("rhn_L1", _rhn(1), _rhn_ref, UNITS, 64),
    Case("rhn_L3_h0", _rhn(3, trainable_initial_state=True), _rhn_ref, UNITS, 148),
    Case("gf_rnn_1", _gf(1), _gf_ref, UNITS, 40),
    Case("gf_rnn_3", _gf(3), _gf_ref, UNITS, 350),
    Case("gf_rnn_3_h0", _gf(3, trainable_initial_state=True), _gf_ref, UNITS, 350 + 3 * UNITS),
    Case("stacked", _stacked(False), _stacked_ref, UNITS, 120),
    Case("stacked_skip", _stacked(True), _stacked_ref, 2 * UNITS, 144),
    Case("zoneout_dts_L2", _zoneout(_dt(num_transition_layers=2, shortcut=True)),
         _wrapped_ref(_dt_ref, lambda c: ref.zoneout(c.zoneout)), UNITS, 80),
    Case("zoneout_dg_lstm_2", _zoneout(_dg(2)),
         _wrapped_ref(_dg_ref, lambda c: ref.zoneout(c.zoneout, lambda s: s[-1][0])), UNITS, 360),
    # The reset flag is the last of the INPUT_DIM features: the cell reads 2.
    Case("reset_dts_lstm_h0",
         lambda: cells.StateResetCell(_dt_lstm(num_transition_layers=2, shortcut=True,
                                               trainable_initial_state=True)()),
         _wrapped_ref(_dt_lstm_ref, lambda c: ref.reset()), UNITS, 204 + 4),
    Case("reset_zoneout_rnn",
         lambda: cells.StateResetCell(_zoneout(_dt())()),
         _wrapped_ref(_dt_ref, lambda c: ref.reset(ref.zoneout(c.cell.zoneout))), UNITS, 28),
    Case("dots_tanh", _deep_output("tanh"), _deep_output_ref, OUTPUT_DIM, 103),
    Case("dots_maxout", _deep_output("maxout"), _deep_output_ref, OUTPUT_DIM, 118),
    Case("dots_lp", _deep_output("lp", num_layers=2), _deep_output_ref, OUTPUT_DIM, 148),
]
CASE_IDS = [c.id for c in CASES]


# === Whole models: the deep input g, the levels and the deep output ▷ ===

def _activation_name(activation):
    return activation if isinstance(activation, str) else activation.__name__


def model_reference(model, x, level_masks=None, output_masks=None):
    """A transition-cell model (`build_model`: rnn, di/dt/dts/do/dot/dots_rnn,
    srnn without skips) in NumPy from its own weights: g, each level's DT,
    then ▷. In training, `level_masks[l]` = (input mask, recurrent mask) of
    level l and `output_masks` those of ▷'s hidden layers."""
    h = x
    names = [layer.name for layer in model.layers]
    if "deep_input" in names:
        g = model.get_layer("deep_input")
        h = ref.mlp(h, weights_of(g), [g.units] * g.num_layers,
                    [_activation_name(g.activation)] * g.num_layers, g.pieces)
    levels = sorted(n for n in names if n.startswith("level_"))
    for l, name in enumerate(levels):
        cell = model.get_layer(name).cell
        wrap = ref.masked(*level_masks[l]) if level_masks else ref.plain
        h = _dt_ref(cell, h, wrap=wrap)
    head = model.get_layer("deep_output")
    widths = [head.hidden_units or head.units] * head.num_layers + [head.units]
    acts = [_activation_name(head.hidden_activation)] * head.num_layers + [_activation_name(head.activation)]
    return ref.mlp(h, weights_of(head), widths, acts, head.pieces,
                   masks=None if output_masks is None else [*output_masks, None])


MODEL_CASES = {
    "rnn": dict(architecture="rnn"),
    "di_rnn": dict(architecture="di_rnn"),
    "di_rnn_relu_2": dict(architecture="di_rnn", num_input_layers=2, input_activation="relu",
                          input_units=5),
    "di_rnn_maxout": dict(architecture="di_rnn", input_activation="maxout"),
    "dots_rnn": dict(architecture="dots_rnn", output_hidden_activation="lp"),
    "srnn_3": dict(architecture="srnn", num_layers=3, units=[4, 5, 3]),
}


def make_model(case_id, **overrides):
    kwargs = dict(input_dim=INPUT_DIM, output_dim=OUTPUT_DIM, units=UNITS,
                  output_activation="sigmoid", seed=0)
    kwargs.update(MODEL_CASES[case_id])
    kwargs.update(overrides)
    return build_model(**kwargs)
