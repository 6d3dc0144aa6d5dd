"""The files of a run dir: their names, and JSON and CSV read and written safely.

Every file is written to a temporary name and moved into place
(`keras_deeprnn._files`); JSON is strict (NaN and infinity are written as
`null`), and what is read back is untrusted input (`keras_deeprnn.run_folder`).
"""

import json
import math

import numpy as np

from keras_deeprnn import _files
from keras_deeprnn import run_folder

STATE_FILE = "state.json"
"""A run's progress after its last finished epoch: what `train` resumes from."""
RESULT_FILE = "result.json"
"""A finished run's test scores and settings: the dict `train` returns."""
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
CURVE_FILE = "learning_curve.png"
"""The train and validation measure per epoch, drawn."""
PREVIOUS_STATE_FILE = "state.previous.json"
LOCK_FILE = ".lock"
TENSORBOARD_DIR = "tensorboard"


def finite_or_none(value):
    """`value` with every NaN and infinity replaced by `None`: strict JSON
    has no spelling for them."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def first_line(err):
    """The first line of an error's message, for a one-line report."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def as_saved(value):
    """`value` as `write_json` writes it and `read_json` reads it back:
    tuples become lists, NaN and infinity `None`. Compare a live value with a
    saved one only after this, or `(0.1, 0.2)` differs from `[0.1, 0.2]`."""
    return json.loads(json.dumps(finite_or_none(value), allow_nan=False))


def write_json(path, value):
    """Write `value` to `path` as strict JSON, atomically."""
    text = json.dumps(finite_or_none(value), indent=2, sort_keys=False, allow_nan=False)

    _files.write_text(path, text + "\n")


def read_json(path, *, missing_ok=True, damaged_ok=False):
    """The JSON object in `path`; `None` if it is missing (with `missing_ok`)
    or damaged (with `damaged_ok`), else a `ValueError` naming the file."""
    path = run_folder.refuse_link(path)
    if not path.exists():
        if missing_ok:
            return None
        raise ValueError(f"'{path}' does not exist.")
    try:
        value = json.loads(run_folder.read_text(path))
    except (ValueError, UnicodeDecodeError) as err:
        if damaged_ok:
            return None
        raise ValueError(f"'{path}' is damaged (not valid JSON: {first_line(err)})") from None
    if not isinstance(value, dict):
        if damaged_ok:
            return None
        raise ValueError(f"'{path}' is damaged (expected a JSON object)")
    return value


def truncate_csv(path, epochs):
    """Keep the header and the first `epochs` rows (an interrupted epoch may
    have logged a row that no checkpoint backs)."""
    if not run_folder.refuse_link(path).exists():
        return
    lines = run_folder.read_text(path).splitlines(keepends=True)
    kept = "".join(lines[: epochs + 1])

    _files.write_text(path, kept)
