"""Measures for next-frame prediction of piano rolls.

The paper reports the negative log-likelihood of the test set per time step:
a frame holds 88 binary notes that the model predicts with 88 independent
sigmoids, so the NLL of a frame is the sum of 88 Bernoulli NLLs, and the
figure is its mean over all real (unpadded) frames, in nats. The
polyphonic-music literature also reports the frame-level accuracy of Bay et
al. (2009). Each measure comes as a NumPy function (float64, for evaluating
a finished model) and as a `keras.metrics.Metric` (for `compile`).
`predict_frames` gathers a model's predictions on the real frames of
batches for the NumPy functions (the task's `evaluate` and
`keras_deeprnn.pretrained.score` both score through it).

The Keras metrics accumulate sums over batches and divide once at the end,
so the result over an epoch is the value over all its frames, not a mean of
batch means. They read the frame mask from `sample_weight`, which Keras
passes only to metrics given as `weighted_metrics`:

    model.compile(loss="binary_crossentropy",
                  weighted_metrics=[FrameNLL(), FrameAccuracy()])
    model.fit(piano_roll_batches(train, 16))  # yields (x, y, mask)

References:
    Pascanu, Gulcehre, Cho and Bengio, "How to Construct Deep Recurrent
    Neural Networks", ICLR 2014, section 5.
    Bay, Ehmann and Downie, "Evaluation of multiple-F0 estimation and
    tracking systems", ISMIR 2009.
"""

import keras
import numpy as np
from keras import ops

from keras_deeprnn.metrics.base import MeanNLL
from keras_deeprnn.metrics.base import step_weights


def frame_nll(probabilities, targets, mask=None, epsilon=1e-7):
    """Negative log-likelihood per frame, in nats (the paper's measure).

    ```python
    p = clip(probabilities, epsilon, 1 - epsilon)
    nll[b, t] = -sum_k(targets[b, t, k] * log(p[b, t, k])
                       + (1 - targets[b, t, k]) * log(1 - p[b, t, k]))
    result = sum(nll * mask) / sum(mask)
    ```

    Args:
        probabilities: predicted note probabilities, shape `(..., notes)`.
        targets: the true frames (0 or 1), same shape.
        mask: frame weights of shape `probabilities.shape[:-1]`, 1 for real
            frames and 0 for padding; all frames count when `None`.
        epsilon: probabilities are clipped to `[epsilon, 1 - epsilon]` so a
            confident mistake costs at most `-log(epsilon)` per note.

    Returns:
        A Python float.

    Example:

    >>> frame_nll([[0.5, 0.5]], [[1.0, 0.0]])  # 2 * log(2)
    1.3862943611198906
    """
    p, y, weights = _check_inputs("frame_nll", probabilities, targets, mask)
    epsilon = _check_epsilon("frame_nll", epsilon)
    p = np.clip(p, epsilon, 1.0 - epsilon)
    nll = -np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p), axis=-1)
    total = np.sum(weights)
    if total <= 0:
        raise ValueError(
            "frame_nll: mask selects no frame; expected at least one frame "
            "with a positive weight."
        )
    return float(np.sum(nll * weights) / total)


def frame_accuracy(probabilities, targets, mask=None, threshold=0.5):
    """Frame-level accuracy of Bay et al. (2009) over all real frames.

    ```python
    on = probabilities > threshold
    true = targets > 0.5
    TP = sum(mask * sum_k(on & true))
    FP = sum(mask * sum_k(on & ~true))
    FN = sum(mask * sum_k(~on & true))
    result = TP / (TP + FP + FN)   # 0.0 when no note is on anywhere
    ```

    Silent frames predicted silent add nothing, so the measure is not
    flattered by the many notes that are off.

    Example:

    >>> frame_accuracy([[0.9, 0.8, 0.1, 0.2]], [[1, 0, 1, 0]])  # 1 / (1 + 1 + 1)
    0.3333333333333333
    """
    p, y, weights = _check_inputs("frame_accuracy", probabilities, targets, mask)
    threshold = _check_threshold("frame_accuracy", threshold)
    on = p > threshold
    true = y > 0.5
    tp = np.sum(weights * np.sum(on & true, axis=-1))
    fp = np.sum(weights * np.sum(on & ~true, axis=-1))
    fn = np.sum(weights * np.sum(~on & true, axis=-1))
    denominator = tp + fp + fn
    return float(tp / denominator) if denominator > 0 else 0.0


def predict_frames(model, batches):
    """`model`'s predictions on every real frame of `batches`, with their targets.

    `batches` yields `(x, y, mask)` (as `pad_batch` and `piano_roll_batches`
    make them); each batch is predicted whole with `model.predict_on_batch`
    and only its real steps (`mask > 0`) are kept, in order, so the NumPy
    measures above score every frame of a split at once:

    ```python
    probabilities, targets, steps = predict_frames(model, batches)
    nll = frame_nll(probabilities, targets)
    nll_after_the_first_step = frame_nll(probabilities[steps > 0], targets[steps > 0])
    ```

    Returns:
        `(probabilities, targets, steps)`: arrays of shapes `(frames,
        notes)`, `(frames, notes)` and `(frames,)`, `steps` holding each
        frame's time step in its sequence. A `ValueError` when no batch has
        a real step.
    """
    probabilities, targets, steps = [], [], []
    for x, y, mask in batches:
        real = np.asarray(mask) > 0
        if not real.any():
            continue
        p = ops.convert_to_numpy(model.predict_on_batch(x))
        probabilities.append(p[real])
        targets.append(np.asarray(y)[real])
        steps.append(np.broadcast_to(np.arange(real.shape[1]), real.shape)[real])
    if not targets:
        raise ValueError("predict_frames: `batches` hold no real step (mask > 0) to predict")
    return np.concatenate(probabilities), np.concatenate(targets), np.concatenate(steps)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FrameNLL(MeanNLL):
    """Negative log-likelihood per frame (nats), summed over notes.

    Accumulates over batches, then divides once (see `frame_nll` for the
    formula, which this follows with `keras.ops`):

    ```python
    nll = sum_k(bernoulli_nll(y_true[..., k], y_pred[..., k]))   # per frame
    weights = broadcast(sample_weight, nll.shape)  # 1 where no weight given
    total += sum(nll * weights)
    count += sum(weights)
    result = total / count
    ```

    With `from_logits=True`, `y_pred` holds logits `z` and the per-note NLL
    is `softplus(z) - y_true * z`, exact where clipping would saturate.

    Args:
        name: metric name.
        dtype: dtype of the accumulators and computations.
        from_logits: whether `y_pred` holds logits instead of probabilities.
        epsilon: clipping of probabilities, as in `frame_nll`; unused with
            logits.

    `sample_weight` of shape `(batch, time)` is the frame mask; pass the
    metric as `weighted_metrics` in `compile` so Keras hands it over.

    Example:

    >>> metric = FrameNLL()
    >>> metric.update_state([[[1.0, 0.0]]], [[[0.5, 0.5]]])
    >>> round(float(metric.result()), 4)
    1.3863
    """

    def __init__(
        self, name="frame_nll", dtype=None, from_logits=False, epsilon=1e-7
    ):
        epsilon = _check_epsilon("FrameNLL", epsilon)
        super().__init__(from_logits=bool(from_logits), name=name, dtype=dtype)
        self.epsilon = epsilon

    def step_nll(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, self.dtype)
        y_true = ops.cast(y_true, self.dtype)
        if self.from_logits:
            per_note = ops.softplus(y_pred) - y_true * y_pred
        else:
            p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
            per_note = -(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.sum(per_note, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FrameAccuracy(keras.metrics.Metric):
    """Frame-level accuracy TP / (TP + FP + FN) of Bay et al. (2009).

    A note is predicted on where `y_pred > threshold` (after a sigmoid when
    `from_logits=True`) and is truly on where `y_true > 0.5`. The counts are
    summed over notes, weighted per frame by `sample_weight` (the frame
    mask), and accumulated over batches:

    ```python
    tp += sum(weights * sum_k(on & true))
    fp += sum(weights * sum_k(on & ~true))
    fn += sum(weights * sum_k(~on & true))
    result = tp / (tp + fp + fn)   # 0 while the denominator is 0
    ```

    Args:
        name: metric name.
        dtype: dtype of the accumulators.
        threshold: probability above which a note counts as predicted on.
        from_logits: whether `y_pred` holds logits instead of probabilities.

    Example:

    >>> metric = FrameAccuracy()
    >>> metric.update_state([[[1, 0, 1, 0]]], [[[0.9, 0.8, 0.1, 0.2]]])
    >>> round(float(metric.result()), 4)
    0.3333
    """

    def __init__(
        self, name="frame_accuracy", dtype=None, threshold=0.5, from_logits=False
    ):
        threshold = _check_threshold("FrameAccuracy", threshold)
        super().__init__(name=name, dtype=dtype)
        self.threshold = threshold
        self.from_logits = bool(from_logits)
        self.true_positives = self.add_variable(
            shape=(), initializer="zeros", name="true_positives"
        )
        self.false_positives = self.add_variable(
            shape=(), initializer="zeros", name="false_positives"
        )
        self.false_negatives = self.add_variable(
            shape=(), initializer="zeros", name="false_negatives"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, self.dtype)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        on = ops.cast(ops.greater(y_pred, self.threshold), self.dtype)
        true = ops.cast(ops.greater(ops.cast(y_true, self.dtype), 0.5), self.dtype)
        tp = ops.sum(on * true, axis=-1)
        fp = ops.sum(on * (1.0 - true), axis=-1)
        fn = ops.sum((1.0 - on) * true, axis=-1)
        weights = step_weights(sample_weight, tp, self.dtype)
        self.true_positives.assign_add(ops.sum(tp * weights))
        self.false_positives.assign_add(ops.sum(fp * weights))
        self.false_negatives.assign_add(ops.sum(fn * weights))

    def result(self):
        return ops.divide_no_nan(
            self.true_positives,
            self.true_positives + self.false_positives + self.false_negatives,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"threshold": self.threshold, "from_logits": self.from_logits})
        return config


def _check_inputs(function, probabilities, targets, mask):
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if p.ndim < 1 or p.shape != y.shape:
        raise ValueError(
            f"{function}: probabilities and targets must have the same shape "
            f"(..., notes); received {p.shape} and {y.shape}."
        )
    if mask is None:
        weights = np.ones(p.shape[:-1])
    else:
        weights = np.asarray(mask, dtype=np.float64)
        if weights.shape != p.shape[:-1]:
            raise ValueError(
                f"{function}: mask must have shape {p.shape[:-1]} (the "
                f"probabilities' shape without the note axis); received "
                f"{weights.shape}."
            )
    return p, y, weights


def _check_epsilon(function, epsilon):
    number = isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool)
    if not number or not 0 < epsilon < 0.5:
        raise ValueError(
            f"{function}: epsilon must be a number in (0, 0.5); received "
            f"{epsilon!r}."
        )
    return float(epsilon)


def _check_threshold(function, threshold):
    number = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    if not number or not 0 <= threshold < 1:
        raise ValueError(
            f"{function}: threshold must be a number in [0, 1); received "
            f"{threshold!r}."
        )
    return float(threshold)
