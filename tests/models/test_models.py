"""build_model for every architecture: training, saving, masking, bad
arguments; the option declaration and the README tables against the rows."""

import dataclasses
import math
import pathlib
import re

import keras
import numpy as np
import pytest
from keras import ops

import keras_deeprnn as kdr
from keras_deeprnn import cells
from keras_deeprnn import cli
from keras_deeprnn import layers
from keras_deeprnn import training
from keras_deeprnn.models import OPTIONS

NAMES = list(kdr.ARCHITECTURES)
# The README's tables of architectures and options live in this guide.
README = pathlib.Path(__file__).parents[2] / "docs" / "guides" / "architectures.md"
COMPILED = ("dots_rnn", "srnn", "deep_lstm", "dg_lstm")
D = 5


def np_(x):
    return ops.convert_to_numpy(x)


def small(name, **kw):
    args = dict(input_dim=D, output_dim=D, units=4, output_activation="sigmoid")
    args.update(kw)
    return kdr.build_model(name, **args)


def supports(name, option):
    return kdr.ARCHITECTURES[name].supports(OPTIONS[option])


def readme_table(heading):
    """The rows (lists of cells) of the first README table after `heading`."""
    text = README.read_text(encoding="utf-8")
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def rows_text(option):
    """Where an option exists, in the README's words."""
    where = [n for n in NAMES if supports(n, option)]
    others = [n for n in NAMES if n not in where]
    if not others:
        return "every architecture"
    if len(others) < len(where):
        return "all but " + ", ".join(f"`{n}`" for n in others)
    return ", ".join(f"`{n}`" for n in where)


def test_readme_architecture_table_lists_every_row():
    listed = [name for row in readme_table("# The architectures")
              for name in re.findall(r"`(\w+)`", row[0])]
    assert sorted(listed) == sorted(NAMES)


def test_readme_option_table_matches_the_declaration():
    rows = readme_table("Options of `build_model` that apply across the table")
    seen = set()
    for option_cell, where, searched, _ in rows:
        name = re.match(r"`(\w+)", option_cell).group(1)
        seen.add(name)
        option = OPTIONS[name]
        assert where.startswith(rows_text(name)), (name, where, rows_text(name))
        expected = "no" if option.search is None else option.search.describe()
        assert searched.startswith(expected), (name, searched, expected)
    # Every option that depends on the row or takes per-level lists is in it.
    must = {n for n, o in OPTIONS.items()
            if o.refused_elsewhere or o.per_level or n in ("state_resets", "residual_connections")}
    assert must <= seen, must - seen


def test_model_config_train_fields_and_flags_come_from_the_options():
    model = small("rnn")
    assert set(model.get_config()) == {"name", "trainable", "architecture", *OPTIONS}
    fields = {f.name: f.default for f in dataclasses.fields(training.TrainConfig)}
    train_options = {n for n, o in OPTIONS.items() if o.train}
    assert train_options <= set(fields)
    assert set(training.MODEL_FIELDS) == {"architecture", *train_options}
    # every model field is a `train` flag, with the field's default
    args = vars(cli.build_parser().parse_args(["train"]))
    assert {name: args[name] for name in train_options} == {
        name: fields[name] for name in train_options}


def _refused(check, name, value):
    try:
        check(name, value)
    except (ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("name", [n for n, option in OPTIONS.items() if option.train])
def test_train_config_refuses_what_the_option_refuses(name):
    option = OPTIONS[name]
    bad = next(v for v in (-1, 1.5, float("inf"), "wobbly", [1]) if _refused(option.check, name, v))
    value = [bad] if option.per_level else bad
    with pytest.raises(ValueError, match=f"`{name}`"):
        training.TrainConfig(**{name: value}).validate()
    training.TrainConfig(**{name: option.default} if option.default is not None else {}).validate()


@pytest.mark.parametrize("name", NAMES)
def test_fit_with_dropout_then_save_and_load(name, tmp_path, rng):
    noise = 0.05 if supports(name, "weight_noise") else 0.0
    model = small(name, dropout=0.2, recurrent_dropout=0.2, output_dropout=0.2, weight_noise=noise,
                  seed=3)
    # Compiled training for one architecture of each cell kind; the rest run
    # eagerly where that is faster (not on JAX, whose eager mode is slower).
    model.compile(run_eagerly=name not in COMPILED and keras.backend.backend() != "jax")
    x = rng.normal(size=(4, 6, D)).astype("float32")
    y = (rng.random((4, 6, D)) > 0.5).astype("float32")
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    before = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, kdr.DeepRNNModel)
    assert loaded.loss == "binary_crossentropy" and loaded.optimizer.clipnorm == 1.0
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-6)


def test_depth_arguments_reach_the_layers():
    model = small("dots_rnn", num_transition_layers=3, num_output_layers=2)
    cell = model.get_layer("level_0").cell
    assert (cell.num_transition_layers, cell.shortcut) == (3, True)
    assert model.get_layer("deep_output").num_layers == 2
    model = small("di_rnn", num_input_layers=2)
    assert model.get_layer("deep_input").num_layers == 2
    model = small("srnn", num_layers=3, skip_connections=True)
    assert [l.name for l in model.layers if l.name.startswith("level_")] == [
        "level_0", "level_1", "level_2"]
    # with skips, the readout sees all three levels
    assert model.get_layer("deep_output").kernels[0].shape == (12, D)
    assert isinstance(small("deep_lstm").get_layer("level_0"), keras.layers.LSTM)
    assert isinstance(small("deep_gru").get_layer("level_1"), keras.layers.GRU)
    dg = small("dg_lstm", num_layers=3).get_layer("level_0").cell
    assert isinstance(dg, cells.DepthGatedLSTMCell) and dg.num_layers == 3


def test_parameter_counts_follow_the_equations():
    n, d = 4, D
    # rnn: W (n,n), U (d,n), b; output V (n,d), c
    assert small("rnn").count_params() == n * n + d * n + n + n * d + d
    # srnn, 2 levels with skips: level 2 reads [x, h1]; output reads [h1, h2]
    expected = (n * n + d * n + n) + (n * n + (d + n) * n + n) + (2 * n * d + d)
    assert small("srnn", skip_connections=True).count_params() == expected


@pytest.mark.parametrize("name", ["dots_rnn", "srnn", "deep_lstm", "dg_lstm"])
def test_bidirectional_deep_rnn(name, rng):
    model = small(name, bidirectional=True, num_layers=2 if name != "dots_rnn" else None)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 6, D)
    if name == "srnn":
        # the second level reads both directions of the first
        assert model.get_layer("bidirectional_1").forward_layer.cell.input_kernel.shape == (8, 4)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_padded_batch_equals_unpadded(name, bidirectional, rng):
    model = small(name, masking=True, bidirectional=bidirectional,
                  skip_connections=True if name in ("srnn", "deep_gru") else None)
    lengths = [7, 4]
    pieces = [rng.normal(size=(1, n, D)).astype("float32") for n in lengths]
    padded = np.zeros((2, 7, D), "float32")
    for i, p in enumerate(pieces):
        padded[i, : p.shape[1]] = p[0]
    y = np_(model(padded))
    for i, p in enumerate(pieces):
        np.testing.assert_allclose(y[i, : p.shape[1]], np_(model(p))[0], atol=1e-5)


def test_token_inputs_and_softmax_defaults(rng):
    model = kdr.build_model("dots_rnn", vocab_size=11, output_dim=11, units=6,
                            output_activation="softmax", output_hidden_activation="maxout")
    model.compile()
    assert model.loss == "sparse_categorical_crossentropy"
    tokens = rng.integers(1, 11, size=(3, 8))
    model.fit(tokens[:, :-1], tokens[:, 1:], epochs=1, verbose=0)
    probs = model.predict(tokens, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_stateful_model_carries_state(rng):
    model = small("dts_rnn", stateful=True, batch_size=2)
    x = rng.normal(size=(2, 6, D)).astype("float32")
    full = small("dts_rnn")
    full.set_weights(model.get_weights())
    y = np_(full(x))
    first, second = np_(model(x[:, :3])), np_(model(x[:, 3:]))
    np.testing.assert_allclose(np.concatenate([first, second], 1), y, atol=1e-5)
    model.get_layer("level_0").reset_state()
    np.testing.assert_allclose(np_(model(x[:, :3])), y[:, :3], atol=1e-5)


def test_deep_output_cell_equals_deep_output_after_rnn(rng):
    inner = cells.DeepTransitionCell(4, num_transition_layers=2, shortcut=True)
    head = layers.DeepOutput(3, num_layers=2, hidden_units=5, hidden_activation="lp",
                             activation="sigmoid")
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    as_cell = np_(keras.layers.RNN(cells.DeepOutputCell(inner, head), return_sequences=True)(x))
    after = np_(head(keras.layers.RNN(inner, return_sequences=True)(x)))
    np.testing.assert_allclose(as_cell, after, atol=1e-6)


def test_dropout_mask_is_drawn_once_per_sequence(rng):
    # With W = 0 and b = 0, h_t = tanh((x_t * mask) U): a constant input gives a
    # constant output only if the mask is the same at every step.
    cell = cells.DeepTransitionCell(6, dropout=0.5, recurrent_initializer="zeros", seed=1)
    layer = layers.DeepRNN(cell, return_sequences=True)
    x = np.repeat(rng.normal(size=(4, 1, 8)).astype("float32"), 5, axis=1)
    trained = np_(layer(x, training=True))
    np.testing.assert_allclose(trained, np.repeat(trained[:, :1], 5, axis=1), atol=1e-6)
    assert not np.allclose(trained, np_(layer(x, training=False)))
    again = np_(layer(x, training=True))
    assert not np.allclose(trained, again)  # a new mask for the next batch


def test_golden_values_from_constant_initializers():
    # L = 1, n = 2, d = 3, every weight 0.1, no bias, input of ones:
    # h_1 = tanh(0.3), h_2 = tanh(0.3 + 0.2 h_1)
    cell = cells.DeepTransitionCell(2, kernel_initializer=keras.initializers.Constant(0.1),
                                    recurrent_initializer=keras.initializers.Constant(0.1),
                                    use_bias=False)
    y = np_(keras.layers.RNN(cell, return_sequences=True)(np.ones((1, 2, 3), "float32")))
    h1 = math.tanh(0.3)
    np.testing.assert_allclose(y[0, :, 0], [h1, math.tanh(0.3 + 0.2 * h1)], atol=1e-6)
    # DT(S), L = 2, all weights 0.1 and zero state:
    # z = tanh(0.3), h = tanh(2 z * 0.1 + 0.3)
    c = keras.initializers.Constant(0.1)
    cell = cells.DeepTransitionCell(2, num_transition_layers=2, shortcut=True, use_bias=False,
                                    kernel_initializer=c, recurrent_initializer=c,
                                    transition_initializer=c)
    y = np_(keras.layers.RNN(cell)(np.ones((1, 1, 3), "float32")))
    np.testing.assert_allclose(y[0], [math.tanh(0.2 * math.tanh(0.3) + 0.3)] * 2, atol=1e-6)
    # Depth-gated LSTM, one level, zero weights except W_x0 = 0.5, input 1:
    # c_low = 0.5 d-gate=0.5 (zero pre-activation) f = sigmoid(1) (forget bias 1)
    # c = 0.5 * 0.5 + f * 0 + 0.5 * tanh(0) = 0.25;  h = 0.5 * tanh(0.25)
    cell = cells.DepthGatedLSTMCell(1, num_layers=1, kernel_initializer="zeros",
                                    recurrent_initializer="zeros")
    layer = keras.layers.RNN(cell)
    layer.build((None, None, 1))
    cell.kernels[0].assign(np.array([[0, 0, 0, 0, 0, 0.5]], "float32"))
    y = np_(layer(np.ones((1, 1, 1), "float32")))
    np.testing.assert_allclose(y[0, 0], 0.5 * math.tanh(0.25), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(units=0), ["units", "0", "positive integer"]),
        (dict(units=2.5), ["units", "2.5"]),
        (dict(num_transition_layers=0), ["num_transition_layers", "0"]),
        (dict(dropout=1.5), ["dropout", "1.5", "[0, 1)"]),
        (dict(input_dim=None), ["input_dim", "vocab_size"]),
        (dict(output_hidden_activation="nope"), ["output_hidden_activation", "nope"]),
    ],
)
def test_bad_arguments_name_argument_value_and_expectation(kwargs, words):
    args = dict(input_dim=D, output_dim=D, units=4)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        kdr.build_model("dots_rnn", **args)
    for word in words:
        assert word in str(info.value)


def test_unknown_argument_is_refused_with_the_options():
    with pytest.raises(ValueError, match=r"Unknown argument `unitz`.*unitz=4.*units"):
        kdr.build_model("rnn", input_dim=D, unitz=4)
    assert kdr.build_model("rnn", input_dim=D, name="named").name == "named"


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="architecture='dtx_rnn'") as info:
        kdr.build_model("dtx_rnn", input_dim=D)
    for name in NAMES:
        assert name in str(info.value)


def test_fixed_depth_argument_is_refused_with_alternatives():
    with pytest.raises(ValueError) as info:
        kdr.build_model("rnn", input_dim=D, num_transition_layers=3)
    message = str(info.value)
    assert "'rnn' fixes `num_transition_layers`=1" in message and "dt_rnn" in message


def test_shortcut_needs_a_deep_transition():
    with pytest.raises(ValueError, match="num_transition_layers"):
        cells.DeepTransitionCell(4, shortcut=True)


def test_wrong_feature_size_and_rank_are_refused(rng):
    model = small("dt_rnn")
    with pytest.raises(ValueError, match=r"(None, None, 5)|(batch, time, 5)"):
        model.predict(rng.normal(size=(2, 4, 7)).astype("float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\(batch, time, 5\). Received: shape=\(2, 5\)"):
        model(rng.normal(size=(2, 5)).astype("float32"))


def test_per_level_widths_and_dropout(rng):
    model = small("srnn", num_layers=3, units=[6, 5, 4], dropout=[0.0, 0.1, 0.2])
    cells_ = [model.get_layer(f"level_{l}").cell for l in range(3)]
    assert [c.units for c in cells_] == [6, 5, 4]
    assert [c.dropout for c in cells_] == [0.0, 0.1, 0.2]
    assert model.predict(rng.normal(size=(2, 3, D)).astype("float32"), verbose=0).shape == (2, 3, D)
    with pytest.raises(ValueError, match=r"one value per level \(3\)"):
        small("srnn", num_layers=3, units=[6, 5])
    with pytest.raises(ValueError, match="one width"):
        small("dg_lstm", units=[4, 5])
    assert small("gf_rnn", num_layers=4).get_layer("level_0").cell.num_layers == 4


def test_residual_stacking_adds_the_level_below(rng):
    model = small("deep_gru", num_layers=3, residual_connections=True, output_dim=None)
    x = rng.normal(size=(2, 4, D)).astype("float32")
    h0 = np_(model.get_layer("level_0")(x))
    h1 = np_(model.get_layer("level_1")(h0)) + h0
    h2 = np_(model.get_layer("level_2")(h1)) + h1
    np.testing.assert_allclose(np_(model(x)), h2, atol=1e-5)
    with pytest.raises(ValueError, match="fixes `residual_connections`"):
        small("dts_rnn", residual_connections=True)


def test_layer_norm_and_trainable_initial_state_through_build_model(tmp_path, rng):
    model = small("dots_rnn", layer_norm=True, trainable_initial_state=True)
    cell = model.get_layer("level_0").cell
    assert cell.layer_norm and cell.initial_state is not None
    model.compile()
    x = rng.normal(size=(3, 5, D)).astype("float32")
    model.fit(x, (x > 0).astype("float32"), epochs=1, verbose=0)
    assert np.abs(np_(cell.initial_state)).sum() > 0  # h_0 is learned
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    assert small("rhn", trainable_initial_state=True).get_layer("level_0").cell.initial_state is not None
    with pytest.raises(ValueError, match="layer_norm"):
        small("deep_lstm", layer_norm=True)


@pytest.mark.parametrize("name", ["gf_rnn", "dg_lstm"])
def test_cells_with_levels_learn_every_levels_initial_state(name, tmp_path, rng):
    model = small(name, num_layers=3, trainable_initial_state=True)
    cell = model.get_layer("level_0").cell
    assert tuple(cell.initial_state.shape) == (3, cell.units)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x = rng.normal(size=(3, 5, D)).astype("float32")
    model.fit(x, (x > 0).astype("float32"), epochs=2, verbose=0)
    assert (np.abs(np_(cell.initial_state)).sum(axis=1) > 0).all()  # each level's row moved
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="trainable_initial_state"):
        small("deep_lstm", trainable_initial_state=True)


@pytest.mark.parametrize("bad", ["width", "no_steps", "rank"])
def test_a_bad_call_leaves_the_model_usable(bad, rng):
    # On JAX a failure inside the traced step used to leave the variables
    # detached: every later call failed with 'NoneType' object is not callable.
    model = small("dt_rnn")
    x = rng.normal(size=(2, 4, D)).astype("float32")
    before = model.predict(x, verbose=0)
    wrong = {"width": x[..., :3], "no_steps": x[:, :0], "rank": x[0]}[bad]
    # (Keras's own input check answers a direct call with (None, None, 5).)
    expected = "at least one time step" if bad == "no_steps" else "(batch, time, 5)|(None, None, 5)"
    for call in (lambda: model.predict(wrong, verbose=0), lambda: model(wrong),
                 lambda: model.evaluate(wrong, (wrong > 0).astype("float32"), verbose=0)):
        model.compile()
        with pytest.raises(ValueError, match=expected):
            call()
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)
    model.fit(x, (x > 0).astype("float32"), epochs=1, verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()


ENTRY_POINTS = ("fit", "fit_validation", "evaluate", "predict", "train_on_batch",
                "test_on_batch", "predict_on_batch")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_checks_its_data_before_keras_runs(entry, rng):
    model = small("dt_rnn")
    model.compile()
    x = rng.normal(size=(2, 4, D)).astype("float32")
    y = (x > 0).astype("float32")
    wrong = x[..., :3]
    before = model.predict(x, verbose=0)
    calls = {
        "fit": lambda: model.fit(wrong, y[..., :3], verbose=0),
        "fit_validation": lambda: model.fit(x, y, validation_data=(wrong, y), verbose=0),
        "evaluate": lambda: model.evaluate(wrong, y[..., :3], verbose=0),
        "predict": lambda: model.predict(wrong, verbose=0),
        "train_on_batch": lambda: model.train_on_batch(wrong, y[..., :3]),
        "test_on_batch": lambda: model.test_on_batch(wrong, y[..., :3]),
        "predict_on_batch": lambda: model.predict_on_batch(wrong),
    }
    # Our own message, which only the check before Keras's loop gives.
    with pytest.raises(ValueError, match=r"must have shape \(batch, time, 5\)\. "
                                         r"Received: shape=\(2, 4, 3\)"):
        calls[entry]()
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("bad_id", [7, -1])
def test_every_entry_point_refuses_token_ids_outside_the_vocabulary(entry, bad_id, rng):
    # On JAX an id the embedding has no row for reads NaN, with no error.
    model = kdr.build_model("srnn", vocab_size=7, output_dim=7, units=4,
                            output_activation="softmax")
    model.compile()
    x = rng.integers(0, 7, size=(2, 4)).astype("int32")
    wrong = x.copy()
    wrong[1, 2] = bad_id
    before = model.predict(x, verbose=0)
    calls = {
        "fit": lambda: model.fit(wrong, x, verbose=0),
        "fit_validation": lambda: model.fit(x, x, validation_data=(wrong, x), verbose=0),
        "evaluate": lambda: model.evaluate(wrong, x, verbose=0),
        "predict": lambda: model.predict(wrong, verbose=0),
        "train_on_batch": lambda: model.train_on_batch(wrong, x),
        "test_on_batch": lambda: model.test_on_batch(wrong, x),
        "predict_on_batch": lambda: model.predict_on_batch(wrong),
    }
    name = "validation_data" if entry == "fit_validation" else "x"
    found = ("the largest, 7, is not below vocab_size=7" if bad_id == 7
             else "the smallest, -1, is negative")
    message = (f"`{name}` must hold token ids from 0 to vocab_size - 1 = 6, the model's "
               f"vocabulary of vocab_size=7. Received: ids from {wrong.min()} to "
               f"{wrong.max()}; {found}")
    with pytest.raises(ValueError, match=re.escape(message)):
        calls[entry]()
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)
    # Ids up to vocab_size - 1 go through, and score a finite loss.
    x[0, 0] = 6
    assert np.isfinite(model.evaluate(x, x, verbose=0))


def test_a_failure_inside_the_loop_leaves_the_model_usable(rng):
    # A dataset is only checked when traced; the variables must survive that too.
    model = small("dt_rnn")
    x = rng.normal(size=(2, 4, D)).astype("float32")
    before = model.predict(x, verbose=0)

    class Wrong(keras.utils.PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return x[..., :3]

    with pytest.raises(ValueError, match="(batch, time, 5)|(None, None, 5)"):
        model.predict(Wrong(), verbose=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, atol=1e-6)


def test_no_time_steps_is_refused_for_token_models():
    model = kdr.build_model("srnn", vocab_size=7, output_dim=7, units=4)
    with pytest.raises(ValueError, match=r"at least one time step.*shape=\(2, 0\)"):
        model.predict(np.zeros((2, 0), "int32"), verbose=0)
