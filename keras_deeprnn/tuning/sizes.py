"""The input and output sizes of a search, read from its training data."""


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
