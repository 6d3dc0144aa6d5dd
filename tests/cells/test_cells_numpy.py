"""Each cell against a NumPy version of its equation, forward and gradient.

The cells run inside `keras.layers.RNN`; `DeepRNN` is held to
`keras.layers.RNN` on every case, outputs and gradients, in
`tests/layers/test_fast_paths.py`.
"""

import keras
import numpy as np
import pytest
from keras import ops

import reference as ref
from backend_grad import value_and_grads
from cases import CASE_IDS
from cases import CASES
from cases import INPUT_DIM
from cases import MODEL_CASES
from cases import make_model
from cases import model_reference
from cases import weights_of


def _data(case, rng, batch=2, time=4):
    x = rng.normal(size=(batch, time, INPUT_DIM))
    r = rng.normal(size=(batch, time, case.output_size))
    return x, r


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_numpy(case, rng):
    x, _ = _data(case, rng)
    layer = keras.layers.RNN(case.make(), return_sequences=True)
    y = ops.convert_to_numpy(layer(x.astype("float32")))
    expected = case.reference(layer.cell, x)
    np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradients_match_finite_differences(case, rng):
    x, r = _data(case, rng, batch=2, time=3)
    layer = keras.layers.RNN(case.make(), return_sequences=True)
    layer.build((None, None, INPUT_DIM))
    variables = layer.trainable_variables
    xt, rt = ops.convert_to_tensor(x, "float32"), ops.convert_to_tensor(r, "float32")
    value, grads = value_and_grads(lambda: ops.sum(layer(xt) * rt), variables)

    # Finite differences move copies of the weights that the reference reads
    # in place of the variables.
    arrays = {id(v): np.asarray(v.numpy(), dtype=np.float64) for v in variables}

    def get(layer):
        return {v.name: arrays[id(v)] if id(v) in arrays else np.asarray(v.numpy(), np.float64)
                for v in layer.weights}

    def numpy_loss():
        return float(np.sum(case.reference(layer.cell, x, get) * r))

    np.testing.assert_allclose(value, numpy_loss(), rtol=1e-5, atol=1e-5)
    numeric = ref.numeric_grad(numpy_loss, list(arrays.values()))
    for v, g, n in zip(variables, grads, numeric):
        np.testing.assert_allclose(g, n, atol=case.atol, rtol=1e-4, err_msg=v.path)


@pytest.mark.parametrize("case_id", list(MODEL_CASES))
def test_model_matches_numpy(case_id, rng):
    # The deep input g (its activation included), the levels and ▷ together.
    model = make_model(case_id)
    x = rng.normal(size=(2, 5, INPUT_DIM))
    y = ops.convert_to_numpy(model(x.astype("float32")))
    np.testing.assert_allclose(y, model_reference(model, x), atol=1e-5, rtol=1e-5)


def test_weights_of_reads_names():
    # The references look weights up by name; names must be the documented ones.
    from keras_deeprnn.cells import DeepTransitionCell

    layer = keras.layers.RNN(DeepTransitionCell(2, num_transition_layers=3, shortcut=True))
    layer.build((None, None, 3))
    assert sorted(weights_of(layer.cell)) == sorted(
        ["input_kernel", "recurrent_kernel", "bias", "transition_kernel_0",
         "transition_bias_0", "transition_kernel_1", "transition_bias_1"]
    )


def test_depth_gated_lstm_golden_step_with_a_nonzero_cell():
    # One step of one unit, written out from the equations (independent of
    # reference.py). The previous cell state and the candidate are non-zero
    # and i != f, so swapping the input and forget gates changes the value.
    from keras_deeprnn.cells import DepthGatedLSTMCell

    cell = DepthGatedLSTMCell(1, num_layers=1, kernel_initializer=keras.initializers.Constant(0.5),
                              recurrent_initializer=keras.initializers.Constant(0.3))
    cell.build((None, 1))
    w_ci, w_cf, w_cd, w_ld, w_co = 0.1, -0.2, 0.6, 0.4, 0.5
    cell.peepholes[0].assign(np.array([[w_ci], [w_cf], [w_cd], [w_ld], [w_co]], "float32"))
    x, h0, c0 = 1.0, 0.2, -1.5
    h, _ = cell(ops.ones((1, 1)), [[ops.full((1, 1), h0), ops.full((1, 1), c0)]])

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    a = 0.5 * x + 0.3 * h0            # every gate's x and h_prev terms; b_f = 1 (unit_forget_bias)
    i = sigmoid(a + c0 * w_ci)
    f = sigmoid(a + 1.0 + c0 * w_cf)
    c_low = 0.5 * x                   # the bottom level's x @ W_x0
    d = sigmoid(0.5 * x + c0 * w_cd + c_low * w_ld)
    candidate = np.tanh(a)

    def step(i, f):
        c = d * c_low + f * c0 + i * candidate
        return sigmoid(a + c * w_co) * np.tanh(c)

    np.testing.assert_allclose(ops.convert_to_numpy(h)[0, 0], step(i, f), rtol=1e-5, atol=1e-6)
    assert abs(step(f, i) - step(i, f)) > 0.05   # the value tells i and f apart
