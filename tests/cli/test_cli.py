"""The `keras-deeprnn` command: train, evaluate, generate, datasets, bad flags."""

import contextlib
import importlib.util
import io
import json
import runpy
import sys

import numpy as np
import pytest

from keras_deeprnn import cli

pytest.importorskip("music21")

TINY = ["--units", "8", "--epochs", "1", "--batch-size", "2", "--limit", "4",
        "--max-len", "16", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained through the command line, with its printed report."""
    root = tmp_path_factory.mktemp("cli")
    # The folder test_training.py uses too, so the chorales are parsed once.
    cache = str(tmp_path_factory.getbasetemp() / "music-cache")
    run_dir = root / "run"
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = cli.main(["train", *TINY, "--run-dir", str(run_dir), "--cache-dir", cache,
                           "--generate-frames", "12"])
    return status, output.getvalue(), run_dir, cache


def test_train_reports_the_test_nll_beside_the_papers(trained):
    status, output, run_dir, _ = trained
    assert status == 0
    result = json.loads((run_dir / "result.json").read_text())
    assert result["architecture"] == "dots_rnn" and result["dataset"] == "jsb_chorales"
    assert f"Test NLL {result['test']['nll']:.3f} nats per frame over every time step" in output
    assert (f"{result['test']['nll_without_first_frame']:.3f} without each first frame (the "
            "T - 1 convention)") in output
    assert "Paper, DOT(S)-RNN on JSB Chorales: 8.437" in output
    for name in ("model.keras", "result.json", "history.csv", "learning_curve.png",
                 "generated.mid", "generated.musicxml", "generated.png"):
        assert (run_dir / name).is_file(), name
        assert str(run_dir / name) in output


def test_generate_from_a_run_dir_with_a_prime(trained, tmp_path, capsys):
    _, _, run_dir, cache = trained
    status = cli.main(["generate", str(run_dir), "--frames", "10", "--prime-from", "test:0",
                       "--prime-frames", "3", "--seed", "1", "--cache-dir", cache,
                       "--out", str(tmp_path / "piece")])
    assert status == 0
    output = capsys.readouterr().out
    assert "opening 3 from jsb_chorales test:0" in output
    for suffix in (".mid", ".musicxml", ".png"):
        assert (tmp_path / f"piece{suffix}").is_file()
        assert str(tmp_path / f"piece{suffix}") in output


def test_evaluate_prints_the_same_score_as_the_run(trained, capsys):
    _, _, run_dir, cache = trained
    assert cli.main(["evaluate", str(run_dir), "--json", "--cache-dir", cache]) == 0
    scores = json.loads(capsys.readouterr().out)
    result = json.loads((run_dir / "result.json").read_text())
    np.testing.assert_allclose(scores["nll"], result["test"]["nll"], rtol=1e-5)
    assert cli.main(["evaluate", str(run_dir / "model.keras"), "--split", "valid",
                     "--limit", "4", "--cache-dir", cache]) == 0
    assert "valid NLL " in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--architecture", "lstm9"], "invalid choice: 'lstm9'"),
        (["train", "--dataset", "no_such_set"], "expected a built-in data set"),
        (["train", "--bidirectional"], "a backward RNN would read"),
        (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
        (["train", "--units", "many"], "or one per level like 200,100"),
        (["train", "--recurrent-initializer", "wobbly"], "must be a Keras initializer"),
        (["train", "--architecture", "rnn", "--num-layers", "2"], "fixes `num_layers`"),
        (["train", "--dropout", "1.5"], "`dropout` must be a float in [0, 1)"),
        (["train", "--momentum", "0.9"], "applies to `optimizer='sgd'` only"),
        (["generate", "no/such/run"], "Expected a run dir or a `.keras` file"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_flags_fail_with_a_clear_message(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as raised:
        cli.main([*argv, *(["--run-dir", str(tmp_path)] if argv[:1] == ["train"] else [])])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()


def test_datasets_lists_the_built_in_sets(capsys):
    assert cli.main(["datasets"]) == 0
    output = capsys.readouterr().out
    for name, column in (("jsb_chorales", "JSB Chorales"), ("folk_tunes", "Nottingham"),
                         ("classical_polyphony", "MuseData")):
        assert f"{name}  (imitates {column}" in output


def test_python_dash_m_runs_the_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["keras_deeprnn", "train", "--help"])
    with pytest.raises(SystemExit) as raised:
        runpy.run_module("keras_deeprnn", run_name="__main__")
    assert raised.value.code == 0
    output = capsys.readouterr().out
    assert "KERAS_BACKEND" in output and "--num-transition-layers" in output


@pytest.fixture
def no_training(monkeypatch):
    """`training.train` that fails the test if a command gets as far as it."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command trained although its flags are bad")

    monkeypatch.setattr(cli.training, "train", refuse)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--learning-rate", "inf"], "`learning_rate` must be a finite number > 0"),
        (["--learning-rate", "nan"], "`learning_rate` must be a finite number > 0"),
        (["--weight-noise", "inf"], "`weight_noise` must be a finite number >= 0"),
        (["--temperature", "0"], "`--temperature` must be a finite number > 0"),
        (["--temperature", "inf"], "`--temperature` must be a finite number > 0"),
    ],
)
def test_bad_numbers_fail_before_training(argv, message, no_training, capsys, tmp_path):
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", *argv, "--run-dir", str(tmp_path)])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_file_system_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", *TINY, "--run-dir", str(blocker / "run")])
    assert raised.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-deeprnn train: error: ") and str(blocker) in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_missing_ptb_split_is_one_line(tmp_path, capsys):
    (tmp_path / "ptb.char.train.txt").write_text("a b c\n", encoding="utf-8")
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", "--task", "lm", "--dataset", str(tmp_path), *TINY,
                  "--run-dir", str(tmp_path / "run")])
    assert raised.value.code in (1, 2)
    err = capsys.readouterr().err
    assert "ptb.char.valid.txt" in err and "Traceback" not in err


def test_ctrl_c_exits_130_with_a_note(monkeypatch, capsys, tmp_path):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.training, "train", interrupted)
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", *TINY, "--run-dir", str(tmp_path)])
    assert raised.value.code == 130
    assert "interrupted. The run dir keeps every finished epoch" in capsys.readouterr().err


def test_tensorboard_logs_or_a_clear_error_naming_what_is_missing(tmp_path, capsys):
    argv = ["train", "--units", "4", "--epochs", "1", "--batch-size", "2", "--limit", "4",
            "--max-len", "16", "--run-dir", str(tmp_path / "run"), "--generate-frames", "0",
            "--cache-dir", str(tmp_path.parent / "music-cache"), "--quiet", "--tensorboard"]
    missing = [name for name in ("tensorflow", "tensorboard")
               if importlib.util.find_spec(name) is None]
    if missing:
        with pytest.raises(SystemExit) as raised:
            cli.main(argv)
        assert raised.value.code == 2
        err = capsys.readouterr().err
        assert "needs the tensorflow and tensorboard packages" in err
        assert not (tmp_path / "run" / "state.json").exists()
        return
    assert cli.main(argv) == 0
    # Keras's TensorBoard logs, in the run dir, whatever the backend.
    logs = list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert {path.parent.name for path in logs} == {"train", "validation"}


def test_tensorboard_without_tensorflow_is_a_clear_error(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(SystemExit) as raised:
        cli.main(["train", *TINY, "--tensorboard", "--run-dir", str(tmp_path)])
    assert raised.value.code == 2
    assert "needs the tensorflow and tensorboard packages" in capsys.readouterr().err


def test_without_a_terminal_the_log_is_one_line_per_epoch(tmp_path, capsys):
    cache = str(tmp_path.parent / "music-cache")
    argv = ["train", "--units", "8", "--epochs", "2", "--batch-size", "2", "--limit", "4",
            "--max-len", "16", "--run-dir", str(tmp_path / "run"), "--cache-dir", cache,
            "--generate-frames", "0"]
    assert cli.main(argv) == 0
    output = capsys.readouterr().out
    # pytest's captured stdout is no terminal: Keras's verbose=2, one
    # summary line per epoch and no progress-bar redraws.
    assert "\r" not in output and "\b" not in output
    summaries = [line for line in output.splitlines() if "val_frame_nll" in line]
    assert len(summaries) == 2, output
