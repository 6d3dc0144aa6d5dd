"""The one atomic writer: whole files or none, temporaries that say whose they are."""

import os
import pathlib
import stat
import time

import pytest

from keras_deeprnn import _files


pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

@pytest.mark.parametrize("name", ["state.json", "best-epoch003.weights.h5", "model.keras"])
def test_the_file_appears_whole_and_the_temporary_keeps_its_format(tmp_path, name):
    seen = []

    def save(temporary):
        seen.append(temporary)
        assert not (tmp_path / name).exists()  # nothing at the target while writing
        pathlib.Path(temporary).write_text("whole")

    assert _files.write_atomically(tmp_path / name, save) == tmp_path / name
    assert (tmp_path / name).read_text() == "whole"
    assert os.listdir(tmp_path) == [name]
    (temporary,) = seen
    suffix = ".weights.h5" if name.endswith(".weights.h5") else pathlib.Path(name).suffix
    assert temporary.endswith(".tmp" + suffix) and pathlib.Path(temporary).parent == tmp_path
    assert _files.TEMPORARY.match(pathlib.Path(temporary).name)["name"] == name


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    (tmp_path / "table.md").write_text("old")

    def save(temporary):
        pathlib.Path(temporary).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        _files.write_atomically(tmp_path / "table.md", save)
    assert os.listdir(tmp_path) == ["table.md"]
    assert (tmp_path / "table.md").read_text() == "old"


def test_a_failed_save_reports_its_own_error_not_the_cleanup(tmp_path, monkeypatch):
    def save(temporary):
        pathlib.Path(temporary).write_text("partial")
        raise OSError(28, "No space left on device")

    def unlink(self, missing_ok=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    with pytest.raises(OSError, match="No space left on device"):
        _files.write_atomically(tmp_path / "file.json", save)


def test_the_file_is_on_disk_before_the_move_and_the_folder_after(tmp_path, monkeypatch):
    # Without the first flush a crash can leave the renamed file empty.
    events = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(descriptor):
        events.append(("fsync", os.fstat(descriptor).st_ino))
        fsync(descriptor)

    def recording_replace(source, target):
        events.append(("replace", os.stat(source).st_ino))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    target = _files.write_text(tmp_path / "state.json", "{}")
    written = target.stat().st_ino
    expected = [("fsync", written), ("replace", written)]
    if os.name == "posix":
        expected.append(("fsync", tmp_path.stat().st_ino))
    assert events == expected


def test_a_failed_flush_keeps_the_old_file_and_the_folders_is_best_effort(tmp_path,
                                                                          monkeypatch):
    (tmp_path / "state.json").write_text("old")
    fsync = os.fsync

    def failing(descriptor):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        _files.write_text(tmp_path / "state.json", "new")
    assert os.listdir(tmp_path) == ["state.json"]
    assert (tmp_path / "state.json").read_text() == "old"

    def failing_on_folders(descriptor):
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(22, "Invalid argument")
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_on_folders)
    _files.write_text(tmp_path / "state.json", "new")
    assert (tmp_path / "state.json").read_text() == "new"


def test_write_text_is_utf8(tmp_path):
    _files.write_text(tmp_path / "a.txt", "Bach – ♩")
    assert (tmp_path / "a.txt").read_bytes() == "Bach – ♩".encode("utf-8")


def test_stale_temporaries_go_by_name_and_age(tmp_path):
    old = time.time() - 2 * 3600
    stale = tmp_path / ".music.npz.999999-0123abcd.tmp.npz"
    fresh = tmp_path / ".music.npz.999998-4567cdef.tmp.npz"
    other = tmp_path / ".state.json.999999-89abcdef.tmp.json"
    mine = tmp_path / ".notes.tmp"
    for path in (stale, fresh, other, mine):
        path.write_bytes(b"half a file")
    for path in (stale, other, mine):
        os.utime(path, (old, old))
    assert _files.remove_stale_temporaries(tmp_path, of="music.npz", older_than=3600) == 1
    assert not stale.exists() and fresh.exists() and other.exists() and mine.exists()
    assert _files.remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp"]
