"""Every fast path of `DeepRNN` gives `keras.layers.RNN`'s numbers, forward and gradient.

`DeepRNN` projects whole sequences before its loop on every backend, runs
its own loop on torch and, on torch, replays each step from a traced graph
(`deep_rnn._TracedSteps`). Each case here runs the same cell, with the same
weights and the same seed, inside `keras.layers.RNN` and inside `DeepRNN`,
and compares outputs and gradients: every case of the table in
`tests/cases.py`, and the regularised cells below in inference and in
training with dropout (both layers draw the same masks from the same seed).
On torch the tests also check that the traced step ran, so a silent
fallback to the plain step fails.

This is where `DeepRNN` is held to `keras.layers.RNN`; the NumPy references
(`tests/cells/test_cells_numpy.py`) then need to check only
`keras.layers.RNN`.
"""

import keras
import numpy as np
import pytest
from keras import ops

from layer_pairs import LAYER_OPTIONS
from layer_pairs import assert_same
from layer_pairs import np_
from layer_pairs import pair
from cases import CASES
from cases import INPUT_DIM
from keras_deeprnn import cells as kc
from keras_deeprnn.layers import DeepRNN
from keras_deeprnn.layers import deep_rnn as deep_rnn_module

TORCH = keras.backend.backend() == "torch"
FEATURES, BATCH, STEPS = INPUT_DIM, 2, 5
REGULARISED = dict(dropout=0.3, recurrent_dropout=0.25)

# Cells with dropout, weight noise and seeds, which the case table's cells
# have not: they are compared in training as well.
CELLS = {
    "dts": lambda: kc.DeepTransitionCell(
        4, num_transition_layers=2, shortcut=True, seed=3, **REGULARISED),
    "dts_L3": lambda: kc.DeepTransitionCell(
        4, num_transition_layers=3, shortcut=True, dropout=0.3, recurrent_dropout=0.3, seed=7),
    "dt3_noise": lambda: kc.DeepTransitionCell(
        4, num_transition_layers=3, weight_noise=0.2, recurrent_weight_dropout=0.3, seed=3,
        **REGULARISED),
    "dg_lstm": lambda: kc.DepthGatedLSTMCell(4, num_layers=2, seed=3, **REGULARISED),
    "gated_feedback": lambda: kc.GatedFeedbackCell(4, num_layers=2, seed=3, **REGULARISED),
    "highway": lambda: kc.HighwayTransitionCell(4, num_transition_layers=2, seed=3, **REGULARISED),
    "stacked": lambda: kc.StackedCells(
        [kc.DeepTransitionCell(4, seed=3, **REGULARISED),
         kc.DeepTransitionCell(5, num_transition_layers=2, seed=4, **REGULARISED)]),
}


def _pair(rng, make_cell, wrap=None, **kwargs):
    return pair(rng, make_cell, FEATURES, BATCH, wrap=wrap, **kwargs)


def _traced(layer):
    """How many traced steps `layer` (or the layers it wraps) replays."""
    found = 0
    for sublayer in layer._flatten_layers(include_self=True):
        cache = sublayer.__dict__.get("_traced_step_cache")
        if cache is not None:
            found += sum(entry is not None for entry in cache.graphs.values())
    return found


def _splits(layer, training):
    """Whether the cell runs with the project/step split (a StackedCells only
    where a level draws at every step; otherwise its levels run through
    keras.layers.RNN's own loop inside DeepRNN)."""
    return any(deep_rnn_module._splits_step(sub.cell, training) for sub in layer._flatten_layers()
               if isinstance(sub, DeepRNN))


def _inputs(rng, steps=STEPS):
    return ops.convert_to_tensor(rng.normal(size=(BATCH, steps, FEATURES)).astype("float32"))


def _assert_same(reference, fast, x, training, **call):
    assert_same(reference, fast, x, training, **call)
    if TORCH and _splits(fast, training):
        assert _traced(fast) > 0, "the traced step did not run"


EQUAL_CASES = [
    # The table's cells have no dropout, so in training they would repeat
    # inference (and its zoneout cells draw at every step inside
    # keras.layers.RNN: test_zoneout_in_training_equals_the_plain_step).
    *(pytest.param(case.make, False, id=f"{case.id}-inference") for case in CASES),
    *(pytest.param(make, training, id=f"{name}-{mode}") for name, make in CELLS.items()
      for training, mode in ((False, "inference"), (True, "training"))),
]


@pytest.mark.parametrize("make, training", EQUAL_CASES)
def test_deep_rnn_equals_keras_rnn(make, training, rng):
    reference, fast = _pair(rng, make, return_sequences=True)
    _assert_same(reference, fast, _inputs(rng), training)


@pytest.mark.parametrize("kwargs", LAYER_OPTIONS)
@pytest.mark.parametrize("name", ["dts", "dg_lstm", "stacked"])
def test_layer_options_equal_keras_rnn(name, kwargs, rng):
    reference, fast = _pair(rng, CELLS[name], **kwargs)
    _assert_same(reference, fast, _inputs(rng), training=True)


@pytest.mark.parametrize("name", ["dts", "dg_lstm"])
def test_masked_sequences_equal_keras_rnn(name, rng):
    reference, fast = _pair(rng, CELLS[name], return_sequences=True)
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    _assert_same(reference, fast, _inputs(rng), training=True, mask=mask)


@pytest.mark.parametrize("name", ["dts", "dg_lstm"])
def test_bidirectional_equals_keras_rnn(name, rng):
    reference, fast = _pair(rng, CELLS[name], wrap=keras.layers.Bidirectional,
                            return_sequences=True)
    _assert_same(reference, fast, _inputs(rng), training=True)


@pytest.mark.parametrize("name", ["dts", "dg_lstm", "stacked"])
def test_stateful_halves_equal_keras_rnn_and_one_pass(name, rng):
    reference, fast = _pair(rng, CELLS[name], return_sequences=True, stateful=True)
    x = np_(_inputs(rng, steps=6))
    halves = [np.concatenate([np_(layer(x[:, :3])), np_(layer(x[:, 3:]))], axis=1)
              for layer in (reference, fast)]
    np.testing.assert_allclose(halves[1], halves[0], atol=2e-5)
    fast.reset_state()  # (keras.layers.RNN.reset_state fails on nested states)
    np.testing.assert_allclose(halves[1], np_(fast(x)), atol=2e-5)
    if TORCH and _splits(fast, False):
        assert _traced(fast) > 0
    # The gradient of a second half flows through the state the first left.
    reference, fast = _pair(rng, CELLS[name], return_sequences=True, stateful=True)
    reference(x[:, :3]), fast(x[:, :3])
    _assert_same(reference, fast, ops.convert_to_tensor(x[:, 3:]), training=False)


def test_zoneout_in_training_equals_the_plain_step(rng, monkeypatch):
    """keras.layers.RNN draws zoneout at every step (and JAX cannot at all), so
    here the traced step is compared with DeepRNN's own plain step."""
    def make():
        return kc.ZoneoutCell(kc.DeepTransitionCell(4, num_transition_layers=2, seed=3,
                                                    **REGULARISED), zoneout=0.3, seed=5)

    traced = DeepRNN(make(), return_sequences=True, return_state=True)
    plain = DeepRNN(make(), return_sequences=True, return_state=True)
    for layer in (traced, plain):
        layer.build((None, None, FEATURES))
    for v, w in zip(traced.weights, plain.weights):
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.5)
        w.assign(v)
    original = deep_rnn_module._TracedSteps.step

    def switched(self, step, cell, *args):
        return None if cell is plain.cell else original(self, step, cell, *args)

    monkeypatch.setattr(deep_rnn_module._TracedSteps, "step", switched)
    _assert_same(plain, traced, _inputs(rng), training=True)
    assert _traced(plain) == 0


@pytest.mark.backend("torch")
def test_a_step_that_draws_falls_back_to_the_plain_step(rng):
    class DrawingCell(kc.DeepTransitionCell):
        def recurrent_step(self, projected, states, training=False):
            noise = keras.random.normal(ops.shape(projected), seed=self.seed_generator)
            return super().recurrent_step(projected + 0 * noise, states, training)

    layer = DeepRNN(DrawingCell(4), return_sequences=True)
    y = layer(_inputs(rng))
    assert y.shape == (BATCH, STEPS, 4)
    assert _traced(layer) == 0
    assert list(layer._traced_step_cache.graphs.values()) == [None]


@pytest.mark.backend("torch")
def test_one_trace_serves_new_weights_and_new_masks(rng):
    reference, fast = _pair(rng, CELLS["dts"], return_sequences=True)
    x = _inputs(rng)
    counts = []
    for _ in range(4):
        np.testing.assert_allclose(np_(fast(x, training=True)), np_(reference(x, training=True)),
                                   atol=2e-5)
        for v, w in zip(reference.weights, fast.weights):
            v.assign(rng.normal(size=v.shape).astype("float32") * 0.5)
            w.assign(v)
        counts.append(len(fast._traced_step_cache.graphs))
    # The first call traces; the second may once more (the cell has since
    # recorded its draws, a new input); from then on the graph is reused.
    assert counts[-1] == counts[1] <= 2
