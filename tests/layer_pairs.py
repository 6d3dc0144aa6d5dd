"""`keras.layers.RNN` and `DeepRNN` side by side, equal weights, equal numbers (tests only)."""

import keras
import numpy as np
import pytest
from keras import ops

from backend_grad import value_and_grads
from keras_deeprnn.layers import DeepRNN

# The options of `keras.layers.RNN` a fast path must keep, as `kwargs` parameters.
LAYER_OPTIONS = [
    pytest.param(dict(return_sequences=False), id="last"),
    pytest.param(dict(return_sequences=True, go_backwards=True), id="backwards"),
    pytest.param(dict(return_sequences=True, return_state=True), id="state"),
    pytest.param(dict(return_sequences=False, go_backwards=True, return_state=True), id="last_backwards_state"),
]


def np_(x):
    return ops.convert_to_numpy(x)


def listed(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def pair(rng, make_cell, features, batch, wrap=None, **kwargs):
    """`keras.layers.RNN` and `DeepRNN` (each wrapped by `wrap`, e.g.
    `keras.layers.Bidirectional`) around equal cells with equal weights."""
    wrap = wrap or (lambda layer: layer)
    reference = wrap(keras.layers.RNN(make_cell(), **kwargs))
    fast = wrap(DeepRNN(make_cell(), **kwargs))
    batch = batch if kwargs.get("stateful") else None
    for layer in (reference, fast):
        layer.build((batch, None, features))
    assert len(reference.weights) == len(fast.weights)
    for v, w in zip(reference.weights, fast.weights):
        v.assign(rng.normal(size=v.shape).astype(v.dtype) * 0.5)
        w.assign(v)
    return reference, fast


def assert_same(reference, fast, x, training, **call):
    """Equal outputs, and equal gradients of every weight of a loss over them."""
    for got, want in zip(listed(fast(x, training=training, **call)),
                         listed(reference(x, training=training, **call))):
        np.testing.assert_allclose(np_(got), np_(want), atol=2e-5)
    weight = None
    batch = x.shape[0]

    def loss(layer):
        nonlocal weight
        y = ops.concatenate([ops.reshape(ops.cast(t, "float32"), (batch, -1))
                             for t in listed(layer(x, training=training, **call))], axis=-1)
        if weight is None:
            weight = ops.convert_to_tensor(
                np.random.default_rng(1).normal(size=y.shape).astype("float32"))
        return ops.sum(ops.tanh(y) * weight)

    value, grads = value_and_grads(lambda: loss(fast), fast.trainable_variables)
    ref_value, ref_grads = value_and_grads(lambda: loss(reference), reference.trainable_variables)
    np.testing.assert_allclose(value, ref_value, rtol=2e-5, atol=2e-5)
    assert_same_gradients(grads, ref_grads, fast.trainable_variables)


def assert_same_gradients(grads, want, variables):
    """Each weight's gradient equal to the reference's, named by the weight's path."""
    assert len(grads) == len(want) > 0
    for g, w, v in zip(grads, want, variables):
        # float32 sums over every step: gradients near 30 differ in the
        # sixth digit between two correct orders of summation.
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=5e-5, err_msg=v.path)
