"""Bits per token and perplexity: NumPy functions and Keras metrics."""

import math

import keras
import numpy as np
import pytest

from keras_deeprnn.metrics.language import BitsPerToken
from keras_deeprnn.metrics.language import Perplexity
from keras_deeprnn.metrics.language import bits_per_token
from keras_deeprnn.metrics.language import perplexity


def _value(metric):
    return float(keras.ops.convert_to_numpy(metric.result()))


def _one_hot_probabilities(targets, target_probability, vocabulary_size):
    """Each row gives `target_probability` to its target, the rest evenly."""
    targets = np.asarray(targets)
    rest = (1.0 - target_probability) / (vocabulary_size - 1)
    probabilities = np.full(targets.shape + (vocabulary_size,), rest)
    np.put_along_axis(probabilities, targets[..., None], target_probability, axis=-1)
    return probabilities


@pytest.mark.parametrize("vocabulary_size", [2, 7, 50])
def test_uniform_model_gives_log2_v_bits_and_perplexity_v(vocabulary_size):
    rng = np.random.default_rng(0)
    targets = rng.integers(0, vocabulary_size, size=(3, 11))
    uniform = np.full((3, 11, vocabulary_size), 1.0 / vocabulary_size)
    assert bits_per_token(uniform, targets) == pytest.approx(math.log2(vocabulary_size), abs=1e-12)
    assert perplexity(uniform, targets) == pytest.approx(vocabulary_size, rel=1e-12)
    assert bits_per_token(np.zeros_like(uniform), targets, from_logits=True) == pytest.approx(
        math.log2(vocabulary_size), abs=1e-12
    )

    bits, ppl = BitsPerToken(), Perplexity(from_logits=True)
    bits.update_state(targets, uniform.astype("float32"))
    ppl.update_state(targets, np.zeros((3, 11, vocabulary_size), "float32"))
    assert _value(bits) == pytest.approx(math.log2(vocabulary_size), rel=1e-6)
    assert _value(ppl) == pytest.approx(vocabulary_size, rel=1e-5)


def test_hand_computed_case():
    probabilities = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    targets = np.array([0, 1, 1])
    # -log2 0.5 = 1, -log2 0.8 = 0.32192809..., -log2 0.2 = 2.32192809...
    expected_bits = (1.0 + 0.32192809488736235 + 2.321928094887362) / 3
    assert expected_bits == pytest.approx(1.2146187299249081)
    assert bits_per_token(probabilities, targets) == pytest.approx(expected_bits, abs=1e-12)
    assert perplexity(probabilities, targets) == pytest.approx(2**expected_bits, rel=1e-12)
    assert perplexity(probabilities, targets) == pytest.approx(
        math.exp(-(math.log(0.5) + math.log(0.8) + math.log(0.2)) / 3), rel=1e-12
    )
    metric = BitsPerToken()
    metric.update_state(targets, probabilities)
    assert _value(metric) == pytest.approx(expected_bits, rel=1e-6)


def test_accumulation_is_over_tokens_not_a_mean_of_batch_means():
    # One token at 1 bit, then three tokens at 3 bits each:
    # (1 + 9) / 4 = 2.5 bits over all tokens; a mean of batch means says 2.0.
    first_targets, second_targets = np.array([[2]]), np.array([[0, 3, 1]])
    first = _one_hot_probabilities(first_targets, 0.5, 4)
    second = _one_hot_probabilities(second_targets, 0.125, 4)
    everything = bits_per_token(
        np.concatenate([first.reshape(-1, 4), second.reshape(-1, 4)]),
        np.concatenate([first_targets.ravel(), second_targets.ravel()]),
    )
    assert everything == pytest.approx(2.5, abs=1e-12)

    bits, ppl = BitsPerToken(), Perplexity()
    for targets, probabilities in ((first_targets, first), (second_targets, second)):
        bits.update_state(targets, probabilities.astype("float32"))
        ppl.update_state(targets, probabilities.astype("float32"))
    assert _value(bits) == pytest.approx(2.5, rel=1e-6)
    assert _value(ppl) == pytest.approx(2**2.5, rel=1e-5)
    bits.reset_state()
    assert _value(bits) == 0.0


def test_random_batches_match_numpy_over_the_whole_split():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(7, 9, 13)).astype("float32")
    targets = rng.integers(0, 13, size=(7, 9))
    bits, ppl = BitsPerToken(from_logits=True), Perplexity(from_logits=True)
    for rows in (slice(0, 2), slice(2, 7)):
        bits.update_state(targets[rows], logits[rows])
        ppl.update_state(targets[rows], logits[rows])
    reference = bits_per_token(logits, targets, from_logits=True)
    assert _value(bits) == pytest.approx(reference, rel=1e-5)
    assert _value(ppl) == pytest.approx(perplexity(logits, targets, from_logits=True), rel=1e-5)

    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert bits_per_token(probabilities, targets) == pytest.approx(reference, rel=1e-6)
    # Log-probabilities are logits that are already normalised.
    assert bits_per_token(np.log(probabilities), targets, from_logits=True) == pytest.approx(
        reference, rel=1e-6
    )
    from_probabilities = BitsPerToken()
    from_probabilities.update_state(targets, probabilities)
    assert _value(from_probabilities) == pytest.approx(reference, rel=1e-5)


def test_mask_and_sample_weight_drop_tokens():
    targets = np.array([[0, 1, 2], [2, 2, 0]])
    probabilities = _one_hot_probabilities(targets, 0.5, 3)
    # A padded position whose target has probability 0.
    probabilities[0, 2] = [0.5, 0.5, 0.0]
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    assert bits_per_token(probabilities, targets) == math.inf
    assert bits_per_token(probabilities, targets, mask=mask) == pytest.approx(1.0, abs=1e-12)

    metric = BitsPerToken()
    metric.update_state(targets, probabilities, sample_weight=mask)
    assert _value(metric) == pytest.approx(1.0, rel=1e-6)
    assert float(keras.ops.convert_to_numpy(metric.count)) == 5.0

    # A weight per row (batch,) covers every step of that row.
    probabilities[0, 2] = [0.0, 0.0, 1.0]
    probabilities[1] = _one_hot_probabilities(targets[1], 0.25, 3)
    rows = BitsPerToken()
    rows.update_state(targets, probabilities, sample_weight=np.array([0.0, 1.0]))
    assert _value(rows) == pytest.approx(2.0, rel=1e-6)
    assert bits_per_token(probabilities, targets, mask=np.array([[0.0], [1.0]])) == pytest.approx(2.0)


def test_zero_probability_is_inf_in_numpy_and_clipped_in_the_metric():
    probabilities = np.array([[0.0, 1.0]])
    assert bits_per_token(probabilities, [0]) == math.inf
    metric = BitsPerToken()
    metric.update_state(np.array([0]), probabilities.astype("float32"))
    expected = -math.log2(keras.config.epsilon())
    assert _value(metric) == pytest.approx(expected, rel=1e-5)


def test_targets_with_a_trailing_unit_axis_are_accepted():
    probabilities = _one_hot_probabilities(np.array([[1, 0]]), 0.25, 4)
    assert bits_per_token(probabilities, np.array([[[1], [0]]])) == pytest.approx(2.0)
    metric = Perplexity()
    metric.update_state(np.array([[[1], [0]]]), probabilities)
    assert _value(metric) == pytest.approx(4.0, rel=1e-5)


def test_evaluate_reports_the_value_over_all_tokens_with_an_unequal_last_batch():
    keras.utils.set_random_seed(0)
    vocabulary_size = 6
    model = keras.Sequential(
        [
            keras.Input((5,)),
            # Large weights make the per-token NLLs differ, so masking matters.
            keras.layers.Embedding(vocabulary_size, 4, embeddings_initializer=keras.initializers.RandomNormal(stddev=3.0, seed=0)),
            keras.layers.Dense(vocabulary_size),
        ]
    )
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[BitsPerToken(from_logits=True), Perplexity(from_logits=True)],
        weighted_metrics=[BitsPerToken(from_logits=True, name="masked_bits")],
    )
    rng = np.random.default_rng(2)
    x = rng.integers(0, vocabulary_size, size=(7, 5))
    y = rng.integers(0, vocabulary_size, size=(7, 5))
    mask = (rng.random((7, 5)) < 0.6).astype("float32")
    results = model.evaluate(x, y, sample_weight=mask, batch_size=4, return_dict=True, verbose=0)
    logits = model.predict(x, batch_size=7, verbose=0)
    assert results["bits_per_token"] == pytest.approx(
        bits_per_token(logits, y, from_logits=True), rel=1e-5
    )
    assert results["perplexity"] == pytest.approx(perplexity(logits, y, from_logits=True), rel=1e-5)
    masked = bits_per_token(logits, y, mask=mask, from_logits=True)
    assert results["masked_bits"] == pytest.approx(masked, rel=1e-5)
    assert abs(masked - results["bits_per_token"]) > 1e-2


@pytest.mark.parametrize("cls", [BitsPerToken, Perplexity])
def test_config_round_trip_and_registration(cls):
    metric = cls(from_logits=True, name="held_out", dtype="float32")
    config = metric.get_config()
    assert config == {"name": "held_out", "dtype": "float32", "from_logits": True}
    clone = cls.from_config(config)
    assert clone.from_logits is True and clone.name == "held_out"
    serialized = keras.saving.serialize_keras_object(metric)
    assert serialized["registered_name"] == f"keras_deeprnn>{cls.__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls and restored.from_logits is True
    assert cls().name == {"BitsPerToken": "bits_per_token", "Perplexity": "perplexity"}[cls.__name__]


def test_metric_rejects_a_non_boolean_from_logits():
    with pytest.raises(ValueError, match=r"from_logits.*'yes'"):
        BitsPerToken(from_logits="yes")


@pytest.mark.parametrize(
    "probabilities, targets, kwargs, pattern",
    [
        (np.full((2, 3, 4), 0.25), np.zeros((3, 2), int), {}, r"shape \(2, 3, 4\).*shape \(3, 2\)"),
        (np.full((2, 4), 0.25), np.array([0, 4]), {}, r"\[0, 4\).*from 0 to 4"),
        (np.full((2, 4), 0.25), np.array([0.0, 1.0]), {}, r"integer.*float64"),
        (np.array([[2.0, -1.0]]), np.array([0]), {}, r"outside \[0, 1\].*from_logits=True"),
        (np.full((2, 4), 0.25), np.array([0, 1]), {"mask": np.ones(3)}, r"mask.*\(2,\).*\(3,\)"),
        (np.full((2, 4), 0.25), np.array([0, 1]), {"mask": np.zeros(2)}, r"non-zero"),
        (np.full((0, 4), 0.25), np.zeros(0, int), {}, r"no tokens"),
    ],
)
def test_numpy_functions_reject_bad_inputs(probabilities, targets, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        bits_per_token(probabilities, targets, **kwargs)
    with pytest.raises(ValueError, match="perplexity"):
        perplexity(probabilities, targets, **kwargs)


def test_a_weight_with_a_last_unit_axis_is_read_per_token_and_a_wider_one_refused():
    targets = np.array([[0, 1, 2]])
    probabilities = _one_hot_probabilities(targets, 0.5, 3)
    metric = BitsPerToken()
    metric.update_state(targets, probabilities, sample_weight=np.ones((1, 3, 1)))
    assert float(keras.ops.convert_to_numpy(metric.count)) == 3.0
    with pytest.raises(ValueError, match=r"sample_weight.*\(1, 3\).*\(1, 3, 2\)"):
        metric.update_state(targets, probabilities, sample_weight=np.ones((1, 3, 2)))
