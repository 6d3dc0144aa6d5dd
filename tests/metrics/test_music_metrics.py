"""Frame NLL and frame accuracy: NumPy functions and Keras metrics."""

import math

import keras
import numpy as np
import pytest

from keras_deeprnn.metrics.music import FrameAccuracy
from keras_deeprnn.metrics.music import FrameNLL
from keras_deeprnn.metrics.music import frame_accuracy
from keras_deeprnn.metrics.music import frame_nll

# Two frames of three notes, worked by hand:
#   frame 0: -(log 0.9 + log(1 - 0.2) + log 0.5)
#   frame 1: -3 log(1 - 0.5)
PROBS = np.array([[0.9, 0.2, 0.5], [0.5, 0.5, 0.5]])
TARGETS = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
FRAME_0 = -(math.log(0.9) + math.log(0.8) + math.log(0.5))
FRAME_1 = 3 * math.log(2.0)


def random_batch(rng, batch, time, notes=88):
    probs = rng.uniform(0.01, 0.99, size=(batch, time, notes)).astype("float32")
    targets = (rng.uniform(size=(batch, time, notes)) < 0.1).astype("float32")
    lengths = rng.integers(1, time + 1, size=batch)
    mask = (np.arange(time)[None, :] < lengths[:, None]).astype("float32")
    return probs, targets, mask


def metric_value(metric):
    return float(keras.ops.convert_to_numpy(metric.result()))


def test_frame_nll_by_hand():
    expected = (FRAME_0 + FRAME_1) / 2
    assert frame_nll(PROBS, TARGETS) == pytest.approx(expected, rel=1e-12)
    assert frame_nll(PROBS[:1], TARGETS[:1]) == pytest.approx(FRAME_0, rel=1e-12)
    assert frame_nll(PROBS, TARGETS, [0.0, 1.0]) == pytest.approx(FRAME_1, rel=1e-12)


def test_frame_nll_ignores_padding():
    # Padding frames carry confident wrong guesses that would cost ~16 nats.
    confident = [[1e-9, 1e-9, 1e-9]]
    probs = np.stack([np.concatenate([PROBS, confident]), np.full((3, 3), 0.5)])
    targets = np.stack([np.concatenate([TARGETS, [[1.0, 1.0, 1.0]]]), np.ones((3, 3))])
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    expected = (FRAME_0 + FRAME_1 + 3 * math.log(2.0)) / 3
    assert frame_nll(probs, targets, mask) == pytest.approx(expected, rel=1e-12)
    assert frame_nll(probs, targets) > expected + 5


def test_frame_nll_clips_certain_mistakes():
    value = frame_nll([[0.0, 1.0]], [[1.0, 0.0]], epsilon=1e-7)
    assert value == pytest.approx(-2 * math.log(1e-7), rel=1e-6)


def test_frame_nll_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        frame_nll(PROBS, TARGETS[:, :2])
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        frame_nll(PROBS, TARGETS, mask=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="no frame"):
        frame_nll(PROBS, TARGETS, mask=[0.0, 0.0])
    with pytest.raises(ValueError, match="epsilon"):
        frame_nll(PROBS, TARGETS, epsilon=0.0)


def test_keras_frame_nll_by_hand_and_with_padding():
    metric = FrameNLL()
    metric.update_state(TARGETS[None], PROBS[None].astype("float32"))
    assert metric_value(metric) == pytest.approx((FRAME_0 + FRAME_1) / 2, rel=1e-5)
    metric.reset_state()
    metric.update_state(TARGETS[None], PROBS[None], sample_weight=[[1.0, 0.0]])
    assert metric_value(metric) == pytest.approx(FRAME_0, rel=1e-5)


def test_keras_frame_nll_accumulates_frames_not_batch_means():
    rng = np.random.default_rng(0)
    first = random_batch(rng, 2, 6)
    second = random_batch(rng, 5, 6)
    second[2][:, 1:] = 0.0  # the second batch has one real frame a sequence
    metric = FrameNLL()
    for probs, targets, mask in (first, second):
        metric.update_state(targets, probs, sample_weight=mask)
    joined = [np.concatenate(parts) for parts in zip(first, second)]
    expected = frame_nll(*joined)
    assert metric_value(metric) == pytest.approx(expected, rel=1e-5)
    mean_of_means = (frame_nll(*first) + frame_nll(*second)) / 2
    assert abs(mean_of_means - expected) > 1e-3


def test_keras_frame_nll_from_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(3, 4, 88)).astype("float32")
    targets = (rng.uniform(size=(3, 4, 88)) < 0.2).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], "float32")
    metric = FrameNLL(from_logits=True)
    metric.update_state(targets, logits, sample_weight=mask)
    probs = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    expected = frame_nll(probs, targets, mask, epsilon=1e-12)
    assert metric_value(metric) == pytest.approx(expected, rel=1e-5)

    # Beyond float32's reach of 1 - p the logit form stays exact: softplus(40).
    metric = FrameNLL(from_logits=True)
    metric.update_state([[[0.0]]], [[[40.0]]])
    assert metric_value(metric) == pytest.approx(40.0, rel=1e-6)


def test_keras_frame_nll_sequence_weights_repeat_over_frames():
    probs, targets, _ = random_batch(np.random.default_rng(2), 3, 5)
    metric = FrameNLL()
    metric.update_state(targets, probs, sample_weight=[1.0, 0.0, 1.0])
    mask = np.array([[1.0] * 5, [0.0] * 5, [1.0] * 5])
    expected = frame_nll(probs, targets, mask)
    assert metric_value(metric) == pytest.approx(expected, rel=1e-5)


def test_keras_frame_nll_without_frames_is_zero():
    metric = FrameNLL()
    metric.update_state(TARGETS[None], PROBS[None], sample_weight=[[0.0, 0.0]])
    assert metric_value(metric) == 0.0


def test_frame_accuracy_by_hand():
    probs = [[0.9, 0.8, 0.1, 0.2], [0.7, 0.1, 0.1, 0.6], [0.9, 0.9, 0.9, 0.9]]
    targets = [[1, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]]
    # TP = 1 + 2, FP = 1 + 0, FN = 1 + 0 over the first two frames.
    assert frame_accuracy(probs, targets, mask=[1, 1, 0]) == pytest.approx(3 / 5)
    # The third frame adds four false positives.
    assert frame_accuracy(probs, targets) == pytest.approx(3 / 9)
    # Above 0.75 the second frame turns silent: TP = 1, FP = 1 + 4, FN = 1 + 2.
    assert frame_accuracy(probs, targets, threshold=0.75) == pytest.approx(1 / 9)
    assert frame_accuracy([[0.1, 0.2]], [[0, 0]]) == 0.0


def test_keras_frame_accuracy_matches_numpy_over_two_batches():
    rng = np.random.default_rng(3)
    first = random_batch(rng, 2, 6)
    second = random_batch(rng, 4, 6)
    metric = FrameAccuracy(threshold=0.6)
    for probs, targets, mask in (first, second):
        metric.update_state(targets, probs, sample_weight=mask)
    joined = [np.concatenate(parts) for parts in zip(first, second)]
    expected = frame_accuracy(*joined, threshold=0.6)
    assert metric_value(metric) == pytest.approx(expected, rel=1e-5)

    logits = np.log(joined[0] / (1.0 - joined[0]))
    metric = FrameAccuracy(threshold=0.6, from_logits=True)
    metric.update_state(joined[1], logits, sample_weight=joined[2])
    assert metric_value(metric) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "metric",
    [
        FrameNLL(name="nll", from_logits=True, epsilon=1e-5),
        FrameAccuracy(threshold=0.3, from_logits=True),
    ],
    ids=["FrameNLL", "FrameAccuracy"],
)
def test_config_round_trip(metric):
    config = metric.get_config()
    restored = type(metric).from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == f"keras_deeprnn>{type(metric).__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(metric) and revived.get_config() == config


def test_constructors_check_arguments():
    expected = r"epsilon must be a number in \(0, 0.5\); received 2"
    with pytest.raises(ValueError, match=expected):
        FrameNLL(epsilon=2)
    with pytest.raises(ValueError, match="threshold"):
        FrameAccuracy(threshold=1.5)


def test_frame_nll_in_compile_and_fit_honours_sample_weight():
    rng = np.random.default_rng(4)
    x = (rng.uniform(size=(4, 6, 88)) < 0.1).astype("float32")
    y = (rng.uniform(size=(4, 6, 88)) < 0.1).astype("float32")
    lengths = np.array([6, 3, 5, 1])
    mask = (np.arange(6)[None, :] < lengths[:, None]).astype("float32")
    model = keras.Sequential(
        [keras.Input((None, 88)), keras.layers.Dense(88, activation="sigmoid")]
    )
    model.compile(
        optimizer="sgd",
        loss="binary_crossentropy",
        weighted_metrics=[FrameNLL(), FrameAccuracy()],
    )
    history = model.fit(x, y, sample_weight=mask, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["frame_nll"][0])
    scores = model.evaluate(
        x, y, sample_weight=mask, batch_size=4, verbose=0, return_dict=True
    )
    probs = model.predict(x, verbose=0)
    assert scores["frame_nll"] == pytest.approx(frame_nll(probs, y, mask), rel=1e-4)
    accuracy = frame_accuracy(probs, y, mask)
    assert scores["frame_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert abs(scores["frame_nll"] - frame_nll(probs, y)) > 1e-3
