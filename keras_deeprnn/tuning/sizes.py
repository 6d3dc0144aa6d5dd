"""The input and output sizes of a search, and its length in training
steps, read from its training data."""

import math

import keras


def feature_widths(x, y):
    """The last axis of the inputs and of the targets: of `x` and `y`, or of
    the first `(x, y, ...)` batch of `x`."""
    if y is None:
        spec = getattr(x, "element_spec", None)  # tf.data: no batch needs reading
        if spec is not None:
            batch = spec
        elif hasattr(x, "shape"):
            raise ValueError("`adapt` needs the targets beside an array of inputs. Received: "
                             f"an array of shape {tuple(x.shape)} and y=None")
        elif hasattr(x, "__getitem__") and hasattr(x, "__len__"):
            batch = x[0]
        elif iter(x) is x:
            raise ValueError(
                "`adapt` cannot read the sizes from a one-shot iterator without using up "
                f"its first batch. Received: x={x!r}; pass `input_dim=` and `output_dim=` "
                "to DeepRNNHyperModel instead")
        else:
            batch = next(iter(x))
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ValueError("`adapt` expects batches of (x, y) or (x, y, sample_weight). "
                             f"Received a batch of type {type(batch).__name__}")
        x, y = batch[0], batch[1]
    widths = []
    for name, data in (("x", x), ("y", y)):
        shape = getattr(data, "shape", None)
        if shape is None or len(shape) < 1 or shape[-1] is None:
            raise ValueError(f"`adapt` needs `{name}` with a known last axis (its features). "
                             f"Received: {name} of shape {shape}")
        widths.append(int(shape[-1]))
    return widths


def training_steps(x, y=None, epochs=1, batch_size=None, steps_per_epoch=None):
    """The training steps of `fit(x, y, epochs=, batch_size=, steps_per_epoch=)`,
    or `None` where `x` does not say (a generator, a `tf.data` dataset of
    unknown length, an empty set).

    Arrays (beside `y`) count `ceil(samples / batch_size)` batches an epoch
    (Keras's default batch of 32 without one), read from the first array
    where `x` holds several; batches with a length (a
    `keras.utils.PyDataset`, a list, a torch `DataLoader`) count their
    length; a `tf.data` dataset its cardinality. A `validation_split` is not
    taken off, which errs towards the longer run.
    """
    if steps_per_epoch is None:
        if y is not None:
            leaves = keras.tree.flatten(x)
            shape = getattr(leaves[0], "shape", None) if leaves else None
            if shape:
                steps_per_epoch = math.ceil(int(shape[0]) / (batch_size or 32))
        elif hasattr(x, "cardinality"):
            steps_per_epoch = int(x.cardinality())  # negative: unknown or infinite
        elif isinstance(x, keras.utils.PyDataset):
            try:
                steps_per_epoch = x.num_batches  # `None`: infinite
            except NotImplementedError:  # neither `num_batches` nor a length
                steps_per_epoch = None
        elif hasattr(x, "__len__") and not hasattr(x, "shape"):
            steps_per_epoch = len(x)
    if not steps_per_epoch or steps_per_epoch < 0:
        return None
    return int(steps_per_epoch) * max(int(epochs or 1), 1)
