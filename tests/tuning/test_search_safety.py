"""A search is one process's, keeps its space, repeats its scores, keeps
its files (oracle, tuner, each trial's record, checkpoint and build config)
whole through a kill, and a worker without a chief says so instead of
waiting."""

import json
import os
import pathlib
import socket
import time

import numpy as np
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


def test_a_resumed_search_deletes_what_killed_writes_left(tmp_path):
    run_search(**options(tmp_path, max_trials=1, epochs=1))
    project = tmp_path / "searches" / "p"
    trial = next(project.glob("trial_*"))
    # What a write killed before its move leaves: a temporary beside the file.
    stale = [_files.temporary_for(project / "oracle.json"),
             _files.temporary_for(trial / "checkpoint.weights.h5")]
    for path in stale:
        path.write_text("torn")
    kept = trial / "notes.txt"
    kept.write_text("a user's file")
    run_search(**options(tmp_path, max_trials=2, epochs=1))
    assert [path for path in stale if path.exists()] == []
    assert kept.read_text() == "a user's file"
    assert len(list(project.glob("trial_*"))) == 2


def test_a_chief_spares_the_temporaries_its_workers_may_be_writing(tmp_path):
    project, trial = tmp_path / "p", tmp_path / "p" / "trial_1"
    trial.mkdir(parents=True)
    old = [_files.temporary_for(project / "oracle.json"),
           _files.temporary_for(trial / "checkpoint.weights.h5")]
    young = _files.temporary_for(trial / "trial.json")
    for path in [*old, young]:
        path.write_text("part")
    hours_ago = time.time() - 2 * 3600
    for path in old:
        os.utime(path, (hours_ago, hours_ago))
    search._remove_stale_temporaries(project, "chief")
    assert [path.exists() for path in [*old, young]] == [False, False, True]
    # Alone in its project, a search deletes the young one too.
    search._remove_stale_temporaries(project, None)
    assert not young.exists()


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


# The writer's own flush, which the kills below replace.
_SYNC = _files._sync_file


def _kill_while_writing(monkeypatch, name, *, after=0):
    """Kill (`KeyboardInterrupt`) the writes of files named `name` once their
    temporary is whole, before the move, letting the first `after` through.

    Returns the list of the temporaries written for `name`, the killed one last.
    """
    seen = []

    def killed(temporary):
        if _files.TEMPORARY.match(pathlib.Path(temporary).name)["name"] == name:
            seen.append(pathlib.Path(temporary))
            if len(seen) > after:
                raise KeyboardInterrupt(f"killed with {name} written, before the move")
        _SYNC(temporary)

    monkeypatch.setattr(_files, "_sync_file", killed)
    return seen


def _leftovers(folder):
    return [p.name for p in pathlib.Path(folder).rglob(".*.tmp*")]


def test_a_kill_while_saving_keeps_the_oracle_and_trial_files_whole(tmp_path, monkeypatch):
    def tuner():
        return TUNERS["random"](_tiny_model, objective="val_loss", max_trials=3, seed=1,
                                directory=str(tmp_path), project_name="p")

    oracle = tuner().oracle
    trial = oracle.create_trial("tuner0")
    files = {"trial.json": tmp_path / "p" / f"trial_{trial.trial_id}" / "trial.json",
             "oracle.json": tmp_path / "p" / "oracle.json"}

    # The new score reaches trial.json only through its temporary.
    before = files["trial.json"].read_text()
    _kill_while_writing(monkeypatch, "trial.json")
    with pytest.raises(KeyboardInterrupt):
        oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    assert files["trial.json"].read_text() == before
    assert "val_loss" not in before and oracle.get_trial(trial.trial_id).metrics.exists("val_loss")

    # Ending the trial writes trial.json, then oracle.json, which the kill stops.
    before = files["oracle.json"].read_text()
    _kill_while_writing(monkeypatch, "oracle.json")
    trial.status = "COMPLETED"
    with pytest.raises(KeyboardInterrupt):
        oracle.end_trial(trial)
    assert files["oracle.json"].read_text() == before
    assert json.loads(before) != oracle.get_state()
    assert "val_loss" in files["trial.json"].read_text()
    assert _leftovers(tmp_path / "p") == []
    # Both files read back: the project reloads.
    monkeypatch.setattr(_files, "_sync_file", _SYNC)
    reloaded = tuner().oracle
    reloaded.reload()
    assert reloaded.get_trial(trial.trial_id).metrics.exists("val_loss")
    # The intact oracle.json still has the trial running: it is run again.
    assert reloaded.get_state()["retry_queue"] == [trial.trial_id]


def _line(hp, built=True):
    """A linear model that full-batch gradient descent improves at every
    epoch; built from its `Input` or, with `built=False`, only when fitted."""
    hp.Int("units", 1, 4)
    model = keras.Sequential([keras.Input((2,))] if built else [])
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def _unbuilt_line(hp):
    return _line(hp, built=False)


class _Snapshots(keras.callbacks.Callback):
    """The model's weights at each epoch's end. KerasTuner hands each trial
    a deep copy of the callbacks; a copy of this one is itself."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def __deepcopy__(self, memo):
        return self

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _searcher(tmp_path, hypermodel=_line, **options):
    """`search(max_trials, **fit_options)`: a random search in `tmp_path/p`
    (the same project on every call, resumed) on a fixed line's points,
    or with `run=False` only its tuner; returns the tuner."""
    x = np.random.default_rng(0).normal(size=(16, 2)).astype("float32")
    y = x @ np.array([[1.0], [-2.0]], dtype="float32")

    def search(max_trials, *, run=True, **fit_options):
        tuner = TUNERS["random"](hypermodel, objective="val_loss", max_trials=max_trials,
                                 seed=1, directory=str(tmp_path), project_name="p", **options)
        if run:
            fit_options = dict(dict(epochs=1, batch_size=len(x), verbose=0), **fit_options)
            tuner.search(x, y, validation_data=(x, y), **fit_options)
        return tuner

    return search


def _the_same(weights, others):
    return len(weights) == len(others) and all(
        np.array_equal(w, o) for w, o in zip(weights, others))


def test_a_kill_while_saving_keeps_the_tuner_file_whole(tmp_path, monkeypatch):
    search = _searcher(tmp_path)
    search(1)
    path = tmp_path / "p" / "tuner0.json"
    before = path.read_text()
    # The resumed search's trial ends: the oracle saves, then the tuner, killed.
    _kill_while_writing(monkeypatch, "tuner0.json")
    with pytest.raises(KeyboardInterrupt):
        search(2)
    assert path.read_text() == before
    assert len(json.loads((tmp_path / "p" / "oracle.json").read_text())["tried_so_far"]) == 2
    assert _leftovers(tmp_path / "p") == []
    # The project reloads, both trials finished, and its search goes on.
    monkeypatch.setattr(_files, "_sync_file", _SYNC)
    tuner = search(3)
    statuses = [trial.status for trial in tuner.oracle.trials.values()]
    assert statuses == ["COMPLETED"] * 3
    assert json.loads(path.read_text()) == tuner.get_state()


def test_a_kill_while_checkpointing_keeps_the_last_best_weights(tmp_path, monkeypatch):
    search = _searcher(tmp_path)
    search(1)
    # The resumed search's trial improves at both epochs: its second
    # checkpoint is killed and the first stays.
    snapshots = _Snapshots()
    written = _kill_while_writing(monkeypatch, "checkpoint.weights.h5", after=1)
    with pytest.raises(KeyboardInterrupt):
        search(2, epochs=2, callbacks=[snapshots])
    first, second = snapshots.weights
    assert not _the_same(first, second)
    folder = written[-1].parent
    assert [p.parent for p in written] == [folder, folder]
    assert _leftovers(tmp_path / "p") == []
    # The project reloads, and the trial's model loads with its first epoch's weights.
    monkeypatch.setattr(_files, "_sync_file", _SYNC)
    tuner = search(2, run=False)
    (trial,) = [t for t in tuner.oracle.trials.values()
                if pathlib.Path(tuner.get_trial_dir(t.trial_id)) == folder]
    assert _the_same(tuner.load_model(trial).get_weights(), first)
    # The search goes on: the killed trial is run again.
    tuner = search(2)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 2


def test_a_kill_while_saving_keeps_the_build_config_whole(tmp_path, monkeypatch):
    # Two executions per trial: each writes the trial's build config after it.
    search = _searcher(tmp_path, _unbuilt_line, executions_per_trial=2)
    search(1)
    (done,) = (tmp_path / "p").glob("trial_*/build_config.json")
    written = _kill_while_writing(monkeypatch, "build_config.json", after=1)
    with pytest.raises(KeyboardInterrupt):
        search(2)
    path = written[-1].parent / "build_config.json"
    assert len(written) == 2 and path != done
    # The first execution's config is whole: the same model as the first trial's.
    assert json.loads(path.read_text()) == json.loads(done.read_text())
    assert _leftovers(tmp_path / "p") == []
    # The project reloads, and the unbuilt model loads from the config and checkpoint.
    monkeypatch.setattr(_files, "_sync_file", _SYNC)
    tuner = search(2)
    for trial in tuner.oracle.trials.values():
        model = tuner.load_model(trial)
        assert model.built and model.count_params() == 3
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 2
