"""Piano rolls: sources, splits, cache, the restricted unpickler, batching."""

import io
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest

from keras_deeprnn.data import batching
from keras_deeprnn.data import cache
from keras_deeprnn.data import catalogue
from keras_deeprnn.data import music
from keras_deeprnn.data import pickles
from keras_deeprnn.data import scores
from keras_deeprnn.data import writers
from keras_deeprnn.data.rolls import LOWEST_NOTE
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.splits import _assign_splits

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "music"

# tests/fixtures/music/two_tunes.abc by hand, one frame per eighth note.
# Tune 1 is in G (one sharp), so everything moves up 5 semitones to C; its
# chord symbols G then D sound for four crotchets each.
REEL_MELODY = [72, 74, 76, 77, 79, 76, 72, 76, 74, 74, 71, 71, 67, 67, 67, 67]
REEL_CHORDS = [[60, 64, 67]] * 8 + [[55, 59, 62]] * 8
# Tune 2 is in A minor (no signature): no shift, crotchets last two frames.
AIR = [69, 69, 71, 71, 72, 72, 76, 76, 76, 76, 69, 69]


def notes_of(roll):
    return [(np.flatnonzero(frame) + LOWEST_NOTE).tolist() for frame in roll]


def c_major_roll():
    """A C major scale over the triads of C and G, 16 frames."""
    roll = np.zeros((16, 88), np.float32)
    for t, midi in enumerate([72, 74, 76, 77, 79, 81, 83, 84] * 2):
        roll[t, midi - 21] = 1
    roll[:8, [48 - 21, 52 - 21, 55 - 21]] = 1
    roll[8:, [55 - 21, 59 - 21, 62 - 21]] = 1
    return roll


def refuse_to_parse(path):
    raise AssertionError(f"parsed {path} although a cache exists")


def load_quietly(source, cache_dir, **kwargs):
    return music.load_music(source, cache_dir=cache_dir, progress=False, **kwargs)


def assert_same_data(a, b):
    assert a.keys() == b.keys() == set(SPLITS)
    for split in SPLITS:
        assert len(a[split]) == len(b[split])
        for x, y in zip(a[split], b[split]):
            np.testing.assert_array_equal(x, y)


def assert_piano_rolls(data):
    for split in SPLITS:
        for roll in data[split]:
            assert roll.dtype == np.float32
            assert roll.ndim == 2 and roll.shape[1] == 88
            assert set(np.unique(roll)) <= {0.0, 1.0}


# ---------------------------------------------------------------------------
# Folders of scores
# ---------------------------------------------------------------------------


def test_abc_collection_gives_the_hand_computed_rolls(tmp_path):
    data = load_quietly(FIXTURES, tmp_path / "cache")
    assert [len(data[s]) for s in SPLITS] == [2, 0, 0]
    reel, air = data["train"]
    assert_piano_rolls(data)
    assert [max(frame) for frame in notes_of(reel)] == REEL_MELODY
    assert [frame[:-1] for frame in notes_of(reel)] == REEL_CHORDS
    assert notes_of(air) == [[midi] for midi in AIR]


def test_frame_quarter_length_changes_the_sampling(tmp_path):
    data = load_quietly(FIXTURES, tmp_path, frame_quarter_length=1.0)
    air = data["train"][1]
    assert notes_of(air) == [[midi] for midi in AIR[::2]]


def test_midi_and_musicxml_round_trip(tmp_path):
    roll = c_major_roll()
    midi_path = writers.write_midi(roll, tmp_path / "scale.mid", 0.5)
    xml_path = writers.write_musicxml(roll, tmp_path / "scale.musicxml", 0.5)
    for path in (midi_path, xml_path):
        (score,) = scores._parse_file(path)
        parsed, dropped = scores._score_to_roll(score, 0.5, transpose=False)
        assert dropped == 0
        np.testing.assert_array_equal(parsed, roll)


def test_folder_of_mixed_formats_is_split_by_file(tmp_path):
    folder = tmp_path / "scores"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(FIXTURES / "two_tunes.abc", folder / "nested" / "two_tunes.abc")
    writers.write_midi(c_major_roll(), folder / "scale.mid", 0.5)
    writers.write_musicxml(c_major_roll()[:, ::-1], folder / "mirror.musicxml", 0.5)
    (folder / "notes.txt").write_text("not a score")

    data = load_quietly(folder, tmp_path / "cache")
    assert_piano_rolls(data)
    # Three files: one each to test and valid, the rest (the two tunes of
    # the ABC file, or one other file) to train.
    assert sorted(len(data[s]) for s in SPLITS) == [1, 1, 2]
    assert_same_data(data, load_quietly(folder, tmp_path / "other_cache"))


def test_split_subfolders_are_respected(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "data" / split).mkdir(parents=True)
    shutil.copy(FIXTURES / "two_tunes.abc", tmp_path / "data" / "train" / "a.abc")
    writers.write_midi(c_major_roll(), tmp_path / "data" / "test" / "b.mid", 0.5)
    data = load_quietly(tmp_path / "data", tmp_path / "cache")
    assert [len(data[s]) for s in SPLITS] == [2, 0, 1]
    np.testing.assert_array_equal(data["test"][0], c_major_roll())


def test_unparseable_file_is_skipped_with_a_warning_naming_it(tmp_path, monkeypatch):
    shutil.copy(FIXTURES / "two_tunes.abc", tmp_path / "good.abc")
    (tmp_path / "broken.mid").write_bytes(b"MThd this is no MIDI file")
    with pytest.warns(UserWarning, match="broken.mid"):
        data = load_quietly(tmp_path, tmp_path / "cache")
    assert sum(len(data[s]) for s in SPLITS) == 2
    # The cached data still lacks the file, and says so on every load.
    monkeypatch.setattr(scores, "_parse_file", refuse_to_parse)
    with pytest.warns(UserWarning, match=r"skipped .*broken\.mid: music21 could not parse "
                                         r"it .*Recorded in the cache file .*music-.*\.npz"):
        again = load_quietly(tmp_path, tmp_path / "cache")
    assert_same_data(data, again)


def test_dropped_notes_are_reported_again_from_the_cache(tmp_path, monkeypatch):
    shutil.copy(FIXTURES / "two_tunes.abc", tmp_path / "tunes.abc")
    to_roll = scores._score_to_roll

    def losing_three(score, frame_quarter_length):
        roll, _ = to_roll(score, frame_quarter_length)
        return roll, 3

    monkeypatch.setattr(scores, "_score_to_roll", losing_three)
    message = r"dropped 6 note\(s\) of .* outside the 88 piano keys"
    with pytest.warns(UserWarning, match=message) as first:
        data = load_quietly(tmp_path, tmp_path / "cache")
    assert not any("cache file" in str(w.message) for w in first)
    monkeypatch.setattr(scores, "_parse_file", refuse_to_parse)
    with pytest.warns(UserWarning, match=message + r".*Recorded in the cache file"):
        again = load_quietly(tmp_path, tmp_path / "cache")
    assert_same_data(data, again)
    # A build without a warning gives none on a read either.
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        load_quietly(tmp_path, tmp_path / "clean-cache")
        load_quietly(tmp_path, tmp_path / "clean-cache")
    assert [str(w.message) for w in seen if "load_music" in str(w.message)] == []


def test_empty_or_useless_folders_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no score file"):
        load_quietly(tmp_path / "empty", tmp_path / "cache")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.mid").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="broken.mid"):
        with pytest.raises(ValueError, match="no piece with notes"):
            load_quietly(tmp_path / "bad", tmp_path / "cache")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"limit": 0}, "`limit` must be a positive integer. Received: limit=0"),
        ({"limit": 2.5}, "limit"),
        ({"frame_quarter_length": -1}, "frame_quarter_length"),
        ({"cache_dir": 3}, "cache_dir"),
    ],
)
def test_bad_arguments_are_named(kwargs, match, tmp_path):
    kwargs.setdefault("cache_dir", tmp_path)
    with pytest.raises(ValueError, match=match):
        music.load_music(FIXTURES, progress=False, **kwargs)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        music.load_music("bach_everything")
    message = str(info.value)
    for name in catalogue.MUSIC_DATASETS:
        assert name in message
    assert "'bach_everything'" in message and "path" in message
    with pytest.raises(ValueError, match="name_or_path"):
        music.load_music(42)


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    first = load_quietly(FIXTURES, tmp_path)
    (cache_file,) = tmp_path.glob("music-*.npz")
    assert not list(tmp_path.glob(".*.tmp*"))

    def refuse(path):
        raise AssertionError(f"parsed {path} although a cache exists")

    monkeypatch.setattr(scores, "_parse_file", refuse)
    assert_same_data(first, load_quietly(FIXTURES, tmp_path))
    # Another frame rate is another cache entry, so it must parse.
    with pytest.warns(UserWarning, match="could not parse"):
        with pytest.raises(ValueError):
            load_quietly(FIXTURES, tmp_path, frame_quarter_length=1.0)
    assert cache_file.exists()


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path):
    first = load_quietly(FIXTURES, tmp_path)
    (cache_file,) = tmp_path.glob("music-*.npz")
    cache_file.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        again = load_quietly(FIXTURES, tmp_path)
    assert_same_data(first, again)
    with np.load(cache_file, allow_pickle=False) as stored:
        assert stored["train_lengths"].tolist() == [16, 12]


def test_temporaries_of_killed_writes_are_removed_once_stale(tmp_path):
    path = tmp_path / "music-set-0123.npz"
    stale = tmp_path / ".music-set-0123.npz.999999-0123abcd.tmp.npz"
    fresh = tmp_path / ".music-set-0123.npz.999998-4567cdef.tmp.npz"
    other = tmp_path / ".music-other-0456.npz.999999-89abcdef.tmp.npz"
    for temporary in (stale, fresh, other):
        temporary.write_bytes(b"half a zip")
    two_hours_ago = time.time() - 2 * 3600
    for temporary in (stale, other):
        os.utime(temporary, (two_hours_ago, two_hours_ago))
    rolls = {"train": [c_major_roll()], "valid": [], "test": []}
    names = {"train": ["scale"], "valid": [], "test": []}
    cache._write_cache(path, "key", rolls, names)
    assert not stale.exists()
    # Another process may still be writing this one; other files are not ours.
    assert fresh.exists() and other.exists()
    assert cache._read_cache(path, "key")[1] == []
    assert_same_data(cache._read_cache(path, "key")[0], rolls)


def test_failed_cleanup_does_not_hide_why_the_cache_was_not_written(tmp_path, monkeypatch):
    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    def refuse(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", full_disk)
    monkeypatch.setattr(pathlib.Path, "unlink", refuse)
    rolls = {"train": [c_major_roll()], "valid": [], "test": []}
    names = {"train": ["scale"], "valid": [], "test": []}
    with pytest.warns(UserWarning, match="No space left on device"):
        cache._write_cache(tmp_path / "music-set.npz", "key", rolls, names)
    assert not (tmp_path / "music-set.npz").exists()


def test_cache_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "from_env"))
    music.load_music(FIXTURES, progress=True)
    assert len(list((tmp_path / "from_env").glob("music-*.npz"))) == 1


def test_changed_file_invalidates_the_cache(tmp_path):
    folder = tmp_path / "scores"
    folder.mkdir()
    writers.write_midi(c_major_roll(), folder / "a.mid", 0.5)
    first = load_quietly(folder, tmp_path / "cache")
    writers.write_midi(c_major_roll()[:8], folder / "a.mid", 0.5)
    os.utime(folder / "a.mid", ns=(1, 1))
    second = load_quietly(folder, tmp_path / "cache")
    assert len(first["train"][0]) == 16 and len(second["train"][0]) == 8


# ---------------------------------------------------------------------------
# Built-in corpora (music21's bundled scores)
# ---------------------------------------------------------------------------


def test_jsb_chorales_sample(tmp_path):
    data = load_quietly("jsb_chorales", tmp_path / "a", limit=6)
    assert [len(data[s]) for s in SPLITS] == [4, 1, 1]
    assert_piano_rolls(data)
    for roll in data["train"]:
        # A chorale is a handful of voices, one frame per quarter note.
        assert 16 <= len(roll) <= 300
        assert 1 <= roll.sum(axis=1).max() <= 8
    # Transposed to C major / A minor: black keys are rare.
    notes = np.concatenate([r for s in SPLITS for r in data[s]]).sum(axis=0)
    black = np.isin((np.arange(88) + 21) % 12, [1, 3, 6, 8, 10])
    assert notes[black].sum() / notes.sum() < 0.15

    again = load_quietly("jsb_chorales", tmp_path / "b", limit=6)
    assert_same_data(data, again)
    (cache_file,) = (tmp_path / "a").glob("music-jsb_chorales-*.npz")
    with np.load(cache_file, allow_pickle=False) as stored:
        names = {s: set(stored[f"{s}_names"].tolist()) for s in SPLITS}
    assert sum(len(n) for n in names.values()) == 6
    assert not (names["train"] & names["valid"] or names["train"] & names["test"])
    assert not names["valid"] & names["test"]
    assert all(name.startswith("bach/") for n in names.values() for name in n)
    rolls = {s: {r.tobytes() for r in data[s]} for s in SPLITS}
    assert not (rolls["train"] & rolls["test"] or rolls["valid"] & rolls["test"])


def test_split_is_stable_as_the_sample_grows():
    entries = [(f"piece{i}", None, None) for i in range(50)]
    splits = _assign_splits(entries, None)
    assert [sum(s == name for *_, s in splits) for name in SPLITS] == [30, 10, 10]
    shuffled = _assign_splits(entries[::-1], None)
    assert sorted(splits, key=str) == sorted(shuffled, key=str)


def test_folk_tunes_sample(tmp_path):
    data = load_quietly("folk_tunes", tmp_path, limit=4)
    assert [len(data[s]) for s in SPLITS] == [2, 1, 1]
    assert_piano_rolls(data)


def test_builtin_file_lists():
    jsb = catalogue._builtin_files("jsb_chorales")
    assert len(jsb) == len({piece_id for piece_id, _, _ in jsb}) > 300
    assert all(path.is_file() for _, path, _ in jsb)
    folk = catalogue._builtin_files("folk_tunes")
    assert len(folk) > 1000 and all(p.suffix == ".abc" for _, p, _ in folk)
    classical = catalogue._builtin_files("classical_polyphony")
    assert len(classical) > 1000
    stems = [path.with_suffix("") for _, path, _ in classical]
    assert len(stems) == len(set(stems))
    assert not any(piece_id.startswith("bach/") for piece_id, _, _ in classical)


def test_builtin_sets_load_from_music21_reached_through_a_symlink(tmp_path, monkeypatch):
    import music21

    # A virtual environment reached through a link: music21.__file__ is not
    # resolved, while music21's corpus lookups return resolved paths.
    real = pathlib.Path(music21.__file__).resolve()
    link = tmp_path / "venv_link"
    link.symlink_to(real.parent.parent, target_is_directory=True)
    monkeypatch.setattr(music21, "__file__", str(link / real.parent.name / real.name))
    entries = catalogue._builtin_files("jsb_chorales")
    assert len(entries) > 300
    assert all(piece_id.startswith("bach/") for piece_id, _, _ in entries)
    folk = catalogue._builtin_files("folk_tunes")
    assert all(not piece_id.startswith("/") and ".." not in piece_id for piece_id, _, _ in folk)
    # No warm cache: the listing, split and parsing all run.
    data = load_quietly("jsb_chorales", tmp_path / "fresh_cache", limit=3)
    assert [len(data[s]) for s in SPLITS] == [1, 1, 1]


def test_descriptions_and_frame_lengths_cover_every_builtin():
    assert set(catalogue.MUSIC_DATASETS) == set(catalogue.FRAME_QUARTER_LENGTHS)
    assert "imitates" in " ".join(catalogue.MUSIC_DATASETS.values()).lower()


# ---------------------------------------------------------------------------
# Boulanger-Lewandowski pickles
# ---------------------------------------------------------------------------


def write_pickle(path, data, protocol=2):
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_pickle_loads(tmp_path, protocol):
    data = {
        "train": [[(60, 64, 67), (60,), ()], [[21, 108]]],
        "valid": [[(62,), (64.0,)]],
        "test": [],
    }
    rolls = music.load_music(write_pickle(tmp_path / "set.pickle", data, protocol))
    assert [len(rolls[s]) for s in SPLITS] == [2, 1, 0]
    assert_piano_rolls(rolls)
    assert notes_of(rolls["train"][0]) == [[60, 64, 67], [60], []]
    assert notes_of(rolls["train"][1]) == [[21, 108]]
    assert notes_of(rolls["valid"][0]) == [[62], [64]]
    limited = music.load_music(tmp_path / "set.pickle", limit=1)
    assert [len(limited[s]) for s in SPLITS] == [1, 1, 0]


class _Payload:
    """Pickles as a call to os.system; loading it must never make that call."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "payload_ran"
    path = write_pickle(
        tmp_path / "evil.pickle",
        {"train": [_Payload(marker)], "valid": [], "test": []},
    )
    with pytest.raises(ValueError) as info:
        music.load_music(path)
    assert "system" in str(info.value) and "evil.pickle" in str(info.value)
    assert not marker.exists()


# What the published copies look like: NumPy integer scalars for the notes.


def numpy_notes(data, dtype):
    return {
        split: [[tuple(dtype(n) for n in frame) for frame in piece] for piece in pieces]
        for split, pieces in data.items()
    }


PIECES = {
    "train": [[(60, 64, 67), (60,), ()], [(21, 108)]],
    "valid": [[(62,), (64,)]],
    "test": [[(48, 55)]],
}


@pytest.mark.parametrize("protocol", [0, 2, 3, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint8, np.uint64])
def test_pickle_of_numpy_integers_loads_as_plain_notes(tmp_path, protocol, dtype):
    path = write_pickle(tmp_path / "np.pickle", numpy_notes(PIECES, dtype), protocol)
    rolls = music.load_music(path)
    assert_piano_rolls(rolls)
    for split, pieces in PIECES.items():
        assert [notes_of(roll) for roll in rolls[split]] == [
            [sorted(frame) for frame in piece] for piece in pieces
        ]


def test_numpy_scalars_become_python_ints_without_numpy(tmp_path):
    raw = pickle.dumps([np.int64(-3), np.uint16(65535), np.int8(-128)], protocol=2)
    values = pickles._PlainDataUnpickler(io.BytesIO(raw)).load()
    assert values == [-3, 65535, -128]
    assert all(type(value) is int for value in values)
    # The names NumPy pickles under are answered by stand-ins, never NumPy's own.
    unpickler = pickles._PlainDataUnpickler(io.BytesIO(b""))
    assert unpickler.find_class("numpy", "dtype") is not np.dtype
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        assert unpickler.find_class(module, "scalar") is pickles._integer_scalar


class Int(int):
    """A note that a Python 2 pickle of NumPy data stores as an int64 scalar."""

    byteorder = "<"


def _py2_string(text):
    raw = text.encode("latin-1")
    return b"U" + bytes([len(raw)]) + raw


def _py2_int64(value, byteorder):
    width = {"<": "little", ">": "big"}[byteorder]
    dtype = (
        b"cnumpy\ndtype\n(" + _py2_string("i8") + b"K\x00K\x01tR"
        b"(K\x03" + _py2_string(byteorder) + b"NNNJ\xff\xff\xff\xff"
        b"J\xff\xff\xff\xffK\x00tb"
    )
    data = _py2_string(value.to_bytes(8, width, signed=True).decode("latin-1"))
    return b"cnumpy.core.multiarray\nscalar\n" + dtype + data + b"\x86R"


def python2_pickle(value):
    """Protocol-2 bytes as Python 2 wrote them: byte strings (`U`), not text.

    Python 3 cannot write that form, so it is spelt out opcode by opcode.
    """
    if isinstance(value, dict):
        body = b"".join(python2_pickle(k) + python2_pickle(v) for k, v in value.items())
        return b"}(" + body + b"u"
    if isinstance(value, list):
        return b"](" + b"".join(map(python2_pickle, value)) + b"e"
    if isinstance(value, tuple):
        return b"(" + b"".join(map(python2_pickle, value)) + b"t"
    if isinstance(value, str):
        return _py2_string(value)
    if isinstance(value, Int):
        return _py2_int64(int(value), value.byteorder)
    return b"J" + value.to_bytes(4, "little", signed=True)


class BigEndianInt(Int):
    byteorder = ">"


@pytest.mark.parametrize("note", [int, Int, BigEndianInt])
def test_python2_pickle_loads(tmp_path, note):
    data = {
        split: [[tuple(note(n) for n in frame) for frame in piece] for piece in pieces]
        for split, pieces in PIECES.items()
    }
    raw = b"\x80\x02" + python2_pickle(data) + b"."
    # The fixture is what it claims: NumPy itself reads the same notes from it.
    assert pickle.loads(raw, encoding="latin1")["train"][0][0] == (60, 64, 67)
    rolls = music.load_music(write_bytes(tmp_path / "py2.pickle", raw))
    for split, pieces in PIECES.items():
        assert [notes_of(roll) for roll in rolls[split]] == [
            [sorted(frame) for frame in piece] for piece in pieces
        ]


def write_bytes(path, raw):
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(
    "payload, match",
    [
        (np.float64(60.0), "only the integer dtypes"),
        (np.bool_(True), "only the integer dtypes"),
        (np.array([60, 64]), "numpy._core.multiarray._reconstruct"),
        (np.dtype([("a", "i8")]), "only the integer dtypes"),
        (b"\xff", None),
    ],
)
def test_other_numpy_objects_are_refused(tmp_path, payload, match):
    data = {"train": [[(60,)]], "valid": [[payload]], "test": []}
    path = write_pickle(tmp_path / "odd.pickle", data)
    if match is None:
        # Bytes are harmless data, and not a frame.
        with pytest.raises(ValueError, match="list of MIDI note numbers"):
            music.load_music(path)
        return
    with pytest.raises(ValueError, match="refused to load") as info:
        music.load_music(path)
    assert match in str(info.value)


@pytest.mark.parametrize(
    "replace",
    [
        b"numpy._core.multiarray\nscalar",
        b"numpy\ndtype",
        b"_codecs\nencode",
    ],
)
def test_code_behind_a_stand_in_name_is_refused(tmp_path, replace):
    marker = tmp_path / "payload_ran"
    # os.system pickled, then renamed to a name the unpickler answers: the
    # stand-in gets the command string and must refuse it, not run it.
    raw = pickle.dumps({"train": [_Payload(marker)], "valid": [], "test": []}, 2)
    system = b"c" + os.system.__module__.encode() + b"\nsystem"
    assert system in raw
    raw = raw.replace(system, b"c" + replace)
    with pytest.raises(ValueError, match="refused to load"):
        music.load_music(write_bytes(tmp_path / "evil.pickle", raw))
    assert not marker.exists()


def test_pickle_of_shared_references_is_refused_before_it_expands(tmp_path):
    frame = tuple(range(21, 109))
    piece = [frame] * 1000
    # Each extra reference to the piece costs two bytes and adds 1000 frames.
    data = {"train": [piece] * 10_000, "valid": [], "test": []}
    path = write_pickle(tmp_path / "bomb.pickle", data)
    assert path.stat().st_size < 50_000  # 10 million frames: 3.5 GB of rolls
    with pytest.raises(ValueError, match="repeats shared lists") as info:
        music.load_music(path)
    assert "bomb.pickle" in str(info.value)
    # A few shared frames, as a writer that reused tuples would leave, pass.
    modest = {"train": [[frame] * 3 for _ in range(20)], "valid": [], "test": []}
    rolls = music.load_music(write_pickle(tmp_path / "ok.pickle", modest))
    assert len(rolls["train"]) == 20 and rolls["train"][0].sum() == 3 * 88


DEEP = 200_000


def deeply_nested_pickles(folder):
    """Pickles that nest 200,000 deep, in the three places a pickle can."""
    name = b"X\x05\x00\x00\x00train"
    rest = b"X\x05\x00\x00\x00valid]X\x04\x00\x00\x00test]"
    deep_list = b"]" * DEEP + b"a" * (DEEP - 1)
    deep_tuple = b"K\x01" + b"\x85" * DEEP
    bodies = {
        # Hashing a deep tuple as a dict key recursed in C and crashed.
        "tuple_key": b"}" + deep_tuple + b"K\x01s",
        # Printing a deep list in the error message recursed.
        "list_note": b"}(" + name + b"]]]" + deep_list + b"aaa" + rest + b"u",
        "tuple_note": b"}(" + name + b"]](" + deep_tuple + b"ta" + b"a" + rest + b"u",
    }
    paths = []
    for kind, body in bodies.items():
        paths.append(folder / f"{kind}.pickle")
        paths[-1].write_bytes(b"\x80\x02" + body + b".")
    return paths


def test_deeply_nested_pickle_is_refused_without_crashing(tmp_path):
    paths = deeply_nested_pickles(tmp_path)
    # A high recursion limit (music21 raises it) turns unbounded recursion
    # into a crash of the interpreter, so this runs in its own process.
    code = (
        "import sys; sys.setrecursionlimit(1_000_000)\n"
        "from keras_deeprnn.data import music\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        music.load_music(path)\n"
        "    except ValueError as err:\n"
        "        print('ValueError', err)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).parents[2]))
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, paths)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("ValueError")]
    assert len(lines) == 3, done.stdout
    assert "nests tuples more than" in lines[0]
    assert "holds a list of 1 item(s); expected whole MIDI note numbers" in lines[1]
    assert "nests tuples more than" in lines[2]
    assert all(len(line) < 400 for line in lines)


def test_pickle_with_numpy_objects_is_refused(tmp_path):
    path = write_pickle(
        tmp_path / "arrays.pickle",
        {"train": [np.zeros((2, 3))], "valid": [], "test": []},
    )
    with pytest.raises(ValueError, match="refused to load .*numpy"):
        music.load_music(path)


@pytest.mark.parametrize(
    "data, match",
    [
        ([1, 2], "dict with keys"),
        ({"train": [], "valid": []}, "dict with keys"),
        ({"train": [[(20,)]], "valid": [], "test": []}, "21..108"),
        ({"train": [[(60.5,)]], "valid": [], "test": []}, "whole"),
        ({"train": [[(float("nan"),)]], "valid": [], "test": []}, "whole"),
        ({"train": [[60]], "valid": [], "test": []}, "list of MIDI note numbers"),
        ({"train": [], "valid": [], "test": []}, "no piece"),
    ],
)
def test_malformed_pickle_is_explained(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        music.load_music(write_pickle(tmp_path / "odd.pkl", data))


def test_pickle_takes_no_frame_rate_and_junk_is_not_a_pickle(tmp_path):
    data = {"train": [[(60,)]], "valid": [], "test": []}
    path = write_pickle(tmp_path / "set.pickle", data)
    with pytest.raises(ValueError, match="frame_quarter_length must be None"):
        music.load_music(path, frame_quarter_length=1.0)
    (tmp_path / "junk.pickle").write_bytes(b"\x80\x02not really")
    with pytest.raises(ValueError, match="could not read"):
        music.load_music(tmp_path / "junk.pickle")


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------


def counting_roll(frames):
    """Frame t has only key t on, so every frame is recognisable."""
    return np.eye(88, dtype=np.float32)[:frames]


def test_pad_batch_shifts_by_one_frame_and_masks_padding():
    x, y, mask = batching.pad_batch([counting_roll(3), counting_roll(6)], start_frame=False)
    assert x.shape == y.shape == (2, 5, 88) and mask.shape == (2, 5)
    assert x.dtype == y.dtype == mask.dtype == np.float32
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(x[1], counting_roll(5))
    np.testing.assert_array_equal(y[1], counting_roll(6)[1:])
    np.testing.assert_array_equal(x[0, :2], counting_roll(2))
    np.testing.assert_array_equal(y[0, :2], counting_roll(3)[1:])
    assert not x[0, 2:].any() and not y[0, 2:].any()


def test_pad_batch_predicts_the_first_frame_from_a_silent_start_frame():
    x, y, mask = batching.pad_batch([counting_roll(3), counting_roll(6)])
    # Every frame of a piece is a target: T steps for T frames.
    assert x.shape == y.shape == (2, 6, 88)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0, 0], [1] * 6])
    assert not x[:, 0].any()
    np.testing.assert_array_equal(x[1, 1:], counting_roll(5))
    np.testing.assert_array_equal(y[1], counting_roll(6))
    np.testing.assert_array_equal(y[0, :3], counting_roll(3))
    np.testing.assert_array_equal(x[0, 1:3], counting_roll(2))
    assert not x[0, 3:].any() and not y[0, 3:].any()
    # A one-frame piece still has its frame to predict.
    _, y, mask = batching.pad_batch([counting_roll(1)])
    assert mask.tolist() == [[1.0]] and y[0, 0, 0] == 1


def test_piano_roll_batches_score_every_frame_and_window_after_the_start_frame():
    pieces = [counting_roll(n) for n in (3, 4, 5, 6, 7)] + [counting_roll(1)]
    batches = batching.piano_roll_batches(pieces, batch_size=2, seed=3)
    steps = sorted(int(n) for i in range(len(batches)) for n in batches[i][2].sum(axis=1))
    assert steps == [1, 3, 4, 5, 6, 7]
    batches = batching.piano_roll_batches([counting_roll(10)], batch_size=8, shuffle=False,
                                       max_len=4)
    x, y, weights = batches[0]
    # [silent, 0..9] in windows of 5 frames overlapping by one: 10 targets, each once.
    np.testing.assert_array_equal(weights.sum(axis=1), [4, 4, 2])
    assert not x[0, 0].any()
    targets = np.argmax(y, axis=-1)[weights > 0]
    inputs = np.argmax(x, axis=-1)[weights > 0][1:]
    assert targets.tolist() == list(range(10)) and inputs.tolist() == list(range(9))


def test_padded_lengths_form_a_short_ladder_with_bounded_padding():
    lengths = [batching.padded_length(n) for n in range(0, 6001)]
    assert lengths[:17] == [16] * 17 and lengths[17] == 24
    ladder = sorted(set(lengths))
    assert ladder[:8] == [16, 24, 32, 48, 64, 96, 128, 192]
    for n in range(17, 6001):
        assert n <= lengths[n] <= 1.5 * n
        assert lengths[n] == min(size for size in ladder if size >= n)
    # Nottingham's pieces run from 40 to 1,793 frames: a dozen shapes.
    assert len({batching.padded_length(n) for n in range(40, 1794)}) == 12
    rng = np.random.default_rng(0)
    pieces = [counting_roll(int(n) % 88 + 1) for n in rng.integers(1, 88, 30)]
    shapes = {x.shape[1] for x, _, _ in batching.piano_roll_batches(pieces, 3, ladder=True)}
    assert shapes <= set(ladder)
    _, _, mask = batching.pad_batch([counting_roll(20)], ladder=True)
    assert mask.shape == (1, 24) and mask.sum() == 20
    with pytest.raises(ValueError, match="`ladder` must be True or False"):
        batching.pad_batch([counting_roll(2)], ladder=1)
    with pytest.raises(ValueError, match="`start_frame` must be True or False"):
        batching.piano_roll_batches([counting_roll(2)], 1, start_frame="no")


def test_pad_batch_cuts_and_rounds():
    x, y, mask = batching.pad_batch([counting_roll(3), counting_roll(20)], max_len=7,
                                 start_frame=False)
    assert x.shape == (2, 7, 88)
    np.testing.assert_array_equal(mask.sum(axis=1), [2, 7])
    np.testing.assert_array_equal(y[1], counting_roll(8)[1:])
    x, _, mask = batching.pad_batch([counting_roll(6)], pad_to_multiple_of=4, start_frame=False)
    assert x.shape == (1, 8, 88)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 1, 0, 0, 0]])


def test_pad_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        batching.pad_batch([np.zeros((4, 87))])
    with pytest.raises(ValueError, match="Wrap it in a list"):
        batching.pad_batch(counting_roll(4))
    with pytest.raises(ValueError, match="empty"):
        batching.pad_batch([])
    with pytest.raises(ValueError, match="max_len"):
        batching.pad_batch([counting_roll(4)], max_len=0)


def test_piano_roll_batches_cover_every_piece_once_per_epoch():
    pieces = [counting_roll(n) for n in (3, 4, 5, 6, 7)] + [counting_roll(1)]
    batches = batching.piano_roll_batches(pieces, batch_size=2, seed=3, start_frame=False)
    assert isinstance(batches, keras.utils.PyDataset)
    assert len(batches) == 3  # the one-frame piece has nothing to predict

    def epoch_lengths():
        seen = []
        for i in range(len(batches)):
            x, y, weights = batches[i]
            assert x.shape == y.shape and weights.shape == x.shape[:2]
            real = weights[:, 1:, None]
            np.testing.assert_array_equal(x[:, 1:] * real, y[:, :-1] * real)
            seen.extend(weights.sum(axis=1).astype(int).tolist())
        return seen

    first = epoch_lengths()
    assert sorted(first) == [2, 3, 4, 5, 6]
    again = batching.piano_roll_batches(pieces, batch_size=2, seed=3, start_frame=False)
    np.testing.assert_array_equal(again[0][0], batches[0][0])
    orders = {tuple(first)}
    for _ in range(4):
        batches.on_epoch_end()
        orders.add(tuple(epoch_lengths()))
    assert len(orders) > 1
    with pytest.raises(IndexError):
        batches[3]


def test_piano_roll_batches_without_shuffle_keep_order_and_split_long_pieces():
    batches = batching.piano_roll_batches(
        [counting_roll(10)], batch_size=8, shuffle=False, max_len=4, start_frame=False
    )
    x, y, weights = batches[0]
    # Windows of 5 frames overlapping by one: 9 transitions, each once.
    assert x.shape == (3, 4, 88)
    np.testing.assert_array_equal(weights.sum(axis=1), [4, 4, 1])
    inputs = np.argmax(x, axis=-1)[weights > 0]
    targets = np.argmax(y, axis=-1)[weights > 0]
    assert inputs.tolist() == list(range(9)) and targets.tolist() == list(range(1, 10))


def padded_steps(batches):
    return sum(weights.size - weights.sum() for _, _, weights in batches)


def test_bucketed_batches_pad_less_and_read_every_piece_once_per_epoch():
    lengths = np.random.default_rng(0).permutation(np.arange(2, 62))
    pieces = [counting_roll(n) for n in lengths]
    plain = batching.piano_roll_batches(pieces, batch_size=8, seed=1, start_frame=False)
    bucketed = batching.piano_roll_batches(pieces, batch_size=8, seed=1, bucket=True,
                                        start_frame=False)
    assert len(bucketed) == len(plain) == 8
    first_epoch = [weights for _, _, weights in bucketed]
    orders = set()
    for _ in range(3):
        # Each piece has its own length, so the mask says which one it is.
        seen = sorted(int(n) + 1 for _, _, w in bucketed for n in w.sum(axis=1))
        assert seen == sorted(lengths.tolist())
        assert padded_steps(bucketed) < padded_steps(plain) / 4
        orders.add(tuple(int(w.sum()) for _, _, w in bucketed))
        bucketed.on_epoch_end()
        plain.on_epoch_end()
    assert len(orders) == 3  # the order of the batches is redrawn
    # Same seed, same batches; no shuffle: shortest pieces first.
    again = batching.piano_roll_batches(pieces, batch_size=8, seed=1, bucket=True,
                                     start_frame=False)
    for weights, (_, _, again_weights) in zip(first_epoch, again):
        np.testing.assert_array_equal(weights, again_weights)
    fixed = batching.piano_roll_batches(pieces, 8, shuffle=False, bucket=True, start_frame=False)
    assert [int(w.sum(axis=1).max()) + 1 for _, _, w in fixed] == list(range(9, 62, 8)) + [61]
    with pytest.raises(ValueError, match="`bucket` must be True or False"):
        batching.piano_roll_batches(pieces, 8, bucket="yes")


def test_piano_roll_batches_reject_bad_arguments():
    expected = "`batch_size` must be a positive integer. Received: batch_size=0"
    with pytest.raises(ValueError, match=expected):
        batching.piano_roll_batches([counting_roll(3)], 0)
    with pytest.raises(ValueError, match="two or more frames"):
        batching.piano_roll_batches([counting_roll(1)], 2, start_frame=False)
    with pytest.raises(ValueError, match="one or more frames"):
        batching.piano_roll_batches([counting_roll(0)], 2)


# ---------------------------------------------------------------------------
# Output helpers and optional dependencies
# ---------------------------------------------------------------------------


def test_roll_to_stream_merges_held_notes():
    roll = np.zeros((4, 88), np.float32)
    roll[:3, 60 - 21] = 1  # one C4 of three frames
    roll[[0, 2], 64 - 21] = 0.9  # two separate E4s, given as probabilities
    score = writers.roll_to_stream(roll, 0.5)
    notes = sorted(
        (float(n.offset), n.pitch.midi, float(n.quarterLength))
        for n in score.flatten().notes
    )
    assert notes == [(0.0, 60, 1.5), (0.0, 64, 0.5), (1.0, 64, 0.5)]


def test_plot_piano_roll_writes_a_png(tmp_path):
    path = writers.plot_piano_roll(c_major_roll(), tmp_path / "roll.png", title="scale")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_importing_the_module_does_not_import_music21():
    code = (
        "import sys, keras_deeprnn.data.music, keras_deeprnn.metrics.music; "
        "sys.exit('music21' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).parents[2]))
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_missing_music21_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(ImportError, match=r'pip install "keras-deeprnn\[music\]"'):
        writers.roll_to_stream(counting_roll(2))
