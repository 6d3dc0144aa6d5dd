"""The whole-sequence route of a `DeepTransitionLSTMCell` gives `keras.layers.RNN`'s numbers.

On torch, `DeepRNN` runs a DT(S)-LSTM over a whole sequence as one autograd
function with a hand-written backward pass through time
(`keras_deeprnn/layers/_transition_lstm_bptt.py`) where that computes what
the cell asks for, and its traced step everywhere else. Each case runs the
same cell with the same weights (and, in training, the same seeded draws)
in `keras.layers.RNN` and in `DeepRNN` and compares outputs, final states
and the gradients of every weight, on every backend; on torch it also
checks which route ran, so a silent fallback fails the cases the route is
for, and a route taken where it does not apply fails the rest.
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
# learned h_0 and the draws it takes from the cell (input and recurrent
# dropout, weight noise, DropConnect).
APPLIES = {
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
                      weight_noise=0.2, recurrent_weight_dropout=0.3, trainable_initial_state=True, seed=11),
}


class _TransitionLSTMSubclass(kc.DeepTransitionLSTMCell):
    """A subclass may change the step: the route must not take it."""


# Cells it does not compute: the traced step runs them.
FALLS_BACK = {
    "layer_norm": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, layer_norm=True),
    "gelu": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, activation="gelu"),
    "transition_gelu": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2,
                                                         transition_activation="gelu"),
    "own_tanh": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, activation=lambda a: ops.tanh(a)),
    "float64": lambda: kc.DeepTransitionLSTMCell(4, num_transition_layers=2, dtype="float64"),
    "subclass": lambda: _TransitionLSTMSubclass(4, num_transition_layers=2, shortcut=True),
}


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
def test_whole_sequence_equals_keras_rnn(name, training, rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES[name]), return_sequences=True)
    assert_same(reference, fast, _inputs(rng), training)
    if TORCH:
        assert _routes(fast) == {"sequence"}, "the whole-sequence route did not run"


@pytest.mark.parametrize("kwargs", [
    dict(return_sequences=False),
    dict(return_sequences=True, go_backwards=True),
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, go_backwards=True, return_state=True),
], ids=["last", "backwards", "state", "last_backwards_state"])
@pytest.mark.parametrize("name", ["lstm", "dts", "all_draws"])
def test_layer_options_equal_keras_rnn(name, kwargs, rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES[name]), **kwargs)
    assert_same(reference, fast, _inputs(rng), training=True)
    if TORCH:
        assert _routes(fast) == {"sequence"}


@pytest.mark.parametrize("name", ["lstm", "dt3", "all_draws"])
def test_final_states_are_h_and_c(name, rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES[name]), return_state=True)
    x = _inputs(rng)
    got, want = fast(x, training=True), reference(x, training=True)
    # The output, then h and c.
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape) == (BATCH, APPLIES[name]["units"])
        np.testing.assert_allclose(np_(g), np_(w), atol=2e-5)
    np.testing.assert_allclose(np_(got[1]), np_(got[0]))
    assert np.abs(np_(got[2]) - np_(got[1])).max() > 1e-3  # c is not h
    if TORCH:
        assert _routes(fast) == {"sequence"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("name", ["lstm", "dts", "dt3_no_bias", "all_draws"])
def test_input_and_initial_state_gradients_equal_keras_rnn(name, go_backwards, rng):
    """The gradients `assert_same` does not compare: of the sequence, of a
    given initial h and c, through the final states too."""
    import torch

    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES[name]), return_sequences=True,
                            return_state=True, go_backwards=go_backwards)
    units = APPLIES[name]["units"]
    x = _inputs(rng)
    states = [torch.as_tensor(rng.normal(size=(BATCH, units)).astype("float32")) for _ in range(2)]
    weight = torch.as_tensor(rng.normal(size=(BATCH, STEPS, units)).astype("float32"))
    state_weights = [torch.as_tensor(rng.normal(size=(BATCH, units)).astype("float32")) for _ in states]
    grads = []
    for layer in (reference, fast):
        inputs = [x.detach().clone().requires_grad_(), *(s.clone().requires_grad_() for s in states)]
        y, *last = layer(inputs[0], initial_state=inputs[1:], training=True)
        assert len(last) == len(state_weights)
        loss = (torch.tanh(y) * weight).sum() + sum((torch.tanh(s) * w).sum() for s, w in zip(last, state_weights))
        grads.append(torch.autograd.grad(loss, inputs))
    for got, want in zip(grads[1], grads[0]):
        assert float(want.abs().max()) > 1e-3  # a gradient that is there to compare
        np.testing.assert_allclose(np_(got), np_(want), atol=2e-5)
    assert _routes(fast) == {"sequence"}


def test_stateful_halves_carry_the_state(rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES["dts"]),
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
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES["all_draws"]),
                            return_sequences=True)
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    assert_same(reference, fast, _inputs(rng), training=True, mask=mask)
    if TORCH:
        assert _routes(fast) == {"traced"}


@pytest.mark.backend("torch")
def test_switched_off_it_runs_the_traced_step(rng, monkeypatch):
    from keras_deeprnn.layers import deep_rnn

    monkeypatch.setattr(deep_rnn, "WHOLE_SEQUENCE", False)
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES["dts"]), return_sequences=True)
    assert_same(reference, fast, _inputs(rng), training=True)
    assert _routes(fast) == {"traced"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["lstm", "dts", "dt3", "activations", "linear", "dt3_no_bias"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, the initial h and c
    and every weight, through the outputs and the final states."""
    import torch

    from keras_deeprnn.layers import _transition_bptt
    from keras_deeprnn.layers import _transition_lstm_bptt as bptt

    cell = kc.DeepTransitionLSTMCell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)

    weights = [randn(*v.shape) for v in _transition_bptt._used_weights(cell)]
    projected = randn(BATCH, 4, cell.recurrent_kernel.shape[1])
    h0, c0 = randn(BATCH, cell.units), randn(BATCH, cell.units)
    mask = (torch.rand((BATCH, cell.units), dtype=torch.float64, generator=generator) > 0.3) / 0.7
    mask = mask.double() if masked else None
    L = cell.num_transition_layers
    plan = (cell._first_width, L, cell.shortcut, bptt.activation_kind(cell.activation),
            bptt.activation_kind(cell.transition_activation))

    def run(projected, h0, c0, *weights):
        kernels, biases = weights[1:L], weights[L:] or [None] * (L - 1)
        transition = [t for pair in zip(kernels, biases) for t in pair]
        return bptt._Sequence.apply(plan, projected, h0, c0, mask, weights[0], *transition)

    assert torch.autograd.gradcheck(run, (projected, h0, c0, *weights))


def test_frozen_weights_take_the_route(rng):
    reference, fast = _pair(rng, lambda: kc.DeepTransitionLSTMCell(**APPLIES["dts"]), return_sequences=True)
    reference.trainable = fast.trainable = False
    x = _inputs(rng)
    np.testing.assert_allclose(np_(fast(x, training=True)), np_(reference(x, training=True)), atol=2e-5)
    if TORCH:
        assert _routes(fast) == {"sequence"}
