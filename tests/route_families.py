"""The cell families of `DeepRNN`'s whole-sequence routes, each described once (tests only).

On torch, `DeepRNN` runs these cells over a whole sequence as one autograd
function with a hand-written backward pass through time.

A `Family` names its cell class, the cells its route computes (`applies`:
case name to the cell's arguments) and those it leaves to the traced step
(`falls_back`: case name to a function that makes the cell), which of its
cases the shared tests of `tests/layers/test_whole_sequence_routes.py` use,
and the shape of its state: one `(batch, units)` tensor, one `[h, c]`
pair, one `[h, c]` pair per level or one `[h]` per level (`state`). The float64 gradchecks of each hand-written
backward pass read their cells' arguments from here too.
"""

import dataclasses
import functools

import keras
from keras import ops

from layer_pairs import pair
from keras_deeprnn import cells as kc

TORCH = keras.backend.backend() == "torch"
FEATURES, BATCH, STEPS = 3, 2, 5


@dataclasses.dataclass(frozen=True)
class Family:
    cell: type
    applies: dict
    falls_back: dict
    # The case (or cases) each shared test runs.
    options: tuple
    gradients: tuple
    stateful: str
    mask: str
    switched_off: str
    frozen: str
    # The state: "h" (one tensor), "hc" (one `[h, c]` pair), "hc_per_level"
    # (one `[h, c]` pair a level, counted by the argument `depth`) or
    # "h_per_level" (one `[h]` a level).
    state: str = "h"
    depth: str = "num_transition_layers"
    # On torch, the loops each case asks for: "any" leaves them to the route.
    loops: tuple = ("any",)

    def make(self, name):
        """A function that makes the cell of the case `name` of `applies`."""
        return lambda: self.cell(**self.applies[name])

    def num_states(self, name):
        """How many `(batch, units)` tensors the state of case `name` has."""
        if self.state == "hc_per_level":
            return 2 * self.applies[name][self.depth]
        if self.state == "h_per_level":
            return self.applies[name][self.depth]
        return {"h": 1, "hc": 2}[self.state]

    def structured(self, states):
        """Flat `states` in the cell's structure, as `initial_state` takes them."""
        if self.state == "hc_per_level":
            return [[h, c] for h, c in zip(states[::2], states[1::2])]
        if self.state == "h_per_level":
            return [[h] for h in states]
        return list(states)

    def run_loops(self):
        return self.loops if TORCH else ("any",)


def use_loops(loops, monkeypatch):
    """On torch, `DeepTransitionCell`'s route on the Python loops a process
    starts with ("python") or on TorchScript's ("script"), which it switches
    to after `SCRIPT_AFTER` sequences; "any" leaves that to the route."""
    if loops != "any":
        from keras_deeprnn.layers import _transition_bptt as bptt

        monkeypatch.setattr(bptt, "SCRIPT_AFTER", -1 if loops == "script" else 10**9)


def loops_ran(loops):
    """Whether the last sequence ran on the loops `use_loops` asked for."""
    if loops == "any":
        return True
    import torch

    from keras_deeprnn.layers import _transition_bptt as bptt

    scripted = isinstance(bptt._Sequence.last_loops[0], torch.jit.ScriptFunction)
    return scripted == (loops == "script")


def make_pair(rng, make_cell, **kwargs):
    return pair(rng, make_cell, FEATURES, BATCH, **kwargs)


def routes(layer):
    """What `layer`'s torch fast paths ran: "sequence", "traced" (a graph), None (plain)."""
    cache = layer.__dict__.get("_traced_step_cache")
    entries = cache.graphs.values() if cache is not None else []
    return {"sequence" if e == "sequence" else "traced" if e is not None else None for e in entries}


def inputs(rng, steps=STEPS, dtype="float32"):
    return ops.convert_to_tensor(rng.normal(size=(BATCH, steps, FEATURES)).astype(dtype))


@functools.cache
def _subclass(cell_class):
    """A subclass of `cell_class`, which may change the step: the route must not take it."""
    return type(f"{cell_class.__name__}Subclass", (cell_class,), {})


# Cells the route computes: depth, shortcut, widths, activations, biases, the
# learned h_0 and the draws it takes from the cell (input and recurrent
# dropout, weight noise, DropConnect).
TRANSITION = Family(
    cell=kc.DeepTransitionCell,
    applies={
        "rnn": dict(units=4),
        "dts": dict(units=4, num_transition_layers=2, shortcut=True),
        "dt3": dict(units=4, num_transition_layers=3),
        "dts3_narrow": dict(units=5, num_transition_layers=3, shortcut=True, transition_units=3),
        "activations": dict(units=4, num_transition_layers=3, shortcut=True, activation="sigmoid",
                            transition_activation="relu"),
        "linear_top": dict(units=4, num_transition_layers=2, activation="linear"),
        "no_bias": dict(units=4, num_transition_layers=2, shortcut=True, use_bias=False),
        "dt_no_bias": dict(units=4, num_transition_layers=2, use_bias=False),
        "learned_h0": dict(units=4, num_transition_layers=2, shortcut=True, trainable_initial_state=True),
        "draws": dict(units=4, num_transition_layers=3, shortcut=True, dropout=0.3, weight_noise=0.2,
                      recurrent_weight_dropout=0.3, seed=3),
        "recurrent_dropout": dict(units=4, num_transition_layers=2, shortcut=True, dropout=0.3,
                                  recurrent_dropout=0.3, seed=3),
        "rnn_recurrent_dropout": dict(units=4, recurrent_dropout=0.4, seed=5),
    },
    # Cells it does not compute: the traced step runs them.
    falls_back={
        "layer_norm": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, layer_norm=True),
        "gelu": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, activation="gelu"),
        "float64": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, dtype="float64"),
        "subclass": lambda: _subclass(kc.DeepTransitionCell)(4, num_transition_layers=2, shortcut=True),
    },
    options=("dts",),
    gradients=("rnn", "dts3_narrow", "no_bias", "recurrent_dropout"),
    stateful="dts", mask="dts", switched_off="dts", frozen="dts",
    loops=("python", "script"),
)


HIGHWAY = Family(
    cell=kc.HighwayTransitionCell,
    applies={
        "depth1": dict(units=4, num_transition_layers=1),
        "depth2": dict(units=4, num_transition_layers=2),
        "depth3": dict(units=5, num_transition_layers=3, transform_bias=-1.0),
        "no_bias": dict(units=4, num_transition_layers=3, use_bias=False),
        "no_bias_depth1": dict(units=4, num_transition_layers=1, use_bias=False),
        "relu": dict(units=4, num_transition_layers=2, activation="relu"),
        "sigmoid": dict(units=4, num_transition_layers=2, activation="sigmoid"),
        "linear": dict(units=4, num_transition_layers=2, activation="linear"),
        "learned_h0": dict(units=4, num_transition_layers=2, trainable_initial_state=True),
        "draws": dict(units=4, num_transition_layers=3, dropout=0.3, weight_noise=0.2,
                      recurrent_weight_dropout=0.3, seed=3),
        "recurrent_dropout": dict(units=4, num_transition_layers=3, dropout=0.2, recurrent_dropout=0.4, seed=5),
        "recurrent_dropout_depth1": dict(units=4, num_transition_layers=1, recurrent_dropout=0.4, seed=7),
    },
    falls_back={
        "gelu": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, activation="gelu"),
        "own_tanh": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2,
                                                     activation=lambda a: ops.tanh(a)),
        "float64": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, dtype="float64"),
        "subclass": lambda: _subclass(kc.HighwayTransitionCell)(4, num_transition_layers=2),
    },
    options=("depth1", "recurrent_dropout"),
    gradients=("depth3", "no_bias", "recurrent_dropout"),
    stateful="depth2", mask="recurrent_dropout", switched_off="depth2", frozen="depth2",
)


# The draws of a cell that steps its levels together, and its learned h_0:
# the same cases for the Depth-Gated LSTM and the gated-feedback RNN.
LEVEL_DRAWS = {
    "learned_h0": dict(units=4, num_layers=2, trainable_initial_state=True),
    "dropout": dict(units=4, num_layers=3, dropout=0.3, seed=3),
    "recurrent_dropout": dict(units=4, num_layers=3, recurrent_dropout=0.4, seed=5),
    "recurrent_dropout_levels1": dict(units=4, num_layers=1, dropout=0.3, recurrent_dropout=0.4, seed=7),
    "weight_noise": dict(units=4, num_layers=2, weight_noise=0.2, seed=3),
    "drop_connect": dict(units=4, num_layers=2, recurrent_weight_dropout=0.3, seed=3),
}

DEPTH_GATED = Family(
    cell=kc.DepthGatedLSTMCell,
    applies={
        "levels1": dict(units=4, num_layers=1),
        "levels2": dict(units=4, num_layers=2),
        "levels3": dict(units=5, num_layers=3, unit_forget_bias=False),
        "no_bias": dict(units=4, num_layers=3, use_bias=False),
        "no_bias_levels1": dict(units=4, num_layers=1, use_bias=False),
        **LEVEL_DRAWS,
        "all_draws": dict(units=4, num_layers=3, dropout=0.3, recurrent_dropout=0.4, weight_noise=0.2,
                          recurrent_weight_dropout=0.3, seed=11),
    },
    falls_back={
        "hard_sigmoid": lambda: kc.DepthGatedLSTMCell(4, num_layers=2, recurrent_activation="hard_sigmoid"),
        "relu": lambda: kc.DepthGatedLSTMCell(4, num_layers=2, activation="relu"),
        "own_tanh": lambda: kc.DepthGatedLSTMCell(4, num_layers=2, activation=lambda a: ops.tanh(a)),
        "float64": lambda: kc.DepthGatedLSTMCell(4, num_layers=2, dtype="float64"),
        "subclass": lambda: _subclass(kc.DepthGatedLSTMCell)(4, num_layers=2),
    },
    options=("levels1", "levels3", "all_draws"),
    gradients=("levels1", "levels3", "no_bias", "all_draws"),
    stateful="levels2", mask="all_draws", switched_off="levels2", frozen="levels2",
    state="hc_per_level", depth="num_layers",
)

TRANSITION_LSTM = Family(
    cell=kc.DeepTransitionLSTMCell,
    applies={
        "lstm": dict(units=4, num_transition_layers=1),
        "dts": dict(units=4, num_transition_layers=2, shortcut=True),
        "dt": dict(units=4, num_transition_layers=2),
        "dt3": dict(units=4, num_transition_layers=3),
        "dts3_narrow": dict(units=5, num_transition_layers=3, shortcut=True, transition_units=3),
        "activations": dict(units=4, num_transition_layers=3, shortcut=True, activation="relu",
                            transition_activation="sigmoid"),
        "linear": dict(units=4, num_transition_layers=2, activation="linear", transition_activation="tanh"),
        "no_bias": dict(units=4, num_transition_layers=2, shortcut=True, use_bias=False),
        "dt3_no_bias": dict(units=4, num_transition_layers=3, use_bias=False),
        "lstm_no_bias": dict(units=4, num_transition_layers=1, use_bias=False),
        "learned_h0": dict(units=4, num_transition_layers=2, shortcut=True, trainable_initial_state=True),
        "dropout": dict(units=4, num_transition_layers=2, shortcut=True, dropout=0.3, seed=3),
        "recurrent_dropout": dict(units=4, num_transition_layers=3, recurrent_dropout=0.4, seed=5),
        "lstm_recurrent_dropout": dict(units=4, num_transition_layers=1, dropout=0.3, recurrent_dropout=0.4,
                                       seed=7),
        "weight_noise": dict(units=4, num_transition_layers=3, shortcut=True, weight_noise=0.2, seed=3),
        "drop_connect": dict(units=4, num_transition_layers=2, shortcut=True, recurrent_weight_dropout=0.3,
                             seed=3),
        "all_draws": dict(units=4, num_transition_layers=3, shortcut=True, dropout=0.3, recurrent_dropout=0.4,
                          weight_noise=0.2, recurrent_weight_dropout=0.3, trainable_initial_state=True,
                          seed=11),
    },
    falls_back={
        "layer_norm": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, layer_norm=True),
        "gelu": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, activation="gelu"),
        "transition_gelu": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2,
                                                             transition_activation="gelu"),
        "own_tanh": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2,
                                                      activation=lambda a: ops.tanh(a)),
        "float64": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, dtype="float64"),
        "subclass": lambda: _subclass(kc.DeepTransitionLSTMCell)(4, num_transition_layers=2, shortcut=True),
    },
    options=("lstm", "dts", "all_draws"),
    gradients=("lstm", "dts", "dt3_no_bias", "all_draws"),
    stateful="dts", mask="all_draws", switched_off="dts", frozen="dts",
    state="hc",
)

GATED_FEEDBACK = Family(
    cell=kc.GatedFeedbackCell,
    applies={
        "levels1": dict(units=4, num_layers=1),
        "levels2": dict(units=4, num_layers=2),
        "levels3": dict(units=5, num_layers=3),
        "no_bias": dict(units=4, num_layers=3, use_bias=False),
        "no_bias_levels1": dict(units=4, num_layers=1, use_bias=False),
        "sigmoid": dict(units=4, num_layers=2, activation="sigmoid"),
        "relu": dict(units=4, num_layers=3, activation="relu"),
        "linear": dict(units=4, num_layers=2, activation="linear"),
        **LEVEL_DRAWS,
        "all_draws": dict(units=4, num_layers=3, dropout=0.3, recurrent_dropout=0.4, weight_noise=0.2,
                          recurrent_weight_dropout=0.3, trainable_initial_state=True, seed=11),
    },
    falls_back={
        "gelu": lambda: kc.GatedFeedbackCell(4, num_layers=2, activation="gelu"),
        "own_tanh": lambda: kc.GatedFeedbackCell(4, num_layers=2, activation=lambda a: ops.tanh(a)),
        "float64": lambda: kc.GatedFeedbackCell(4, num_layers=2, dtype="float64"),
        "subclass": lambda: _subclass(kc.GatedFeedbackCell)(4, num_layers=2),
    },
    options=("levels1", "levels3", "all_draws"),
    gradients=("levels1", "levels3", "no_bias", "relu", "all_draws"),
    stateful="levels2", mask="all_draws", switched_off="levels2", frozen="levels2",
    state="h_per_level", depth="num_layers",
)

FAMILIES = {"transition": TRANSITION, "highway": HIGHWAY, "depth_gated": DEPTH_GATED,
            "transition_lstm": TRANSITION_LSTM, "gated_feedback": GATED_FEEDBACK}
