"""Language-model batches: windows in order, the state carried across them and reset."""

import random
import warnings

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import DeepTransitionCell
from keras_deeprnn.data.text_batches import ResetStatesAtEpochStart
from keras_deeprnn.data.text_batches import lm_batches
from keras_deeprnn.data.text_batches import reset_stateful_layers
from keras_deeprnn.layers import DeepRNN


# --- lm_batches -------------------------------------------------------------


def test_lm_batches_first_two_windows_exactly():
    ds = lm_batches(np.arange(103), batch_size=4, seq_len=5)
    assert isinstance(ds, keras.utils.PyDataset)
    # L = 103 // 4 = 25 tokens per stream; (25 - 1) // 5 = 4 windows.
    assert len(ds) == ds.num_batches == 4
    x0, y0 = ds[0]
    x1, y1 = ds[1]
    assert x0.dtype == y0.dtype == np.int32 and x0.shape == (4, 5)
    np.testing.assert_array_equal(x0[:, 0], [0, 25, 50, 75])
    np.testing.assert_array_equal(
        x0, [[0, 1, 2, 3, 4], [25, 26, 27, 28, 29], [50, 51, 52, 53, 54], [75, 76, 77, 78, 79]]
    )
    np.testing.assert_array_equal(y0, x0 + 1)
    np.testing.assert_array_equal(x1, x0 + 5)
    np.testing.assert_array_equal(y1, x1 + 1)
    # Stream b of window 1 continues where stream b of window 0 stopped.
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
    np.testing.assert_array_equal(x1[:, 0], y0[:, -1])


def test_lm_batches_drops_only_the_tail_and_stays_in_its_stream():
    tokens = np.arange(103)
    ds = lm_batches(tokens, batch_size=4, seq_len=5)
    xs, ys = zip(*ds)
    assert len(xs) == 4
    x_all = np.concatenate(xs, axis=1)
    y_all = np.concatenate(ys, axis=1)
    np.testing.assert_array_equal(x_all, tokens[:100].reshape(4, 25)[:, :20])
    np.testing.assert_array_equal(y_all, tokens[:100].reshape(4, 25)[:, 1:21])
    with pytest.raises(IndexError):
        ds.window(4)


def test_lm_batches_accepts_the_minimum_and_rejects_less():
    assert len(lm_batches(np.arange(8), batch_size=2, seq_len=3)) == 1
    with pytest.raises(ValueError, match=r"2 \* \(3 \+ 1\) = 8 tokens.*received 7"):
        lm_batches(np.arange(7), batch_size=2, seq_len=3)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"batch_size": 0}, r"`batch_size`.*Received: batch_size=0"),
        ({"batch_size": 2.5}, r"`batch_size`.*Received: batch_size=2.5"),
        ({"batch_size": True}, r"`batch_size`.*Received: batch_size=True"),
        ({"seq_len": -3}, r"`seq_len`.*Received: seq_len=-3"),
        ({"tokens": np.zeros((4, 10), int)}, r"1-D.*shape \(4, 10\)"),
        ({"tokens": np.linspace(0, 1, 40)}, r"integer.*float64"),
        ({"tokens": np.arange(-1, 39)}, r"non-negative.*from -1"),
    ],
)
def test_lm_batches_bad_arguments(kwargs, pattern):
    arguments = {"tokens": np.arange(40), "batch_size": 2, "seq_len": 4, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        lm_batches(**arguments)


def test_a_token_model_refuses_windows_with_ids_past_its_vocabulary():
    import keras_deeprnn as kdr

    tokens = np.arange(60) % 9
    ds = lm_batches(tokens, batch_size=2, seq_len=4)
    assert ds.token_id_range == (0, 8)
    # Read once, when fit, evaluate or predict starts: no window was served.
    model = kdr.build_model("srnn", vocab_size=8, output_dim=8, units=4,
                            output_activation="softmax")
    model.compile()
    good = lm_batches(np.arange(60) % 8, batch_size=2, seq_len=4)
    message = (r"`{}` must hold token ids from 0 to vocab_size - 1 = 7, the model's "
               r"vocabulary of vocab_size=8\. Received: ids from 0 to 8; the largest, 8, "
               r"is not below vocab_size=8")
    for call, name in ((lambda: model.fit(ds, shuffle=False, verbose=0), "x"),
                       (lambda: model.evaluate(ds, verbose=0), "x"),
                       (lambda: model.predict(ds, verbose=0), "x"),
                       (lambda: model.fit(good, validation_data=ds, shuffle=False, verbose=0),
                        "validation_data")):
        with pytest.raises(ValueError, match=message.format(name)):
            call()
        assert ds._last_index is None
    history = model.fit(good, validation_data=good, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()


def test_lm_batches_refuses_shuffled_access_but_window_allows_any():
    ds = lm_batches(np.arange(200), batch_size=2, seq_len=4)
    ds[0], ds[1], ds[1], ds[2], ds[0], ds[1]
    with pytest.raises(ValueError, match="shuffle=False"):
        ds[5]
    np.testing.assert_array_equal(ds.window(7)[0][0], np.arange(28, 32))


def _stateful_model(batch_size, seq_len, vocabulary_size):
    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch_size, seq_len)),
            keras.layers.Embedding(vocabulary_size, 8),
            DeepRNN(DeepTransitionCell(8, num_transition_layers=2), stateful=True,
                    return_sequences=True),
            keras.layers.Dense(vocabulary_size),
        ]
    )


def _windows_and_model():
    keras.utils.set_random_seed(0)
    batch_size, seq_len, vocabulary_size = 2, 4, 7
    ds = lm_batches(np.arange(60) % vocabulary_size, batch_size, seq_len)
    (x0, _), (x1, _) = ds[0], ds[1]
    return x0, x1, _stateful_model(batch_size, seq_len, vocabulary_size)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_state_carries_across_windows_and_the_callback_resets_it():
    x0, x1, model = _windows_and_model()
    model(x0)
    carried = _numpy(model(x1))
    model.layers[1].reset_state()
    fresh = _numpy(model(x1))
    # Window 1 read after window 0 is not window 1 read from a zero state.
    assert np.abs(carried - fresh).max() > 1e-3

    callback = ResetStatesAtEpochStart()
    callback.set_model(model)
    for hook in (lambda: callback.on_epoch_begin(1), callback.on_test_begin):
        model(x0)
        hook()
        np.testing.assert_allclose(_numpy(model(x1)), fresh, rtol=1e-5, atol=1e-6)


def test_predict_on_batch_carries_state_across_windows():
    x0, x1, model = _windows_and_model()
    model.predict_on_batch(x0)
    carried = model.predict_on_batch(x1)
    reset_stateful_layers(model)
    fresh = model.predict_on_batch(x1)
    assert np.abs(carried - fresh).max() > 1e-3
    model.predict_on_batch(x0)
    reset_stateful_layers(model)
    np.testing.assert_allclose(model.predict_on_batch(x1), fresh, rtol=1e-5, atol=1e-6)


def test_reset_reaches_nested_layers_and_only_stateful_ones():
    class RecordsReset(keras.layers.Layer):
        resets = 0

        def call(self, x):
            return x

        def reset_state(self):
            RecordsReset.resets += 1

    inner = keras.Sequential(
        [keras.Input(batch_shape=(2, 3, 4)), keras.layers.GRU(5, stateful=True, return_sequences=True, unroll=True)]
    )
    outer = keras.Sequential([keras.Input(batch_shape=(2, 3, 4)), RecordsReset(), inner])
    outer(np.ones((2, 3, 4), "float32"))
    gru = inner.layers[0]
    assert np.abs(keras.ops.convert_to_numpy(gru.states[0])).max() > 0
    assert reset_stateful_layers(outer) == 1
    assert np.abs(keras.ops.convert_to_numpy(gru.states[0])).max() == 0
    assert RecordsReset.resets == 0


def test_fit_runs_in_order_and_refuses_shuffle():
    keras.utils.set_random_seed(0)
    random.seed(0)
    batch_size, seq_len, vocabulary_size = 2, 4, 5
    tokens = np.arange(400) % vocabulary_size
    model = _stateful_model(batch_size, seq_len, vocabulary_size)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # DeepRNN carries state on every backend
        history = model.fit(
            lm_batches(tokens, batch_size, seq_len),
            validation_data=lm_batches(tokens[:80], batch_size, seq_len),
            shuffle=False,
            epochs=2,
            callbacks=[ResetStatesAtEpochStart()],
            verbose=0,
        )
    assert np.isfinite(history.history["val_loss"]).all()
    # evaluation ran last and reset at its start; its windows left a state
    assert np.abs(_numpy(model.layers[1].states[0])).max() > 0
    with pytest.raises(Exception, match="shuffle=False"):
        model.fit(lm_batches(tokens, batch_size, seq_len), shuffle=True, verbose=0)


def test_callback_warns_about_keras_rnn_state_on_jax():
    model = keras.Sequential([
        keras.Input(batch_shape=(2, 4)),
        keras.layers.Embedding(5, 3),
        keras.layers.SimpleRNN(3, stateful=True),
    ])
    callback = ResetStatesAtEpochStart()
    callback.set_model(model)
    if keras.backend.backend() == "jax":
        with pytest.warns(UserWarning, match="simple_rnn"):
            callback.on_train_begin()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            callback.on_train_begin()
