"""A cell and an architecture row registered from outside the package get
everything the built-in rows get: build_model, .keras saving, the tuner and
the command line.

The toy cell is a leaky RNN, defined here as a user would:

    h_t = (1 - a) h_{t-1} + a tanh(x_t U + h_{t-1} W + b),  a = `leak`
"""

import keras
import numpy as np
import pytest
from keras import ops

import keras_deeprnn as kdr
from keras_deeprnn import cli
from keras_deeprnn import training
from keras_deeprnn.models import CellFactory
from keras_deeprnn.models import Search
from keras_deeprnn.models import register_architecture

D = 3
NAME = "leaky_rnn"


@keras.saving.register_keras_serializable(package="test_registration")
class LeakyCell(keras.layers.Layer):
    """h_t = (1 - a) h_{t-1} + a tanh(x_t U + h_{t-1} W + b)."""

    def __init__(self, units, leak=0.5, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.units, self.leak = units, leak
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer=self.kernel_initializer, name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer=self.recurrent_initializer,
            name="recurrent_kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def project_inputs(self, inputs, training=False):
        return ops.matmul(inputs, self.kernel) + self.bias

    def recurrent_step(self, projected, states, training=False):
        h = states[0]
        new = (1 - self.leak) * h + self.leak * ops.tanh(
            projected + ops.matmul(h, self.recurrent_kernel))
        return new, [new]

    def call(self, inputs, states, training=False):
        return self.recurrent_step(self.project_inputs(inputs), states)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "leak": self.leak,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer)),
                "recurrent_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.recurrent_initializer))}


def make_leaky_cell(units, depth, options, cell_args):
    return LeakyCell(units, leak=0.25, kernel_initializer=cell_args["kernel_initializer"],
                     recurrent_initializer=cell_args["recurrent_initializer"])


@pytest.fixture
def leaky_row():
    row = register_architecture(
        NAME, CellFactory("leaky", make_leaky_cell), title="leaky RNN",
        equation="h_t = (1 - a) h_{t-1} + a tanh(x_t U + h_{t-1} W + b)",
        free=("num_output_layers",), search={"num_output_layers": Search("int", 1, 1, 2)},
        num_output_layers=1)
    yield row
    # Other tests enumerate the table; leave it as it was.
    kdr.ARCHITECTURES.pop(NAME)


def small(**kwargs):
    args = dict(input_dim=D, output_dim=D, units=4, output_activation="sigmoid")
    args.update(kwargs)
    return kdr.build_model(NAME, **args)


def test_the_row_joins_the_table(leaky_row):
    assert kdr.ARCHITECTURES[NAME] is leaky_row
    assert leaky_row.free == ("num_output_layers",)
    assert leaky_row.fixed["num_transition_layers"] == 1


def test_build_model_uses_the_registered_cell(leaky_row, rng):
    model = small(output_dim=None)
    cell = model.get_layer("level_0").cell
    assert isinstance(cell, LeakyCell) and cell.leak == 0.25
    x = rng.normal(size=(2, 5, D)).astype("float32")
    U, W, b = (ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    h = np.zeros((2, 4), "float32")
    expected = []
    for t in range(5):
        h = 0.75 * h + 0.25 * np.tanh(x[:, t] @ U + h @ W + b)
        expected.append(h)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)), np.stack(expected, 1),
                               atol=1e-5)
    # the free depth argument reaches the deep output
    assert small(num_output_layers=2).get_layer("deep_output").num_layers == 2


def test_fit_save_and_load(leaky_row, rng, tmp_path):
    model = small()
    model.compile()
    x = rng.normal(size=(4, 6, D)).astype("float32")
    y = (rng.random((4, 6, D)) > 0.5).astype("float32")
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"][0])
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "leaky.keras")
    loaded = keras.models.load_model(tmp_path / "leaky.keras")
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.get_layer("level_0").cell, LeakyCell)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-6)


def test_the_row_checks_arguments_like_the_built_in_ones(leaky_row):
    with pytest.raises(ValueError, match=f"'{NAME}' fixes `num_transition_layers`=1"):
        small(num_transition_layers=2)
    # The factory supports none of the optional cell arguments.
    with pytest.raises(ValueError, match=rf"`layer_norm` is not available for '{NAME}'"):
        small(layer_norm=True)
    with pytest.raises(ValueError, match="weight_noise"):
        small(weight_noise=0.1)


def test_the_tuner_searches_the_row_with_its_own_ranges(leaky_row):
    kt = pytest.importorskip("keras_tuner")
    from keras_deeprnn.tuning import DeepRNNHyperModel

    hypermodel = DeepRNNHyperModel([NAME, "dots_rnn"], input_dim=D, output_dim=D)
    hp = kt.HyperParameters()
    hp.Fixed("architecture", NAME)
    config = hypermodel.declare(hp)
    assert config["architecture"] == NAME
    # Its free depth argument and the deep output's dimensions; no layer norm,
    # weight noise or transition (the factory supports none of them).
    assert {"num_output_layers", "output_units", "output_dropout", "units"} <= set(config)
    assert not {"layer_norm", "weight_noise", "num_transition_layers",
                "transition_units"} & set(config)
    ranges = [p for p in hp.space if p.name == "num_output_layers"]
    # the row's narrower range beside dots_rnn's own, each under its condition
    assert sorted(p.max_value for p in ranges) == [2, 3]
    hp.values.update(units=4, output_units=4)
    model = hypermodel.build(hp)
    assert isinstance(model.get_layer("level_0").cell, LeakyCell)


def test_the_command_line_takes_the_registered_name(leaky_row):
    args = cli.build_parser().parse_args(["train", "--architecture", NAME,
                                          "--num-output-layers", "2"])
    assert (args.architecture, args.num_output_layers) == (NAME, 2)
    config = training.TrainConfig(architecture=NAME, num_output_layers=2, units=4)
    config.validate()
    model = kdr.build_model(config.architecture, input_dim=D, output_dim=D,
                            **config.model_kwargs())
    assert model.get_layer("deep_output").num_layers == 2


def test_without_registration_the_name_is_unknown():
    assert NAME not in kdr.ARCHITECTURES
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--architecture", NAME])
    with pytest.raises(ValueError, match=f"architecture='{NAME}'"):
        kdr.build_model(NAME, input_dim=D)


@keras.saving.register_keras_serializable(package="test_registration")
class LeakyDeepCell(kdr.cells.DeepCell):
    """The leaky cell on the package's base class: dropout and noise come with it."""

    def __init__(self, units, leak=0.5, **kwargs):
        super().__init__(units, **kwargs)
        self.leak = leak

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                initializer="orthogonal",
                                                name="recurrent_kernel")

    def project_inputs(self, inputs, training=False):
        return ops.matmul(self.apply_input_dropout(inputs, training),
                          self.noisy(self.kernel, training))

    def recurrent_step(self, projected, states, training=False):
        h = states[0]
        W = self.noisy(self.recurrent_kernel, training)
        h = (1 - self.leak) * h + self.leak * ops.tanh(projected + ops.matmul(h, W))
        return h, [h]


def test_options_the_factory_supports_reach_the_cell(rng, tmp_path):
    factory = CellFactory(
        "leaky_deep",
        lambda units, depth, options, cell_args: LeakyDeepCell(
            units, **{k: v for k, v in cell_args.items() if "initializer" not in k}),
        cell_options={"weight_noise", "trainable_initial_state"})
    register_architecture("leaky_deep_rnn", factory, "leaky RNN", "")
    try:
        model = kdr.build_model("leaky_deep_rnn", input_dim=D, output_dim=D, units=4,
                                weight_noise=0.5, trainable_initial_state=True, dropout=0.25,
                                seed=1)
        cell = model.get_layer("level_0").cell
        assert (cell.weight_noise, cell.trainable_initial_state, cell.dropout) == (0.5, True, 0.25)
        x = rng.normal(size=(2, 5, D)).astype("float32")
        # the noise is there in training only
        assert not np.allclose(ops.convert_to_numpy(model(x, training=True)),
                               ops.convert_to_numpy(model(x)))
        np.testing.assert_allclose(ops.convert_to_numpy(model(x)),
                                   ops.convert_to_numpy(model(x)))
        model.save(tmp_path / "leaky_deep.keras")
        loaded = keras.models.load_model(tmp_path / "leaky_deep.keras")
        np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)),
                                   ops.convert_to_numpy(model(x)), atol=1e-6)
        with pytest.raises(ValueError, match="recurrent_weight_dropout"):
            kdr.build_model("leaky_deep_rnn", input_dim=D, recurrent_weight_dropout=0.1)
    finally:
        kdr.ARCHITECTURES.pop("leaky_deep_rnn")


def test_registration_refuses_what_it_cannot_use():
    factory = CellFactory("leaky", make_leaky_cell)
    with pytest.raises(ValueError, match="`cell_factory` must be"):
        register_architecture("bad_rnn", make_leaky_cell, "bad", "")
    with pytest.raises(ValueError, match="`name` must be a Python identifier"):
        register_architecture("bad rnn", factory, "bad", "")
    with pytest.raises(ValueError, match="num_hidden_layers"):
        register_architecture("bad_rnn", factory, "bad", "", free=("num_hidden_layers",))
    assert "bad_rnn" not in kdr.ARCHITECTURES
    # A factory's cell options are options passed to the cell; a capability is not one.
    with pytest.raises(ValueError, match=r"`cell_options` must name options .*"
                                         r"not options: \['transition_mlp'\]"):
        CellFactory("leaky", make_leaky_cell, cell_options={"weight_noise", "transition_mlp"})
    with pytest.raises(ValueError, match="`capabilities` must be a collection of names"):
        CellFactory("leaky", make_leaky_cell, capabilities="transition_mlp")
