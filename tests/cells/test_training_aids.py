"""The paper's training aids: sparse initialisation and weight noise."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_deeprnn as kdr
import reference as ref
from cases import weights_of
from keras_deeprnn import cells
from keras_deeprnn import layers
from keras_deeprnn.initializers import SparseInitializer


def test_sparse_initializer_counts_and_spectral_norm():
    w = np.asarray(SparseInitializer(num_nonzero=5, seed=3)((30, 12)))
    assert (np.count_nonzero(w, axis=0) == 5).all()
    np.testing.assert_allclose(np.linalg.norm(w, 2), 1.0, rtol=1e-5)
    again = np.asarray(SparseInitializer(num_nonzero=5, seed=3)((30, 12)))
    np.testing.assert_array_equal(w, again)
    few = np.asarray(SparseInitializer(num_nonzero=20, max_singular_value=None, seed=0)((4, 6)))
    assert (np.count_nonzero(few, axis=0) == 4).all()  # capped at fan_in


def test_sparse_initializer_config_and_errors():
    init = SparseInitializer(num_nonzero=7, stddev=0.5, max_singular_value=None, seed=2)
    assert SparseInitializer.from_config(init.get_config()).get_config() == init.get_config()
    with pytest.raises(ValueError, match="num_nonzero"):
        SparseInitializer(num_nonzero=0)
    with pytest.raises(ValueError, match=r"shape=\(3,\)"):
        SparseInitializer()((3,))


def test_sparse_initializer_in_a_saved_model(tmp_path, rng):
    model = kdr.build_model("srnn", input_dim=4, output_dim=4, units=6,
                            recurrent_initializer=SparseInitializer(num_nonzero=3, seed=1))
    kernel = np.asarray(model.get_layer("level_1").cell.recurrent_kernel)
    assert (np.count_nonzero(kernel, axis=0) == 3).all()
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def _constant_noise(monkeypatch, z):
    # Every standard-normal number drawn is z: the noise is mean + stddev * z,
    # so a layer that passes the wrong stddev shifts its kernels wrongly.
    def fake_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return ops.full(shape, mean + stddev * z, dtype=dtype or "float32")

    monkeypatch.setattr(keras.random, "normal", fake_normal)


@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_weight_noise_perturbs_kernels_not_biases(layer_cls, monkeypatch, rng):
    cell = cells.DeepTransitionCell(3, num_transition_layers=2, shortcut=True, weight_noise=0.075,
                                    bias_initializer="random_normal")
    layer = layer_cls(cell, return_sequences=True)
    x = rng.normal(size=(2, 4, 2))
    clean = ops.convert_to_numpy(layer(x.astype("float32"), training=False))
    _constant_noise(monkeypatch, 2.0)
    noisy = ops.convert_to_numpy(layer(x.astype("float32"), training=True))
    w = weights_of(cell)
    kw = dict(num_transition_layers=2, shortcut=True)
    np.testing.assert_allclose(clean, ref.dt_sequence(x, w, 3, **kw), atol=1e-5)
    shifted = {k: v + 0.075 * 2.0 if "kernel" in k else v for k, v in w.items()}
    np.testing.assert_allclose(noisy, ref.dt_sequence(x, shifted, 3, **kw), atol=1e-5)


def test_weight_noise_in_deep_output_and_dg_lstm(monkeypatch, rng):
    head = layers.DeepOutput(2, num_layers=1, hidden_units=3, weight_noise=0.5)
    x = rng.normal(size=(2, 3)).astype("float32")
    clean = ops.convert_to_numpy(head(x))
    _constant_noise(monkeypatch, 0.4)
    noisy = ops.convert_to_numpy(head(x, training=True))
    w = weights_of(head)
    shifted = {k: v + 0.5 * 0.4 if "kernel" in k else v for k, v in w.items()}
    np.testing.assert_allclose(clean, ref.mlp(x, w, [3, 2], ["tanh", "linear"]), atol=1e-5)
    np.testing.assert_allclose(noisy, ref.mlp(x, shifted, [3, 2], ["tanh", "linear"]), atol=1e-5)
    dg = cells.DepthGatedLSTMCell(2, num_layers=2, weight_noise=0.1)
    out = layers.DeepRNN(dg)(rng.normal(size=(2, 4, 3)).astype("float32"), training=True)
    assert tuple(out.shape) == (2, 2)


def test_weight_noise_trains_on_every_backend(rng):
    model = kdr.build_model("dots_rnn", input_dim=4, output_dim=4, units=5, weight_noise=0.075,
                            output_activation="sigmoid", seed=0)
    model.compile()
    x = rng.normal(size=(4, 6, 4)).astype("float32")
    y = (rng.random((4, 6, 4)) > 0.5).astype("float32")
    loss = model.fit(x, y, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(loss))
    # without training, no noise: predictions are deterministic
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weight_noise_refused_for_fused_keras_layers():
    with pytest.raises(ValueError, match="weight_noise"):
        kdr.build_model("deep_lstm", input_dim=4, weight_noise=0.1)


@pytest.mark.parametrize("layer_cls", [keras.layers.RNN, layers.DeepRNN])
def test_recurrent_weight_dropout_masks_the_recurrent_kernel(layer_cls, monkeypatch, rng):
    cell = cells.DeepTransitionCell(3, recurrent_weight_dropout=0.5, bias_initializer="random_normal")
    layer = layer_cls(cell, return_sequences=True)
    x = rng.normal(size=(2, 4, 2))
    layer.build((None, None, 2))
    checkerboard = (np.indices((3, 3)).sum(0) % 2) * 2.0   # a kept/dropped pattern, scaled

    def fake_dropout(inputs, rate, noise_shape=None, seed=None):
        return inputs * ops.convert_to_tensor(checkerboard, dtype=inputs.dtype)

    monkeypatch.setattr(keras.random, "dropout", fake_dropout)
    y = ops.convert_to_numpy(layer(x.astype("float32"), training=True))
    w = weights_of(cell)
    dropped = dict(w, recurrent_kernel=w["recurrent_kernel"] * checkerboard)
    kw = dict(num_transition_layers=1, shortcut=False)
    np.testing.assert_allclose(y, ref.dt_sequence(x, dropped, 3, **kw), atol=1e-5)
    clean = ops.convert_to_numpy(layer(x.astype("float32"), training=False))
    np.testing.assert_allclose(clean, ref.dt_sequence(x, w, 3, **kw), atol=1e-5)


def test_recurrent_weight_dropout_trains_every_stack(rng):
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    for name in ("gf_rnn", "dots_lstm"):
        model = kdr.build_model(name, input_dim=4, output_dim=4, units=3,
                                recurrent_weight_dropout=0.3, output_activation="sigmoid")
        model.compile(run_eagerly=keras.backend.backend() == "tensorflow")
        assert np.isfinite(model.fit(x, (x > 0).astype("float32"), verbose=0).history["loss"][0])
    with pytest.raises(ValueError, match="recurrent_weight_dropout"):
        kdr.build_model("deep_gru", input_dim=4, recurrent_weight_dropout=0.1)
