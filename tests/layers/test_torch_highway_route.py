"""The whole-sequence route of a `HighwayTransitionCell` gives `keras.layers.RNN`'s numbers.

On torch, `DeepRNN` runs a Recurrent Highway Network cell over a whole
sequence as one autograd function with a hand-written backward pass through
time (`keras_deeprnn/layers/_highway_bptt.py`) where that computes what the
cell asks for, and its traced step everywhere else. Each case runs the same
cell with the same weights (and, in training, the same seeded draws) in
`keras.layers.RNN` and in `DeepRNN` and compares outputs and the gradients
of every weight, on every backend; on torch it also checks which route ran,
so a silent fallback fails the cases the route is for, and a route taken
where it does not apply fails the rest.
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

# Cells the route computes: depth, biases, activations, the learned h_0 and
# the draws it takes from the cell (input and recurrent dropout, weight
# noise, DropConnect).
APPLIES = {
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
}


class _HighwaySubclass(kc.HighwayTransitionCell):
    """A subclass may change the step: the route must not take it."""


# Cells it does not compute: the traced step runs them.
FALLS_BACK = {
    "gelu": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, activation="gelu"),
    "own_tanh": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, activation=lambda a: ops.tanh(a)),
    "float64": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, dtype="float64"),
    "subclass": lambda: _HighwaySubclass(4, num_transition_layers=2),
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
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES[name]), return_sequences=True)
    assert_same(reference, fast, _inputs(rng), training)
    if TORCH:
        assert _routes(fast) == {"sequence"}, "the whole-sequence route did not run"


@pytest.mark.parametrize("kwargs", [
    dict(return_sequences=False),
    dict(return_sequences=True, go_backwards=True),
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=False, go_backwards=True, return_state=True),
], ids=["last", "backwards", "state", "last_backwards_state"])
@pytest.mark.parametrize("name", ["depth1", "recurrent_dropout"])
def test_layer_options_equal_keras_rnn(name, kwargs, rng):
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES[name]), **kwargs)
    assert_same(reference, fast, _inputs(rng), training=True)
    if TORCH:
        assert _routes(fast) == {"sequence"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("name", ["depth3", "no_bias", "recurrent_dropout"])
def test_input_and_initial_state_gradients_equal_keras_rnn(name, go_backwards, rng):
    """The gradients `assert_same` does not compare: of the sequence and of a given initial state."""
    import torch

    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES[name]), return_sequences=True,
                            go_backwards=go_backwards)
    x = _inputs(rng)
    h0 = torch.as_tensor(rng.normal(size=(BATCH, APPLIES[name]["units"])).astype("float32"))
    weight = torch.as_tensor(rng.normal(size=(BATCH, STEPS, APPLIES[name]["units"])).astype("float32"))
    grads = []
    for layer in (reference, fast):
        inputs = [x.detach().clone().requires_grad_(), h0.clone().requires_grad_()]
        y = layer(inputs[0], initial_state=[inputs[1]], training=True)
        grads.append(torch.autograd.grad((torch.tanh(y) * weight).sum(), inputs))
    for got, want in zip(grads[1], grads[0]):
        assert float(want.abs().max()) > 1e-3  # a gradient that is there to compare
        np.testing.assert_allclose(np_(got), np_(want), atol=2e-5)
    assert _routes(fast) == {"sequence"}


def test_stateful_halves_carry_the_state(rng):
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES["depth2"]),
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
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES["recurrent_dropout"]),
                            return_sequences=True)
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    assert_same(reference, fast, _inputs(rng), training=True, mask=mask)
    if TORCH:
        assert _routes(fast) == {"traced"}


@pytest.mark.backend("torch")
def test_switched_off_it_runs_the_traced_step(rng, monkeypatch):
    from keras_deeprnn.layers import deep_rnn

    monkeypatch.setattr(deep_rnn, "WHOLE_SEQUENCE", False)
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES["depth2"]), return_sequences=True)
    assert_same(reference, fast, _inputs(rng), training=True)
    assert _routes(fast) == {"traced"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("masked", [False, True], ids=["", "recurrent_dropout"])
@pytest.mark.parametrize("name", ["depth1", "depth2", "depth3", "no_bias", "relu", "sigmoid", "linear"])
def test_hand_written_backward_passes_gradcheck(name, masked):
    """Finite differences in float64, for the sequence, the initial state and every weight."""
    import torch

    from keras_deeprnn.layers import _highway_bptt as bptt

    cell = kc.HighwayTransitionCell(**APPLIES[name], dtype="float64")
    cell.build((None, FEATURES))
    generator = torch.Generator().manual_seed(0)
    L, n = cell.num_transition_layers, cell.units
    params = []
    for l in range(L):
        params.append(torch.randn((n, 2 * n), dtype=torch.float64, generator=generator, requires_grad=True))
        params.append(torch.randn((2 * n,), dtype=torch.float64, generator=generator, requires_grad=True)
                      if l > 0 and cell.use_bias else None)
    projected = torch.randn((BATCH, 4, 2 * n), dtype=torch.float64, generator=generator, requires_grad=True)
    h0 = torch.randn((BATCH, n), dtype=torch.float64, generator=generator, requires_grad=True)
    mask = ((torch.rand((BATCH, n), dtype=torch.float64, generator=generator) > 0.3) / 0.7).double()
    mask = mask if masked else None
    kind = bptt.activation_kind(cell.activation)
    inputs = [p for p in params if p is not None]
    assert len(inputs) == len(bptt._used_weights(cell))

    def run(projected, h0, *weights):
        weights = iter(weights)
        return bptt._Sequence.apply(kind, projected, h0, mask, *(None if p is None else next(weights)
                                                                for p in params))

    assert torch.autograd.gradcheck(run, (projected, h0, *inputs))


def test_frozen_weights_take_the_route(rng):
    reference, fast = _pair(rng, lambda: kc.HighwayTransitionCell(**APPLIES["depth2"]), return_sequences=True)
    reference.trainable = fast.trainable = False
    x = _inputs(rng)
    np.testing.assert_allclose(np_(fast(x, training=True)), np_(reference(x, training=True)), atol=2e-5)
    if TORCH:
        assert _routes(fast) == {"sequence"}
