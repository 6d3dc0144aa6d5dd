"""Argument checks shared by every public constructor.

Each raises a ValueError that names the argument, shows what was received and
says what was expected, so a bad configuration fails where it is written.
"""

import math
import numbers

import numpy as np


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"`{name}` must be an integer >= 0. Received: {name}={value!r}"
        )
    return int(value)


# The largest seed every backend's generator takes: Keras's seed generators
# hold uint32 on JAX, and torch reads the seed as an int32.
MAX_SEED = 2**31 - 1


def seed(name, value):
    """`None` or an integer in [0, MAX_SEED], the seeds every backend takes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not 0 <= value <= MAX_SEED:
        raise ValueError(
            f"`{name}` must be None or an integer from 0 to 2**31 - 1 = {MAX_SEED}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def one_of(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}"
        )
    return value


def optional_positive_int(name, value):
    return None if value is None else positive_int(name, value)


def positive_finite(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or not value > 0:
        raise ValueError(
            f"`{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def non_negative_finite(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or not value >= 0:
        raise ValueError(
            f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def finite(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    return float(value)


def boolean(name, value):
    # NumPy's bool_ is what a value read back from an array or a JSON of one is.
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def token_ids(name, ids, vocab_size, *, hint=""):
    """Refuse token ids outside `[0, vocab_size)`, naming `name`, the ids
    found and the vocabulary size; returns `ids` as a NumPy array.

    An id at or above `vocab_size` has no row in the model's embedding:
    JAX reads NaN there and trains on it, other backends fail deep inside
    the step. Run once per data set or array, in NumPy, never inside a
    compiled step. `hint` is appended to the message (what to do).

    >>> token_ids("tokens", [0, 3, 7], 5)
    Traceback (most recent call last):
    ValueError: `tokens` must hold token ids from 0 to vocab_size - 1 = 4, the model's vocabulary of vocab_size=5. Received: ids from 0 to 7; the largest, 7, is not below vocab_size=5
    """
    array = np.asarray(ids)
    if array.size == 0:
        return array
    low, high = array.min(), array.max()
    if low < 0 or high >= vocab_size:
        wrong = (f"the largest, {high}, is not below vocab_size={vocab_size}"
                 if high >= vocab_size else f"the smallest, {low}, is negative")
        raise ValueError(
            f"`{name}` must hold token ids from 0 to vocab_size - 1 = {vocab_size - 1}, the "
            f"model's vocabulary of vocab_size={vocab_size}.{hint} Received: ids from {low} "
            f"to {high}; {wrong}")
    return array


def keras_object(name, value, get):
    """`get(value)` (e.g. `keras.regularizers.get`), with an error naming
    the argument when Keras does not know the value."""
    try:
        return get(value)
    except (ValueError, TypeError):
        kind = name.rsplit("_", 1)[-1]
        examples = _EXAMPLES.get(kind, "'l2' or 'max_norm'")
        optional = " or None" if kind in ("regularizer", "constraint") else ""
        raise ValueError(
            f"`{name}` must be a Keras {kind} (a name such as {examples}, a config "
            f"dict or an instance){optional}. Received: {name}={value!r}") from None


_EXAMPLES = {
    "regularizer": "'l2'",
    "constraint": "'max_norm'",
    "initializer": "'glorot_uniform' or 'zeros'",
    "activation": "'tanh' or 'relu'",
}


def states(owner, received, state_size, batch_size=None):
    """Refuse recurrent states not shaped as `state_size`, naming `owner`.

    `state_size` is a cell's (an int, or a list, nested for one list per
    level); each state is `(batch, size)`. Run once per sequence or on a
    cell's first call, never inside the time loop.

    >>> states("MyCell", [np.zeros((2, 4))], [4, 4])
    Traceback (most recent call last):
    ValueError: MyCell takes 2 states shaped [(batch, 4), (batch, 4)] (state_size=[4, 4]). Received: states=[(2, 4)]
    """
    expected = list(state_size) if isinstance(state_size, (list, tuple)) else [state_size]
    batch_size = None if batch_size is None else int(batch_size)
    if _fits(expected, received, batch_size):
        return
    count = len(_leaves(expected))
    batch = "" if batch_size is None else f" for a batch of {batch_size}"
    raise ValueError(
        f"{owner} takes {count} state{'s' if count != 1 else ''} shaped "
        f"{_expected_shapes(expected)} (state_size={state_size!r}){batch}. "
        f"Received: states={_received_shapes(received)}"
    )


def _leaves(size):
    if isinstance(size, (list, tuple)):
        return [leaf for s in size for leaf in _leaves(s)]
    return [size]


def _fits(size, value, batch_size):
    if isinstance(size, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(size)
                and all(_fits(s, v, batch_size) for s, v in zip(size, value)))
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 2:
        return False
    rows, width = shape
    # A symbolic shape may leave a size unknown (None); only known ones count.
    return ((width is None or int(width) == int(size))
            and (rows is None or batch_size is None or int(rows) == batch_size))


def _expected_shapes(size):
    if isinstance(size, (list, tuple)):
        return "[" + ", ".join(_expected_shapes(s) for s in size) + "]"
    return f"(batch, {size})"


def _received_shapes(value):
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_received_shapes(v) for v in value) + "]"
    shape = getattr(value, "shape", None)
    if shape is None:
        return f"a {type(value).__name__}"
    return str(tuple(None if d is None else int(d) for d in shape))
