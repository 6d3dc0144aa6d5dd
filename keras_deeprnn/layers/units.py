"""Hidden units of the paper's intermediate layers: any Keras activation,
maxout, or Lp pooling (Gulcehre et al. 2014).

A pooled unit reads `pieces` pre-activations. The kernel that feeds `units`
pooled units has `units * pieces` columns laid out piece-major
(`[piece_0 | piece_1 | ...]`, each `units` wide), so pooling is a sum or max
of contiguous slices, valid for inputs of any rank.

    maxout: y_j = max_k z_{k, j}
    lp:     y_j = (mean_k (|z_{k, j}| + eps)^{p_j})^(1 / p_j),  p_j = 1 + softplus(rho_j)

`rho` starts at log(e - 1), so every Lp unit starts as an L2 unit (p = 2),
and it is learned, as in the paper.
"""

import math

import keras
from keras import ops

from keras_deeprnn import _checks

POOLED_UNITS = ("maxout", "lp")
LP_RHO_INIT = math.log(math.e - 1.0)
_LP_EPSILON = 1e-6


def resolve(name, activation):
    """A pooled-unit name stays a string; anything else is a Keras activation."""
    if isinstance(activation, str) and activation in POOLED_UNITS:
        return activation
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`{name}` must be a Keras activation or one of {list(POOLED_UNITS)}. "
            f"Received: {name}={activation!r}"
        ) from error


def serialize(activation):
    if isinstance(activation, str):
        return activation
    return keras.activations.serialize(activation)


def width(activation, units, pieces):
    """Columns of the kernel that feeds `units` units of this kind."""
    return units * pieces if isinstance(activation, str) else units


def check_pieces(pieces):
    pieces = _checks.positive_int("pieces", pieces)
    if pieces < 2:
        raise ValueError(
            f"`pieces` must be >= 2 (a pooled unit pools several pre-activations). "
            f"Received: pieces={pieces}"
        )
    return pieces


def apply(z, activation, units, pieces, rho=None):
    if activation == "maxout":
        y = z[..., :units]
        for k in range(1, pieces):
            y = ops.maximum(y, z[..., k * units : (k + 1) * units])
        return y
    if activation == "lp":
        p = 1.0 + ops.softplus(rho)
        total = ops.power(ops.abs(z[..., :units]) + _LP_EPSILON, p)
        for k in range(1, pieces):
            total = total + ops.power(ops.abs(z[..., k * units : (k + 1) * units]) + _LP_EPSILON, p)
        return ops.power(total / pieces, 1.0 / p)
    return activation(z)
