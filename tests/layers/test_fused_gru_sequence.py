"""FusedGRU's whole-sequence route gives `keras.layers.GRU`'s numbers, forward and gradient.

On PyTorch on the CPU, `FusedGRU` runs the sequence as one autograd function
with a hand-written backward pass through time
(`keras_deeprnn/layers/_gru_bptt.py`). Each case runs `keras.layers.GRU`
(its plain Keras loop) and `FusedGRU` with the same weights and compares the
outputs and the gradients of the inputs, the initial state and every weight,
on every backend; on torch it also checks that the route ran, so a silent
fallback to `torch._VF.gru` fails. The function itself is checked against
finite differences in float64 (`torch.autograd.gradcheck`).
"""

import keras
import numpy as np
import pytest
from keras import ops

from backend_grad import value_and_grads
from keras_deeprnn.layers import FusedGRU

TORCH = keras.backend.backend() == "torch"
FEATURES, UNITS, BATCH, STEPS = 3, 5, 2, 7

CASES = {
    "sequences": dict(return_sequences=True),
    "last": dict(return_sequences=False),
    "backwards": dict(return_sequences=True, go_backwards=True),
    "backwards_last": dict(return_sequences=False, go_backwards=True),
    "state": dict(return_sequences=True, return_state=True),
    "no_bias": dict(return_sequences=True, use_bias=False),
    "no_bias_backwards_state": dict(return_sequences=False, use_bias=False, go_backwards=True,
                                    return_state=True),
    "dropout": dict(return_sequences=True, dropout=0.4),
}


def np_(x):
    return ops.convert_to_numpy(x)


def listed(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


@pytest.fixture
def spy(monkeypatch):
    """The calls of the whole-sequence function (none off torch)."""
    from keras_deeprnn.layers import _gru_bptt

    calls = []
    original = _gru_bptt.sequence
    monkeypatch.setattr(_gru_bptt, "sequence", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def _pair(rng, dtype="float32", **kwargs):
    reference = keras.layers.GRU(UNITS, seed=7, dtype=dtype, **kwargs)
    fused = FusedGRU(UNITS, seed=7, dtype=dtype, **kwargs)
    for layer in (reference, fused):
        layer.build((None, None, FEATURES))
    assert len(reference.weights) == len(fused.weights)
    for v, w in zip(reference.weights, fused.weights):
        v.assign(rng.normal(size=v.shape).astype(dtype) * 0.5)
        w.assign(v)
    return reference, fused


def _assert_same(reference, fused, rng, training, dtype="float32", atol=1e-5):
    """Equal outputs; equal gradients of the inputs, the initial state and every weight."""
    x = keras.Variable(rng.normal(size=(BATCH, STEPS, FEATURES)).astype(dtype), name="x")
    h0 = keras.Variable(rng.normal(size=(BATCH, UNITS)).astype(dtype), name="h0")

    def outputs(layer):
        return ops.concatenate([ops.reshape(t, (BATCH, -1))
                                for t in listed(layer(x.value, initial_state=[h0.value], training=training))],
                               axis=-1)

    # Both layers draw their dropout masks from equal seeds, call for call.
    np.testing.assert_allclose(np_(outputs(fused)), np_(outputs(reference)), atol=atol)
    size = (BATCH, (STEPS if fused.return_sequences else 1) * UNITS + UNITS * fused.return_state)
    w = ops.convert_to_tensor(np.random.default_rng(1).normal(size=size).astype(dtype))

    def loss(layer):
        return ops.sum(ops.tanh(outputs(layer)) * w)

    value, grads = value_and_grads(lambda: loss(fused), [x, h0, *fused.trainable_variables])
    ref_value, ref_grads = value_and_grads(lambda: loss(reference), [x, h0, *reference.trainable_variables])
    np.testing.assert_allclose(value, ref_value, rtol=atol, atol=atol)
    assert len(grads) == len(ref_grads) == 2 + len(fused.trainable_variables)
    for g, want, name in zip(grads, ref_grads, ["x", "h0"] + [v.path for v in fused.trainable_variables]):
        assert np.abs(want).max() > 1e-3, name  # a gradient that is there to compare
        np.testing.assert_allclose(g, want, atol=atol, err_msg=name)


@pytest.mark.parametrize("name", list(CASES))
def test_outputs_and_gradients_equal_keras_gru(name, rng, spy):
    kwargs = CASES[name]
    reference, fused = _pair(rng, **kwargs)
    _assert_same(reference, fused, rng, training=bool(kwargs.get("dropout")))
    assert len(spy) == (2 if TORCH else 0)


@pytest.mark.parametrize("name", ["sequences", "no_bias_backwards_state"])
def test_float64_equals_keras_gru(name, rng, spy):
    # On torch and TensorFlow; JAX without `jax_enable_x64` computes both in float32.
    reference, fused = _pair(rng, dtype="float64", **CASES[name])
    _assert_same(reference, fused, rng, training=False, dtype="float64", atol=1e-10)
    assert len(spy) == (2 if TORCH else 0)


def test_returned_state_is_the_last_output(rng, spy):
    _, fused = _pair(rng, return_sequences=True, return_state=True)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    outputs, state = fused(x)
    np.testing.assert_array_equal(np_(state), np_(outputs)[:, -1])


def test_masked_input_keeps_the_keras_loop(rng, spy):
    reference, fused = _pair(rng, return_sequences=True)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    mask = ops.convert_to_tensor(np.array([[1] * STEPS, [1] * 3 + [0] * (STEPS - 3)], bool))
    np.testing.assert_allclose(np_(fused(x, mask=mask)), np_(reference(x, mask=mask)), atol=1e-5)
    assert spy == []


def _gru_models(num_layers):
    from keras_deeprnn import build_model

    keras.utils.set_random_seed(3)
    model = build_model("deep_gru", input_dim=FEATURES, output_dim=2, units=UNITS, num_layers=num_layers,
                        dropout=0.3, seed=11)
    keras.utils.set_random_seed(3)
    reference = build_model("deep_gru", input_dim=FEATURES, output_dim=2, units=UNITS, num_layers=num_layers,
                            dropout=0.3, seed=11)
    reference.set_weights(model.get_weights())
    return model, reference


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_deep_gru_preset_equals_the_keras_loop(num_layers, training, rng, spy, monkeypatch):
    from keras_deeprnn.layers import fused as fused_module

    model, reference = _gru_models(num_layers)
    assert sum(isinstance(layer, FusedGRU) for layer in model._flatten_layers()) == num_layers
    x = ops.convert_to_tensor(rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32"))
    target = ops.convert_to_tensor(rng.normal(size=(BATCH, STEPS, 2)).astype("float32"))
    applies = fused_module._torch_kernel_applies

    def loss(m, keras_loop):
        # The reference is the same model with every FusedGRU on Keras's own GRU loop.
        monkeypatch.setattr(fused_module, "_torch_kernel_applies",
                            (lambda layer, mask: False) if keras_loop else applies)
        return ops.sum(ops.square(m(x, training=training) - target))

    value, grads = value_and_grads(lambda: loss(model, False), model.trainable_variables)
    ref_value, ref_grads = value_and_grads(lambda: loss(reference, True), reference.trainable_variables)
    assert len(spy) == (num_layers if TORCH else 0)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    assert len(grads) == len(ref_grads) > 0
    for g, want, v in zip(grads, ref_grads, model.trainable_variables):
        np.testing.assert_allclose(g, want, atol=1e-5, err_msg=v.path)


@pytest.mark.backend("torch")
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
def test_gradcheck_in_float64(use_bias):
    import torch

    from keras_deeprnn.layers import _gru_bptt

    generator = torch.Generator().manual_seed(0)

    def tensor(*shape):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * 0.5).requires_grad_()

    args = (tensor(BATCH, STEPS, 3 * UNITS), tensor(BATCH, UNITS), tensor(UNITS, 3 * UNITS),
            tensor(3 * UNITS) if use_bias else None)
    assert torch.autograd.gradcheck(_gru_bptt.sequence, args, eps=1e-6, atol=1e-7)


@pytest.mark.backend("torch")
def test_inference_without_autograd_takes_the_route(rng, spy):
    import torch

    reference, fused = _pair(rng, return_sequences=True)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    with torch.no_grad():
        np.testing.assert_allclose(np_(fused(x)), np_(reference(x)), atol=1e-5)
    assert len(spy) == 1


@pytest.mark.backend("torch")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_keeps_torch_kernel(dtype, rng, spy, monkeypatch):
    from keras_deeprnn.layers import fused as fused_module

    import torch

    calls = []
    original = torch._VF.gru
    monkeypatch.setattr(torch._VF, "gru", lambda *a: calls.append(1) or original(*a))
    layer = FusedGRU(UNITS, return_sequences=True, dtype=f"mixed_{dtype}")
    y = layer(rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32"))
    assert fused_module._torch_kernel_applies(layer, None)
    assert str(y.dtype) == f"torch.{dtype}"
    assert spy == [] and calls == [1]


@pytest.mark.backend("torch")
def test_switched_off_it_leaves_the_layer_to_torch_gru(rng, spy, monkeypatch):
    import torch

    from keras_deeprnn.layers import _gru_bptt

    calls = []
    original = torch._VF.gru
    monkeypatch.setattr(torch._VF, "gru", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(_gru_bptt, "WHOLE_SEQUENCE", False)
    reference, fused = _pair(rng, return_sequences=True)
    _assert_same(reference, fused, rng, training=False)
    assert spy == [] and calls == [1, 1]
