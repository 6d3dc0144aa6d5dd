"""A run dir is untrusted input: nothing outside it is read, written or
deleted, links are refused, a folder that is not a run is left alone, and a
run knows its data by content, wherever it is read from."""

import json

import numpy as np
import pytest

from keras_deeprnn import build_model
from keras_deeprnn import training
from small_runs import config
from small_runs import write_data

def read_state(run_dir, name="state.json"):
    return json.loads((run_dir / name).read_text(encoding="utf-8"))


@pytest.fixture
def data(tmp_path):
    return write_data(tmp_path / "set.pickle")


@pytest.fixture
def two_epochs(tmp_path, data):
    """A run stopped after 2 of 4 epochs: state, previous state and checkpoints."""
    run_dir = tmp_path / "run"
    training.train(config(run_dir, data))
    return run_dir


def test_names_read_from_state_files_never_reach_outside_the_run_dir(tmp_path, data, two_epochs):
    victims = [tmp_path / "victim.keras", tmp_path / "victim.weights.h5"]
    for victim in victims:
        victim.write_text("precious")
    previous = read_state(two_epochs, "state.previous.json")
    previous["checkpoint"] = str(victims[0])                 # absolute
    previous["best_weights"] = "../victim.weights.h5"        # climbs out
    (two_epochs / "state.previous.json").write_text(json.dumps(previous))
    result = training.train(config(two_epochs, data, epochs=4))
    assert result["epochs_run"] == 4
    assert [victim.read_text() for victim in victims] == ["precious", "precious"]


def test_a_state_naming_an_outside_checkpoint_is_not_loaded(tmp_path, data, two_epochs):
    outside = tmp_path / "elsewhere.keras"
    (two_epochs / "checkpoint-epoch002.keras").rename(outside)
    state = read_state(two_epochs)
    state["checkpoint"] = str(outside)
    (two_epochs / "state.json").write_text(json.dumps(state))
    with pytest.warns(UserWarning, match="not a file `train` writes"):
        result = training.train(config(two_epochs, data, epochs=3))
    # Resumed from epoch 1's checkpoint, the one the run dir holds.
    assert result["epochs_run"] == 3
    assert outside.exists()


@pytest.mark.parametrize("name", [".lock", "history.csv", "state.json"])
def test_a_link_in_a_run_dir_is_refused_and_its_target_untouched(tmp_path, data, two_epochs,
                                                                 name):
    secret = tmp_path / "secret.txt"
    secret.write_text("precious\n")
    (two_epochs / name).unlink(missing_ok=True)
    (two_epochs / name).symlink_to(secret)
    with pytest.raises(ValueError, match=f"'{two_epochs / name}' is a symbolic link"):
        training.train(config(two_epochs, data, epochs=3))
    assert secret.read_text() == "precious\n"


def test_a_lock_link_in_a_new_run_dir_is_refused(tmp_path, data):
    secret = tmp_path / "secret.txt"
    secret.write_text("precious\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(secret)
    with pytest.raises(ValueError, match="symbolic link"):
        training.train(config(tmp_path / "run", data))
    assert secret.read_text() == "precious\n"


def test_a_folder_that_is_not_a_run_is_left_alone(tmp_path, data):
    folder = tmp_path / "mine"
    folder.mkdir()
    mine = {"model.keras": "my model", "result.json": "{}", "history.csv": "a,b\n1,2\n"}
    for name, text in mine.items():
        (folder / name).write_text(text)
    with pytest.raises(ValueError, match=r"`run_dir` '.*mine' exists and is not a run"):
        training.train(config(folder, data))
    assert {name: (folder / name).read_text() for name in mine} == mine
    assert sorted(p.name for p in folder.iterdir()) == sorted(mine)


def test_a_run_killed_before_its_first_saved_epoch_logs_each_epoch_once(tmp_path, data):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # What CSVLogger leaves when the run dies before the epoch's checkpoint.
    (run_dir / ".lock").write_text("12345")
    (run_dir / "history.csv").write_text("epoch,loss\n0,9.9\n")
    training.train(config(run_dir, data, epochs=1))
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("0,") and "9.9" not in rows[1]


def test_a_run_knows_its_data_from_any_folder(tmp_path, data, monkeypatch):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    write_data(here / "set.pickle")
    write_data(there / "set.pickle", shift=3)          # same name, other music
    monkeypatch.chdir(here)
    result = training.train(config(tmp_path / "run", "set.pickle", epochs=1))
    assert result["data"]["path"] == str((here / "set.pickle").resolve())
    monkeypatch.chdir(there)
    scores = training.evaluate(tmp_path / "run", progress=False)
    assert scores["nll"] == pytest.approx(result["test"]["nll"], rel=1e-5)
    # Resuming from the other folder with the same words is other data.
    with pytest.raises(ValueError, match="data .* differs"):
        training.train(config(tmp_path / "run", "set.pickle", epochs=2))


def test_changed_data_is_refused_and_moved_data_is_followed(tmp_path, data):
    training.train(config(tmp_path / "run", data, epochs=1))
    moved = data.rename(tmp_path / "moved.pickle")
    result = training.train(config(tmp_path / "run", moved, epochs=2))
    assert result["epochs_run"] == 2 and result["data"]["path"] == str(moved.resolve())
    write_data(moved, shift=1)
    with pytest.raises(ValueError, match="data .* differs"):
        training.evaluate(tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="data .* differs"):
        training.train(config(tmp_path / "run", moved, epochs=3))


@pytest.mark.parametrize("change, words", [({"output_activation": None}, "probabilities"),
                                           ({"bidirectional": True}, "bidirectional")])
def test_evaluate_scores_only_forward_models_that_give_probabilities(data, change, words):
    values = dict(input_dim=88, output_dim=88, output_activation="sigmoid", units=4)
    values.update(change)
    model = build_model("rnn", **values)
    with pytest.raises(ValueError, match=words):
        training.evaluate(model, dataset=str(data), progress=False)


def test_a_damaged_state_falls_back_to_the_runs_other_records(tmp_path, data):
    run_dir = tmp_path / "run"
    training.train(config(run_dir, data, epochs=2, limit=2))
    expected = read_state(run_dir)["config"]
    (run_dir / "state.json").write_text('{"epoch": 2, "conf')
    assert training.load_trained_model(run_dir)[1] == expected
    assert training.evaluate(run_dir, progress=False)["pieces"] == 2
    (run_dir / "state.previous.json").unlink()
    assert training.load_trained_model(run_dir)[1] == expected
    assert training.evaluate(run_dir, progress=False)["pieces"] == 2
    np.testing.assert_equal(training.saved_task_state(run_dir), None)


def test_a_damaged_checkpoint_is_called_damaged_not_missing(data, two_epochs):
    (two_epochs / "checkpoint-epoch002.keras").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning) as warned:
        training.train(config(two_epochs, data, epochs=3))
    text = " ".join(str(w.message) for w in warned)
    assert "checkpoint-epoch002.keras' cannot be read (it is damaged" in text
    assert "File not found" not in text
