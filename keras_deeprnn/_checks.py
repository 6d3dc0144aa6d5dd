"""Argument checks shared by every public constructor.

Each raises a ValueError that names the argument, shows what was received and
says what was expected, so a bad configuration fails where it is written.
"""

import math
import numbers


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


def boolean(name, value):
    # NumPy's bool_ is what a value read back from an array or a JSON of one is.
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def keras_object(name, value, get):
    """`get(value)` (e.g. `keras.regularizers.get`), with an error naming
    the argument when Keras does not know the value."""
    try:
        return get(value)
    except (ValueError, TypeError):
        kind = name.rsplit("_", 1)[-1]
        raise ValueError(
            f"`{name}` must be a Keras {kind} (a name such as 'l2' or 'max_norm', a config "
            f"dict or an instance) or None. Received: {name}={value!r}") from None
