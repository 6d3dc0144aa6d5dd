"""Keras's weight arguments of a cell (`kernel_regularizer`, ...,
`bias_constraint`), given to each weight by its name.

A cell names its weights by what they are (`input_kernel`,
`recurrent_kernel_{l}`, `transition_bias_{i}`, ...), so one rule, the one
weight noise and DropConnect already follow, says which argument reaches
which weight, and no cell re-lists the arguments in its `build`:

```python
weight_role("recurrent_kernel_1")    # "recurrent": recurrent_regularizer, recurrent_constraint
weight_role("transition_kernel_0")   # "kernel"
weight_role("transition_bias_0")     # "bias"
weight_role("peephole_0")            # None: no argument reaches it
```
"""

import re

import keras

from keras_deeprnn import _checks

ARGUMENTS = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
             "kernel_constraint", "recurrent_constraint", "bias_constraint")

_RECURRENT_KERNEL = re.compile(r"(^|_)recurrent_kernel(_\d+)?$")
_KERNEL = re.compile(r"(^|_)kernel(_\d+)?$")
_BIAS = re.compile(r"(^|_)bias(_\d+)?$")


def weight_role(name):
    """`"recurrent"`, `"kernel"`, `"bias"` or None: which of a cell's
    `*_regularizer` / `*_constraint` arguments a weight of that name takes."""
    if not isinstance(name, str):
        return None
    if _RECURRENT_KERNEL.search(name):
        return "recurrent"
    if _KERNEL.search(name):
        return "kernel"
    if _BIAS.search(name):
        return "bias"
    return None


def checked(cell_name, values, layer_kwargs):
    """The Keras objects of `values` (`{argument: value}` of `ARGUMENTS`);
    refuses an `activity_regularizer` among `layer_kwargs` (and drops a None
    one), which a cell, called inside the time loop, cannot apply."""
    activity = layer_kwargs.pop("activity_regularizer", None)
    if activity is not None:
        raise ValueError(
            f"{cell_name} takes no `activity_regularizer`: a cell is called inside the time "
            "loop, where a loss cannot be added (Keras's own cells fail there on JAX and "
            "TensorFlow). Give it to the sequence layer instead, `keras.layers.RNN(cell, "
            "activity_regularizer=...)` or `DeepRNN(cell, activity_regularizer=...)`, which "
            f"regularises the output sequence. Received: activity_regularizer={activity!r}"
        )
    return {
        name: _checks.keras_object(name, value, keras.regularizers.get
                                   if name.endswith("regularizer") else keras.constraints.get)
        for name, value in values.items()
    }


class WeightArguments:
    """`add_weight` that gives a weight the cell's regularizer and
    constraint of its role (`weight_role(name)`), unless given its own."""

    def add_weight(self, *args, **kwargs):
        role = weight_role(kwargs.get("name"))
        if role is not None:
            if kwargs.get("regularizer") is None:
                kwargs["regularizer"] = getattr(self, f"{role}_regularizer", None)
            if kwargs.get("constraint") is None:
                kwargs["constraint"] = getattr(self, f"{role}_constraint", None)
        return super().add_weight(*args, **kwargs)
