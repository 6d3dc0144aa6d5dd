"""MusicXML out of a piano roll: the chords music21's own `chordify` writes, found without it."""

import warnings

import numpy as np
import pytest

from keras_deeprnn.data import writers

music21 = pytest.importorskip("music21")


pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

def fixed_roll():
    roll = (np.random.default_rng(3).random((24, 88)) < 0.25).astype("float32")
    roll[:3] = 0  # a rest first
    roll[10:12] = 0  # a rest between chords
    roll[20:] = 0  # silence at the end, which the stream leaves out
    roll[3:10, 40] = 1  # a key held across several chords
    return roll


ROLLS = {
    "dense_with_rests_in_eighths": (fixed_roll(), 0.5),
    "dense_in_triplet_eighths": (fixed_roll(), 1 / 3),
    "probabilities_in_dotted_eighths": (np.random.default_rng(5).random((12, 88)) ** 4, 0.75),
    "silent": (np.zeros((5, 88), "float32"), 0.5),
}


def chordified_by_music21(roll, path, frame_quarter_length):
    """How `write_musicxml` wrote a roll before: music21's chordify of its stream."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chords = writers.roll_to_stream(roll, frame_quarter_length).chordify()
        chords.write("musicxml", fp=path)
    return path


def read_back(path):
    """Every chord, note and rest of a file: onset, duration, MIDI keys, ties and
    whether it is printed (a gap music21 fills itself is a hidden rest)."""
    events = []
    for element in music21.converter.parse(path).flatten().notesAndRests:
        notes = list(element.notes) if element.isChord else [element] if element.isNote else []
        events.append((
            element.offset, element.quarterLength,
            tuple(n.pitch.midi for n in notes),
            tuple(n.tie.type if n.tie else None for n in notes),
            element.style.hideObjectOnPrint))
    return events


@pytest.mark.parametrize("name", ROLLS)
def test_musicxml_holds_the_notes_onsets_and_durations_chordify_gave(tmp_path, name,
                                                                    monkeypatch):
    roll, quarter = ROLLS[name]
    expected = read_back(chordified_by_music21(roll, tmp_path / "before.musicxml", quarter))
    # Quadratic in the roll's length: write_musicxml must not need it.
    monkeypatch.setattr(music21.stream.Stream, "chordify", None)
    written = read_back(writers.write_musicxml(roll, tmp_path / "after.musicxml", quarter))
    assert written == expected
    keys = {key for _, _, chord, *_ in written for key in chord}
    assert keys == {21 + k for k in np.flatnonzero((np.asarray(roll) > 0.5).any(axis=0))}
    if name.startswith("dense"):
        ties = {tie for _, _, _, chord_ties, _ in written for tie in chord_ties}
        assert ties == {None, "start", "continue", "stop"}
        assert any(not chord for _, _, chord, *_ in written)  # a rest
