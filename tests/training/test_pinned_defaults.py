"""Documented starting values and fixed choices, pinned where the NumPy
references cannot see them (they read each cell's own weights): biases
that start at a given value, the Lp unit's starting exponent, how sparse
initialisation draws and scales, each non-default option reaching its
layer, the pieces of a split, the tuner's ranges, re-registering an
architecture, a metric's clipping, FusedGRU with recurrent dropout alone."""

import json
import math

import keras
import numpy as np
import pytest

from keras_deeprnn import build_model
from keras_deeprnn.cells import DepthGatedLSTMCell
from keras_deeprnn.cells import HighwayTransitionCell
from keras_deeprnn.data import splits
from keras_deeprnn.initializers import SparseInitializer
from keras_deeprnn.layers import DeepOutput
from keras_deeprnn.layers import FusedGRU
from keras_deeprnn.metrics import music as music_metrics
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import presets


def weights_named(layer, prefix):
    return [keras.ops.convert_to_numpy(w) for w in layer.weights
            if w.path.split("/")[-1].startswith(prefix)]


def test_the_depth_gated_lstm_forget_bias_starts_at_one():
    n = 3
    cell = DepthGatedLSTMCell(n)
    keras.layers.RNN(cell)(np.zeros((1, 2, 2), np.float32))
    for bias in weights_named(cell, "bias"):
        np.testing.assert_array_equal(bias[n:2 * n], 1.0)
        np.testing.assert_array_equal(np.delete(bias, np.s_[n:2 * n]), 0.0)
    plain = DepthGatedLSTMCell(n, unit_forget_bias=False)
    keras.layers.RNN(plain)(np.zeros((1, 2, 2), np.float32))
    assert all(not bias.any() for bias in weights_named(plain, "bias"))


@pytest.mark.parametrize("kwargs, expected", [({}, -2.0), ({"transform_bias": -0.5}, -0.5)])
def test_the_highway_transform_gate_bias_starts_at_transform_bias(kwargs, expected):
    n = 3
    cell = HighwayTransitionCell(n, **kwargs)
    keras.layers.RNN(cell)(np.zeros((1, 2, 2), np.float32))
    biases = weights_named(cell, "bias")
    assert biases
    for bias in biases:
        np.testing.assert_array_equal(bias[:n], 0.0)
        np.testing.assert_array_equal(bias[n:], expected)


def test_an_lp_unit_starts_as_an_l2_unit():
    layer = DeepOutput(2, num_layers=2, hidden_units=3, hidden_activation="lp",
                       activation="sigmoid")
    layer(np.zeros((1, 2, 4), np.float32))
    rhos = weights_named(layer, "lp_rho")
    assert rhos and all(rho.shape == (3,) for rho in rhos)
    for rho in rhos:
        np.testing.assert_allclose(1.0 + np.log1p(np.exp(rho)), 2.0, rtol=1e-6)


def test_sparse_initialisation_draws_20_per_unit_and_scales_to_spectral_norm_one():
    w = np.asarray(SparseInitializer(seed=3)((50, 30)))
    assert (np.count_nonzero(w, axis=0) == 20).all()
    np.testing.assert_allclose(np.linalg.norm(w, 2), 1.0, rtol=1e-5)
    # Every column draws its own rows.
    assert len({tuple(np.flatnonzero(w[:, j])) for j in range(30)}) > 1
    # Fewer inputs than 20: every weight is drawn.
    assert np.count_nonzero(np.asarray(SparseInitializer(seed=3)((8, 5)))) == 40
    raw = np.asarray(SparseInitializer(5, stddev=2.0, max_singular_value=None, seed=3)((50, 30)))
    assert (np.count_nonzero(raw, axis=0) == 5).all()
    assert np.linalg.norm(raw, 2) > 2.0
    np.testing.assert_allclose(
        np.linalg.norm(np.asarray(SparseInitializer(max_singular_value=0.5, seed=1)((9, 9))), 2),
        0.5, rtol=1e-5)


def test_sparse_initialisation_reaches_every_recurrent_kernel():
    model = build_model("srnn", input_dim=3, output_dim=3, units=30, num_layers=2,
                        recurrent_initializer=SparseInitializer())
    kernels = [keras.ops.convert_to_numpy(w) for w in model.weights
               if "recurrent_kernel" in w.path]
    assert len(kernels) == 2
    for kernel in kernels:
        assert (np.count_nonzero(kernel, axis=0) == 20).all()
        np.testing.assert_allclose(np.linalg.norm(kernel, 2), 1.0, rtol=1e-5)
    assert not np.array_equal(*kernels)


# (option, non-default value, the key and value some inner layer's config holds)
REACHES = [
    ("dropout", 0.3, "dropout", 0.3),
    ("recurrent_dropout", 0.2, "recurrent_dropout", 0.2),
    ("zoneout", 0.1, "zoneout", 0.1),
    ("weight_noise", 0.05, "weight_noise", 0.05),
    ("recurrent_weight_dropout", 0.4, "recurrent_weight_dropout", 0.4),
    ("layer_norm", True, "layer_norm", True),
    ("trainable_initial_state", True, "trainable_initial_state", True),
    ("output_dropout", 0.45, "dropout", 0.45),
    ("output_hidden_activation", "relu", "hidden_activation", "relu"),
    ("transition_activation", "relu", "transition_activation", "relu"),
    ("num_transition_layers", 3, "num_transition_layers", 3),
]


@pytest.mark.parametrize("option, value, key, expected", REACHES, ids=[r[0] for r in REACHES])
def test_a_non_default_option_reaches_the_layer_it_configures(option, value, key, expected):
    model = build_model("dots_rnn", input_dim=3, output_dim=3, units=4, **{option: value})
    inner = json.dumps([keras.saving.serialize_keras_object(layer) for layer in model.layers])
    assert f'"{key}": {json.dumps(expected)}' in inner
    default = build_model("dots_rnn", input_dim=3, output_dim=3, units=4)
    plain = json.dumps([keras.saving.serialize_keras_object(layer) for layer in default.layers])
    assert f'"{key}": {json.dumps(expected)}' not in plain


def test_a_split_holds_the_same_pieces_on_every_machine():
    entries = [(f"p{i}", None, None) for i in range(10)]
    held = [(piece, split) for piece, _, split in splits._assign_splits(entries, None)
            if split != "train"]
    assert held == [("p8", "test"), ("p4", "test"), ("p5", "valid"), ("p6", "valid")]
    assert [splits.held_out_count(n) for n in (1, 2, 3, 7, 8, 350)] == [0, 0, 1, 1, 2, 70]


def test_the_built_in_chorales_split_is_pinned():
    pytest.importorskip("music21")
    from keras_deeprnn.data import catalogue

    assigned = splits._assign_splits(catalogue._builtin_files("jsb_chorales"), None)
    by_split = {s: [piece for piece, _, split in assigned if split == s] for s in splits.SPLITS}
    assert [len(by_split[s]) for s in splits.SPLITS] == [210, 70, 70]
    assert by_split["test"][:3] == ["bach/bwv29.8.mxl", "bach/bwv251.mxl", "bach/bwv370.mxl"]
    assert by_split["valid"][:3] == ["bach/bwv57.8.mxl", "bach/bwv265.mxl", "bach/bwv250.mxl"]


def test_the_tuners_ranges_are_pinned():
    kt = pytest.importorskip("keras_tuner")
    from keras_deeprnn.tuning import DeepRNNHyperModel

    hp = kt.HyperParameters()
    DeepRNNHyperModel().declare(hp)
    found = {}
    for item in hp.space:
        config = item.get_config()
        found[config["name"]] = tuple(config.get(k) for k in ("min_value", "max_value", "step",
                                                              "sampling", "values"))
    width = (16, 1024, 2, "log", None)
    rate = lambda high, step: (0.0, high, step, "linear", None)  # noqa: E731
    expected = {
        "units": width, "transition_units": width, "output_units": width,
        "num_layers": (2, 4, 1, "linear", None), "num_transition_layers": (2, 4, 1, "linear", None),
        "num_input_layers": (1, 3, 1, "linear", None), "num_output_layers": (1, 3, 1, "linear", None),
        "dropout": rate(0.5, 0.1), "output_dropout": rate(0.5, 0.1),
        "recurrent_weight_dropout": rate(0.5, 0.1), "zoneout": rate(0.3, 0.1),
        "weight_noise": rate(0.1, 0.025),
        "learning_rate": (1e-4, 1e-2, None, "log", None),
        "clipnorm": (None, None, None, None, [0.5, 1.0, 2.0, 5.0]),
    }
    assert {name: found[name] for name in expected} == expected


def test_registering_a_taken_name_replaces_the_row():
    count = len(ARCHITECTURES)
    original = ARCHITECTURES["rnn"]
    try:
        row = presets.register_architecture("rnn", original.cell_factory, "replaced", "h_t = ...")
        assert ARCHITECTURES["rnn"] is row and row.title == "replaced"
        assert len(ARCHITECTURES) == count
    finally:
        ARCHITECTURES["rnn"] = original
    with pytest.raises(ValueError, match="must be a Python identifier"):
        presets.register_architecture("no good", original.cell_factory, "x", "y")


def test_frame_nll_clips_probabilities_at_1e_7():
    certain_wrong = np.array([[0.0, 1.0]], np.float32)
    targets = np.array([[1.0, 0.0]], np.float32)
    nll = music_metrics.frame_nll(certain_wrong, targets)
    assert float(nll) == pytest.approx(-2 * math.log(1e-7), rel=1e-4)
    assert float(music_metrics.frame_nll(certain_wrong, targets, epsilon=1e-3)) == \
        pytest.approx(-2 * math.log(1e-3), rel=1e-4)


def test_fused_gru_with_recurrent_dropout_alone_drops_only_in_training():
    layer = FusedGRU(4, recurrent_dropout=0.5, return_sequences=True, seed=1)
    x = np.random.default_rng(0).random((2, 6, 3)).astype(np.float32)
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    assert trained.shape == inference.shape == (2, 6, 4)
    assert np.isfinite(trained).all()
    assert not np.allclose(trained, inference)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), inference)
