"""A search is one process's, keeps its space, repeats its scores, and a
worker without a chief says so instead of waiting."""

import json
import socket

import pytest

pytest.importorskip("keras_tuner")

from keras_deeprnn import training  # noqa: E402
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
