"""build_model's arguments that the checks once let through to a model that
ignored them or failed later: per-level lists on rows whose levels share
one cell, options a row's cells do not take, values the builder cannot
build, the input forms Keras accepts, and the dtype policy."""

import re

import keras
import numpy as np
import pytest

import keras_deeprnn as kdr
from keras_deeprnn.models import OPTIONS

D = 3
ONE_CELL = [name for name, row in kdr.ARCHITECTURES.items()
            if row.cell_factory.levels_in_one_cell]


def small(name, **kw):
    args = dict(input_dim=D, output_dim=D, units=4, output_activation="sigmoid")
    args.update(kw)
    return kdr.build_model(name, **args)


@pytest.mark.parametrize("key", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_refuse_differing_per_level_rates(name, key):
    with pytest.raises(ValueError, match=(
            rf"'{name}' steps all its levels in one cell and needs one `{key}` rate for all "
            rf"of them\. Received: {key}=\[0\.0, 0\.3, 0\.5\]")):
        small(name, num_layers=3, **{key: [0.0, 0.3, 0.5]})


@pytest.mark.parametrize("key", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_take_a_list_of_equal_rates(name, key):
    cell = small(name, num_layers=3, **{key: [0.25] * 3}).get_layer("level_0").cell
    assert getattr(cell, key) == 0.25


@pytest.mark.parametrize("name", ONE_CELL)
def test_one_cell_rows_take_one_zoneout_rate(name):
    with pytest.raises(ValueError, match=(
            rf"'{name}' steps all its levels in one cell, one recurrent layer, so `zoneout` "
            r"is one rate for all of them: a number or a list of one\. "
            r"Received: zoneout=\[0\.1, 0\.2, 0\.3\]")):
        small(name, num_layers=3, zoneout=[0.1, 0.2, 0.3])
    assert small(name, num_layers=3, zoneout=[0.2]).get_layer("level_0").cell.zoneout == 0.2


NO_ACTIVATION = ["deep_gru", "deep_lstm", "dg_lstm"]


@pytest.mark.parametrize("name", NO_ACTIVATION)
def test_rows_whose_cells_keep_tanh_refuse_another_activation(name):
    with pytest.raises(ValueError, match=(
            rf"`activation` is not available for '{name}' .*Received: activation='relu'; "
            r"use the default 'tanh', or one of: rnn, .*gf_rnn")):
        small(name, activation="relu")
    small(name, activation="tanh")


@pytest.mark.parametrize("name", [n for n in kdr.ARCHITECTURES if n not in NO_ACTIVATION])
def test_the_other_rows_take_the_activation(name):
    cell = small(name, activation="relu").get_layer("level_0").cell
    assert "relu" in str(cell.get_config()["activation"])


@pytest.mark.parametrize("name", list(kdr.ARCHITECTURES))
def test_sparse_initialisation_by_name_builds_sparse_kernels(name, tmp_path):
    # 20 non-zero weights per unit of 30 inputs: a third of each kernel is 0,
    # where glorot_uniform and orthogonal draw no exact zero.
    model = kdr.build_model(name, input_dim=30, output_dim=3, units=30,
                            kernel_initializer="sparse", recurrent_initializer="sparse")
    for kind in (r"(input_)?kernel(_0)?", r"recurrent_kernel(_0)?"):
        kernel = next(w for w in model.weights if "level_0" in w.path
                      and re.fullmatch(kind, w.path.split("/")[-1]))
        assert np.mean(keras.ops.convert_to_numpy(kernel.value) == 0) >= 0.3, kernel.path
    assert model.get_config()["recurrent_initializer"] == "sparse"
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["kernel_initializer"] == "sparse"


@pytest.mark.parametrize("key", ["activation", "transition_activation", "output_activation"])
@pytest.mark.parametrize("value", ["maxout", "lp"])
def test_pooled_units_are_refused_where_one_activation_per_unit_is_applied(key, value):
    with pytest.raises(ValueError, match=(
            rf"`{key}` must be a Keras activation; maxout and lp pool several pre-activations "
            r"per unit and are allowed only for `input_activation` and "
            rf"`output_hidden_activation`\. Received: {key}='{value}'")):
        small("dot_rnn", **{key: value})


def test_pooled_units_build_in_the_deep_input_and_output():
    for model in (small("di_rnn", input_activation="maxout"),
                  small("dot_rnn", output_hidden_activation="lp")):
        assert model.predict(np.zeros((1, 2, D), "float32"), verbose=0).shape == (1, 2, D)


def test_a_fixed_depth_argument_no_row_leaves_free_names_the_rows_that_have_it():
    with pytest.raises(ValueError, match=(
            r"'dt_rnn' fixes `shortcut`=False\. Received: shortcut=True\. "
            r"Architectures with `shortcut`=True: dts_rnn, dots_rnn, dots_lstm\.$")):
        small("dt_rnn", shortcut=True)
    with pytest.raises(ValueError, match=r"Architectures where `num_layers` is free: srnn, "):
        small("rnn", num_layers=2)


@pytest.mark.parametrize("wrap", ["dict", "list", "tuple"])
def test_the_input_forms_keras_takes_reach_the_model(wrap, rng):
    model = small("srnn")
    x = rng.normal(size=(2, 3, D)).astype("float32")
    wrapped = {"dict": lambda a: {"frames": a}, "list": lambda a: [a],
               "tuple": lambda a: (a,)}[wrap]
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(model.predict(wrapped(x), verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(wrapped(x))), expected,
                               atol=1e-6)
    model.compile()
    model.fit(wrapped(x), np.ones((2, 3, D), "float32"), epochs=1, verbose=0)
    tokens = kdr.build_model("rnn", vocab_size=5, output_dim=5, units=4)
    ids = np.ones((2, 3), "int32")
    assert tokens.predict(wrapped(ids) if wrap != "dict" else {"tokens": ids},
                          verbose=0).shape == (2, 3, 5)


def test_other_input_forms_are_refused_by_name(rng):
    model = small("rnn")
    x = rng.normal(size=(2, 3, D)).astype("float32")
    with pytest.raises(ValueError, match=(
            r"takes one input, 'frames'; as a dict it needs that key only\. Received: a dict "
            r"with keys \['tokens'\]; expected \{'frames': sequences\}")):
        model.predict({"tokens": x}, verbose=0)
    with pytest.raises(ValueError, match=r"takes one input, 'frames'\. Received: a list of 2"):
        model.predict([x, x], verbose=0)
    with pytest.raises(ValueError, match=r"must have shape \(batch, time, 3\)\. "
                                         r"Received: shape=\(2, 3\)"):
        model.predict({"frames": x[..., 0]}, verbose=0)


def _policies(model):
    return {layer.name: layer.dtype_policy.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)}


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16",
                                   keras.dtype_policies.DTypePolicy("mixed_bfloat16")],
                         ids=str)
def test_the_dtype_policy_reaches_every_layer_and_survives_saving(dtype, tmp_path, rng):
    name = dtype if isinstance(dtype, str) else dtype.name
    compute = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(name, name)
    model = small("dots_rnn", dtype=dtype)
    assert set(_policies(model).values()) == {name}, _policies(model)
    assert keras.config.dtype_policy().name == "float32"  # the global one is left alone
    x = rng.normal(size=(2, 3, D)).astype("float32")
    assert keras.backend.standardize_dtype(model(x).dtype) == compute
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert set(_policies(loaded).values()) == {name}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(loaded(x), "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(model(x), "float32")))


def test_without_dtype_the_global_policy_applies_and_the_config_has_none():
    model = small("rnn")
    assert set(_policies(model).values()) == {"float32"} and "dtype" not in model.get_config()


def test_a_dtype_that_is_no_policy_is_refused_by_name():
    with pytest.raises(ValueError, match=r"`dtype` must be a dtype policy.*Received: "
                                         r"dtype='wobbly'"):
        small("rnn", dtype="wobbly")


@pytest.mark.parametrize("changes, message", [
    (dict(architecture="deep_gru", layer_norm=True), r"`layer_norm` is not available"),
    (dict(architecture="dg_lstm", units=[8, 4]), r"needs one width"),
    (dict(architecture="srnn", num_layers=3, zoneout=[0.1, 0.2]),
     r"`zoneout` as a list needs one value per level \(3\)"),
    (dict(architecture="deep_gru", activation="relu"), r"`activation` is not available"),
])
def test_train_config_checks_the_model_fields_together(changes, message):
    with pytest.raises(ValueError, match=message):
        kdr.training.TrainConfig(**changes).validate()
    kdr.training.TrainConfig(architecture="gf_rnn", dropout=[0.2] * 3,
                             recurrent_initializer="sparse").validate()


def test_check_arguments_builds_nothing_and_needs_no_input_size():
    kdr.models.check_arguments("srnn", num_layers=2, units=[8, 4])
    with pytest.raises(ValueError, match=r"Unknown argument `colour`"):
        kdr.models.check_arguments("rnn", colour="red")
