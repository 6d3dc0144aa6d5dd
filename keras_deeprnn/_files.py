"""Files written in one step: a reader sees the old file or the whole new one.

`write_atomically` has `save` write a temporary beside the target, flushes it
to disk and moves it into place with `os.replace`. A writer killed mid-write
leaves only a temporary, which `remove_stale_temporaries` finds by its name.

The package writes these files through it: a run dir's `state.json`,
`state.previous.json`, `result.json`, checkpoints, best weights,
`model.keras` and `learning_curve.png`; the data caches; the pieces and
figures of `keras_deeprnn.data.writers` and generated text; a search's
reports and plots and the chief's ready file; and, through the tuners of
`keras_deeprnn.tuning.TUNERS`, KerasTuner's files of a search: its
`oracle.json`, the tuner's `<tuner id>.json` and, in each `trial_<id>/`,
`trial.json`, `checkpoint.weights.h5` and `build_config.json`. A preset
folder (`models.hub`) is written whole beside its target and then moved
into place.

Two files grow by appended lines instead:

- a run dir's `history.csv` (Keras's `CSVLogger`, a row per epoch). On
  resume it is cut back, atomically, to the epochs `state.json` records, so
  the row of an epoch that no checkpoint backs, whole or torn, is dropped.
- a search's `tuner_logs/<tuner id>.jsonl` (a line per trial start and
  end). It is not repaired; its reader skips a line that is not JSON.

Written in place, outside this module: TensorBoard's event files, a run
dir's `.lock` (which holds only the pid of its holder) and the process logs
of `tuning.launch_local`. Scripts and benchmarks have their own writers.

```python
write_text("results/table.md", markdown)
write_atomically("runs/m.keras", model.save)             # any save(path) callable
write_atomically("plot.png", lambda path: figure.savefig(path, format="png"))
```
"""

import os
import pathlib
import re
import time
import uuid

# ".NAME.PID-HEX.tmpSUFFIX": the file it will become, its writer, and the
# suffix that Keras, NumPy and matplotlib read the format from.
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.\d+-[0-9a-f]{8}\.tmp")


def temporary_for(path):
    """A temporary's path for `path`: in its folder, keeping its suffix
    (`.weights.h5` whole, which Keras asks for)."""
    path = pathlib.Path(path)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    return path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{suffix}"


def write_atomically(path, save):
    """`save(temporary)` with a temporary path (a `str`), then move it to `path`.

    The temporary is flushed to disk (`os.fsync`) before the move, and on
    POSIX the folder after it. On any error the temporary is removed and the
    error of `save` (or of the flush or the move) is raised, not that of a
    failed clean-up. Returns `path`.

    Example:

    >>> import tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> _ = write_atomically(target, lambda temporary: open(temporary, "w").write("hi"))
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('hi', ['hello.txt'])
    """
    path = pathlib.Path(path)
    temporary = temporary_for(path)
    try:
        save(str(temporary))
        # On disk before the rename: after a crash the target is then the
        # old file or the whole new one, never a renamed empty file whose
        # data the system had not written yet.
        _sync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _sync_folder(path.parent)
    return path


def _sync_file(path):
    # Windows flushes only a handle open for writing.
    descriptor = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_folder(folder):
    """Record the rename itself (POSIX); best-effort, as some file systems
    cannot sync a folder and Windows cannot open one."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_text(path, text, encoding="utf-8"):
    """`text` into `path`, atomically (`write_atomically`)."""
    return write_atomically(
        path, lambda temporary: pathlib.Path(temporary).write_text(text, encoding=encoding))


def remove_stale_temporaries(folder, *, of=None, older_than=0.0):
    """Delete the temporaries in `folder` that writers killed mid-write left.

    Args:
        folder: where to look.
        of: only the temporaries of this file name (default: of any file).
        older_than: only those not modified for this many seconds; a younger
            one may be another process's write in progress.

    Returns:
        The number deleted.
    """
    now, removed = time.time(), 0
    for path in pathlib.Path(folder).iterdir():
        match = TEMPORARY.match(path.name)
        if match is None or (of is not None and match["name"] != of):
            continue
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than:
                path.unlink()
                removed += 1
        except OSError:
            pass  # gone already, or not ours to delete
    return removed
