"""A run dir is input from whoever made it: what `train` and `evaluate` trust in it.

A run dir may come from someone else (a colleague's results, a download),
so its files are read as untrusted input:

* the file names a state file records (`checkpoint`, `best_weights`) must be
  the plain names `train` writes (`checkpoint-epoch003.keras`,
  `best-epoch002.weights.h5`): no folder, no `..`, no absolute path, so
  nothing outside the run dir is read or deleted;
* no file of the run is a symbolic link: links are refused with an error
  naming them, never followed, so a link cannot make `train` truncate,
  overwrite or leak another file;
* `train` only writes into a folder that is new, empty or a run's.

A run also records its data set (`data_record`): the path as given, the
resolved path and a fingerprint of the content, so a run resumed or scored
from another folder, or after the data changed, is caught.

Example:

```python
checkpoint = member("runs/srnn", state["checkpoint"], "checkpoint")
record = data_record("data/JSB_Chorales.pickle")   # {"dataset", "path", "sha256"}
```
"""

import errno
import hashlib
import os
import pathlib
import re
import warnings

# The names `train` gives the files a state file records.
NAME_PATTERNS = {
    "checkpoint": re.compile(r"^checkpoint-epoch\d{3,}\.keras$"),
    "best_weights": re.compile(r"^best-epoch\d{3,}\.weights\.h5$"),
}
# What a run dir holds besides its checkpoints and temporaries (the files
# of `keras_deeprnn.training`'s table); a folder holding anything else is
# not a run and `train` will not write there.
RUN_FILES = ("state.json", "state.previous.json", "history.csv", "model.keras", "result.json",
             "learning_curve.png", ".lock", "tensorboard", "generated", "sample.mid",
             "sample.musicxml", "sample.png", "sample.txt")
RUN_MARKERS = ("state.json", "state.previous.json", ".lock")
_TEMPORARY = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp")
_CHUNK = 1 << 20


def member(run_dir, name, kind):
    """`run_dir / name` for a file name read from a run's state (`kind` is
    `"checkpoint"` or `"best_weights"`); a `ValueError` for any other name."""
    if not isinstance(name, str) or not NAME_PATTERNS[kind].match(name):
        raise ValueError(
            f"the state names {kind}={name!r}, which is not a file `train` writes "
            f"(expected a plain name like {_EXAMPLES[kind]!r} inside the run dir)")
    return refuse_link(pathlib.Path(run_dir) / name)


_EXAMPLES = {"checkpoint": "checkpoint-epoch003.keras",
             "best_weights": "best-epoch002.weights.h5"}


def is_member_name(name, kind):
    return isinstance(name, str) and bool(NAME_PATTERNS[kind].match(name))


def refuse_link(path):
    """`path`, unless it is a symbolic link: then a `ValueError` naming it."""
    path = pathlib.Path(path)
    if path.is_symlink():
        raise ValueError(
            f"'{path}' is a symbolic link (to '{os.readlink(path)}'). A run dir's files "
            "must be plain files: links are not followed, so a run dir cannot make "
            "`train` or `evaluate` read or write outside it. Replace the link by the "
            "file itself, or use another run dir.")
    return path


def open_no_follow(path, flags, mode=0o644):
    """`os.open` that refuses a symbolic link (`ValueError`) instead of following it."""
    path = refuse_link(path)
    try:
        return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP:  # made a link between the check and the open
            refuse_link(path)
        raise


def read_text(path):
    """The text of `path`, read without following a link."""
    with os.fdopen(open_no_follow(path, os.O_RDONLY), encoding="utf-8") as stream:
        return stream.read()


def check_can_hold_run(run_dir):
    """A `ValueError` unless `run_dir` is missing, empty or holds a run.

    A folder with other files (a user's own `model.keras`, `result.json` or
    `history.csv`) is not a run, and `train` would overwrite them.
    """
    run_dir = pathlib.Path(run_dir)
    refuse_link(run_dir / ".lock")
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ValueError(f"`run_dir` must be a folder. Received: run_dir='{run_dir}', "
                         "which is a file")
    names = {path.name for path in run_dir.iterdir()}
    # A temporary of ours is a run killed mid-save, before its first state.
    if not names or names & set(RUN_MARKERS) or any(map(_TEMPORARY.match, names)):
        return
    foreign = sorted(names)
    raise ValueError(
        f"`run_dir` '{run_dir}' exists and is not a run (it holds no state.json or "
        f".lock, but holds {', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
        "`train` would overwrite those files. Expected a new or empty folder, or the "
        "run dir of an earlier `train`.")


def data_record(dataset, builtin=()):
    """What identifies a data set: `{"dataset", "path", "sha256"}`.

    `dataset` is the name or path as given; `path` the resolved path (`None`
    for a built-in name in `builtin`); `sha256` a digest of the file's bytes,
    or of every file's relative path and bytes in a folder, or
    `"builtin:NAME"` for a built-in set (built from the package's own
    sources, the key its cache is stored under).
    """
    text = str(dataset)
    if text in builtin:
        return {"dataset": text, "path": None, "sha256": f"builtin:{text}"}
    path = pathlib.Path(text).expanduser()
    if not path.exists():
        return {"dataset": text, "path": None, "sha256": None}
    path = path.resolve()
    return {"dataset": text, "path": str(path), "sha256": fingerprint(path)}


def fingerprint(path):
    """sha256 of a file, or of a folder's files (relative paths and bytes, sorted)."""
    path = pathlib.Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        _hash_file(digest, path)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
        _hash_file(digest, file)
    return digest.hexdigest()


def _hash_file(digest, path):
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)


def same_data(saved, current):
    """Whether two `data_record`s name the same content (unknown counts as same)."""
    if not saved or saved.get("sha256") is None or current.get("sha256") is None:
        return True
    return saved["sha256"] == current["sha256"]


def warn_resume_fallback(run_dir, epoch, source, problems, stacklevel=1):
    """Say once that a resumed run falls back to an earlier epoch, and why.

    One `UserWarning` and nothing else: the command line shows warnings
    (one line each, see `keras_deeprnn._console.one_line_warnings`), so a
    printed copy would say it twice. `stacklevel` counts as `warnings.warn`'s
    would at the call: 1 points at the line calling this function.

    Example:

    ```python
    warn_resume_fallback("runs/srnn", 3, "state.previous.json",
                         ["the checkpoint 'runs/srnn/checkpoint-epoch004.keras' cannot be "
                          "read (it is damaged: BadZipFile)"])
    # UserWarning: Resuming 'runs/srnn' from epoch 3 (state.previous.json) instead: the ...
    ```
    """
    warnings.warn(f"Resuming '{run_dir}' from epoch {epoch} ({source}) instead: "
                  + "; ".join(problems) + ".", UserWarning, stacklevel=stacklevel + 1)
