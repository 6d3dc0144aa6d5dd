"""The cell base class: a cell that writes only its equations gets the rest.

`ToyCell` below writes the four members a new cell writes (constructor,
`build`, `project_inputs`, `recurrent_step`) and nothing else:

    h_t = activation(x_t @ kernel + scale * h_{t-1} @ recurrent_kernel)

Everything else (the cell contract, the initial state, the feature check,
the config, dropout, weight noise and DropConnect, the record of the random
draws) comes from `keras_deeprnn.cells.DeepCell`, and is checked here
against a NumPy version of that equation fed the draws the cell reports.
"""

import keras
import numpy as np
import pytest
from keras import ops

from backend_grad import value_and_grads
from keras_deeprnn import cells
from keras_deeprnn import layers
from keras_deeprnn.cells import DeepCell
from keras_deeprnn.models import OPTIONS

D, N = 3, 4


@keras.saving.register_keras_serializable(package="test_cell_base")
class ToyCell(DeepCell):
    """h = activation(x @ kernel + scale * h_prev @ recurrent_kernel)."""

    def __init__(self, units, scale=1.0, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.scale = float(scale)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer="orthogonal", name="recurrent_kernel"
        )

    def project_inputs(self, inputs, training=False):
        return ops.matmul(self.apply_input_dropout(inputs, training), self.noisy(self.kernel, training))

    def recurrent_step(self, projected, states, training=False):
        h_prev = self.apply_recurrent_dropout(states[0], training)
        h = self.activation(
            projected + self.scale * ops.matmul(h_prev, self.noisy(self.recurrent_kernel, training))
        )
        return h, [h]


def np_(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def toy_reference(x, cell, draws=None, h0=None, backwards=False):
    """The docstring's equation in float64, with the given random draws."""
    draws = draws or {}
    U, W = np_(cell.kernel), np_(cell.recurrent_kernel)
    U = (U + draws.get("weight_noise/kernel", 0.0))
    W = (W + draws.get("weight_noise/recurrent_kernel", 0.0))
    W = W * draws.get("recurrent_weight_dropout/recurrent_kernel", 1.0)
    x = x * draws.get("dropout", np.ones((x.shape[0], x.shape[2])))[:, None, :]
    h = np.zeros((x.shape[0], cell.units)) if h0 is None else np.tile(h0, (x.shape[0], 1))
    r = draws.get("recurrent_dropout", 1.0)
    steps = range(x.shape[1] - 1, -1, -1) if backwards else range(x.shape[1])
    out = np.zeros((x.shape[0], x.shape[1], cell.units))
    for t in steps:
        h = np.tanh(x[:, t] @ U + cell.scale * (h * r) @ W)
        out[:, t] = h
    return out


@pytest.fixture
def x(rng):
    return rng.normal(size=(2, 5, D)).astype("float32")


def _draws(cell):
    return {k: np_(v) for k, v in cell.last_draws.items()}


def _values_in(array, allowed):
    return np.all(np.isclose(array[..., None], np.asarray(allowed), rtol=1e-6).any(-1))


# -- the cell contract, from four members ------------------------------------

def test_a_new_cell_writes_four_members():
    own = {k for k in vars(ToyCell) if not k.startswith("__") or k == "__init__"}
    assert own == {"__init__", "build", "project_inputs", "recurrent_step"}, own
    cell = ToyCell(N)
    assert cell.state_size == N and cell.output_size == N


@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_toy_cell_runs_in_rnn_and_deep_rnn(layer_cls, x):
    cell = ToyCell(N, scale=0.5)
    y = np_(layer_cls(cell, return_sequences=True)(x))
    np.testing.assert_allclose(y, toy_reference(x, cell), atol=1e-5)


def test_toy_cell_in_stacked_rnn_cells_and_bidirectional(x):
    a, b = ToyCell(N), ToyCell(2, scale=0.3)
    y = np_(keras.layers.RNN(keras.layers.StackedRNNCells([a, b]), return_sequences=True)(x))
    below = toy_reference(x, a)
    np.testing.assert_allclose(y, toy_reference(below.astype("float32"), b), atol=1e-5)

    forward, backward = ToyCell(N), ToyCell(N, scale=2.0)
    bidi = keras.layers.Bidirectional(
        layers.DeepRNN(forward, return_sequences=True),
        backward_layer=layers.DeepRNN(backward, return_sequences=True, go_backwards=True),
    )
    y = np_(bidi(x))
    # Bidirectional runs copies of the two layers, rebuilt from their configs
    forward, backward = bidi.forward_layer.cell, bidi.backward_layer.cell
    assert isinstance(backward, ToyCell) and backward.scale == 2.0
    np.testing.assert_allclose(y[..., :N], toy_reference(x, forward), atol=1e-5)
    np.testing.assert_allclose(y[..., N:], toy_reference(x, backward, backwards=True), atol=1e-5)


def test_config_round_trip_and_saved_model(tmp_path, x):
    cell = ToyCell(N, scale=0.25, activation="relu", dropout=0.1, weight_noise=0.2, seed=3,
                   trainable_initial_state=True)
    config = cell.get_config()
    assert config["scale"] == 0.25 and config["activation"] == "relu"
    assert config["dropout"] == 0.1 and config["weight_noise"] == 0.2 and config["seed"] == 3
    assert config["trainable_initial_state"] is True
    assert ToyCell.from_config(config).get_config() == config

    model = keras.Sequential([keras.Input((None, D)), layers.DeepRNN(ToyCell(N, scale=0.7))])
    model.save(tmp_path / "toy.keras")
    loaded = keras.models.load_model(tmp_path / "toy.keras")
    assert isinstance(loaded.layers[0].cell, ToyCell) and loaded.layers[0].cell.scale == 0.7
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_unknown_feature_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"ToyCell needs a known feature size.*input_shape=\(2, None\)"):
        ToyCell(N).build((2, None))
    with pytest.raises(ValueError, match="units"):
        ToyCell(0)
    with pytest.raises(ValueError, match=r"dropout.*1\.5"):
        ToyCell(N, dropout=1.5)


def test_learned_initial_state(x):
    cell = ToyCell(N, trainable_initial_state=True)
    layer = layers.DeepRNN(cell, return_sequences=True)
    layer.build((None, None, D))
    assert [v.name for v in cell.weights] == ["kernel", "recurrent_kernel", "initial_state"]
    h0 = np.linspace(-0.5, 0.5, N).astype("float32")
    cell.initial_state.assign(h0)
    np.testing.assert_allclose(np_(cell.get_initial_state(batch_size=2)[0]), np.tile(h0, (2, 1)))
    np.testing.assert_allclose(np_(layer(x)), toy_reference(x, cell, h0=h0), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "mixed_float16"])
def test_steps_run_in_the_cells_dtype(dtype, x):
    # A float16 RNN around a float32 cell: DeepRNN calls project_inputs and
    # recurrent_step directly, and they must see the cell's dtype (inputs and
    # variables), as a call through the cell's __call__ would.
    for make in (lambda: ToyCell(N), lambda: cells.DeepTransitionCell(N, num_transition_layers=2,
                                                                      shortcut=True)):
        layer = layers.DeepRNN(make(), return_sequences=True, dtype=dtype)
        y = layer(x)
        assert keras.backend.standardize_dtype(y.dtype) == "float16"
        reference = keras.layers.RNN(layer.cell, return_sequences=True)(x)
        np.testing.assert_allclose(np_(y), np_(reference), atol=2e-3)


# -- regularisation from the base class, checked through its draws ------------

@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_dropout_draws_are_recorded_and_used(layer_cls, x):
    cell = ToyCell(N, dropout=0.5, recurrent_dropout=0.25, seed=1)
    layer = layer_cls(cell, return_sequences=True)
    y = np_(layer(x, training=True))
    draws = _draws(cell)
    assert draws["dropout"].shape == (2, D) and draws["recurrent_dropout"].shape == (2, N)
    assert _values_in(draws["dropout"], [0.0, 2.0])
    assert _values_in(draws["recurrent_dropout"], [0.0, 4.0 / 3.0])
    np.testing.assert_allclose(y, toy_reference(x, cell, draws), atol=1e-5)
    # inference: no dropout at all
    np.testing.assert_allclose(np_(layer(x)), toy_reference(x, cell), atol=1e-5)


def test_dropout_rate_and_scaling_over_many_sequences(rng):
    cell = ToyCell(N, dropout=0.3, seed=0)
    layers.DeepRNN(cell)(rng.normal(size=(4000, 2, D)).astype("float32"), training=True)
    mask = _draws(cell)["dropout"]
    kept = mask > 0
    assert abs(1 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-6)


def test_a_dropped_input_feature_gets_no_gradient(x):
    cell = ToyCell(N, dropout=0.5)
    layer = layers.DeepRNN(cell, return_sequences=True)
    layer.build((None, None, D))
    mask = np.full((2, D), 2.0, "float32")
    mask[:, 1] = 0.0  # feature 1 dropped in every sequence
    cell.fix_draws({"dropout": mask})
    _, (grad,) = value_and_grads(lambda: ops.sum(layer(x, training=True) ** 2), [cell.kernel])
    assert np.all(grad[1] == 0) and np.all(np.abs(grad[[0, 2]]).sum(axis=1) > 0)
    np.testing.assert_allclose(_draws(cell)["dropout"], mask)
    cell.fix_draws(None)
    layer(x, training=True)
    assert not np.array_equal(_draws(cell)["dropout"], mask)


@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_weight_noise_only_in_training_and_scaled_by_sigma(layer_cls, x):
    outputs = {}
    for sigma in (0.05, 0.4):
        cell = ToyCell(N, weight_noise=sigma, seed=2)
        layer = layer_cls(cell, return_sequences=True)
        clean = np_(layer(x))
        np.testing.assert_array_equal(clean, np_(layer(x)))  # inference is deterministic
        noisy = np_(layer(x, training=True))
        draws = _draws(cell)
        assert set(draws) == {"weight_noise/kernel", "weight_noise/recurrent_kernel"}
        np.testing.assert_allclose(noisy, toy_reference(x, cell, draws), atol=1e-5)
        np.testing.assert_allclose(clean, toy_reference(x, cell), atol=1e-5)
        outputs[sigma] = np.abs(noisy - clean).mean()
    assert outputs[0.4] > 3 * outputs[0.05] > 0


def test_weight_noise_std_is_sigma():
    cell = ToyCell(64, weight_noise=0.3, seed=5)
    layers.DeepRNN(cell)(np.zeros((1, 1, 64), "float32"), training=True)
    noise = _draws(cell)["weight_noise/recurrent_kernel"]
    assert noise.shape == (64, 64)
    assert abs(noise.std() - 0.3) < 0.02 and abs(noise.mean()) < 0.02


@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_dropconnect_masks_the_recurrent_kernel_only(layer_cls, x):
    cell = ToyCell(N, recurrent_weight_dropout=0.5, seed=4)
    layer = layer_cls(cell, return_sequences=True)
    y = np_(layer(x, training=True))
    draws = _draws(cell)
    assert set(draws) == {"recurrent_weight_dropout/recurrent_kernel"}
    mask = draws["recurrent_weight_dropout/recurrent_kernel"]
    assert mask.shape == (N, N) and _values_in(mask, [0.0, 2.0])
    np.testing.assert_allclose(y, toy_reference(x, cell, draws), atol=1e-5)


def test_fixed_weight_noise_is_what_the_step_sees(x):
    cell = ToyCell(N, weight_noise=0.1)
    layer = layers.DeepRNN(cell, return_sequences=True)
    layer.build((None, None, D))
    noise = {"weight_noise/kernel": np.full((D, N), 0.3, "float32"),
             "weight_noise/recurrent_kernel": np.full((N, N), -0.2, "float32")}
    cell.fix_draws(noise)
    y = np_(layer(x, training=True))
    np.testing.assert_allclose(y, toy_reference(x, cell, noise), atol=1e-5)


# -- the same code in the package's other layers and cells ---------------------

def test_deep_output_weight_noise_and_dropout_draws(rng):
    head = layers.DeepOutput(2, num_layers=1, hidden_units=3, dropout=0.5, weight_noise=0.3, seed=0)
    u = rng.normal(size=(4, 3)).astype("float32")
    y = np_(head(u, training=True))
    draws = _draws(head)
    assert set(draws) == {"weight_noise/kernel_0", "weight_noise/kernel_1", "dropout_0"}
    k0 = np_(head.kernels[0]) + draws["weight_noise/kernel_0"]
    k1 = np_(head.kernels[1]) + draws["weight_noise/kernel_1"]
    hidden = np.tanh(u @ k0 + np_(head.biases[0])) * draws["dropout_0"]
    np.testing.assert_allclose(y, hidden @ k1 + np_(head.biases[1]), atol=1e-5)
    head(u, training=True)
    assert not np.array_equal(_draws(head)["weight_noise/kernel_0"], draws["weight_noise/kernel_0"])


def test_depth_gated_lstm_peepholes_get_weight_noise(rng):
    cell = cells.DepthGatedLSTMCell(2, num_layers=2, weight_noise=0.1)
    layers.DeepRNN(cell)(rng.normal(size=(2, 4, 3)).astype("float32"), training=True)
    keys = set(cell.last_draws)
    assert {"weight_noise/peephole_0", "weight_noise/peephole_1"} <= keys
    assert not any("bias" in k for k in keys)


def test_zoneout_decisions_are_recorded(rng):
    cell = cells.ZoneoutCell(cells.DeepTransitionLSTMCell(N, num_transition_layers=1), zoneout=0.5)
    layers.DeepRNN(cell)(rng.normal(size=(2, 6, D)).astype("float32"), training=True)
    keep = _draws(cell)["zoneout"]
    assert keep.shape == (2, 6, 2 * N) and set(np.unique(keep)) == {0.0, 1.0}


def test_deep_output_cell_rebuilds_from_its_serialized_form(x):
    cell = cells.DeepOutputCell(cells.DeepTransitionCell(N, num_transition_layers=2, shortcut=True),
                                layers.DeepOutput(2, num_layers=1, hidden_units=3))
    layer = keras.layers.RNN(cell, return_sequences=True)
    y = np_(layer(x))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    copy = keras.layers.RNN(clone, return_sequences=True)
    copy.build(x.shape)
    copy.set_weights(layer.get_weights())
    np.testing.assert_allclose(np_(copy(x)), y, atol=1e-6)



# The same rule for a regularisation argument wherever it is taken: the model
# option, every cell of the table and the deep input and output layers.
PROBES = (-0.1, 0.0, 0.3, 0.99, 1.0, 2.5, float("inf"), float("nan"), True, "0.1", None)
RULED_CELLS = (cells.DeepTransitionCell, cells.DeepTransitionLSTMCell,
               cells.HighwayTransitionCell, cells.GatedFeedbackCell, cells.DepthGatedLSTMCell)


def _refuses(make):
    try:
        make()
    except (ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout", "weight_noise",
                                  "recurrent_weight_dropout"])
def test_cells_refuse_what_the_options_refuse(name):
    expected = {value: _refuses(lambda: OPTIONS[name].check(name, value)) for value in PROBES}
    assert expected[float("inf")] and not expected[0.3]  # the probes tell rules apart
    for cell_class in RULED_CELLS:
        got = {value: _refuses(lambda: cell_class(N, **{name: value})) for value in PROBES}
        assert got == expected, cell_class.__name__


@pytest.mark.parametrize("layer_class", [layers.DeepInput, layers.DeepOutput])
@pytest.mark.parametrize("name, option", [("weight_noise", "weight_noise"),
                                          ("dropout", "output_dropout")])
def test_the_feed_forward_layers_refuse_what_the_options_refuse(layer_class, name, option):
    expected = {value: _refuses(lambda: OPTIONS[option].check(option, value)) for value in PROBES}
    got = {value: _refuses(lambda: layer_class(N, **{name: value})) for value in PROBES}
    assert got == expected
