"""FusedLSTM and FusedGRU give keras.layers.LSTM's and GRU's numbers, forward and gradient,
on every backend."""

import keras
import numpy as np
import pytest
from keras import ops

from backend_grad import value_and_grads
from keras_deeprnn.layers import FusedGRU
from keras_deeprnn.layers import FusedLSTM

LAYERS = {"lstm": (keras.layers.LSTM, FusedLSTM), "gru": (keras.layers.GRU, FusedGRU)}


def np_(x):
    return ops.convert_to_numpy(x)


def _pair(rng, kind="lstm", **kwargs):
    reference_class, fused_class = LAYERS[kind]
    reference = reference_class(5, **kwargs)
    fused = fused_class(5, **kwargs)
    for layer in (reference, fused):
        layer.build((None, None, 3))
    for v in reference.weights:
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.5)
    for v, w in zip(fused.weights, reference.weights):
        v.assign(w)
    return reference, fused


@pytest.mark.parametrize("kwargs", [
    dict(return_sequences=True),
    dict(return_sequences=False),
    dict(return_sequences=True, go_backwards=True),
    dict(return_sequences=True, return_state=True),
    dict(return_sequences=True, use_bias=False),
    dict(return_sequences=True, dropout=0.4),
], ids=["sequences", "last", "backwards", "state", "no_bias", "dropout"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_outputs_and_gradients_equal_keras_layer(kind, kwargs, rng):
    reference, fused = _pair(rng, kind, seed=7, **kwargs)
    x = ops.convert_to_tensor(rng.normal(size=(2, 6, 3)).astype("float32"))
    h0 = [ops.convert_to_tensor(rng.normal(size=(2, 5)).astype("float32"))
          for _ in range(2 if kind == "lstm" else 1)]
    def listed(y):
        return list(y) if isinstance(y, (list, tuple)) else [y]

    training = bool(kwargs.get("dropout"))  # both draw the same mask from the same seed
    for got, want in zip(listed(fused(x, initial_state=h0, training=training)),
                         listed(reference(x, initial_state=h0, training=training))):
        np.testing.assert_allclose(np_(got), np_(want), atol=1e-5)
    r = ops.convert_to_tensor(
        rng.normal(size=(2, 6 if kwargs["return_sequences"] else 1, 5)).astype("float32"))

    def loss(layer):
        y = layer(x, initial_state=h0, training=training)
        y = y[0] if isinstance(y, (list, tuple)) else y
        return ops.sum(ops.reshape(y, (2, -1, 5)) * r)

    value, grads = value_and_grads(lambda: loss(fused), fused.trainable_variables)
    ref_value, ref_grads = value_and_grads(lambda: loss(reference), reference.trainable_variables)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for g, want in zip(grads, ref_grads):
        np.testing.assert_allclose(g, want, atol=1e-5)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_masked_and_stateful_use_the_keras_path_with_the_same_numbers(kind, rng):
    reference, fused = _pair(rng, kind, return_sequences=True)
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    mask = ops.convert_to_tensor(np.array([[1] * 6, [1] * 3 + [0] * 3], bool))
    np.testing.assert_allclose(np_(fused(x, mask=mask)), np_(reference(x, mask=mask)), atol=1e-5)
    stateful = LAYERS[kind][1](5, return_sequences=True, stateful=True)
    stateful.build((2, None, 3))
    for v, w in zip(stateful.weights, reference.weights):
        v.assign(w)
    halves = np.concatenate([np_(stateful(x[:, :3])), np_(stateful(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(halves, np_(reference(x)), atol=1e-5)


def test_trains_and_saves_in_a_model(rng, tmp_path):
    from keras_deeprnn import build_model

    model = build_model("deep_lstm", input_dim=3, output_dim=2, units=4, dropout=0.2)
    assert any(isinstance(layer, FusedLSTM) for layer in model.layers)
    model.compile(loss="mse")
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    history = model.fit(x, rng.normal(size=(4, 5, 2)), verbose=0, epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np_(loaded(x)), np_(model(x)), atol=1e-6)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_the_torch_kernel_runs_where_it_applies(kind, rng, monkeypatch):
    from keras_deeprnn.layers import fused as fused_module

    calls = []
    original = getattr(fused_module, f"_torch_{kind}")
    monkeypatch.setattr(fused_module, f"_torch_{kind}",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    _, layer = _pair(rng, kind, return_sequences=True)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    layer(x)
    layer(x, mask=ops.convert_to_tensor(np.array([[1, 1, 1, 0]] * 2, bool)))
    assert len(calls) == (1 if keras.backend.backend() == "torch" else 0)


def test_fused_gru_trains_and_saves_in_a_model(rng, tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), FusedGRU(4, return_sequences=True, dropout=0.2),
                              keras.layers.Dense(2)])
    model.compile(loss="mse")
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    before = [np_(v).copy() for v in model.trainable_variables]
    history = model.fit(x, rng.normal(size=(4, 5, 2)), verbose=0, epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert any(not np.allclose(b, np_(v)) for b, v in zip(before, model.trainable_variables))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0], FusedGRU)
    np.testing.assert_allclose(np_(loaded(x)), np_(model(x)), atol=1e-6)
