"""The whole-sequence route of `DeepRNN` gives `keras.layers.RNN`'s numbers.

On torch, `DeepRNN` runs a `DeepTransitionCell` over a whole sequence as one
autograd function with a hand-written backward pass through time
(`keras_deeprnn/layers/_transition_bptt.py`) where that computes what the
cell asks for, and its traced step everywhere else. Each case runs the same
cell with the same weights in `keras.layers.RNN` and in `DeepRNN` and
compares outputs and the gradients of every weight, on every backend; on
torch it also checks which route ran, so a silent fallback fails the cases
the route is for, and a route taken where it does not apply fails the rest.
"""

import keras
import numpy as np
import pytest
from keras import ops

from layer_pairs import assert_same
from layer_pairs import np_
from layer_pairs import pair
from keras_deeprnn import cells as kc

TORCH = keras.backend.backend() == "torch"
FEATURES, BATCH, STEPS = 3, 2, 5

# Cells the route computes: depth, shortcut, widths, activations, biases, the
# draws it takes from the cell (input dropout, weight noise, DropConnect).
APPLIES = {
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
}
# Cells it does not compute: the traced step runs them.
FALLS_BACK = {
    "layer_norm": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, layer_norm=True),
    "gelu": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, activation="gelu"),
    "float64": lambda: kc.DeepTransitionCell(4, num_transition_layers=2, dtype="float64"),
    "lstm_subclass": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, shortcut=True),
}


@pytest.fixture(params=["python", "script"] if TORCH else ["any"])
def loops(request, monkeypatch):
    """On torch, every case twice: the Python loops a process starts with, and
    TorchScript's, which it switches to after `SCRIPT_AFTER` sequences."""
    if TORCH:
        from keras_deeprnn.layers import _transition_bptt as bptt

        monkeypatch.setattr(bptt, "SCRIPT_AFTER", -1 if request.param == "script" else 10**9)
    return request.param


def _loops_ran(loops):
    """Whether the last sequence ran on the loops the case asked for."""
    import torch

    from keras_deeprnn.layers import _transition_bptt as bptt

    scripted = isinstance(bptt._Sequence.last_loops[0], torch.jit.ScriptFunction)
    return scripted == (loops == "script")


def _pair(rng, make_cell, **kwargs):
    return pair(rng, make_cell, FEATURES, BATCH, **kwargs)


def _routes(layer):
    """What `layer`'s torch fast paths ran: "sequence", "traced" (a graph), None (plain)."""
    cache = layer.__dict__.get("_traced_step_cache")
    entries = cache.graphs.values() if cache is not None else []
    return {"sequence" if e == "sequence" else "traced" if e is not None else None for e in entries}


def _inputs(rng, steps=STEPS, dtype="float32"):
    return ops.convert_to_tensor(rng.normal(size=(BATCH, steps, FEATURES)).astype(dtype))


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", list(APPLIES))
def test_whole_sequence_equals_keras_rnn(name, training, loops, rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionCell(**APPLIES[name]), return_sequences=True)
    assert_same(reference, fast, _inputs(rng), training)
    if TORCH:
        assert _routes(fast) == {"sequence"}, "the whole-sequence route did not run"
        assert _loops_ran(loops)


@pytest.mark.parametrize("kwargs", [
    dict(return_sequences=False),
    dict(return_sequences=True, go_backwards=True),
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, go_backwards=True, return_state=True),
], ids=["last", "backwards", "state", "last_backwards_state"])
def test_layer_options_equal_keras_rnn(kwargs, loops, rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionCell(**APPLIES["dts"]), **kwargs)
    assert_same(reference, fast, _inputs(rng), training=True)
    if TORCH:
        assert _routes(fast) == {"sequence"}
        assert _loops_ran(loops)


def test_stateful_halves_carry_the_state(rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionCell(**APPLIES["dts"]),
                            return_sequences=True, stateful=True)
    x = np_(_inputs(rng, steps=6))
    halves = [np.concatenate([np_(layer(x[:, :3])), np_(layer(x[:, 3:]))], axis=1)
              for layer in (reference, fast)]
    np.testing.assert_allclose(halves[1], halves[0], atol=2e-5)
    fast.reset_state()
    np.testing.assert_allclose(np_(fast(x)), halves[0], atol=2e-5)
    if TORCH:
        assert _routes(fast) == {"sequence"}


@pytest.mark.parametrize("name", list(FALLS_BACK))
def test_cells_it_does_not_compute_run_the_traced_step(name, rng):
    reference, fast = _pair(rng, FALLS_BACK[name], return_sequences=True)
    dtype = fast.cell.variable_dtype
    assert_same(reference, fast, _inputs(rng, dtype=dtype), training=True)
    if TORCH:
        assert _routes(fast) == {"traced"}


def test_a_mask_runs_the_traced_step(rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionCell(**APPLIES["dts"]), return_sequences=True)
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    assert_same(reference, fast, _inputs(rng), training=True, mask=mask)
    if TORCH:
        assert _routes(fast) == {"traced"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["rnn", "dts", "dt3", "activations", "dt_no_bias"])
def test_hand_written_backward_passes_gradcheck(name, masked, loops):
    """Finite differences in float64, for the sequence, the initial state and every weight."""
    import torch

    from keras_deeprnn.layers import _transition_bptt as bptt

    cell = kc.DeepTransitionCell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(v.shape, dtype=torch.float64, generator=generator, requires_grad=True)
               for v in bptt._used_weights(cell)]
    projected = torch.randn((BATCH, 4, cell.recurrent_kernel.shape[1]), dtype=torch.float64,
                            generator=generator, requires_grad=True)
    h0 = torch.randn((BATCH, cell.units), dtype=torch.float64, generator=generator, requires_grad=True)
    mask = (torch.rand((BATCH, cell.units), dtype=torch.float64, generator=generator) > 0.3) / 0.7
    mask = mask.double() if masked else None
    L = cell.num_transition_layers
    plan = bptt._Plan(m=cell._first_width, layers=L, shortcut=cell.shortcut,
                      top=bptt.activation_kind(cell.activation),
                      inner=bptt.activation_kind(cell.transition_activation))

    def run(projected, h0, *weights):
        kernels, biases = weights[1:L], weights[L:] or [None] * (L - 1)
        transition = [t for pair in zip(kernels, biases) for t in pair]
        return bptt._Sequence.apply(plan, projected, h0, mask, weights[0], *transition)

    assert torch.autograd.gradcheck(run, (projected, h0, *weights))
    assert _loops_ran(loops)


def test_frozen_weights_take_the_route(rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionCell(**APPLIES["dts"]), return_sequences=True)
    reference.trainable = fast.trainable = False
    x = _inputs(rng)
    np.testing.assert_allclose(np_(fast(x, training=True)), np_(reference(x, training=True)), atol=2e-5)
    if TORCH:
        assert _routes(fast) == {"sequence"}
