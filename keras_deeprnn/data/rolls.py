"""The piano-roll format every music source is turned into.

A piece is a float32 array of shape `(frames, NUM_NOTES)`: column `k` is the
piano key with MIDI number `LOWEST_NOTE + k` (A0 .. C8) and holds 1 while
that key sounds at the start of the frame, 0 otherwise. music21, needed
only to read and write scores, is imported on first use (`_import_music21`).
"""

import numpy as np

from keras_deeprnn import _checks

LOWEST_NOTE = 21
HIGHEST_NOTE = 108
NUM_NOTES = HIGHEST_NOTE - LOWEST_NOTE + 1
DEFAULT_FRAME_QUARTER_LENGTH = 0.5
MUSIC_EXTRA_HINT = 'pip install "keras-deeprnn[music]"'


def _as_roll(piece, where):
    roll = np.asarray(piece, dtype=np.float32)
    if roll.ndim != 2 or roll.shape[1] != NUM_NOTES:
        raise ValueError(
            f"{where} must have shape (frames, {NUM_NOTES}); received shape "
            f"{roll.shape}."
        )
    return roll


def _check_frame_quarter_length(value):
    # In quarter notes: 0.5 is an eighth note.
    return _checks.positive_finite("frame_quarter_length", value)


def _import_music21():
    try:
        import music21
    except ImportError as err:
        raise ImportError(
            f"Reading or writing scores needs music21: {MUSIC_EXTRA_HINT}"
        ) from err
    return music21
