"""Mistakes in the Python API fail as a ValueError naming the argument (or
the cell), what was received and what was expected: a seed no backend
takes, and states that do not match a cell's `state_size`."""

import keras
import numpy as np
import pytest

from keras_deeprnn import _checks
from keras_deeprnn import build_model
from keras_deeprnn import cells
from keras_deeprnn import initializers
from keras_deeprnn import layers
from keras_deeprnn import training
from keras_deeprnn.tasks.language import sample_text
from keras_deeprnn.tasks.music import sample_piece

SEED_TAKERS = {
    "DeepTransitionCell": lambda seed: cells.DeepTransitionCell(4, seed=seed),
    "DeepTransitionLSTMCell": lambda seed: cells.DeepTransitionLSTMCell(4, seed=seed),
    "DepthGatedLSTMCell": lambda seed: cells.DepthGatedLSTMCell(4, num_layers=2, seed=seed),
    "GatedFeedbackCell": lambda seed: cells.GatedFeedbackCell(4, num_layers=2, seed=seed),
    "HighwayTransitionCell": lambda seed: cells.HighwayTransitionCell(4, seed=seed),
    "ZoneoutCell": lambda seed: cells.ZoneoutCell(cells.DeepTransitionCell(4), seed=seed),
    "DeepOutput": lambda seed: layers.DeepOutput(4, seed=seed),
    "DeepInput": lambda seed: layers.DeepInput(4, seed=seed),
    "FusedLSTM": lambda seed: layers.FusedLSTM(4, seed=seed),
    "FusedGRU": lambda seed: layers.FusedGRU(4, seed=seed),
    "SparseInitializer": lambda seed: initializers.SparseInitializer(seed=seed),
    "build_model": lambda seed: build_model("rnn", input_dim=3, output_dim=3, units=4,
                                            seed=seed),
    "sample_piece": lambda seed: sample_piece(
        build_model("rnn", input_dim=88, output_dim=88, units=4,
                    output_activation="sigmoid"), 3, seed=seed),
    "sample_text": lambda seed: sample_text(
        build_model("rnn", vocab_size=3, output_dim=3, units=4, output_activation="softmax",
                    masking=False), ["a", "b", "\n"], 3, seed=seed),
}
NO_SEEDS = [-1, 2**31, 1.5, "7", True]


@pytest.mark.parametrize("value", NO_SEEDS, ids=repr)
@pytest.mark.parametrize("taker", sorted(SEED_TAKERS))
def test_a_seed_no_backend_takes_is_named(taker, value):
    with pytest.raises(ValueError, match=r"`seed` must be None or an integer from 0 to "
                                         rf"2\*\*31 - 1 = 2147483647\. Received: seed={value!r}"):
        SEED_TAKERS[taker](value)


def test_the_training_job_names_a_bad_seed():
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0\. Received: seed=-1"):
        training.TrainConfig(seed=-1).validate()


def test_the_largest_seed_draws_on_this_backend():
    # The limit is the smallest any backend takes (torch's int32): a larger
    # one would be accepted here and fail on the first dropout draw there.
    cell = cells.DeepTransitionCell(4, dropout=0.5, seed=_checks.MAX_SEED)
    y = layers.DeepRNN(cell, return_sequences=True)(np.ones((2, 3, 3), "float32"), training=True)
    assert keras.ops.convert_to_numpy(y).shape == (2, 3, 4)
    assert SEED_TAKERS["sample_piece"](_checks.MAX_SEED).shape == (3, 88)


X = np.zeros((2, 3), "float32")


def h(width=4, batch=2):
    return np.zeros((batch, width), "float32")


WRONG_STATES = [
    ("DeepTransitionCell", lambda: cells.DeepTransitionCell(4), [h(), h()],
     r"takes 1 state shaped \[\(batch, 4\)\] \(state_size=4\) for a batch of 2\. "
     r"Received: states=\[\(2, 4\), \(2, 4\)\]"),
    ("no state", lambda: cells.DeepTransitionCell(4), [],
     r"takes 1 state shaped \[\(batch, 4\)\].*Received: states=\[\]"),
    ("width", lambda: cells.HighwayTransitionCell(4), [h(5)],
     r"takes 1 state.*Received: states=\[\(2, 5\)\]"),
    ("batch", lambda: cells.DeepTransitionCell(4), [h(batch=3)],
     r"takes 1 state.* for a batch of 2\. Received: states=\[\(3, 4\)\]"),
    ("lstm", lambda: cells.DeepTransitionLSTMCell(4), [h()],
     r"takes 2 states shaped \[\(batch, 4\), \(batch, 4\)\] \(state_size=\[4, 4\]\)"),
    ("flat levels", lambda: cells.GatedFeedbackCell(4, num_layers=2), [h(), h()],
     r"takes 2 states shaped \[\[\(batch, 4\)\], \[\(batch, 4\)\]\].*"
     r"Received: states=\[\(2, 4\), \(2, 4\)\]"),
    ("depth gated", lambda: cells.DepthGatedLSTMCell(4, num_layers=2), [[h(), h()], [h()]],
     r"takes 4 states"),
    ("stacked", lambda: cells.StackedCells([cells.DeepTransitionCell(4)] * 1
                                           + [cells.DeepTransitionCell(4)]), [[h()]],
     r"StackedCells '.*' takes 2 states"),
    ("zoneout", lambda: cells.ZoneoutCell(cells.DeepTransitionCell(4)), [h(5)],
     r"ZoneoutCell '.*' takes 1 state"),
    ("deep output", lambda: cells.DeepOutputCell(cells.DeepTransitionCell(4),
                                                 layers.DeepOutput(3)), [h()],
     r"DeepOutputCell '.*' takes 2 states shaped \[\(batch, 3\), \(batch, 4\)\]"),
]


@pytest.mark.parametrize("make, states, message", [case[1:] for case in WRONG_STATES],
                         ids=[case[0] for case in WRONG_STATES])
def test_a_cell_called_with_the_wrong_states_names_itself(make, states, message):
    cell = make()
    with pytest.raises(ValueError, match=f"{type(cell).__name__} '{cell.name}' {message}"
                       if not message.startswith(type(cell).__name__) else message):
        cell(X, states)


@pytest.mark.parametrize("rnn", [layers.DeepRNN, keras.layers.RNN])
def test_a_wrong_initial_state_is_named_before_the_loop(rnn):
    cell = cells.DeepTransitionLSTMCell(4)
    with pytest.raises(ValueError, match=rf"DeepTransitionLSTMCell '{cell.name}'.* takes 2 states"
                                         r".*Received: states=\[\(2, 4\), \(2, 5\)\]"):
        rnn(cell)(np.zeros((2, 5, 3), "float32"), initial_state=[h(), h(5)])


def test_right_states_pass_and_one_state_alone_is_a_list_of_one():
    cell = cells.DeepTransitionCell(4)
    state = np.ones((2, 4), "float32")
    y_list, _ = cell(np.ones((2, 3), "float32"), [state])
    y_bare, _ = cell(np.ones((2, 3), "float32"), state)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y_bare),
                               keras.ops.convert_to_numpy(y_list))
    y = layers.DeepRNN(cells.DepthGatedLSTMCell(4, num_layers=2))(
        np.zeros((2, 5, 3), "float32"), initial_state=[[h(), h()], [h(), h()]])
    assert keras.ops.convert_to_numpy(y).shape == (2, 4)


@pytest.mark.parametrize("name", ["m.h5", "m.HDF5"])
def test_saving_a_model_as_h5_is_refused_before_any_file_is_touched(tmp_path, name):
    model = build_model("dots_rnn", input_dim=3, output_dim=3, units=4)
    (tmp_path / name).write_text("precious")
    for path in (tmp_path / name, str(tmp_path / name)):
        with pytest.raises(ValueError, match=r"`filepath` must end in `\.keras`: Keras 3 saves "
                                             rf"`\.h5` .*Received: filepath='.*{name}'"):
            model.save(path)
    assert (tmp_path / name).read_text() == "precious"


@pytest.mark.parametrize("save_model", [keras.saving.save_model, keras.models.save_model])
def test_keras_save_model_to_h5_is_refused_too_leaving_the_file_keras_made_empty(
        tmp_path, save_model):
    import h5py

    model = build_model("dots_rnn", input_dim=3, output_dim=3, units=4)
    path = tmp_path / "m.h5"
    with pytest.raises(ValueError, match=r"`filepath` must end in `\.keras`: Keras 3 saves "
                                         r"`\.h5` .*Received: a `\.h5`/`\.hdf5` filepath given "
                                         r"to keras\.saving\.save_model .*delete it"):
        save_model(model, path)
    # What the user is left with: the HDF5 file Keras opened first, with no model in it.
    with h5py.File(path, "r") as written:
        assert not list(written.attrs) and not list(written)
    # The refusal is the legacy writer's alone: the config and `.keras` still work.
    assert model.get_config()["architecture"] == "dots_rnn"
    save_model(model, tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").get_config() == model.get_config()


def test_the_formats_the_refusal_points_to_load_back(tmp_path):
    model = build_model("dots_rnn", input_dim=3, output_dim=3, units=4)
    x = np.random.default_rng(0).random((2, 5, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    twin = build_model("dots_rnn", input_dim=3, output_dim=3, units=4)
    twin.load_weights(tmp_path / "m.weights.h5")
    expected = keras.ops.convert_to_numpy(model(x))
    for loaded in (keras.models.load_model(tmp_path / "m.keras"), twin):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, rtol=1e-6)


def test_the_training_job_refuses_a_seed_no_backend_takes_before_loading_data():
    with pytest.raises(ValueError, match=r"`seed` must be None or an integer from 0 to 2\*\*31"):
        training.TrainConfig(seed=2**40).validate()


def _wrapped(**kwargs):
    return cells.DeepOutputCell(cells.DeepTransitionCell(4), layers.DeepOutput(3, **kwargs))


# (constructor, argument, bad value): a flag given as a string, a number or a
# name Keras does not know is refused, naming the argument and the value.
BAD_CELL_ARGUMENTS = [
    (cells.DeepTransitionCell, "layer_norm", "no"),
    (cells.DeepTransitionCell, "use_bias", "no"),
    (cells.DeepTransitionCell, "trainable_initial_state", "no"),
    (cells.DeepTransitionCell, "shortcut", "no"),
    (cells.DeepTransitionCell, "shortcut", 1),
    (cells.DeepTransitionCell, "activation", "foo"),
    (cells.DeepTransitionCell, "transition_activation", "foo"),
    (cells.DeepTransitionCell, "kernel_initializer", "foo"),
    (cells.DeepTransitionCell, "recurrent_initializer", "foo"),
    (cells.DeepTransitionCell, "bias_initializer", "foo"),
    (cells.DeepTransitionCell, "transition_initializer", "foo"),
    (cells.DeepTransitionLSTMCell, "layer_norm", "no"),
    (cells.HighwayTransitionCell, "transform_bias", "x"),
    (cells.HighwayTransitionCell, "transform_bias", float("nan")),
    (cells.HighwayTransitionCell, "activation", "foo"),
    (cells.GatedFeedbackCell, "activation", "foo"),
    (cells.GatedFeedbackCell, "trainable_initial_state", "no"),
    (cells.DepthGatedLSTMCell, "unit_forget_bias", "no"),
    (cells.DepthGatedLSTMCell, "activation", "foo"),
    (cells.DepthGatedLSTMCell, "recurrent_activation", "foo"),
    (cells.DepthGatedLSTMCell, "peephole_initializer", "foo"),
    (lambda **kw: cells.StackedCells([cells.DeepTransitionCell(4)], **kw), "skip_connections", "no"),
    (layers.DeepOutput, "use_bias", "no"),
    (layers.DeepOutput, "kernel_initializer", "foo"),
    (layers.DeepOutput, "bias_initializer", "foo"),
    (layers.DeepInput, "use_bias", "no"),
    (_wrapped, "use_bias", "no"),
]


def _constructor_name(constructor):
    return getattr(constructor, "__name__", "constructor").replace("<lambda>", "StackedCells")


@pytest.mark.parametrize(
    "constructor, argument, value", BAD_CELL_ARGUMENTS,
    ids=[f"{_constructor_name(c)}-{a}-{v!r}" for c, a, v in BAD_CELL_ARGUMENTS])
def test_a_bad_cell_or_layer_argument_is_named_with_the_value(constructor, argument, value):
    args = () if constructor is _wrapped or _constructor_name(constructor) == "StackedCells" else (4,)
    with pytest.raises(ValueError, match=rf"`{argument}` must .*Received: {argument}={value!r}"):
        constructor(*args, **{argument: value})


def test_stacked_cells_given_one_cell_instead_of_a_list_says_so():
    with pytest.raises(ValueError, match=r"`cells` must be a list of RNN cells.*Received: cells="):
        cells.StackedCells(cells.DeepTransitionCell(4))
