"""A search is one process's, keeps its space, repeats its scores, keeps
its oracle and trial files whole through a kill, and a worker without a
chief says so instead of waiting."""

import json
import pathlib
import socket

import pytest

pytest.importorskip("keras_tuner")

import keras  # noqa: E402

from keras_deeprnn import _files  # noqa: E402
from keras_deeprnn import training  # noqa: E402
from keras_deeprnn.tuning import TUNERS  # noqa: E402
from keras_deeprnn.training.lock import RunLock  # noqa: E402
from keras_deeprnn.tuning import run_search  # noqa: E402
from keras_deeprnn.tuning import search  # noqa: E402

from small_runs import search_options as options  # noqa: E402


def scores(tuner):
    return {trial_id: trial.score for trial_id, trial in sorted(tuner.oracle.trials.items())}


def test_the_same_seed_repeats_the_scores(tmp_path):
    first = scores(run_search(**options(tmp_path, epochs=1)))
    again = scores(run_search(**options(tmp_path, epochs=1, directory=tmp_path / "again")))
    assert len(first) == 2 and None not in first.values()
    assert first == again


def test_a_search_resumed_with_another_space_is_refused(tmp_path):
    run_search(**options(tmp_path, max_trials=1, epochs=1))
    project = tmp_path / "searches" / "p"
    trials = sorted(p.name for p in project.glob("trial_*"))
    for named, value in [("architectures", ["srnn"]), ("fixed", {"units": 8}),
                         ("max_params", 10_000)]:
        with pytest.raises(ValueError, match=f"another search space.*{named}: saved"):
            run_search(**options(tmp_path, max_trials=2, epochs=1, **{named: value}))
    assert sorted(p.name for p in project.glob("trial_*")) == trials
    # overwrite starts the other search afresh, and records its space.
    run_search(**options(tmp_path, max_trials=1, epochs=1, overwrite=True,
                         architectures=["srnn"]))
    assert json.loads((project / search.SPACE_FILE).read_text())["architectures"] == ["srnn"]


def test_a_second_search_in_the_same_project_is_refused(tmp_path):
    (tmp_path / "searches").mkdir()
    with RunLock(tmp_path / "searches", lock_file=".p.lock", command="tune"):
        with pytest.raises(training.RunDirBusy, match="Another `tune`"):
            run_search(**options(tmp_path, max_trials=1, epochs=1))
    assert not (tmp_path / "searches" / "p").exists()


def test_a_worker_without_a_chief_fails_with_a_message(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    monkeypatch.setattr(search, "CHIEF_WAIT_S", 0.5)
    with pytest.raises(ConnectionError, match=f"No tuning chief answers at 127.0.0.1:{port}"):
        run_search(**options(tmp_path, max_trials=1, epochs=1))


def _tiny_model(hp):
    hp.Int("units", 1, 4)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    return model


def test_a_kill_while_saving_keeps_the_oracle_and_trial_files_whole(tmp_path, monkeypatch):
    def tuner():
        return TUNERS["random"](_tiny_model, objective="val_loss", max_trials=3, seed=1,
                                directory=str(tmp_path), project_name="p")

    oracle = tuner().oracle
    trial = oracle.create_trial("tuner0")
    files = {"trial.json": tmp_path / "p" / f"trial_{trial.trial_id}" / "trial.json",
             "oracle.json": tmp_path / "p" / "oracle.json"}
    sync = _files._sync_file

    def kill_while_writing(name):
        def killed(temporary):
            if _files.TEMPORARY.match(pathlib.Path(temporary).name)["name"] == name:
                raise KeyboardInterrupt(f"killed with {name} written, before the move")
            sync(temporary)

        monkeypatch.setattr(_files, "_sync_file", killed)

    # The new score reaches trial.json only through its temporary.
    before = files["trial.json"].read_text()
    kill_while_writing("trial.json")
    with pytest.raises(KeyboardInterrupt):
        oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    assert files["trial.json"].read_text() == before
    assert "val_loss" not in before and oracle.get_trial(trial.trial_id).metrics.exists("val_loss")

    # Ending the trial writes trial.json, then oracle.json, which the kill stops.
    before = files["oracle.json"].read_text()
    kill_while_writing("oracle.json")
    trial.status = "COMPLETED"
    with pytest.raises(KeyboardInterrupt):
        oracle.end_trial(trial)
    assert files["oracle.json"].read_text() == before
    assert json.loads(before) != oracle.get_state()
    assert "val_loss" in files["trial.json"].read_text()
    leftovers = [p.name for p in (tmp_path / "p").rglob(".*.tmp*")]
    assert leftovers == []
    # Both files read back: the project reloads.
    monkeypatch.setattr(_files, "_sync_file", sync)
    reloaded = tuner().oracle
    reloaded.reload()
    assert reloaded.get_trial(trial.trial_id).metrics.exists("val_loss")
    # The intact oracle.json still has the trial running: it is run again.
    assert reloaded.get_state()["retry_queue"] == [trial.trial_id]
