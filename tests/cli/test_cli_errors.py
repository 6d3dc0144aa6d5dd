"""Failures a user can act on end in one line and an exit status, not a
traceback, and flags that would do nothing are refused."""

import io
import re
import os
import subprocess
import sys

import pytest

from keras_deeprnn import _backend_check
from keras_deeprnn import cli
from keras_deeprnn import training
from keras_deeprnn.tasks import music as generation

from small_runs import config
from small_runs import write_data


def one_line_error(capsys, argv, status):
    with pytest.raises(SystemExit) as raised:
        cli.main(argv)
    err = capsys.readouterr().err
    assert raised.value.code == status, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_an_unknown_backend_is_one_line_even_for_help():
    env = dict(os.environ, KERAS_BACKEND="nope")
    done = subprocess.run([sys.executable, "-m", "keras_deeprnn", "--help"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("keras-deeprnn: error: KERAS_BACKEND must be one of tensorflow, "
                           "jax or torch. Received: KERAS_BACKEND='nope'\n")
    # A program importing the package is not the command: Keras's own error.
    assert not _backend_check.running_the_command(["/usr/bin/python", "script.py"])
    assert _backend_check.running_the_command(["/venv/bin/keras-deeprnn", "train"])


def test_tensorboard_logs_that_cannot_be_written_are_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text("")
    (run_dir / "tensorboard").write_text("a file where the logs' folder should be")
    err = one_line_error(capsys, ["train", "--run-dir", str(run_dir), "--tensorboard",
                                  "--dataset", str(write_data(tmp_path / "set.pickle")),
                                  "--quiet"], 1)
    assert "tensorboard" in err


def test_running_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch, data_run):
    def too_big(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(generation, "sample_piece", too_big)
    err = one_line_error(capsys, ["generate", str(data_run), "--frames", "100000000"], 1)
    assert "not enough memory" in err and "--frames" in err


def test_flags_that_would_do_nothing_are_refused(tmp_path, capsys, data_run):
    err = one_line_error(capsys, ["generate", str(data_run), "--prime", "abc"], 2)
    assert "`--prime` is text for a language model" in err
    err = one_line_error(capsys, ["train", "--seq-len", "50", "--run-dir",
                                  str(tmp_path / "new")], 2)
    assert "`--seq-len` applies to --task lm only" in err


@pytest.mark.parametrize("frames", ["16", "8"])
def test_prime_frames_without_prime_from_is_refused(frames, capsys, data_run):
    # Given at all, even at its default value, it is refused: alone it would do nothing.
    err = one_line_error(capsys, ["generate", str(data_run), "--prime-frames", frames], 2)
    assert ("`--prime-frames` counts the frames taken from the piece --prime-from names, "
            "and does nothing without it") in err
    assert f"Received: --prime-frames {frames} without --prime-from" in err
    assert "expected, for a music model, --prime-from [SPLIT:]INDEX as well" in err
    assert not list(data_run.glob("sample*"))


def test_prime_frames_below_one_is_refused(capsys, data_run):
    err = one_line_error(capsys, ["generate", str(data_run), "--prime-from", "test:0",
                                  "--prime-frames", "0"], 2)
    assert "`--prime-frames` must be a positive integer. Received: 0" in err
    assert not list(data_run.glob("sample*"))


@pytest.mark.parametrize("flags, opening", [
    (["--prime-from", "test:0"], 8),
    (["--prime-from", "test:0", "--prime-frames", "3"], 3),
    ([], None),
])
def test_prime_from_opens_with_eight_frames_unless_told(flags, opening, capsys, monkeypatch,
                                                        data_run):
    primes = []

    def recording(model, num_frames, **kwargs):
        primes.append(kwargs["prime"])
        return real(model, num_frames, **kwargs)

    real = generation.sample_piece
    monkeypatch.setattr(generation, "sample_piece", recording)
    monkeypatch.setattr(generation, "save_piece", lambda *args, **kwargs: {})
    assert cli.main(["generate", str(data_run), "--frames", "10", "--seed", "0", "--quiet",
                     *flags]) == 0
    out = capsys.readouterr().out
    if opening is None:
        assert primes == [None] and "opening" not in out
    else:
        assert len(primes) == 1 and len(primes[0]) == opening
        assert f"opening {opening} from " in out


def test_a_negative_seed_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0. Received: seed=-1"):
        training.TrainConfig(seed=-1).validate()


def test_text_the_terminal_cannot_show_is_replaced_not_an_error(monkeypatch):
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stream)
    cli.checks.print_text("café ♪")
    stream.flush()
    assert stream.buffer.getvalue() == b"caf? ?\n"


@pytest.fixture
def data_run(tmp_path):
    run_dir = tmp_path / "run"
    training.train(config(run_dir, write_data(tmp_path / "set.pickle"), epochs=1))
    return run_dir


@pytest.mark.parametrize("flags, message", [
    (["--architecture", "deep_gru", "--layer-norm"],
     r"`layer_norm` is not available for 'deep_gru'"),
    (["--architecture", "srnn", "--num-layers", "3", "--units", "8,4"],
     r"`units` as a list needs one value per level \(3\)"),
    (["--architecture", "gf_rnn", "--dropout", "0.1,0.2,0.3"],
     r"'gf_rnn' steps all its levels in one cell and needs one `dropout` rate"),
    (["--architecture", "deep_lstm", "--activation", "relu"],
     r"`activation` is not available for 'deep_lstm'"),
])
def test_model_options_that_do_not_go_together_fail_before_the_data_is_read(
        flags, message, tmp_path, capsys, monkeypatch):
    def read(*args, **kwargs):
        raise AssertionError("the data was read")

    monkeypatch.setattr(generation.MusicTask, "load_data", read)
    run_dir = tmp_path / "run"
    err = one_line_error(capsys, ["train", *flags, "--run-dir", str(run_dir), "--quiet",
                                  "--dataset", str(write_data(tmp_path / "set.pickle"))], 2)
    assert re.search(message, err), err
    assert not run_dir.exists()
