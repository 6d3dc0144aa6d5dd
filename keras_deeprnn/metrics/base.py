"""What the Keras metrics share: per-step weights from `sample_weight`, and a
running weighted mean of per-step negative log-likelihoods.

Both measures of the paper are a mean over every step of a split (a frame of
music, a token of text), never a mean of batch means: the metrics keep the
weighted sum and the weight, and divide once, in `result`.
"""

import keras
from keras import ops


def step_weights(sample_weight, per_step, dtype):
    """`sample_weight` broadcast to the shape of the per-step values; ones when absent.

    Keras hands a metric weights of shape `(batch,)` (one per sequence,
    repeated over its steps), `(batch, time)` (a mask), or `(batch, time, 1)`
    (from generators that keep a last axis).

    Example:

    >>> weights = step_weights(ops.array([1.0, 0.0]), ops.ones((2, 3)), "float32")
    >>> ops.convert_to_numpy(weights).tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    if sample_weight is None:
        return ops.ones_like(per_step)
    weights = ops.cast(sample_weight, dtype)
    step_rank = len(per_step.shape)
    while len(weights.shape) > step_rank and weights.shape[-1] == 1:
        weights = ops.squeeze(weights, axis=-1)
    if len(weights.shape) > step_rank:
        raise ValueError(
            "sample_weight must have the shape of the steps "
            f"{tuple(per_step.shape)} or a prefix of it; received shape "
            f"{tuple(weights.shape)}."
        )
    # Trailing axes are added, not leading ones: a weight per sequence
    # applies to every step of it.
    while len(weights.shape) < step_rank:
        weights = ops.expand_dims(weights, axis=-1)
    return ops.broadcast_to(weights, ops.shape(per_step))


class MeanNLL(keras.metrics.Metric):
    """Running weighted mean of the per-step NLL (nats) that `step_nll` gives.

    ```python
    nll = self.step_nll(y_true, y_pred)          # one value per step
    weights = step_weights(sample_weight, nll)   # 1 where no weight given
    total += sum(nll * weights)
    count += sum(weights)
    mean_nll() = total / count                   # 0 before any weight
    ```

    A subclass computes `step_nll` (with `self.from_logits`) and reports
    `result` from `mean_nll()`. Accumulates in the metric's dtype.
    """

    def __init__(self, from_logits=False, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.from_logits = from_logits
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def step_nll(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must define step_nll")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll = self.step_nll(y_true, y_pred)
        weights = step_weights(sample_weight, nll, self.dtype)
        self.total.assign_add(ops.sum(nll * weights))
        self.count.assign_add(ops.sum(weights))

    def mean_nll(self):
        return ops.divide_no_nan(self.total, self.count)

    def result(self):
        return self.mean_nll()

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config
