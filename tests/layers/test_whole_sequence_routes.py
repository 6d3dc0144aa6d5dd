"""The whole-sequence routes of `DeepRNN` give `keras.layers.RNN`'s numbers.

On torch, `DeepRNN` runs a `DeepTransitionCell`
(`keras_deeprnn/layers/_transition_bptt.py`), a `DeepTransitionLSTMCell`
(`_transition_lstm_bptt.py`), a `HighwayTransitionCell` (`_highway_bptt.py`),
a `DepthGatedLSTMCell` (`_depth_gated_bptt.py`) or a `GatedFeedbackCell`
(`_gated_feedback_bptt.py`) over a whole sequence as one autograd function
with a hand-written backward pass through time where that computes what the
cell asks for, and its traced step everywhere else. Each case runs the same
cell with the same weights (and, in training, the same seeded draws) in
`keras.layers.RNN` and in `DeepRNN` and compares outputs, final states and
the gradients of every weight, every case on torch and TensorFlow and each
family's first case on JAX (where these cells run the same split step as on
TensorFlow); on torch it also checks which route ran, so a silent fallback
fails the cases the route is for, and a route taken where it does not apply
fails the rest. The `DeepTransitionCell` cases the route is for run twice on
torch: on the Python loops a process starts with and on TorchScript's.

The families, their cases and the shape of their states are described once
in `tests/route_families.py`; the float64 gradchecks of each backward pass
are in `test_torch_route.py`, `test_torch_transition_lstm_route.py`,
`test_torch_highway_route.py`, `test_torch_depth_gated_route.py` and
`test_torch_gated_feedback_route.py`.
"""

import keras
import numpy as np
import pytest
from keras import ops

from layer_pairs import LAYER_OPTIONS
from layer_pairs import assert_same
from layer_pairs import np_
from route_families import BATCH
from route_families import FAMILIES
from route_families import STEPS
from route_families import TORCH
from route_families import inputs
from route_families import loops_ran
from route_families import make_pair
from route_families import routes
from route_families import use_loops

JAX = keras.backend.backend() == "jax"


def _cases(names, loops=False, first_on_jax=False):
    """`(family, name)` for every family and each of its cases `names(family)`,
    with, where `loops`, each of the loops the family's cases run on.

    With `first_on_jax`, JAX runs each family's first case only. Off torch
    there is no route: `DeepRNN` runs these cells as `project_inputs` before
    Keras's loop and `recurrent_step` inside it, the same Keras ops on JAX
    as on TensorFlow, which runs every case of the matrix at a seventh of
    JAX's cost (JAX compiles the loop of each eager call). JAX's loop is
    still held to `keras.layers.RNN` for each family, and for every case of
    `tests/cases.py` in `test_fast_paths.py`."""
    return [pytest.param(family, name, *([run] if loops else []),
                         id="-".join([key, name] + ([run] if loops and run != "any" else [])))
            for key, family in FAMILIES.items()
            for name in _first(names(family), first_on_jax and JAX)
            for run in (family.run_loops() if loops else [None])]


def _first(names, first_only):
    names = list(names)
    return names[:1] if first_only else names


def _families():
    return [pytest.param(family, id=key) for key, family in FAMILIES.items()]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("family, name, loops",
                         _cases(lambda f: list(f.applies), loops=True, first_on_jax=True))
def test_whole_sequence_equals_keras_rnn(family, name, loops, training, rng, monkeypatch):
    use_loops(loops, monkeypatch)
    reference, fast = make_pair(rng, family.make(name), return_sequences=True)
    assert_same(reference, fast, inputs(rng), training)
    if TORCH:
        assert routes(fast) == {"sequence"}, "the whole-sequence route did not run"
        assert loops_ran(loops)


@pytest.mark.parametrize("kwargs", LAYER_OPTIONS)
@pytest.mark.parametrize("family, name, loops",
                         _cases(lambda f: f.options, loops=True, first_on_jax=True))
def test_layer_options_equal_keras_rnn(family, name, loops, kwargs, rng, monkeypatch):
    use_loops(loops, monkeypatch)
    reference, fast = make_pair(rng, family.make(name), **kwargs)
    assert_same(reference, fast, inputs(rng), training=True)
    if TORCH:
        assert routes(fast) == {"sequence"}
        assert loops_ran(loops)


@pytest.mark.backend("torch")
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("family, name, loops", _cases(lambda f: f.gradients, loops=True))
def test_input_and_initial_state_gradients_equal_keras_rnn(family, name, loops, go_backwards, rng,
                                                          monkeypatch):
    """The gradients `assert_same` does not compare: of the sequence and of
    a given initial state (every level's h and c where there are levels),
    through the outputs and the final states."""
    import torch

    use_loops(loops, monkeypatch)
    reference, fast = make_pair(rng, family.make(name), return_sequences=True, return_state=True,
                                go_backwards=go_backwards)
    units = family.applies[name]["units"]
    x = inputs(rng)
    states = [torch.as_tensor(rng.normal(size=(BATCH, units)).astype("float32"))
              for _ in range(family.num_states(name))]
    weight = torch.as_tensor(rng.normal(size=(BATCH, STEPS, units)).astype("float32"))
    state_weights = [torch.as_tensor(rng.normal(size=(BATCH, units)).astype("float32")) for _ in states]
    grads = []
    for layer in (reference, fast):
        leaves = [x.detach().clone().requires_grad_(), *(s.clone().requires_grad_() for s in states)]
        y, *last = keras.tree.flatten(layer(leaves[0], initial_state=family.structured(leaves[1:]),
                                            training=True))
        assert len(last) == len(state_weights)
        loss = (torch.tanh(y) * weight).sum() + sum((torch.tanh(s) * w).sum() for s, w in zip(last, state_weights))
        grads.append(torch.autograd.grad(loss, leaves))
    for got, want in zip(grads[1], grads[0]):
        assert float(want.abs().max()) > 1e-3  # a gradient that is there to compare
        # Relative too: through every level's feedback, dropout's scaling and
        # the noisy weights, a gradient reaches tens, where float32 rounds at 1e-6.
        np.testing.assert_allclose(np_(got), np_(want), rtol=1e-5, atol=2e-5)
    assert routes(fast) == {"sequence"}
    assert loops_ran(loops)


@pytest.mark.parametrize("family, name", _cases(lambda f: f.options if f.state != "h" else ()))
def test_final_states_have_the_cells_structure(family, name, rng):
    """An `[h, c]` pair or an `[h]` (a level), as `keras.layers.RNN`
    returns it: the output is the top level's h, and c is not h, nor one
    level's h the next one's."""
    reference, fast = make_pair(rng, family.make(name), return_state=True)
    x = inputs(rng)
    got, want = fast(x, training=True), reference(x, training=True)
    shape = family.structured([None] * family.num_states(name))
    # The output, then the state: flat [h, c], or one [h, c] per level.
    assert len(got) == len(want) == 1 + len(shape)
    assert [len(s) if isinstance(s, (list, tuple)) else 0 for s in got[1:]] == \
        [len(s) if isinstance(s, list) else 0 for s in shape]
    for g, w in zip(keras.tree.flatten(got), keras.tree.flatten(want)):
        assert tuple(g.shape) == tuple(w.shape) == (BATCH, family.applies[name]["units"])
        np.testing.assert_allclose(np_(g), np_(w), atol=2e-5)
    states = keras.tree.flatten(got)[1:]
    h = states[-1] if family.state == "h_per_level" else states[-2]
    np.testing.assert_allclose(np_(got[0]), np_(h))
    if len(states) > 1:
        assert np.abs(np_(states[-1]) - np_(states[-2])).max() > 1e-3
    if TORCH:
        assert routes(fast) == {"sequence"}


@pytest.mark.parametrize("family", _families())
def test_stateful_halves_carry_the_state(family, rng):
    reference, fast = make_pair(rng, family.make(family.stateful), return_sequences=True, stateful=True)
    x = np_(inputs(rng, steps=6))
    halves = [np.concatenate([np_(layer(x[:, :3])), np_(layer(x[:, 3:]))], axis=1)
              for layer in (reference, fast)]
    np.testing.assert_allclose(halves[1], halves[0], atol=2e-5)
    fast.reset_state()
    np.testing.assert_allclose(np_(fast(x)), halves[0], atol=2e-5)
    if TORCH:
        assert routes(fast) == {"sequence"}


@pytest.mark.parametrize("family, name", _cases(lambda f: list(f.falls_back), first_on_jax=True))
def test_cells_it_does_not_compute_run_the_traced_step(family, name, rng):
    reference, fast = make_pair(rng, family.falls_back[name], return_sequences=True)
    dtype = fast.cell.variable_dtype
    assert_same(reference, fast, inputs(rng, dtype=dtype), training=True)
    if TORCH:
        assert routes(fast) == {"traced"}


@pytest.mark.parametrize("family", _families())
def test_a_mask_runs_the_traced_step(family, rng):
    reference, fast = make_pair(rng, family.make(family.mask), return_sequences=True)
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    assert_same(reference, fast, inputs(rng), training=True, mask=mask)
    if TORCH:
        assert routes(fast) == {"traced"}


@pytest.mark.backend("torch")
@pytest.mark.parametrize("family", _families())
def test_switched_off_it_runs_the_traced_step(family, rng, monkeypatch):
    from keras_deeprnn.layers import deep_rnn

    monkeypatch.setattr(deep_rnn, "WHOLE_SEQUENCE", False)
    reference, fast = make_pair(rng, family.make(family.switched_off), return_sequences=True)
    assert_same(reference, fast, inputs(rng), training=True)
    assert routes(fast) == {"traced"}


@pytest.mark.parametrize("family", _families())
def test_frozen_weights_take_the_route(family, rng):
    reference, fast = make_pair(rng, family.make(family.frozen), return_sequences=True)
    reference.trainable = fast.trainable = False
    x = inputs(rng)
    np.testing.assert_allclose(np_(fast(x, training=True)), np_(reference(x, training=True)), atol=2e-5)
    if TORCH:
        assert routes(fast) == {"sequence"}
