"""Polyphonic music as piano rolls, the paper's first task.

A piece is a float32 NumPy array of shape `(frames, 88)`: column `k` is the
piano key with MIDI number `21 + k` (A0 .. C8) and holds 1 while that key
sounds at the start of the frame, 0 otherwise. A model reads frames `0..T-2`
and predicts frames `1..T-1` with 88 independent sigmoids (`pad_batch`,
`piano_roll_batches`); `keras_deeprnn.metrics.frame_nll` scores it.

`load_music` returns `{"train": [...], "valid": [...], "test": [...]}` from
three kinds of source:

* A built-in name (`MUSIC_DATASETS`). These are built from the scores that
  music21 ships in its corpus, so they need no download. They imitate, and do
  not reproduce, the Boulanger-Lewandowski et al. (2012) sets the paper
  reports on: `"jsb_chorales"` stands in for JSB Chorales, `"folk_tunes"` for
  Nottingham and `"classical_polyphony"` for MuseData. Their numbers are not
  comparable with the paper's tables; those need the original pickles.
* A Boulanger-Lewandowski pickle (`JSB_Chorales.pickle`, `Nottingham.pickle`,
  `MuseData.pickle`, `Piano-midi.de.pickle`), as the authors' Python 2 files
  or as copies pickled with NumPy, read by an unpickler that builds lists,
  tuples, dicts, numbers, strings and NumPy integer scalars (as plain ints,
  without NumPy) and refuses everything else before it runs
  (`keras_deeprnn.data.pickles`).
* A folder of MIDI, MusicXML, ABC or Humdrum files, searched recursively.

How a score becomes a roll (built-in names and folders):

* Every part is read at sounding pitch; a chord symbol sounds its chord from
  its offset until the next chord symbol of the same part (Nottingham's
  accompaniment is of that kind). Grace notes have no duration and vanish.
* The piece is transposed by the smallest interval (-5 .. +6 semitones) that
  brings its key signature to no sharps or flats, so major keys land on C
  major and minor keys on A minor (the paper's data is transposed to C). The
  signature is the most common first signature over the parts; a piece with
  none (most MIDI files) uses music21's key estimate. Notes pushed outside
  the 88 keys are dropped, with one warning per call that counts them.
* Frames sample the score every `frame_quarter_length` quarter notes: a key
  is on in frame `t` when a note covers the instant `t * frame_quarter_length`.
  A note that covers no sampling instant is lost, as when a performance is
  sampled at a fixed rate. Repeats are not expanded.

How pieces are split: files are ordered by the SHA-1 of their path relative
to the source (a fixed pseudo-random order that depends on nothing else); the
first `round(0.2 * n)` files are the test split, the next `round(0.2 * n)`
the valid split, the rest train. With `limit=N` only the first N files of
that order are parsed, then split the same way. A file that holds several
tunes (an ABC collection) keeps them all in one split. A folder with `train/`,
`valid/` or `test/` subfolders is split by those instead.

Parsing is slow (about 0.15 s a chorale), so built rolls are
cached as `.npz` files under `cache_dir`, else `$KERAS_DEEPRNN_CACHE`, else
`~/.cache/keras_deeprnn`.

Reference: Boulanger-Lewandowski, Bengio and Vincent, "Modeling temporal
dependencies in high-dimensional sequences: application to polyphonic music
generation and transcription", ICML 2012.
"""

import collections
import hashlib
import json
import math
import os
import pathlib
import tempfile
import warnings

import keras
import numpy as np

from keras_deeprnn.data.pickles import PICKLE_EXTENSIONS
from keras_deeprnn.data.pickles import _load_pickle
from keras_deeprnn.data.rolls import DEFAULT_FRAME_QUARTER_LENGTH
from keras_deeprnn.data.rolls import HIGHEST_NOTE
from keras_deeprnn.data.rolls import LOWEST_NOTE
from keras_deeprnn.data.rolls import MUSIC_EXTRA_HINT
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.rolls import _as_roll
from keras_deeprnn.data.rolls import _check_frame_quarter_length
from keras_deeprnn.data.rolls import _check_positive_int
from keras_deeprnn.data.splits import HELD_OUT_FRACTION
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.splits import _assign_splits

MUSIC_EXTENSIONS = (".abc", ".krn", ".mid", ".midi", ".musicxml", ".mxl", ".xml")
CACHE_ENV = "KERAS_DEEPRNN_CACHE"
CACHE_FORMAT_VERSION = 1

MUSIC_DATASETS = {
    "jsb_chorales": (
        "Bach's four-part chorales as music21 ships them (the 371 "
        "Riemenschneider numbers, 350 distinct files), every part, one frame "
        "per quarter note, transposed to C major / A minor. Imitates JSB "
        "Chorales."
    ),
    "folk_tunes": (
        "British, Irish and American dance tunes in ABC: the Nottingham Music "
        "Database sample and Ryan's Mammoth Collection from the music21 "
        "corpus, melody plus any chord symbols, one frame per eighth note, "
        "transposed to C. Imitates Nottingham."
    ),
    "classical_polyphony": (
        "Multi-voice art music from the music21 corpus: Renaissance and "
        "earlier polyphony (Palestrina, Monteverdi, Josquin, the Trecento, "
        "Ciconia, da Lucca, Lusitano) and Baroque to Romantic chamber, piano "
        "and vocal scores (Corelli, Handel, C.P.E. Bach, Haydn, Mozart, "
        "Beethoven, Weber, Schubert, the Schumanns, Chopin, Verdi), one frame "
        "per eighth note, transposed to C. Imitates MuseData."
    ),
}

FRAME_QUARTER_LENGTHS = {
    "jsb_chorales": 1.0,
    "folk_tunes": 0.5,
    "classical_polyphony": 0.5,
}

_CORPUS_FOLDERS = {
    "folk_tunes": ("nottingham-dataset", "ryansMammoth"),
    "classical_polyphony": (
        "palestrina",
        "monteverdi",
        "josquin",
        "trecento",
        "ciconia",
        "luca",
        "lusitano",
        "corelli",
        "handel",
        "cpebach",
        "haydn",
        "mozart",
        "beethoven",
        "weber",
        "schubert",
        "schumann_robert",
        "schumann_clara",
        "chopin",
        "verdi",
    ),
}


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def load_music(
    name_or_path,
    *,
    cache_dir=None,
    progress=True,
    limit=None,
    frame_quarter_length=None,
):
    """Load a polyphonic-music data set as lists of piano rolls.

    Args:
        name_or_path: a key of `MUSIC_DATASETS`, the path of a
            Boulanger-Lewandowski `.pickle`, or a folder of `.mid`, `.midi`,
            `.mxl`, `.musicxml`, `.xml`, `.abc` or `.krn` files (searched
            recursively; where any of `train/`, `valid/`, `test/` exists,
            only those subfolders are read, each giving its split).
        cache_dir: folder for the built rolls. Defaults to
            `$KERAS_DEEPRNN_CACHE`, else `~/.cache/keras_deeprnn`. Pickles
            load fast and are not cached.
        progress: show a progress bar while parsing scores.
        limit: parse at most this many files (for quick runs), still split
            as described above. It caps each split instead in a folder with
            split subfolders, and for a pickle keeps the first `limit`
            pieces of each split.
        frame_quarter_length: frame length in quarter notes. Defaults to
            `FRAME_QUARTER_LENGTHS[name]` for a built-in name and to 0.5 (an
            eighth note) for a folder. A pickle's frames are fixed, so it
            must stay `None` there.

    Returns:
        `{"train": [...], "valid": [...], "test": [...]}`, each a list of
        float32 arrays of shape `(frames, 88)` holding 0 and 1.

    Raises:
        ValueError: unknown name or missing path, bad arguments, a pickle
            that is not in the expected format or references any global, a
            source that yields no piece.
        ImportError: music21 is needed and not installed.

    Example:

    >>> data = load_music("jsb_chorales", limit=6)  # doctest: +SKIP
    >>> [len(data[split]) for split in ("train", "valid", "test")]  # doctest: +SKIP
    [4, 1, 1]
    >>> data["train"][0].shape  # doctest: +SKIP
    (50, 88)
    """
    _check_limit(limit)
    if frame_quarter_length is not None:
        frame_quarter_length = _check_frame_quarter_length(frame_quarter_length)

    if isinstance(name_or_path, str) and name_or_path in MUSIC_DATASETS:
        name = name_or_path
        quarter = frame_quarter_length or FRAME_QUARTER_LENGTHS[name]
        return _load_scores(
            source=f"builtin:{name}",
            label=name,
            list_files=lambda: _builtin_files(name),
            extra_key={"music21": _import_music21().__version__},
            frame_quarter_length=quarter,
            limit=limit,
            cache_dir=cache_dir,
            progress=progress,
        )

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(
            "load_music: name_or_path must be a data set name (str) or a "
            f"path; received {name_or_path!r} of type "
            f"{type(name_or_path).__name__}."
        )
    path = pathlib.Path(name_or_path).expanduser()
    if path.is_file() and path.suffix.lower() in PICKLE_EXTENSIONS:
        if frame_quarter_length is not None:
            raise ValueError(
                "load_music: frame_quarter_length must be None for a pickle, "
                "whose frames are already sampled; received "
                f"frame_quarter_length={frame_quarter_length!r} with {path}."
            )
        return _load_pickle(path, limit=limit)
    if path.is_dir():
        root = path.resolve()
        files = _folder_files(root)
        quarter = frame_quarter_length or DEFAULT_FRAME_QUARTER_LENGTH
        return _load_scores(
            source=f"folder:{root}",
            label=root.name or "folder",
            list_files=lambda: files,
            extra_key={"files": _fingerprint(root, files)},
            frame_quarter_length=quarter,
            limit=limit,
            cache_dir=cache_dir,
            progress=progress,
        )
    if path.is_file():
        raise ValueError(
            f"load_music: name_or_path={str(name_or_path)!r} is a file but "
            f"not a pickle; expected a file ending in {PICKLE_EXTENSIONS} or "
            "a folder of score files."
        )
    raise ValueError(
        f"load_music: name_or_path={name_or_path!r} is neither a built-in "
        f"data set ({', '.join(sorted(MUSIC_DATASETS))}) nor an existing "
        "path; expected one of those names, the path of a "
        "Boulanger-Lewandowski .pickle, or a folder of MIDI/MusicXML/ABC/"
        "Humdrum files."
    )


def pad_batch(pieces, max_len=None, *, pad_to_multiple_of=None):
    """Next-frame inputs, targets and mask for a batch of piano rolls.

    For a piece of `T` frames the inputs are frames `0..T-2` and the targets
    frames `1..T-1`, so it contributes `T - 1` time steps. Shorter pieces are
    zero-padded at the end to the longest one.

    Args:
        pieces: sequence of arrays of shape `(frames, 88)`.
        max_len: keep at most this many time steps of each piece (the rest
            is cut off).
        pad_to_multiple_of: round the time axis up to a multiple of this, so
            that a compiled train step sees few distinct shapes.

    Returns:
        `(x, y, mask)`: float32 arrays of shapes `(batch, time, 88)`,
        `(batch, time, 88)` and `(batch, time)`; `mask` is 1 on real steps
        and 0 on padding.

    Example:

    >>> x, y, mask = pad_batch([np.eye(88)[:3], np.eye(88)[:5]])
    >>> x.shape, mask.tolist()
    ((2, 4, 88), [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    """
    if max_len is not None:
        _check_positive_int("pad_batch", "max_len", max_len)
    if pad_to_multiple_of is not None:
        _check_positive_int("pad_batch", "pad_to_multiple_of", pad_to_multiple_of)
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
    steps = [max(len(roll) - 1, 0) for roll in rolls]
    if max_len is not None:
        steps = [min(step, max_len) for step in steps]
    time = max(steps)
    if pad_to_multiple_of is not None:
        time = max(1, math.ceil(time / pad_to_multiple_of)) * pad_to_multiple_of
    x = np.zeros((len(rolls), time, NUM_NOTES), np.float32)
    y = np.zeros_like(x)
    mask = np.zeros((len(rolls), time), np.float32)
    for i, (roll, step) in enumerate(zip(rolls, steps)):
        x[i, :step] = roll[:step]
        y[i, :step] = roll[1 : step + 1]
        mask[i, :step] = 1.0
    return x, y, mask


class PianoRollBatches(keras.utils.PyDataset):
    """Padded next-frame batches of piano rolls for `model.fit`.

    Each item is `(x, y, sample_weight)` from `pad_batch`, with the mask as
    `sample_weight`, so a per-frame loss on a `(batch, time, 88)` output (and
    metrics passed as `weighted_metrics`) ignores the padding. With
    `max_len`, a long piece is cut into consecutive windows of `max_len + 1`
    frames that overlap by one frame, so every frame-to-frame transition is
    trained on exactly once. Pieces of fewer than two frames are left out.
    With `shuffle`, the order of pieces is redrawn after every epoch from a
    generator seeded with `seed`.

    Keyword arguments other than those below (`workers`,
    `use_multiprocessing`, `max_queue_size`) go to `keras.utils.PyDataset`.

    Example:

    >>> batches = PianoRollBatches([np.eye(88)[:9]] * 5, batch_size=2)
    >>> len(batches), [a.shape for a in batches[0]]
    (3, [(2, 8, 88), (2, 8, 88), (2, 8)])
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
        **kwargs,
    ):
        _check_positive_int("piano_roll_batches", "batch_size", batch_size)
        if max_len is not None:
            _check_positive_int("piano_roll_batches", "max_len", max_len)
        if pad_to_multiple_of is not None:
            _check_positive_int(
                "piano_roll_batches", "pad_to_multiple_of", pad_to_multiple_of
            )
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(
                f"piano_roll_batches: seed must be an int; received {seed!r}."
            )
        super().__init__(**kwargs)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.max_len = max_len
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pieces = []
        for i, piece in enumerate(pieces):
            roll = _as_roll(piece, f"piano_roll_batches: pieces[{i}]")
            if len(roll) < 2:
                continue
            if max_len is None:
                self.pieces.append(roll)
            else:
                for start in range(0, len(roll) - 1, max_len):
                    self.pieces.append(roll[start : start + max_len + 1])
        if not self.pieces:
            raise ValueError(
                "piano_roll_batches: pieces holds no piece of two or more "
                "frames; expected at least one, since a model predicts each "
                "frame from the one before."
            )
        self._rng = np.random.default_rng(self.seed)
        self._order = np.arange(len(self.pieces))
        if self.shuffle:
            self._order = self._rng.permutation(len(self.pieces))

    def __len__(self):
        return math.ceil(len(self.pieces) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(
                f"PianoRollBatches: index {index} is out of range for "
                f"{len(self)} batches."
            )
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return pad_batch(
            [self.pieces[i] for i in chosen],
            pad_to_multiple_of=self.pad_to_multiple_of,
        )

    def on_epoch_end(self):
        if self.shuffle:
            self._order = self._rng.permutation(len(self.pieces))


def piano_roll_batches(
    pieces, batch_size, *, shuffle=True, seed=0, max_len=None, **kwargs
):
    """`(x, y, sample_weight)` batches of piano rolls, ready for `model.fit`.

    A thin constructor of `PianoRollBatches`; see there for the details.

    Example:

    >>> data = load_music("jsb_chorales")  # doctest: +SKIP
    >>> model.fit(piano_roll_batches(data["train"], 16), epochs=10)  # doctest: +SKIP
    """
    return PianoRollBatches(
        pieces, batch_size, shuffle=shuffle, seed=seed, max_len=max_len, **kwargs
    )


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
    music21 = _import_music21()
    on = _as_roll(roll, "roll_to_stream: roll") > threshold
    quarter = _check_frame_quarter_length(frame_quarter_length)
    part = music21.stream.Part()
    part.insert(0, music21.instrument.Piano())
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
    path = pathlib.Path(path)
    roll_to_stream(roll, frame_quarter_length).write("midi", fp=str(path))
    return path


def write_musicxml(roll, path, frame_quarter_length=DEFAULT_FRAME_QUARTER_LENGTH):
    """Write a piano roll as MusicXML (notes merged into chords); returns the path."""
    path = pathlib.Path(path)
    score = roll_to_stream(roll, frame_quarter_length)
    # Overlapping notes in one part have no clean notation; chordify splits
    # them into successive chords joined by ties.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score.chordify().write("musicxml", fp=str(path))
    return path


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
    path = pathlib.Path(path)
    figure.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------
# Scores: listing, parsing, rolls
# ---------------------------------------------------------------------------


def _import_music21():
    try:
        import music21
    except ImportError as err:
        raise ImportError(
            f"Reading or writing scores needs music21: {MUSIC_EXTRA_HINT}"
        ) from err
    return music21


def _builtin_files(name):
    """`(piece id, path, None)` for each file of a built-in data set."""
    music21 = _import_music21()
    corpus_root = pathlib.Path(music21.__file__).parent / "corpus"
    if name == "jsb_chorales":
        works = sorted(set(music21.corpus.chorales.Iterator(returnType="filename")))
        paths = [_single_work(music21, work) for work in works]
    else:
        paths = []
        for folder in _CORPUS_FOLDERS[name]:
            paths.extend(
                p for p in (corpus_root / folder).rglob("*")
                if p.is_file() and p.suffix.lower() in MUSIC_EXTENSIONS
            )
        # Some works ship twice (.xml and .mxl); keep the first by name.
        unique = {}
        for path in sorted(paths):
            unique.setdefault(path.with_suffix(""), path)
        paths = list(unique.values())
    return [(path.relative_to(corpus_root).as_posix(), path, None) for path in paths]


def _single_work(music21, work):
    found = music21.corpus.getWork(work)
    if isinstance(found, (list, tuple)):
        stem = work.rsplit("/", 1)[-1]
        exact = [pathlib.Path(p) for p in found if pathlib.Path(p).stem == stem]
        return exact[0] if exact else pathlib.Path(sorted(map(str, found))[0])
    return pathlib.Path(found)


def _folder_files(root):
    """`(piece id, path, split or None)` for every score file under `root`."""
    split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
    entries = []
    for top, split in [(split_dirs[s], s) for s in split_dirs] or [(root, None)]:
        for path in sorted(top.rglob("*")):
            if path.is_file() and path.suffix.lower() in MUSIC_EXTENSIONS:
                entries.append((path.relative_to(root).as_posix(), path, split))
    if not entries:
        raise ValueError(
            f"load_music: the folder {str(root)!r} holds no score file; "
            f"expected files ending in {', '.join(MUSIC_EXTENSIONS)} (searched "
            "recursively)."
        )
    return entries


def _fingerprint(root, entries):
    return [
        [piece_id, path.stat().st_size, path.stat().st_mtime_ns]
        for piece_id, path, _ in entries
    ]


def _parse_file(path):
    """The scores in one file (an ABC collection holds many)."""
    music21 = _import_music21()
    # music21 warns about every notational oddity; those are not ours to show.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # forceSource: never read or write music21's pickled parse cache.
        parsed = music21.converter.parse(str(path), forceSource=True)
    if isinstance(parsed, music21.stream.Opus):
        return list(parsed.scores)
    return [parsed]


def _score_to_roll(score, frame_quarter_length, transpose=True):
    """`(roll, dropped)`: a score's piano roll and how many notes missed the keys."""
    music21 = _import_music21()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = list(score.parts) or [score]
        if any(getattr(part, "atSoundingPitch", True) is False for part in parts):
            score = score.toSoundingPitch()
            parts = list(score.parts) or [score]
        shift = _shift_to_c(music21, score, parts) if transpose else 0
        events = []
        for part in parts:
            flat = part.flatten()
            symbols = []
            for element in flat.notes:
                if isinstance(element, music21.harmony.ChordSymbol):
                    symbols.append(element)
                    continue
                start = float(element.offset)
                end = start + float(element.quarterLength)
                events.extend((start, end, p.midi) for p in element.pitches)
            part_end = float(flat.highestTime)
            for i, symbol in enumerate(symbols):
                start = float(symbol.offset)
                end = float(symbols[i + 1].offset) if i + 1 < len(symbols) else part_end
                events.extend((start, end, p.midi) for p in symbol.pitches)
        num_frames = math.ceil(float(score.highestTime) / frame_quarter_length - 1e-9)
    roll = np.zeros((max(num_frames, 0), NUM_NOTES), np.float32)
    dropped = 0
    for start, end, midi in events:
        key_number = midi + shift
        if not LOWEST_NOTE <= key_number <= HIGHEST_NOTE:
            dropped += 1
            continue
        # Frame t is on when the note covers the instant t * frame length.
        first = math.ceil(start / frame_quarter_length - 1e-9)
        last = math.ceil(end / frame_quarter_length - 1e-9)
        roll[first:last, key_number - LOWEST_NOTE] = 1.0
    return roll, dropped


def _shift_to_c(music21, score, parts):
    """Semitones (-5..+6) that bring the key signature to no sharps or flats."""
    sharps = []
    for part in parts:
        signature = part.recurse().getElementsByClass(music21.key.KeySignature).first()
        if signature is not None and signature.sharps is not None:
            sharps.append(signature.sharps)
    if sharps:
        count = collections.Counter(sharps).most_common(1)[0][0]
    else:
        try:
            count = score.analyze("key").sharps
        except Exception:  # music21 raises many kinds on empty or odd scores
            return 0
    major_tonic = (7 * count) % 12
    shift = -major_tonic % 12
    return shift - 12 if shift > 6 else shift


def _load_scores(
    *,
    source,
    label,
    list_files,
    extra_key,
    frame_quarter_length,
    limit,
    cache_dir,
    progress,
):
    key = json.dumps(
        {
            "format": CACHE_FORMAT_VERSION,
            "source": source,
            "frame_quarter_length": frame_quarter_length,
            "limit": limit,
            **extra_key,
        },
        sort_keys=True,
    )
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    safe_label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    cache_path = _cache_root(cache_dir) / f"music-{safe_label}-{digest}.npz"
    cached = _read_cache(cache_path, key)
    if cached is not None:
        return cached

    entries = _assign_splits(list_files(), limit)
    result = {split: [] for split in SPLITS}
    names = {split: [] for split in SPLITS}
    dropped = 0
    bar = _progress_bar(len(entries), f"Parsing {label}", progress)
    try:
        for piece_id, path, split in entries:
            try:
                scores = _parse_file(path)
            except Exception as err:  # music21 raises anything on a bad file
                warnings.warn(
                    f"load_music: skipped {path}: music21 could not parse it "
                    f"({type(err).__name__}: {err}).",
                    stacklevel=3,
                )
                bar.update(1)
                continue
            for index, score in enumerate(scores):
                try:
                    roll, lost = _score_to_roll(score, frame_quarter_length)
                except Exception as err:
                    warnings.warn(
                        f"load_music: skipped tune {index} of {path}: "
                        f"{type(err).__name__}: {err}.",
                        stacklevel=3,
                    )
                    continue
                dropped += lost
                if roll.any():
                    result[split].append(roll)
                    suffix = f"#{index}" if len(scores) > 1 else ""
                    names[split].append(piece_id + suffix)
            bar.update(1)
    finally:
        bar.close()
    if not any(result.values()):
        raise ValueError(
            f"load_music: {source.split(':', 1)[1]!r} gave no piece with notes "
            f"out of {len(entries)} file(s); expected at least one readable "
            "score."
        )
    if dropped:
        warnings.warn(
            f"load_music: dropped {dropped} note(s) of {label} that fell "
            f"outside the 88 piano keys (MIDI {LOWEST_NOTE}..{HIGHEST_NOTE}) "
            "after transposition to C.",
            stacklevel=3,
        )
    _write_cache(cache_path, key, result, names)
    return result


class _NoProgress:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total, description, progress):
    if not progress:
        return _NoProgress()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, desc=description, unit="file")


# ---------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------


def _cache_root(cache_dir):
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise ValueError(
                "load_music: cache_dir must be a path or None; received "
                f"{cache_dir!r}."
            )
        return pathlib.Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    return pathlib.Path.home() / ".cache" / "keras_deeprnn"


def _read_cache(path, key):
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                raise ValueError("it was built from another source")
            result = {}
            for split in SPLITS:
                lengths = stored[f"{split}_lengths"].astype(np.int64)
                frames = stored[f"{split}_frames"]
                if frames.shape[1:] != (NUM_NOTES,) or lengths.sum() != len(frames):
                    raise ValueError(f"the {split} arrays are inconsistent")
                frames = frames.astype(np.float32)
                result[split] = [frames[a:b] for a, b in _bounds(lengths)]
    except Exception as err:  # a damaged zip fails in many ways; all mean rebuild
        warnings.warn(
            f"load_music: the cache file {path} is unreadable "
            f"({type(err).__name__}: {err}); rebuilding it.",
            stacklevel=4,
        )
        return None
    return result


def _bounds(lengths):
    ends = np.cumsum(lengths)
    return zip(ends - lengths, ends)


def _write_cache(path, key, result, names):
    arrays = {"key": np.array(key)}
    for split in SPLITS:
        rolls = result[split]
        arrays[f"{split}_lengths"] = np.array([len(r) for r in rolls], np.int64)
        arrays[f"{split}_frames"] = (
            np.concatenate(rolls).astype(np.uint8)
            if rolls
            else np.zeros((0, NUM_NOTES), np.uint8)
        )
        arrays[f"{split}_names"] = np.array(names[split], dtype=str)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp"
        )
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        # mkstemp makes the file private; a shared cache must stay readable.
        os.chmod(temporary, 0o644)
        # Readers see either the old file or the complete new one.
        os.replace(temporary, path)
    except OSError as err:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        warnings.warn(
            f"load_music: could not write the cache file {path} ({err}); "
            "the data will be parsed again next time.",
            stacklevel=4,
        )


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _check_limit(limit):
    if limit is not None:
        _check_positive_int("load_music", "limit", limit)
