"""A resumed run that falls back to an earlier epoch says so once, in one
line at the command line, calling a damaged file damaged."""

import sys
import warnings

import pytest

from keras_deeprnn import _console
from keras_deeprnn import run_folder
from keras_deeprnn import training

from small_runs import config
from small_runs import write_data


def test_a_fallback_is_one_warning_naming_the_epoch_and_every_problem():
    with pytest.warns(UserWarning) as warned:
        run_folder.warn_resume_fallback("runs/a", 3, "state.previous.json",
                                        ["the checkpoint 'x' cannot be read (it is damaged: E)",
                                         "'y' is damaged"])
    assert [str(w.message) for w in warned] == [
        "Resuming 'runs/a' from epoch 3 (state.previous.json) instead: the checkpoint 'x' "
        "cannot be read (it is damaged: E); 'y' is damaged."]
    assert warned[0].filename == __file__  # points at its caller, not at run_folder


def test_warnings_at_the_command_line_are_one_line_each(capsys):
    before = warnings.showwarning
    with _console.one_line_warnings("keras-deeprnn train"):
        warnings.warn("first part,\n  second part", UserWarning)
    assert warnings.showwarning is before
    out, err = capsys.readouterr()
    assert (out, err) == ("", "keras-deeprnn train: warning: first part, second part\n")


def test_a_damaged_checkpoint_is_reported_once(tmp_path, capfd):
    data = write_data(tmp_path / "set.pickle")
    run_dir = tmp_path / "run"
    training.train(config(run_dir, data))
    (run_dir / "checkpoint-epoch002.keras").write_bytes(b"not a zip file")
    with _console.one_line_warnings("keras-deeprnn train"):
        training.train(config(run_dir, data, epochs=3, progress=True))
    out, err = capfd.readouterr()
    text = out + err
    assert "File not found" not in text
    assert text.count("checkpoint-epoch002.keras' cannot be read (it is damaged") == 1, text
    assert "keras-deeprnn train: warning: Resuming" in err
    assert sys.stderr is not None
