"""Boulanger-Lewandowski piano rolls in the MATLAB form, read with SciPy.

Many users download the four polyphonic-music sets of Boulanger-Lewandowski
et al. (2012) as MATLAB files (`JSB_Chorales.mat`, `Nottingham.mat`,
`MuseData.mat`, `Piano_midi.mat`, as the TCN benchmark redistributes them).
Each holds three variables, `traindata`, `validdata` and `testdata`: a
`1 x N` cell array of piano rolls, each a `(frames, 88)` array of 0 and 1
(usually uint8) whose column `k` is MIDI note `21 + k`.

`scipy.io.loadmat` reads a MATLAB v5 file without running anything from it
(unlike a pickle), but it would build whatever the file describes: structs,
objects, text, sparse matrices, any number of cells. So the file is first
listed with `scipy.io.whosmat`, which reads only the variables' headers, and
refused unless the three split variables are cell arrays of at most
`MAX_PIECES` pieces; only those three are then loaded, and each piece must
be a 2-D numeric array of 88 columns holding 0 and 1, with at most
`pickles.MAX_FRAMES` frames in all (the bound the pickles have; counted from
the pieces' shapes before any piece's values are read). Anything else is
refused with a message that names the file and what was expected.

Reference: Boulanger-Lewandowski, Bengio and Vincent, "Modeling temporal
dependencies in high-dimensional sequences: application to polyphonic music
generation and transcription", ICML 2012.
"""

import numpy as np

from keras_deeprnn.data.pickles import MAX_FRAMES
from keras_deeprnn.data.rolls import NUM_NOTES

MATLAB_EXTENSIONS = (".mat",)
# The file's variable of each split.
MATLAB_SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}
# The largest published set has under 700 pieces in a split.
MAX_PIECES = 100_000


def load_matlab(path, *, limit=None):
    """`{"train": [...], "valid": [...], "test": [...]}` from a `.mat` file.

    Args:
        path: a `pathlib.Path` to a MATLAB v5 file holding `traindata`,
            `validdata` and `testdata` (see the module's docstring).
        limit: keep the first `limit` pieces of each split.

    Returns:
        Lists of float32 arrays of shape `(frames, 88)` holding 0 and 1.

    Raises:
        ValueError: a file that is not of this layout; the message names
            the file, what was found and what was expected.
        ImportError: SciPy is not installed.
    """
    try:
        from scipy import io as scipy_io
    except ImportError as err:
        raise ImportError(
            f"load_music: reading {path} needs SciPy (`pip install scipy`, or the "
            "`music` extra: `pip install keras-deeprnn[music]`)."
        ) from err
    expected = (
        f"expected a MATLAB v5 file with the variables {', '.join(MATLAB_SPLITS.values())}, "
        f"each a cell array of (frames, {NUM_NOTES}) piano rolls of 0 and 1"
    )
    try:
        listing = scipy_io.whosmat(str(path))
    except NotImplementedError:
        raise ValueError(
            f"load_music: {path} is a MATLAB v7.3 (HDF5) file, which SciPy does not "
            f"read; {expected}. Save it again with MATLAB's `save -v7`."
        ) from None
    except Exception as err:  # SciPy raises many kinds on a file that is not .mat
        raise ValueError(
            f"load_music: could not read {path} as a MATLAB file "
            f"({type(err).__name__}: {_shorten(str(err))}); {expected}."
        ) from None
    variables = {name: (tuple(shape), kind) for name, shape, kind in listing}
    for split, name in MATLAB_SPLITS.items():
        if name not in variables:
            found = ", ".join(sorted(variables)[:10]) or "none"
            raise ValueError(
                f"load_music: {path} has no variable {name!r} (the {split} split); "
                f"found: {found}; {expected}."
            )
        shape, kind = variables[name]
        if kind != "cell" or len(shape) != 2 or min(shape) > 1 or _size(shape) > MAX_PIECES:
            raise ValueError(
                f"load_music: {path}: {name!r} is a {kind} array of shape {shape}; "
                f"expected a 1 x N cell array of at most {MAX_PIECES} pieces."
            )
    try:
        contents = scipy_io.loadmat(
            str(path), variable_names=list(MATLAB_SPLITS.values()),
            mat_dtype=False, squeeze_me=False, struct_as_record=True,
        )
    except Exception as err:
        raise ValueError(
            f"load_music: could not read {path} as a MATLAB file "
            f"({type(err).__name__}: {_shorten(str(err))}); {expected}."
        ) from None
    chosen = {}
    for split, name in MATLAB_SPLITS.items():
        cells = contents[name]
        if not isinstance(cells, np.ndarray) or cells.dtype != object:
            raise ValueError(
                f"load_music: {path}: {name!r} did not load as a cell array; {expected}."
            )
        pieces = list(cells.reshape(-1))
        chosen[split] = pieces[:limit] if limit else pieces
    # The size bound comes first, from the pieces' shapes alone: checking a
    # piece's values and copying it to float32 costs time and memory in
    # proportion to its frames, which a small compressed file can make huge.
    frames = sum(_frames(piece) for pieces in chosen.values() for piece in pieces)
    if frames > MAX_FRAMES:
        raise ValueError(
            f"load_music: {path} holds more than {MAX_FRAMES:,} frames ({frames:,} in "
            "its pieces); expected a piano-roll data set of at most that size."
        )
    result = {}
    for split, pieces in chosen.items():
        name = MATLAB_SPLITS[split]
        result[split] = [_check_roll(piece, f"{path}: {name}{{{index + 1}}}")
                         for index, piece in enumerate(pieces)]
    if not any(result.values()):
        raise ValueError(f"load_music: {path} holds no piece in any split.")
    return result


def _frames(piece):
    """The frames `piece` adds to a data set: its rows if it has the shape of
    a roll, else 0 (`_check_roll` refuses it, or it is empty)."""
    if isinstance(piece, np.ndarray) and piece.ndim == 2 and piece.shape[1] == NUM_NOTES:
        return int(piece.shape[0])
    return 0


def _check_roll(piece, where):
    """`piece` as a float32 `(frames, 88)` roll of 0 and 1, or a clear error."""
    numeric = (
        isinstance(piece, np.ndarray)
        and piece.dtype != object
        and (np.issubdtype(piece.dtype, np.integer) or np.issubdtype(piece.dtype, np.floating)
             or piece.dtype == bool)
    )
    if not numeric:
        kind = f"a {type(piece).__name__}"
        if isinstance(piece, np.ndarray):
            kind = f"an array of dtype {piece.dtype}"
        raise ValueError(
            f"load_music: {where} is {kind}; expected a numeric (frames, {NUM_NOTES}) "
            "piano roll of 0 and 1."
        )
    if piece.ndim != 2 or piece.shape[1] != NUM_NOTES:
        if piece.size == 0:
            return np.zeros((0, NUM_NOTES), np.float32)
        raise ValueError(
            f"load_music: {where} has shape {piece.shape}; expected (frames, {NUM_NOTES}) "
            f"(one column per piano key, MIDI 21..108)."
        )
    values = np.unique(piece)
    if not np.isin(values, (0, 1)).all():
        odd = [v for v in values.tolist() if v not in (0, 1)][:3]
        raise ValueError(
            f"load_music: {where} holds the values {odd}; expected only 0 and 1 "
            "(a key is on or off)."
        )
    return piece.astype(np.float32)


def _size(shape):
    size = 1
    for extent in shape:
        size *= int(extent)
    return size


def _shorten(text, limit=80):
    return text if len(text) <= limit else text[: limit - 3] + "..."
