"""What a run dir promises: resumed runs are the runs they continue, one
writer at a time, damaged files fall back or are named, diverged runs fail,
and every JSON file stays strict JSON."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest

from keras_deeprnn import cli
from keras_deeprnn import training
from keras_deeprnn.training.lock import RunLock
from keras_deeprnn.training.records import write_json
from small_runs import config as small_config
from small_runs import write_data

pytest.importorskip("music21")

LIMIT = 4
OTHER_BACKEND = {"jax": "torch", "torch": "tensorflow", "tensorflow": "jax"}


@pytest.fixture(scope="module")
def music_cache(tmp_path_factory):
    return str(tmp_path_factory.getbasetemp() / "music-cache")


def tiny_config(run_dir, cache, **changes):
    # Dropout on: its masks come from seed generators that must resume too.
    values = dict(units=8, epochs=2, batch_size=2, limit=LIMIT, max_len=16,
                  dropout=0.2, output_dropout=0.5, run_dir=str(run_dir), cache_dir=cache,
                  progress=False)
    values.update(changes)
    return training.TrainConfig(**values)


def strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds the non-JSON constant {constant}")

    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"), parse_constant=refuse)


class InterruptAfter(keras.callbacks.Callback):
    """Ctrl-C at the end of the given number of epochs."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self.seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        if self.seen == self.epochs:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, music_cache):
    run_dir = tmp_path_factory.mktemp("whole")
    return run_dir, training.train(tiny_config(run_dir, music_cache, epochs=3))


@pytest.fixture
def interrupted(tmp_path, music_cache):
    """A run of 3 epochs stopped after its second: state, previous state and
    both checkpoints on disk."""
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_config(run_dir, music_cache, epochs=3),
                       callbacks=[InterruptAfter(2)])
    return run_dir


def test_an_interrupted_run_ends_where_the_uninterrupted_one_does(uninterrupted, interrupted,
                                                                  music_cache):
    whole_dir, whole = uninterrupted
    resumed = training.train(tiny_config(interrupted, music_cache, epochs=3))
    # Same seed, same result: the shuffles, dropout masks and optimizer state
    # carry over the interruption.
    np.testing.assert_allclose(strict_json(interrupted / "state.json")["history"]["loss"],
                               strict_json(whole_dir / "state.json")["history"]["loss"],
                               rtol=1e-6)
    np.testing.assert_allclose(resumed["test"]["nll"], whole["test"]["nll"], rtol=1e-6)


def test_state_records_the_backend_and_another_backend_is_refused(interrupted, music_cache):
    state = strict_json(interrupted / "state.json")
    assert state["backend"] == keras.backend.backend()
    other = OTHER_BACKEND[keras.backend.backend()]
    for name in ("state.json", "state.previous.json"):
        saved = strict_json(interrupted / name)
        saved["backend"] = other
        (interrupted / name).write_text(json.dumps(saved), encoding="utf-8")
    message = f"checkpointed on the {other} backend and cannot be resumed on " \
              f"{keras.backend.backend()}"
    with pytest.raises(ValueError, match=message):
        training.train(tiny_config(interrupted, music_cache, epochs=3))


def test_a_truncated_state_falls_back_to_the_epoch_before(interrupted, music_cache):
    state = interrupted / "state.json"
    state.write_text(state.read_text()[:40], encoding="utf-8")
    with pytest.warns(UserWarning, match="state.json' is damaged"):
        result = training.train(tiny_config(interrupted, music_cache, epochs=3))
    # Epoch 2 is trained again from epoch 1's checkpoint.
    assert result["epochs_run"] == 3
    assert len(strict_json(state)["history"]["loss"]) == 3


def test_a_damaged_checkpoint_falls_back_to_the_epoch_before(interrupted, music_cache):
    (interrupted / "checkpoint-epoch002.keras").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="checkpoint-epoch002.keras' cannot be read"):
        result = training.train(tiny_config(interrupted, music_cache, epochs=3))
    assert result["epochs_run"] == 3


def test_damaged_files_with_no_fallback_are_named(tmp_path, music_cache):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text('{"epoch": 1, "che', encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot be resumed: '.*state.json' is damaged"):
        training.train(tiny_config(run_dir, music_cache))


def test_a_second_train_in_the_same_run_dir_is_refused(tmp_path, music_cache, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with RunLock(run_dir):
        with pytest.raises(training.RunDirBusy, match=f"process {os.getpid()}"):
            training.train(tiny_config(run_dir, music_cache))
        with pytest.raises(SystemExit) as raised:
            cli.main(["train", "--run-dir", str(run_dir), "--units", "8", "--limit", "4",
                      "--cache-dir", music_cache, "--quiet"])
        assert raised.value.code == 1
        assert "Another `train`" in capsys.readouterr().err
    assert not (run_dir / "history.csv").exists()


def test_a_run_configured_with_tuples_reopens_and_resumes(tmp_path):
    # state.json holds the per-level dropout as a list; the live config, a tuple.
    data = write_data(tmp_path / "set.pickle")
    run_dir = tmp_path / "run"
    per_level = dict(architecture="srnn", num_layers=2, dropout=(0.1, 0.2))
    first = training.train(small_config(run_dir, data, epochs=1, **per_level))
    assert strict_json(run_dir / "state.json")["config"]["dropout"] == [0.1, 0.2]
    again = training.train(small_config(run_dir, data, epochs=1, **per_level))
    assert again["test"] == first["test"] and again["epochs_run"] == 1
    resumed = training.train(small_config(run_dir, data, epochs=2, **per_level))
    assert resumed["epochs_run"] == 2
    with pytest.raises(ValueError, match=r"Changed: dropout: saved \[0.1, 0.2\], now "
                                         r"\[0.1, 0.3\]\. "):
        training.train(small_config(run_dir, data, epochs=3, architecture="srnn",
                                    num_layers=2, dropout=(0.1, 0.3)))


def test_temporaries_of_killed_saves_are_removed(tmp_path, music_cache):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = [run_dir / ".checkpoint-epoch001.keras.999999-0123abcd.tmp.keras",
             run_dir / ".state.json.999999-89abcdef.tmp.json"]
    for path in stale:
        path.write_bytes(b"half a file")
    mine = run_dir / ".notes.txt"
    mine.write_text("not ours")
    training.train(tiny_config(run_dir, music_cache, epochs=1, units=4))
    assert not any(path.exists() for path in stale)
    assert mine.exists()


@pytest.mark.parametrize("field, value", [("learning_rate", float("inf")),
                                          ("learning_rate", float("nan")),
                                          ("weight_noise", float("inf")),
                                          ("clipnorm", float("inf"))])
def test_non_finite_settings_are_refused(field, value, tmp_path):
    with pytest.raises(ValueError, match=f"`{field}` must be a finite number"):
        tiny_config(tmp_path, str(tmp_path), **{field: value}).validate()


def test_a_diverged_run_stops_with_a_clear_error_and_keeps_no_diverged_epoch(tmp_path, music_cache):
    # Noise of 1e38 on every kernel overflows float32 sums: NaN outputs.
    config = tiny_config(tmp_path / "run", music_cache, weight_noise=1e38, epochs=2)
    with pytest.raises(training.TrainingDiverged, match="diverged in epoch 1: .*loss=nan"):
        training.train(config)
    assert not list((tmp_path / "run").glob("checkpoint-*"))
    assert not (tmp_path / "run" / "result.json").exists()


def test_json_files_never_hold_nan_or_infinity(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"best": float("nan"), "history": {"loss": [1.0, float("inf")]},
                      "n": np.float32("-inf")})
    assert strict_json(path) == {"best": None, "history": {"loss": [1.0, None]}, "n": None}

