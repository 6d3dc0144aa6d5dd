"""Polyphonic music as piano rolls, the paper's first task.

A piece is a float32 NumPy array of shape `(frames, 88)`: column `k` is the
piano key with MIDI number `21 + k` (A0 .. C8) and holds 1 while that key
sounds at the start of the frame, 0 otherwise. A model predicts every frame
from the frames before it with 88 independent sigmoids, the first from a
silent start frame (`pad_batch`, `piano_roll_batches`);
`keras_deeprnn.metrics.frame_nll` scores it.

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
* The same four sets in their MATLAB form (`JSB_Chorales.mat`,
  `Nottingham.mat`, `MuseData.mat`, `Piano_midi.mat`: `traindata`,
  `validdata`, `testdata`, each a cell array of `(frames, 88)` rolls), read
  with `scipy.io.loadmat` after checking their layout
  (`keras_deeprnn.data.matlab`).
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

import os
import pathlib

from keras_deeprnn import _checks
from keras_deeprnn.data import catalogue
from keras_deeprnn.data import matlab
from keras_deeprnn.data import pickles
from keras_deeprnn.data import rolls
from keras_deeprnn.data import scores

# The public names users read here before the module was split by job, and
# that the guides and notebooks show; each is defined, and documented, in the
# module named.
from keras_deeprnn.data.batching import pad_batch
from keras_deeprnn.data.batching import piano_roll_batches
from keras_deeprnn.data.catalogue import FRAME_QUARTER_LENGTHS
from keras_deeprnn.data.catalogue import MUSIC_DATASETS
from keras_deeprnn.data.writers import plot_piano_roll

__all__ = [
    "FRAME_QUARTER_LENGTHS",
    "MUSIC_DATASETS",
    "load_music",
    "pad_batch",
    "piano_roll_batches",
    "plot_piano_roll",
]


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
            Boulanger-Lewandowski `.pickle` or `.mat` file, or a folder of `.mid`, `.midi`,
            `.mxl`, `.musicxml`, `.xml`, `.abc` or `.krn` files (searched
            recursively; where any of `train/`, `valid/`, `test/` exists,
            only those subfolders are read, each giving its split).
        cache_dir: folder for the built rolls. Defaults to
            `$KERAS_DEEPRNN_CACHE`, else `~/.cache/keras_deeprnn`. Pickles
            and `.mat` files load fast and are not cached.
        progress: show a progress bar while parsing scores.
        limit: parse at most this many files (for quick runs), still split
            as described above. It caps each split instead in a folder with
            split subfolders, and for a pickle or `.mat` file keeps the
            first `limit` pieces of each split.
        frame_quarter_length: frame length in quarter notes. Defaults to
            `FRAME_QUARTER_LENGTHS[name]` for a built-in name and to 0.5 (an
            eighth note) for a folder. The frames of a pickle or `.mat`
            file are fixed, so it must stay `None` there.

    Returns:
        `{"train": [...], "valid": [...], "test": [...]}`, each a list of
        float32 arrays of shape `(frames, 88)` holding 0 and 1.

    Raises:
        ValueError: unknown name or missing path, bad arguments, a pickle
            that is not in the expected format or references any global, a
            `.mat` file of another layout, a source that yields no piece.
        ImportError: music21 (scores) or SciPy (`.mat` files) is needed and
            not installed.

    Example:

    >>> data = load_music("jsb_chorales", limit=6)  # doctest: +SKIP
    >>> [len(data[split]) for split in ("train", "valid", "test")]  # doctest: +SKIP
    [4, 1, 1]
    >>> data["train"][0].shape  # doctest: +SKIP
    (50, 88)
    """
    _check_limit(limit)
    if frame_quarter_length is not None:
        frame_quarter_length = rolls._check_frame_quarter_length(frame_quarter_length)

    if isinstance(name_or_path, str) and name_or_path in MUSIC_DATASETS:
        name = name_or_path
        quarter = frame_quarter_length or FRAME_QUARTER_LENGTHS[name]
        return scores._load_scores(
            source=f"builtin:{name}",
            label=name,
            list_files=lambda: catalogue._builtin_files(name),
            extra_key={"music21": rolls._import_music21().__version__},
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
    suffix = path.suffix.lower()
    if path.is_file() and suffix in pickles.PICKLE_EXTENSIONS + matlab.MATLAB_EXTENSIONS:
        if frame_quarter_length is not None:
            raise ValueError(
                f"load_music: frame_quarter_length must be None for a {suffix} "
                "file, whose frames are already sampled; received "
                f"frame_quarter_length={frame_quarter_length!r} with {path}."
            )
        if suffix in matlab.MATLAB_EXTENSIONS:
            return matlab.load_matlab(path, limit=limit)
        return pickles._load_pickle(path, limit=limit)
    if path.is_dir():
        root = path.resolve()
        files = catalogue._folder_files(root)
        quarter = frame_quarter_length or rolls.DEFAULT_FRAME_QUARTER_LENGTH
        return scores._load_scores(
            source=f"folder:{root}",
            label=root.name or "folder",
            list_files=lambda: files,
            extra_key={"files": catalogue._fingerprint(root, files)},
            frame_quarter_length=quarter,
            limit=limit,
            cache_dir=cache_dir,
            progress=progress,
        )
    if path.is_file():
        raise ValueError(
            f"load_music: name_or_path={str(name_or_path)!r} is a file but "
            "neither a pickle nor a MATLAB file; expected a file ending in "
            f"{pickles.PICKLE_EXTENSIONS + matlab.MATLAB_EXTENSIONS} or a folder of score files."
        )
    raise ValueError(
        f"load_music: name_or_path={name_or_path!r} is neither a built-in "
        f"data set ({', '.join(sorted(MUSIC_DATASETS))}) nor an existing "
        "path; expected one of those names, the path of a "
        "Boulanger-Lewandowski .pickle or .mat file, or a folder of MIDI/MusicXML/ABC/"
        "Humdrum files."
    )


def _check_limit(limit):
    if limit is not None:
        _checks.positive_int("limit", limit)
