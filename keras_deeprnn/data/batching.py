"""Next-frame batches of piano rolls for `model.fit`.

A model predicts every frame of a piece from the frames before it, with 88
independent sigmoids; `keras_deeprnn.metrics.frame_nll` scores it. The first
frame is predicted too, from the model's initial state: the input at step 0
is a silent frame (`start_frame=True`, the default), so a piece of `T`
frames gives `T` time steps:

```
inputs   0     roll[0]  roll[1] ... roll[T-2]
targets  roll[0] roll[1] roll[2] ... roll[T-1]
```

This is how Boulanger-Lewandowski et al. (2012), whose data sets the paper
uses, ask for the measure to be taken: the average over every time step of
the test pieces. With `start_frame=False` the model reads frames `0..T-2`
and predicts `1..T-1` (`T - 1` steps, the first frame never scored), the
convention of the TCN benchmark (Bai, Kolter and Koltun 2018).

Padded lengths come from a short geometric ladder (`padded_length`: 16, 24,
32, 48, 64, 96, ...), so however long the pieces, a compiled train step sees
about a dozen distinct shapes, and padding never adds more than half.
"""

import math

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.rolls import _as_roll

# The shortest padded length; above it, lengths `2**k` and `1.5 * 2**k`.
SHORTEST_PADDED_LENGTH = 16


def padded_length(steps):
    """The padded length of a batch whose longest piece has `steps` time steps.

    The smallest length of the ladder 16, 24, 32, 48, 64, 96, 128, ... (each
    `2**k` or `1.5 * 2**k`) that holds `steps`: at most 50 % padding, and 15
    shapes up to 2,048 steps.

    Example:

    >>> [padded_length(n) for n in (1, 16, 17, 25, 100, 1788)]
    [16, 16, 24, 32, 128, 2048]
    """
    _checks.non_negative_int("steps", steps)
    length = SHORTEST_PADDED_LENGTH
    while length < steps:
        half_step = length // 2 if length & (length - 1) == 0 else length // 3
        length += half_step
    return length


def _check_lengths(max_len, pad_to_multiple_of, start_frame, ladder):
    """The checks of the arguments `pad_batch` and `PianoRollBatches` share."""
    if max_len is not None:
        _checks.positive_int("max_len", max_len)
    if pad_to_multiple_of is not None:
        _checks.positive_int("pad_to_multiple_of", pad_to_multiple_of)
    _checks.boolean("start_frame", start_frame)
    _checks.boolean("ladder", ladder)


def pad_batch(pieces, max_len=None, *, pad_to_multiple_of=None, start_frame=True,
              ladder=False):
    """Next-frame inputs, targets and mask for a batch of piano rolls.

    With `start_frame=True` (the default) a piece of `T` frames gives `T`
    time steps: the input at step 0 is a silent frame and the target is
    frame 0, then the inputs are frames `0..T-2` and the targets `1..T-1`.
    With `start_frame=False` the inputs are frames `0..T-2` and the targets
    `1..T-1`, so the piece gives `T - 1` steps. Shorter pieces are
    zero-padded at the end to the longest one.

    Args:
        pieces: sequence of arrays of shape `(frames, 88)`.
        max_len: keep at most this many time steps of each piece (the rest
            is cut off).
        pad_to_multiple_of: round the time axis up to a multiple of this, so
            that a compiled train step sees few distinct shapes.
        start_frame: whether the first frame is predicted from a silent
            input frame (see the module's docstring).
        ladder: pad the time axis to `padded_length` of the longest piece
            (after `pad_to_multiple_of`, if both are given).

    Returns:
        `(x, y, mask)`: float32 arrays of shapes `(batch, time, 88)`,
        `(batch, time, 88)` and `(batch, time)`; `mask` is 1 on real steps
        and 0 on padding.

    Example:

    >>> x, y, mask = pad_batch([np.eye(88)[:3], np.eye(88)[:5]], start_frame=False)
    >>> x.shape, mask.tolist()
    ((2, 4, 88), [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    >>> x, y, mask = pad_batch([np.eye(88)[:3]])
    >>> mask.tolist(), float(x[0, 0].sum()), int(y[0, 0].argmax())
    ([[1.0, 1.0, 1.0]], 0.0, 0)
    """
    _check_lengths(max_len, pad_to_multiple_of, start_frame, ladder)
    if isinstance(pieces, np.ndarray) and pieces.ndim == 2:
        raise ValueError(
            "pad_batch: pieces must be a sequence of (frames, 88) arrays; "
            f"received one array of shape {pieces.shape}. Wrap it in a list."
        )
    rolls = [
        _as_roll(piece, f"pad_batch: pieces[{i}]") for i, piece in enumerate(pieces)
    ]
    if not rolls:
        raise ValueError("pad_batch: pieces is empty; expected at least one piece.")
    if start_frame:
        rolls = [with_start_frame(roll) for roll in rolls]
    steps = [max(len(roll) - 1, 0) for roll in rolls]
    if max_len is not None:
        steps = [min(step, max_len) for step in steps]
    time = max(steps)
    if pad_to_multiple_of is not None:
        time = max(1, math.ceil(time / pad_to_multiple_of)) * pad_to_multiple_of
    if ladder:
        time = padded_length(time)
    x = np.zeros((len(rolls), time, NUM_NOTES), np.float32)
    y = np.zeros_like(x)
    mask = np.zeros((len(rolls), time), np.float32)
    for i, (roll, step) in enumerate(zip(rolls, steps)):
        x[i, :step] = roll[:step]
        y[i, :step] = roll[1 : step + 1]
        mask[i, :step] = 1.0
    return x, y, mask


def with_start_frame(roll):
    """`roll` after one silent frame: the input from which frame 0 is predicted."""
    return np.concatenate([np.zeros((1, roll.shape[1]), roll.dtype), roll])


class PianoRollBatches(keras.utils.PyDataset):
    """Padded next-frame batches of piano rolls for `model.fit`.

    Each item is `(x, y, sample_weight)` from `pad_batch`, with the mask as
    `sample_weight`, so a per-frame loss on a `(batch, time, 88)` output (and
    metrics passed as `weighted_metrics`) ignores the padding. With
    `max_len`, a long piece is cut into consecutive windows of `max_len + 1`
    frames that overlap by one frame, so every frame-to-frame transition is
    trained on exactly once. With `start_frame` (the default) each piece
    first gets a silent frame in front, so its first frame is predicted too
    (see `pad_batch`); without it, pieces of fewer than two frames are left
    out. With `ladder`, the time axis of each batch is padded to
    `padded_length`, so there are few distinct shapes to compile.
    With `shuffle`, the order of pieces is redrawn after every epoch from a
    generator seeded with `seed`.

    With `bucket`, a batch holds pieces of similar length, so large batches
    waste little compute on padding: each epoch the pieces (shuffled first,
    so that equal lengths meet different neighbours) are sorted by length,
    cut into batches of neighbours, and the order of those batches is
    shuffled. Every piece is still read once per epoch, and the draws come
    from the same seeded generator, so a run is as reproducible as without.
    Batches then vary more in length; `pad_to_multiple_of` keeps the number
    of distinct shapes (and compilations) small.

    Keyword arguments other than those below (`workers`,
    `use_multiprocessing`, `max_queue_size`) go to `keras.utils.PyDataset`.

    Example:

    >>> batches = PianoRollBatches([np.eye(88)[:9]] * 5, batch_size=2)
    >>> len(batches), [a.shape for a in batches[0]]
    (3, [(2, 9, 88), (2, 9, 88), (2, 9)])
    """

    def __init__(
        self,
        pieces,
        batch_size,
        *,
        shuffle=True,
        seed=0,
        max_len=None,
        pad_to_multiple_of=None,
        bucket=False,
        start_frame=True,
        ladder=False,
        **kwargs,
    ):
        _checks.positive_int("batch_size", batch_size)
        _check_lengths(max_len, pad_to_multiple_of, start_frame, ladder)
        _checks.non_negative_int("seed", seed)
        _checks.boolean("bucket", bucket)
        super().__init__(**kwargs)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.max_len = max_len
        self.pad_to_multiple_of = pad_to_multiple_of
        self.bucket = bool(bucket)
        self.start_frame = bool(start_frame)
        self.ladder = bool(ladder)
        self.pieces = []
        for i, piece in enumerate(pieces):
            roll = _as_roll(piece, f"piano_roll_batches: pieces[{i}]")
            if self.start_frame and len(roll):
                roll = with_start_frame(roll)
            if len(roll) < 2:
                continue
            if max_len is None:
                self.pieces.append(roll)
            else:
                for start in range(0, len(roll) - 1, max_len):
                    self.pieces.append(roll[start : start + max_len + 1])
        if not self.pieces:
            needed = "one or more frames" if self.start_frame else (
                "two or more frames, since without start_frame a model predicts "
                "each frame from the one before")
            raise ValueError(
                f"piano_roll_batches: pieces holds no piece of {needed}; "
                "expected at least one."
            )
        self._lengths = np.array([len(piece) for piece in self.pieces])
        self._rng = np.random.default_rng(self.seed)
        self._batches = self._arrange()

    def _arrange(self):
        """This epoch's batches, as arrays of piece indices."""
        count, size = len(self.pieces), self.batch_size
        order = self._rng.permutation(count) if self.shuffle else np.arange(count)
        if self.bucket:
            order = order[np.argsort(self._lengths[order], kind="stable")]
        batches = [order[start : start + size] for start in range(0, count, size)]
        if self.bucket and self.shuffle:
            batches = [batches[i] for i in self._rng.permutation(len(batches))]
        return batches

    def __len__(self):
        return math.ceil(len(self.pieces) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"PianoRollBatches: index {index} is out of range for "
                f"{len(self)} batches."
            )
        # The start frame, if any, is already in front of each piece.
        return pad_batch(
            [self.pieces[i] for i in self._batches[index]],
            pad_to_multiple_of=self.pad_to_multiple_of,
            start_frame=False,
            ladder=self.ladder,
        )

    def on_epoch_end(self):
        if self.shuffle:
            self._batches = self._arrange()


def piano_roll_batches(pieces, batch_size, **options):
    """`(x, y, sample_weight)` batches of piano rolls, ready for `model.fit`.

    A thin constructor of `PianoRollBatches`; `options` are its keyword
    arguments (`shuffle`, `seed`, `max_len`, `bucket`, `start_frame`, ...),
    see there for the details.

    Example:

    >>> data = load_music("jsb_chorales")  # doctest: +SKIP
    >>> model.fit(piano_roll_batches(data["train"], 16), epochs=10)  # doctest: +SKIP
    """
    return PianoRollBatches(pieces, batch_size, **options)
