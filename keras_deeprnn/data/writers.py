"""Piano rolls out: a music21 score, MIDI, MusicXML and a PNG picture."""

import warnings

import numpy as np

from keras_deeprnn import _files
from keras_deeprnn.data.rolls import DEFAULT_FRAME_QUARTER_LENGTH
from keras_deeprnn.data.rolls import HIGHEST_NOTE
from keras_deeprnn.data.rolls import LOWEST_NOTE
from keras_deeprnn.data.rolls import MUSIC_EXTRA_HINT
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.rolls import _as_roll
from keras_deeprnn.data.rolls import _check_frame_quarter_length
from keras_deeprnn.data.rolls import _import_music21


def roll_to_stream(
    roll, frame_quarter_length=DEFAULT_FRAME_QUARTER_LENGTH, *, threshold=0.5
):
    """A music21 score with one piano part playing a piano roll.

    A key is on where `roll > threshold` (so a roll of probabilities may be
    given). Consecutive on-frames of a key become one held note: a binary
    roll cannot tell a held note from a repeated one.

    Example:

    >>> score = roll_to_stream(np.eye(88)[39:43], 1.0)
    >>> [n.nameWithOctave for n in score.flatten().notes]
    ['C4', 'C#4', 'D4', 'E-4']
    """
    music21, on, quarter, part = _piano_part(roll, "roll_to_stream: roll", threshold,
                                             frame_quarter_length)
    edges = np.diff(np.pad(on.astype(np.int8), ((1, 1), (0, 0))), axis=0)
    for column in range(NUM_NOTES):
        starts = np.flatnonzero(edges[:, column] == 1)
        ends = np.flatnonzero(edges[:, column] == -1)
        for start, end in zip(starts, ends):
            note = music21.note.Note()
            note.pitch.midi = LOWEST_NOTE + column
            note.quarterLength = float((end - start) * quarter)
            part.insert(float(start * quarter), note)
    if not part.notes and len(on):
        part.insert(0, music21.note.Rest(quarterLength=len(on) * quarter))
    score = music21.stream.Score()
    score.insert(0, part)
    return score


def write_midi(roll, path, frame_quarter_length=DEFAULT_FRAME_QUARTER_LENGTH):
    """Write a piano roll as a one-track MIDI file; returns the path."""
    stream = roll_to_stream(roll, frame_quarter_length)
    return _files.write_atomically(path, lambda temporary: stream.write("midi", fp=temporary))


def write_musicxml(roll, path, frame_quarter_length=DEFAULT_FRAME_QUARTER_LENGTH):
    """Write a piano roll as MusicXML (notes merged into chords); returns the path.

    Overlapping notes in one part have no clean notation, so the part is
    written as music21's `chordify` writes `roll_to_stream(roll)`: a chord
    (or rest) from each instant a note starts or ends to the next, its notes
    tied to the same key in the chords before and after where the key is
    held across.
    """
    chords = _chordified(roll, frame_quarter_length)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _files.write_atomically(
            path, lambda temporary: chords.write("musicxml", fp=temporary))


def _chordified(roll, frame_quarter_length):
    """`roll_to_stream(roll, frame_quarter_length).chordify()`, read off the roll.

    music21's chordify inserts every note into its timespan tree one at a
    time, and each insertion walks the whole tree: quadratic in the length of
    the roll. Every time point where some key starts or stops is a change of
    the roll between two frames, which is linear to find.
    """
    music21, on, quarter, part = _piano_part(roll, "write_musicxml: roll", 0.5,
                                             frame_quarter_length)
    padded = np.pad(on, ((1, 1), (0, 0)))
    changed = padded[1:] != padded[:-1]  # row t: between frames t - 1 and t
    points = np.flatnonzero(changed.any(axis=1)).tolist()
    if not on.any():  # `roll_to_stream` fills a silent roll with one rest
        points = [0, len(on)] if len(on) else []
    if points and points[0] != 0:
        points.insert(0, 0)
    offsets = [music21.common.opFrac(float(t * quarter)) for t in points]
    for start, end, offset, next_offset in zip(points, points[1:], offsets, offsets[1:]):
        length = music21.common.opFrac(next_offset - offset)
        keys = np.flatnonzero(on[start])
        if not len(keys):
            part.coreInsert(offset, music21.note.Rest(quarterLength=length))
            continue
        chord = music21.chord.Chord()
        chord.duration.quarterLength = length
        for key in keys:
            note = music21.note.Note()
            note.pitch.midi = LOWEST_NOTE + int(key)
            note.duration = chord.duration
            begins, ends = changed[start, key], changed[end, key]
            if not (begins and ends):
                note.tie = music21.tie.Tie(
                    "start" if begins else "stop" if ends else "continue")
            chord.add(note)
        part.coreInsert(offset, chord)
    part.coreElementsChanged()
    return part


def _piano_part(roll, name, threshold, frame_quarter_length):
    """What both writers start from: music21, the keys on (`roll > threshold`,
    the roll checked under `name`), the frame's quarter length, checked, and
    an empty piano part."""
    music21 = _import_music21()
    on = _as_roll(roll, name) > threshold
    quarter = _check_frame_quarter_length(frame_quarter_length)
    part = music21.stream.Part()
    part.insert(0, music21.instrument.Piano())
    return music21, on, quarter, part


def plot_piano_roll(roll, path, *, frame_quarter_length=None, title=None):
    """Save a piano roll (or note probabilities in [0, 1]) as a PNG image.

    Time runs left to right (in frames, or in quarter notes when
    `frame_quarter_length` is given), MIDI pitch bottom to top. Returns the
    path.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            f"plot_piano_roll needs matplotlib: {MUSIC_EXTRA_HINT}"
        ) from err
    values = np.clip(_as_roll(roll, "plot_piano_roll: roll"), 0.0, 1.0)
    frames = len(values)
    scale = 1.0 if frame_quarter_length is None else float(
        _check_frame_quarter_length(frame_quarter_length)
    )
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    figure = Figure(figsize=(min(max(6.0, frames / 24.0), 40.0), 4.0), dpi=100)
    axes = figure.add_subplot()
    axes.imshow(
        values.T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=(0.0, max(frames, 1) * scale, LOWEST_NOTE - 0.5, HIGHEST_NOTE + 0.5),
    )
    axes.set_xlabel("frame" if frame_quarter_length is None else "quarter notes")
    axes.set_ylabel("MIDI note")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _files.write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
