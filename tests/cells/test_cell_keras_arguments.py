"""Keras's cell arguments on every cell: weight penalties in `losses`,
projections after an optimizer step, the config, and the activation and bias
arguments of the depth-gated, highway and gated-feedback cells."""

import json
import re

import keras
import numpy as np
import pytest
from keras import ops

from keras_deeprnn import build_model
from keras_deeprnn import cells
from keras_deeprnn import layers
from keras_deeprnn.cells.weight_arguments import weight_role

UNITS, INPUT_DIM = 3, 2

# Which weights each argument reaches, written out by hand from the
# docstrings' weight lists (not from `weight_role`, which they check).
CELLS = {
    "dts_rnn": (lambda **kw: cells.DeepTransitionCell(
        UNITS, num_transition_layers=3, shortcut=True, bias_initializer="random_normal", **kw),
        {"kernel": ["input_kernel", "transition_kernel_0", "transition_kernel_1"],
         "recurrent": ["recurrent_kernel"],
         "bias": ["bias", "transition_bias_0", "transition_bias_1"],
         "none": []}),
    "dt_lstm_layer_norm": (lambda **kw: cells.DeepTransitionLSTMCell(
        UNITS, num_transition_layers=2, layer_norm=True, trainable_initial_state=True, **kw),
        {"kernel": ["input_kernel", "transition_kernel_0"],
         "recurrent": ["recurrent_kernel"],
         "bias": ["bias", "transition_bias_0"],
         "none": ["ln_gamma_0", "ln_beta_0", "ln_gamma_1", "ln_beta_1", "initial_state"]}),
    "highway": (lambda **kw: cells.HighwayTransitionCell(UNITS, num_transition_layers=2, **kw),
                {"kernel": ["input_kernel"],
                 "recurrent": ["recurrent_kernel_0", "recurrent_kernel_1"],
                 "bias": ["bias_0", "bias_1"], "none": []}),
    "gated_feedback": (lambda **kw: cells.GatedFeedbackCell(
        UNITS, num_layers=2, bias_initializer="random_normal", **kw),
        {"kernel": ["kernel_0", "kernel_1"],
         "recurrent": ["recurrent_kernel_0", "recurrent_kernel_1"],
         "bias": ["bias_0", "bias_1"], "none": []}),
    "depth_gated_lstm": (lambda **kw: cells.DepthGatedLSTMCell(
        UNITS, num_layers=2, peephole_initializer="random_normal", **kw),
        {"kernel": ["kernel_0", "kernel_1"],
         "recurrent": ["recurrent_kernel_0", "recurrent_kernel_1"],
         "bias": ["bias_0", "bias_1"], "none": ["peephole_0", "peephole_1"]}),
}
IDS = list(CELLS)


def _model(cell):
    inputs = keras.Input((4, INPUT_DIM))
    return keras.Model(inputs, keras.layers.RNN(cell)(inputs))


def _weights(cell):
    return {v.name: ops.convert_to_numpy(v).astype("float64") for v in cell.weights}


def _penalty(cell, roles):
    w = _weights(cell)
    assert sorted(w) == sorted(sum(roles.values(), []))  # every weight is accounted for
    return (0.01 * sum(np.sum(w[n] ** 2) for n in roles["kernel"])
            + 0.02 * sum(np.sum(np.abs(w[n])) for n in roles["recurrent"])
            + 0.03 * sum(np.sum(w[n] ** 2) for n in roles["bias"]))


PENALTIES = dict(kernel_regularizer=keras.regularizers.L2(0.01),
                 recurrent_regularizer=keras.regularizers.L1(0.02),
                 bias_regularizer=keras.regularizers.L2(0.03))


@pytest.mark.parametrize("name", IDS)
def test_regularizers_add_the_numpy_penalty_of_their_weights(name):
    make, roles = CELLS[name]
    cell = make(**PENALTIES)
    model = _model(cell)
    total = sum(float(ops.convert_to_numpy(loss)) for loss in model.losses)
    np.testing.assert_allclose(total, _penalty(cell, roles), rtol=1e-5)
    # and the same after a save and load: the config carries them
    clone = type(cell).from_config(json.loads(json.dumps(cell.get_config())))
    clone_model = _model(clone)
    clone_model.set_weights(model.get_weights())
    total = sum(float(ops.convert_to_numpy(loss)) for loss in clone_model.losses)
    np.testing.assert_allclose(total, _penalty(cell, roles), rtol=1e-5)


@pytest.mark.parametrize("name", IDS)
def test_constraints_project_their_weights_after_an_optimizer_step(name):
    make, roles = CELLS[name]
    cell = make(kernel_constraint="non_neg", recurrent_constraint=keras.constraints.MaxNorm(0.1),
                bias_constraint="non_neg")
    model = _model(cell)
    rng = np.random.default_rng(0)
    before = _weights(cell)
    # the initial weights break the constraints, so the test sees the projection
    assert min(before[n].min() for n in roles["kernel"]) < 0
    assert max(np.linalg.norm(before[n], axis=0).max() for n in roles["recurrent"]) > 0.1
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.train_on_batch(rng.normal(size=(2, 4, INPUT_DIM)).astype("float32"),
                         rng.normal(size=(2, UNITS)).astype("float32"))
    after = _weights(cell)
    for n in roles["kernel"] + roles["bias"]:
        assert after[n].min() >= 0, n
    for n in roles["recurrent"]:
        assert np.linalg.norm(after[n], axis=0).max() <= 0.1 + 1e-6, n
    for n in roles["none"]:  # untouched by the projections: still free to go negative
        if before[n].min() < 0:
            assert after[n].min() < 0, n


def test_weight_roles_by_name():
    assert [weight_role(n) for n in (
        "recurrent_kernel", "recurrent_kernel_2", "input_kernel", "kernel_0",
        "transition_kernel_1", "bias", "bias_3", "transition_bias_0", "peephole_0",
        "ln_beta_0", "initial_state", "lp_rho_0", None)] == [
        "recurrent", "recurrent", "kernel", "kernel", "kernel", "bias", "bias", "bias",
        None, None, None, None, None]


def test_an_activity_regularizer_on_a_cell_points_to_the_sequence_layer():
    with pytest.raises(ValueError, match=r"activity_regularizer.*RNN\(cell, activity_regular"
                                         r"izer=\.\.\.\).*Received: activity_regularizer='l2'"):
        cells.DeepTransitionCell(UNITS, activity_regularizer="l2")


def test_an_unknown_regularizer_names_the_argument():
    with pytest.raises(ValueError, match=r"`recurrent_constraint` must be a Keras constraint"
                                         r".*Received: recurrent_constraint='l2'"):
        cells.HighwayTransitionCell(UNITS, recurrent_constraint="l2")


def test_the_feed_forward_layers_take_keras_penalties_and_projections():
    head = layers.DeepOutput(2, num_layers=1, hidden_units=3, bias_initializer="random_normal",
                             kernel_regularizer=keras.regularizers.L2(0.01),
                             bias_regularizer=keras.regularizers.L1(0.02),
                             activity_regularizer=keras.regularizers.L2(0.5))
    y = head(np.ones((2, 4), "float32"))
    w = _weights(head)
    expected = (0.01 * (np.sum(w["kernel_0"] ** 2) + np.sum(w["kernel_1"] ** 2))
                + 0.02 * (np.sum(np.abs(w["bias_0"])) + np.sum(np.abs(w["bias_1"]))))
    # the activity penalty, which Keras divides by the batch size
    expected += 0.5 * np.sum(ops.convert_to_numpy(y).astype("float64") ** 2) / 2
    np.testing.assert_allclose(sum(float(ops.convert_to_numpy(l)) for l in head.losses),
                               expected, rtol=1e-5)
    config = json.loads(json.dumps(head.get_config()))
    assert config["activity_regularizer"]["class_name"] == "L2"
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.DeepInput(3, kernel_constraint="non_neg")(inputs))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.train_on_batch(np.ones((2, 4), "float32"), np.ones((2, 3), "float32"))
    assert ops.convert_to_numpy(model.layers[-1].kernels[0]).min() >= 0


# --- activation and bias arguments --------------------------------------------


def _softsign(x):
    return x / (1 + np.abs(x))


def _hard_sigmoid(x):
    return np.clip(x / 6 + 0.5, 0, 1)


def test_depth_gated_lstm_activations_follow_the_docstring():
    cell = cells.DepthGatedLSTMCell(UNITS, num_layers=1, activation="softsign",
                                    recurrent_activation="hard_sigmoid",
                                    peephole_initializer="random_normal",
                                    bias_initializer="random_normal")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, INPUT_DIM)).astype("float32")
    h_prev, c_prev = (rng.normal(size=(2, UNITS)).astype("float32") for _ in range(2))
    cell.build((2, INPUT_DIM))
    h, _ = cell(x, [[h_prev, c_prev]])
    w, n = _weights(cell), UNITS
    K, R, P, b = w["kernel_0"], w["recurrent_kernel_0"], w["peephole_0"], w["bias_0"]
    c_low, g, r = x @ K[:, 5 * n:], x @ K[:, :5 * n] + b, h_prev @ R
    s, phi = _hard_sigmoid, _softsign
    i = s(g[:, :n] + r[:, :n] + c_prev * P[0])
    f = s(g[:, n:2 * n] + r[:, n:2 * n] + c_prev * P[1])
    d = s(g[:, 2 * n:3 * n] + c_prev * P[2] + c_low * P[3])
    c = d * c_low + f * c_prev + i * phi(g[:, 3 * n:4 * n] + r[:, 2 * n:3 * n])
    o = s(g[:, 4 * n:] + r[:, 3 * n:] + c * P[4])
    np.testing.assert_allclose(ops.convert_to_numpy(h), o * phi(c), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda **kw: cells.DepthGatedLSTMCell(UNITS, num_layers=2, unit_forget_bias=False, **kw),
    lambda **kw: cells.HighwayTransitionCell(UNITS, num_transition_layers=2, transform_bias=0.0,
                                             **kw),
    lambda **kw: cells.GatedFeedbackCell(UNITS, num_layers=2, **kw),
], ids=["depth_gated_lstm", "highway", "gated_feedback"])
def test_without_bias_the_cell_is_the_cell_with_zero_biases(make):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, INPUT_DIM)).astype("float32")
    plain = keras.layers.RNN(make(use_bias=False))
    with_bias = keras.layers.RNN(make(bias_initializer="zeros"))
    plain(x), with_bias(x)
    assert not any("bias" in v.name for v in plain.weights)
    for v in with_bias.weights:
        if "bias" in v.name:
            continue
        v.assign(next(p for p in plain.weights if p.name == v.name))
    np.testing.assert_allclose(ops.convert_to_numpy(plain(x)), ops.convert_to_numpy(with_bias(x)),
                               rtol=1e-5, atol=1e-6)
    assert ops.convert_to_numpy(with_bias(x)).std() > 0  # not a trivially equal zero output


def test_bias_initializer_of_highway_and_gated_feedback():
    highway = cells.HighwayTransitionCell(UNITS, num_transition_layers=1, transform_bias=-2.0,
                                          bias_initializer="ones")
    highway.build((None, INPUT_DIM))
    np.testing.assert_allclose(ops.convert_to_numpy(highway.biases[0]),
                               [1.0] * UNITS + [-1.0] * UNITS)
    feedback = cells.GatedFeedbackCell(UNITS, num_layers=2, bias_initializer="ones")
    feedback.build((None, INPUT_DIM))
    np.testing.assert_allclose(ops.convert_to_numpy(feedback.biases[1]), np.ones(UNITS + 2))
    for cell in (highway, feedback):
        config = type(cell).from_config(cell.get_config()).get_config()
        assert config["bias_initializer"]["class_name"] == "Ones"
        assert config["use_bias"] is True


# --- the same arguments as model options --------------------------------------

_RECURRENT = re.compile(r"(^|_)recurrent_kernel(_\d+)?$")
_KERNEL = re.compile(r"(^|_)kernel(_\d+)?$")
_BIAS = re.compile(r"(^|_)bias(_\d+)?$")


@pytest.mark.parametrize("architecture", ["dots_rnn", "deep_lstm"])
def test_model_options_penalise_every_weight_of_their_kind(architecture):
    model = build_model(architecture, input_dim=INPUT_DIM, output_dim=2, units=UNITS,
                        num_output_layers=1 if architecture == "dots_rnn" else None,
                        kernel_regularizer="l2:0.01", recurrent_regularizer="l1:0.02",
                        bias_regularizer=keras.regularizers.L2(0.03),
                        activity_regularizer="l2:0.5")
    for v in model.weights:  # nothing but biases and (recurrent) kernels in these models
        assert _RECURRENT.search(v.name) or _KERNEL.search(v.name) or _BIAS.search(v.name), v.name
    w = [(v.name, ops.convert_to_numpy(v).astype("float64")) for v in model.weights]
    expected = (0.01 * sum(np.sum(a ** 2) for n, a in w if _KERNEL.search(n)
                           and not _RECURRENT.search(n))
                + 0.02 * sum(np.sum(np.abs(a)) for n, a in w if _RECURRENT.search(n))
                + 0.03 * sum(np.sum(a ** 2) for n, a in w if _BIAS.search(n)))
    x = np.random.default_rng(3).normal(size=(2, 5, INPUT_DIM)).astype("float32")
    levels = [layer for layer in model.layers if layer.name.startswith("level_")]
    for level in levels:  # each recurrent layer's output, as Keras divides by the batch
        h = keras.Model(model.inputs, level.output)(x)
        expected += 0.5 * np.sum(ops.convert_to_numpy(h).astype("float64") ** 2) / 2
    model(x)
    np.testing.assert_allclose(sum(float(ops.convert_to_numpy(l)) for l in model.losses),
                               expected, rtol=1e-4)
    # the config keeps them, so a saved model does too
    clone = type(model).from_config(json.loads(json.dumps(model.get_config())))
    assert clone.get_config()["bias_regularizer"]["class_name"] == "L2"
    assert len(clone.losses) == len(model.trainable_weights)


def test_model_constraint_options_project_after_a_step():
    model = build_model("srnn", input_dim=INPUT_DIM, output_dim=2, units=UNITS, num_layers=2,
                        recurrent_constraint="max_norm:0.1", kernel_constraint="non_neg")
    model.compile(keras.optimizers.SGD(0.01), "mse")
    rng = np.random.default_rng(4)
    model.train_on_batch(rng.normal(size=(2, 5, INPUT_DIM)).astype("float32"),
                         rng.normal(size=(2, 5, 2)).astype("float32"))
    for v in model.weights:
        value = ops.convert_to_numpy(v)
        if _RECURRENT.search(v.name):
            assert np.linalg.norm(value, axis=0).max() <= 0.1 + 1e-6, v.name
        elif _KERNEL.search(v.name):
            assert value.min() >= 0, v.name


def test_the_command_line_and_train_config_take_them_as_other_options():
    from keras_deeprnn import cli
    from keras_deeprnn.training import TrainConfig

    args = cli.build_parser().parse_args(["train", "--recurrent-regularizer", "l2:1e-4",
                                          "--bias-constraint", "non_neg"])
    assert args.recurrent_regularizer == "l2:1e-4" and args.bias_constraint == "non_neg"
    config = TrainConfig(recurrent_regularizer="l2:1e-4").validate()
    assert config.model_kwargs()["recurrent_regularizer"] == "l2:1e-4"
    with pytest.raises(ValueError, match=r"`kernel_regularizer` as NAME:NUMBER.*"
                                         r"Received: kernel_regularizer='l3:1'"):
        TrainConfig(kernel_regularizer="l3:1").validate()
    with pytest.raises(ValueError, match=r"`bias_constraint` must be a Keras constraint"):
        build_model("rnn", input_dim=2, bias_constraint="l2")


# --- the states beyond the recurrent one, as the cells package documents them ---


def test_the_extra_state_of_a_deep_output_or_skip_stack_is_a_copy_of_the_output():
    x = np.random.default_rng(5).normal(size=(2, 4, INPUT_DIM)).astype("float32")
    stack = cells.StackedCells([cells.DeepTransitionCell(UNITS), cells.DeepTransitionCell(UNITS)],
                               skip_connections=True)
    out, *states = keras.layers.RNN(stack, return_state=True)(x)
    assert len(states) == 3  # one list per level, then [y]
    np.testing.assert_allclose(ops.convert_to_numpy(states[-1][0]), ops.convert_to_numpy(out))
    head = cells.DeepOutputCell(cells.DeepTransitionLSTMCell(UNITS), layers.DeepOutput(2))
    out, *states = keras.layers.RNN(head, return_state=True)(x)
    assert len(states) == 3  # y, then the LSTM's h and c
    np.testing.assert_allclose(ops.convert_to_numpy(states[0]), ops.convert_to_numpy(out))
    assert [tuple(s.shape) for s in states[1:]] == [(2, UNITS), (2, UNITS)]
