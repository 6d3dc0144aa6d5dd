"""A stateful layer starts, and restarts, from its cell's initial state,
the learned `h_0` included, and `stateful_copy` steps as the model predicts."""

import numpy as np
import pytest
from keras import ops
from keras import tree

import keras_deeprnn as kdr
from keras_deeprnn import cells
from keras_deeprnn import layers

D = 5


def np_(x):
    return ops.convert_to_numpy(x)


def set_initial_states(model, value):
    learned = [v for v in model.weights if "initial_state" in v.path]
    assert learned, "the model has no learned h_0 to set"
    for variable in learned:
        variable.assign(np.full(variable.shape, value, "float32"))


@pytest.mark.parametrize("architecture", ["dots_rnn", "gf_rnn"])
def test_stateful_copy_stepped_equals_predict_with_a_learned_h0(architecture, rng):
    model = kdr.build_model(architecture, input_dim=D, output_dim=D, units=4,
                            output_activation="sigmoid", trainable_initial_state=True)
    x = rng.normal(size=(1, 6, D)).astype("float32")
    model(x)
    set_initial_states(model, 0.9)
    expected = model.predict(x, verbose=0)
    step_model = model.stateful_copy()
    stepped = np.concatenate([np_(step_model(x[:, t : t + 1])) for t in range(6)], axis=1)
    np.testing.assert_allclose(stepped, expected, atol=1e-5)
    # The learned h_0 matters: from zeros the first step comes out different.
    set_initial_states(model, 0.0)
    assert not np.allclose(model.predict(x, verbose=0)[:, 0], expected[:, 0], atol=1e-3)


@pytest.mark.parametrize("make_cell", [
    lambda: cells.DeepTransitionCell(3, num_transition_layers=2, trainable_initial_state=True),
    lambda: cells.GatedFeedbackCell(3, num_layers=2, trainable_initial_state=True),
], ids=["deep_transition", "gated_feedback"])
def test_reset_state_returns_to_the_learned_h0(make_cell, rng):
    cell = make_cell()
    layer = layers.DeepRNN(cell, stateful=True, return_sequences=True)
    x = rng.normal(size=(2, 4, D)).astype("float32")
    layer(x)
    learned = rng.normal(size=tuple(cell.initial_state.shape)).astype("float32")
    cell.initial_state.assign(learned)
    layer.reset_state()
    expected = [np_(s) for s in tree.flatten(cell.get_initial_state(batch_size=2))]
    flat = [np_(v.value) for v in tree.flatten(layer.states)]
    assert len(flat) == len(expected)
    for state, initial in zip(flat, expected):
        np.testing.assert_allclose(state, initial, atol=1e-6)
    assert not np.allclose(flat[0], 0.0)
    first = np_(layer(x))
    layer(x)  # the state moves on
    layer.reset_state()
    np.testing.assert_allclose(np_(layer(x)), first, atol=1e-5)


def test_stateful_copy_of_a_bidirectional_model_is_refused(rng):
    model = kdr.build_model("rnn", input_dim=D, output_dim=D, units=4,
                            output_activation="sigmoid", bidirectional=True)
    model(rng.normal(size=(1, 3, D)).astype("float32"))
    with pytest.raises(ValueError, match=r"bidirectional.*Received: bidirectional=True"):
        model.stateful_copy()
