"""Bits per token and perplexity, the measures of section 5 of the paper.

For a split of N tokens with targets `t_i` and model probabilities `p_i`:

    nll    = -sum_i w_i * ln p_i(t_i) / sum_i w_i        # nats per token
    bits   = nll / ln 2                                   # bits per character at char level
    ppl    = exp(nll) = 2 ** bits                         # perplexity at word level

The mean runs over every token of the split at once (weights `w_i` default
to 1). Averaging per-batch means instead would weight the tokens of a small
last batch more than the others, and would not give the published figures.

`bits_per_token` and `perplexity` compute this in NumPy (float64) from
arrays held in memory; `BitsPerToken` and `Perplexity` are Keras metrics
that accumulate the total NLL and the token count across batches, so
`model.evaluate` reports the same value.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_deeprnn.metrics.base import MeanNLL


def _mean_nll_nats(predictions, targets, mask, from_logits, function):
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets)
    if targets.ndim == predictions.ndim and targets.shape[-1:] == (1,):
        targets = targets[..., 0]
    if predictions.ndim < 1 or predictions.shape[:-1] != targets.shape:
        raise ValueError(
            f"{function} expects predictions of shape (..., V) and targets of "
            f"shape (...) with the same leading axes; received predictions "
            f"of shape {predictions.shape} and targets of shape "
            f"{targets.shape}."
        )
    if targets.size == 0:
        raise ValueError(f"{function} received no tokens to average over.")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(
            f"{function} expects integer token ids as targets; received "
            f"dtype {targets.dtype}."
        )
    vocabulary_size = predictions.shape[-1]
    if targets.min() < 0 or targets.max() >= vocabulary_size:
        raise ValueError(
            f"{function} expects targets in [0, {vocabulary_size}) for "
            f"predictions over {vocabulary_size} symbols; received ids from "
            f"{targets.min()} to {targets.max()}."
        )

    chosen = np.take_along_axis(predictions, targets[..., None], axis=-1)[..., 0]
    if from_logits:
        top = predictions.max(axis=-1)
        log_norm = top + np.log(
            np.exp(predictions - top[..., None]).sum(axis=-1)
        )
        nll = log_norm - chosen
    else:
        if chosen.min() < 0 or chosen.max() > 1 + 1e-6:
            raise ValueError(
                f"{function} received probabilities outside [0, 1] (from "
                f"{chosen.min()} to {chosen.max()}); pass from_logits=True "
                "if the predictions are logits or log-probabilities."
            )
        # A zero probability for the target is an infinite loss, reported
        # as such rather than hidden by a clip.
        with np.errstate(divide="ignore"):
            nll = -np.log(chosen)

    if mask is None:
        return float(nll.mean())
    try:
        weights = np.broadcast_to(np.asarray(mask, dtype=np.float64), nll.shape)
    except ValueError:
        raise ValueError(
            f"{function} expects a mask that broadcasts to the targets' shape "
            f"{targets.shape}; received shape {np.shape(mask)}."
        ) from None
    if weights.min() < 0 or weights.sum() == 0:
        raise ValueError(
            f"{function} expects a non-negative mask with at least one "
            "non-zero entry."
        )
    # Masked-out positions may hold padding with p = 0; 0 * inf would be nan.
    nll = np.where(weights > 0, nll, 0.0)
    return float((weights * nll).sum() / weights.sum())


def bits_per_token(probabilities, targets, mask=None, from_logits=False):
    """Mean negative log2-likelihood of the targets over every token.

        bits = -sum_i m_i * log2 p_i(targets_i) / sum_i m_i

    Bits per character at character level (PTB: 1.386 for the paper's
    DOT(S)-RNN). Computed in float64 over all tokens at once.

    Args:
        probabilities: array of shape `(..., V)`: probabilities over the `V`
            symbols (summing to 1 over the last axis), or logits /
            log-probabilities with `from_logits=True`.
        targets: integer array of shape `(...)` (or `(..., 1)`) of ids in
            `[0, V)`.
        mask: optional array broadcastable to `targets`' shape; 0 drops a
            token, other non-negative values weight it.
        from_logits: whether `probabilities` are unnormalised log-
            probabilities; they are normalised with a log-softmax.

    Returns:
        A Python float. A target given probability 0 gives `inf`.

    Example:

    >>> bits_per_token(np.full((2, 3, 4), 0.25), np.zeros((2, 3), int))
    2.0
    """
    nll = _mean_nll_nats(
        probabilities, targets, mask, from_logits, "bits_per_token"
    )
    return nll / math.log(2.0)


def perplexity(probabilities, targets, mask=None, from_logits=False):
    """Perplexity over every token: `2 ** bits_per_token = exp(mean NLL in nats)`.

        ppl = exp(-sum_i m_i * ln p_i(targets_i) / sum_i m_i)

    The word-level measure of the paper (PTB: 107.5 for the DOT(S)-RNN).
    Arguments as for `bits_per_token`.

    Example:

    >>> round(perplexity(np.full((5, 10), 0.1), np.arange(5)), 6)
    10.0
    """
    return math.exp(
        _mean_nll_nats(probabilities, targets, mask, from_logits, "perplexity")
    )


class _TokenNLL(MeanNLL):
    """The per-token NLL (nats) of integer targets; subclasses say how to report its mean."""

    def __init__(self, from_logits=False, name=None, dtype=None):
        if not isinstance(from_logits, bool):
            raise ValueError(
                f"`from_logits` must be True or False; received {from_logits!r}."
            )
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def step_nll(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        y_true = ops.expand_dims(ops.cast(y_true, "int32"), axis=-1)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            # Clipped as Keras's crossentropy clips, so the metric agrees
            # with the loss and one zero probability does not make it inf.
            epsilon = keras.config.epsilon()
            log_probs = ops.log(ops.clip(y_pred, epsilon, 1.0))
        return -ops.squeeze(ops.take_along_axis(log_probs, y_true, axis=-1), -1)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class BitsPerToken(_TokenNLL):
    """Bits per token (per character at character level), over all tokens seen.

        total += sum(w * -ln p(y_true))        # per batch
        count += sum(w)
        result = total / count / ln 2

    Sums, not a mean of batch means, so the result over a split equals
    `bits_per_token` over the whole split whatever the batch sizes.
    `sample_weight` weights (or with 0/1, masks) tokens; a weight of shape
    `(batch,)` applies to every step of its row. Probabilities are clipped
    to `[keras.config.epsilon(), 1]` as in Keras's crossentropy.
    Accumulates in the metric's dtype (float32 by default).

    Args:
        from_logits: whether `y_pred` are logits rather than probabilities.
        name: metric name.
        dtype: dtype of the accumulators and result.

    Example:

    >>> metric = BitsPerToken()
    >>> metric.update_state([[1, 2]], np.full((1, 2, 4), 0.25))
    >>> float(metric.result())
    2.0
    >>> model.compile(  # doctest: +SKIP
    ...     "sgd",
    ...     keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...     metrics=[BitsPerToken(from_logits=True)],
    ... )

    Reference: Pascanu et al. 2013, section 5 (PTB characters).
    """

    def __init__(self, from_logits=False, name="bits_per_token", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        return self.mean_nll() / math.log(2.0)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class Perplexity(_TokenNLL):
    """Perplexity over all tokens seen: `exp(total / count)`.

        total += sum(w * -ln p(y_true))        # per batch
        count += sum(w)
        result = exp(total / count)

    The exponential of the mean over all tokens, never the mean of per-batch
    perplexities. Arguments and weighting as for `BitsPerToken`.

    Example:

    >>> metric = Perplexity(from_logits=True)
    >>> metric.update_state([0, 3], np.zeros((2, 10)))
    >>> round(float(metric.result()), 4)
    10.0

    Reference: Pascanu et al. 2013, section 5 (PTB words).
    """

    def __init__(self, from_logits=False, name="perplexity", dtype=None):
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def result(self):
        return ops.exp(self.mean_nll())
