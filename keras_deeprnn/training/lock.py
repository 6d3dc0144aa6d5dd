"""`RunLock`: one `train` at a time in a run dir (and one search in a folder)."""

import errno
import os
import pathlib

if os.name == "nt":
    import msvcrt
else:
    import fcntl

from keras_deeprnn import run_folder
from keras_deeprnn.training.records import LOCK_FILE


class RunDirBusy(RuntimeError):
    """Another process is training in the same run dir."""


class RunLock:
    """An exclusive lock on a run dir for one `train` at a time.

    The operating system drops the lock when the process ends, however it
    ends, so a killed run never leaves its run dir locked.
    """

    def __init__(self, run_dir, *, lock_file=LOCK_FILE, command="train"):
        self.path = pathlib.Path(run_dir) / lock_file
        self.command = command
        self.stream = None

    def __enter__(self):
        descriptor = run_folder.open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
        self.stream = os.fdopen(descriptor, "r+", encoding="utf-8")
        try:
            _lock_file(self.stream)
        except OSError as err:
            if err.errno not in _LOCK_HELD:
                self.stream.close()
                raise
            self.stream.seek(0)
            holder = self.stream.read().strip() or "unknown"
            self.stream.close()
            where = ("training in the run dir" if self.command == "train"
                     else f"running in '{self.path}' for the folder")
            raise RunDirBusy(
                f"Another `{self.command}` (process {holder}) is {where} "
                f"'{self.path.parent}'. Wait for it to finish, or use another "
                f"{'run dir' if self.command == 'train' else 'directory or project name'}."
            ) from None
        self.stream.seek(0)
        self.stream.truncate()
        self.stream.write(str(os.getpid()))
        self.stream.flush()
        return self

    def __exit__(self, *exc):
        _unlock_file(self.stream)
        self.stream.close()
        return False


# What a lock held by another process reads as: flock's EWOULDBLOCK (EAGAIN),
# msvcrt's EACCES or EDEADLOCK.
_LOCK_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


def _lock_file(stream):
    """An exclusive, non-blocking lock on an open file; `OSError` if held."""
    if os.name == "nt":
        stream.seek(0)
        msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(stream):
    if os.name == "nt":
        stream.seek(0)
        msvcrt.locking(stream.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
