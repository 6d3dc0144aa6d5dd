"""The `keras-deeprnn` command: train, evaluate, generate, datasets, bad flags."""

import contextlib
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
    assert f"Test NLL: {result['test']['nll']:.3f} nats per frame" in output
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
    assert "valid NLL:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--architecture", "lstm9"], "invalid choice: 'lstm9'"),
        (["train", "--dataset", "no_such_set"], "expected a built-in data set"),
        (["train", "--bidirectional"], "a backward RNN would read"),
        (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
        (["train", "--units", "many"], "expected a width like 128"),
        (["train", "--recurrent-initializer", "wobbly"], "must be a Keras initializer name"),
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
