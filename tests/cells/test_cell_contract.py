"""The Keras cell contract, and every keras.layers.RNN option, for every cell."""

import json

import keras
import numpy as np
import pytest
from keras import ops
from keras import tree

from cases import CASE_IDS
from cases import CASES
from cases import INPUT_DIM
from keras_deeprnn.layers import DeepRNN

SEQUENCE_LAYERS = [keras.layers.RNN, DeepRNN]
LAYER_IDS = ["RNN", "DeepRNN"]


def np_(x):
    return ops.convert_to_numpy(x)


def _x(rng, batch=2, time=5):
    return rng.normal(size=(batch, time, INPUT_DIM)).astype("float32")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_config_round_trip(case):
    cell = case.make()
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    # A saved model stores the config as JSON.
    json.dumps(keras.saving.serialize_keras_object(cell))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_build_weight_count_and_shapes(case, rng):
    layer = keras.layers.RNN(case.make(), return_sequences=True)
    inputs = keras.Input((None, INPUT_DIM))
    symbolic = layer(inputs)
    assert tuple(symbolic.shape) == (None, None, case.output_size)
    assert layer.count_params() == case.param_count
    assert len({v.path for v in layer.weights}) == len(layer.weights)
    eager = layer(_x(rng))
    assert tuple(eager.shape) == (2, 5, case.output_size)


# The transition and depth-gated cells are also trained inside every model of
# test_models; here, one of each kind plus the wrappers that models don't use.
FIT_CASES = [c for c in CASES if c.id in ("rnn", "dts_L3_narrow", "dg_lstm_3", "stacked_skip", "dots_lp")]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c.id for c in FIT_CASES])
def test_one_fit_step_changes_every_weight(case, rng):
    model = keras.Sequential([
        keras.Input((None, INPUT_DIM)),
        DeepRNN(case.make(), return_sequences=True),
        keras.layers.Dense(1),
    ])
    # TensorFlow traces slowly and JAX runs eagerly slowly: each its faster way.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  run_eagerly=keras.backend.backend() == "tensorflow")
    before = [np_(v) for v in model.layers[0].trainable_weights]
    history = model.fit(_x(rng, 4), rng.normal(size=(4, 5, 1)), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for v, b in zip(model.layers[0].trainable_weights, before):
        assert not np.allclose(np_(v), b), f"{v.path} did not move"


# Mixed precision against the float64 NumPy reference: test_dtypes.


def _step_by_hand(cell, x, states):
    outputs = []
    for t in range(x.shape[1]):
        out, states = cell(ops.convert_to_tensor(x[:, t]), states)
        outputs.append(np_(out))
    return np.stack(outputs, axis=1), states


@pytest.mark.parametrize("layer_cls", SEQUENCE_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_loop_matches_stepping_by_hand(case, layer_cls, rng):
    x = _x(rng)
    layer = layer_cls(case.make(), return_sequences=True, return_state=True)
    initial = tree.map_structure(
        lambda s: ops.convert_to_tensor(rng.normal(size=s.shape).astype("float32")),
        layer.cell.get_initial_state(batch_size=2) if layer.built else
        (layer.build((None, None, INPUT_DIM)) or layer.cell.get_initial_state(batch_size=2)),
    )
    outputs, *final = layer(x, initial_state=initial)
    expected, expected_final = _step_by_hand(layer.cell, x, initial)
    np.testing.assert_allclose(np_(outputs), expected, atol=1e-5)
    for got, want in zip(tree.flatten(final), tree.flatten(expected_final)):
        np.testing.assert_allclose(np_(got), np_(want), atol=1e-5)


@pytest.mark.parametrize("layer_cls", SEQUENCE_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_go_backwards_and_unroll(case, layer_cls, rng):
    x = _x(rng)
    forward = layer_cls(case.make(), return_sequences=True)
    y = np_(forward(x[:, ::-1]))
    backward = layer_cls(forward.cell, return_sequences=True, go_backwards=True)
    np.testing.assert_allclose(np_(backward(x)), y, atol=1e-5)
    unrolled = layer_cls(forward.cell, return_sequences=True, unroll=True)
    np.testing.assert_allclose(np_(unrolled(x[:, ::-1])), y, atol=1e-5)


@pytest.mark.parametrize("layer_cls", SEQUENCE_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_stateful_continues_and_resets(case, layer_cls, rng):
    x = _x(rng, batch=2, time=6)
    whole = layer_cls(case.make(), return_sequences=True)
    y = np_(whole(x))
    stateful = layer_cls(whole.cell, return_sequences=True, stateful=True)
    first = np_(stateful(x[:, :3]))
    second = np_(stateful(x[:, 3:]))
    np.testing.assert_allclose(np.concatenate([first, second], 1), y, atol=1e-5)
    if layer_cls is DeepRNN:
        stateful.reset_state()
    else:  # keras.layers.RNN.reset_state cannot walk nested states
        for v in tree.flatten(stateful.states):
            v.assign(ops.zeros_like(v.value))
    np.testing.assert_allclose(np_(stateful(x[:, :3])), y[:, :3], atol=1e-5)


@pytest.mark.parametrize("layer_cls", SEQUENCE_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_padded_batch_equals_unpadded_sequences(case, layer_cls, rng):
    lengths = [6, 3, 4]
    pieces = [rng.normal(size=(1, n, INPUT_DIM)).astype("float32") for n in lengths]
    padded = np.zeros((3, 6, INPUT_DIM), "float32")
    mask = np.zeros((3, 6), bool)
    for i, (p, n) in enumerate(zip(pieces, lengths)):
        padded[i, :n], mask[i, :n] = p[0], True
    seq = layer_cls(case.make(), return_sequences=True)
    last = layer_cls(seq.cell, return_sequences=False)
    y_seq = np_(seq(padded, mask=ops.convert_to_tensor(mask)))
    y_last = np_(last(padded, mask=ops.convert_to_tensor(mask)))
    for i, (p, n) in enumerate(zip(pieces, lengths)):
        alone = np_(seq(p))[0]
        np.testing.assert_allclose(y_seq[i, :n], alone, atol=1e-5)
        np.testing.assert_allclose(y_last[i], alone[-1], atol=1e-5)


@pytest.mark.parametrize("layer_cls", SEQUENCE_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inside_bidirectional_matches_numpy_both_ways(case, layer_cls, rng):
    # Forward half: the NumPy pass over x; backward half: over x reversed,
    # with the backward copy's own weights, read back in forward time order.
    x = _x(rng)
    bi = keras.layers.Bidirectional(layer_cls(case.make(), return_sequences=True))
    out = np_(bi(x))
    x64 = x.astype(np.float64)
    forward = case.reference(bi.forward_layer.cell, x64)
    backward = case.reference(bi.backward_layer.cell, x64[:, ::-1])[:, ::-1]
    assert out.shape == (2, 5, 2 * case.output_size)
    # rtol 1e-4: layer norm over 3 units divides by a small spread, which
    # scales float32 rounding up (the weights here are drawn at random).
    np.testing.assert_allclose(out[..., : case.output_size], forward, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(out[..., case.output_size :], backward, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inside_stacked_rnn_cells(case, rng):
    x = _x(rng)
    first, second = case.make(), case.make()
    stacked = keras.layers.RNN(keras.layers.StackedRNNCells([first, second]), return_sequences=True)
    y = np_(stacked(x))
    below = case.reference(first, x.astype(np.float64))
    np.testing.assert_allclose(y, case.reference(second, below), atol=case.atol)
