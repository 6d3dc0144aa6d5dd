"""Built piano rolls cached as `.npz` files, since parsing scores is slow.

A cache file holds the rolls of the three splits (as uint8 frames and
lengths), the piece names, the warnings its build gave (files or tunes
skipped, notes dropped; given again on every read, since the data they
describe is what the cache returns) and the key it was built from (source,
frame length, limit, file sizes and times, music21 version). A file that is
unreadable or was built from another key is rebuilt with a warning. Files
are written to a temporary name and renamed, so readers see the old file or
the complete new one; temporaries left by a writer killed mid-write are
deleted by the next write of that file once they are an hour old. The
folder is `cache_dir`, else `$KERAS_DEEPRNN_CACHE`, else
`~/.cache/keras_deeprnn`.
"""

import os
import pathlib
import warnings

import numpy as np

from keras_deeprnn import _files
from keras_deeprnn.data.rolls import NUM_NOTES
from keras_deeprnn.data.splits import SPLITS

CACHE_ENV = "KERAS_DEEPRNN_CACHE"
# 2: the build's warnings are stored with the rolls.
CACHE_FORMAT_VERSION = 2
# Writing a cache file takes seconds; an hour-old temporary has no writer.
STALE_TEMPORARY_SECONDS = 3600


def _cache_root(cache_dir):
    if cache_dir is not None:
        if not isinstance(cache_dir, (str, os.PathLike)):
            raise ValueError(
                "`cache_dir` must be a path (str or os.PathLike) or None. "
                f"Received: cache_dir={cache_dir!r}"
            )
        return pathlib.Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV]).expanduser()
    return pathlib.Path.home() / ".cache" / "keras_deeprnn"


def _read_cache(path, key):
    """`(result, notes)`: the rolls of each split and the warnings of the
    build; `None` for a missing file, or, with a warning, an unreadable one."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                raise ValueError("it was built from another source")
            notes = [str(note) for note in stored["notes"]]
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
    return result, notes


def _bounds(lengths):
    ends = np.cumsum(lengths)
    return zip(ends - lengths, ends)


def _write_cache(path, key, result, names, notes=()):
    arrays = {"key": np.array(key), "notes": np.array(list(notes), dtype=str)}
    for split in SPLITS:
        rolls = result[split]
        arrays[f"{split}_lengths"] = np.array([len(r) for r in rolls], np.int64)
        arrays[f"{split}_frames"] = (
            np.concatenate(rolls).astype(np.uint8)
            if rolls
            else np.zeros((0, NUM_NOTES), np.uint8)
        )
        arrays[f"{split}_names"] = np.array(names[split], dtype=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _files.remove_stale_temporaries(path.parent, of=path.name,
                                        older_than=STALE_TEMPORARY_SECONDS)
        _files.write_atomically(path, lambda temporary: np.savez_compressed(temporary, **arrays))
    except OSError as err:
        warnings.warn(
            f"load_music: could not write the cache file {path} ({err}); "
            "the data will be parsed again next time.",
            stacklevel=4,
        )
