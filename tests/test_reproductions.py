"""The reproduction scripts' `--quick` modes run end to end, and their reports say what the runs did.

Each script is run as a user would (a subprocess, tiny settings); the
checks read the report back and set it against the runs' own files: the
configuration chosen on validation, the test figures of the chosen runs
only, means and gaps to the paper, and totals that a second call, finding
every run done, keeps.
"""

import json
import pathlib
import statistics
import sys

import numpy as np
import pytest
from script_runs import run_quick

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import reproduce_music  # noqa: E402


def _jsb_like_pickle(path):
    """A small file in the shape of Boulanger-Lewandowski's JSB pickle, NumPy ints and all."""
    rng = np.random.default_rng(0)

    def piece():
        return [tuple(np.sort(rng.choice(np.arange(43, 97), rng.integers(1, 5), replace=False)))
                # At most 16 frames: one padded length, one compiled step.
                for _ in range(rng.integers(8, 16))]

    import pickle

    data = {split: [piece() for _ in range(count)]
            for split, count in (("train", 8), ("valid", 6), ("test", 6))}
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


@pytest.mark.slow
def test_jsb_quick_report_matches_its_runs(tmp_path):
    pickle_path = _jsb_like_pickle(tmp_path / "chorales.pickle")
    results = run_quick("reproduce_music.py", tmp_path, "--jsb", str(pickle_path))
    summary = json.loads((results / "jsb_reproduction_quick.json").read_text())
    table = (results / "jsb_reproduction_quick.md").read_text()

    assert [r["model"] for r in summary["rows"]] == [
        "RNN", "DT(S)-RNN", "DOT(S)-RNN", "sRNN (2 levels)"]
    assert [r["paper_nll"] for r in summary["rows"]] == [8.338, 8.278, 8.437, 8.367]
    assert summary["best"]["paper_nll"] == 7.92
    search = summary["search"]
    runs = tmp_path / "runs-quick" / "jsb"
    for row in [*summary["rows"], summary["best"]]:
        # Test figures come from the chosen configuration's runs, one per seed.
        on_disk = [json.loads((runs / row["key"] / f"seed{seed}" / "result.json").read_text())
                   for seed in summary["seeds"]]
        assert row["seeds"] == summary["seeds"]
        assert row["test_nll"] == [r["test"]["nll"] for r in on_disk]
        assert row["train_time_s"] == [r["train_time_s"] for r in on_disk]
        assert row["mean"] == pytest.approx(statistics.fmean(row["test_nll"]))
        assert row["gap"] == pytest.approx(row["mean"] - row["paper_nll"])
        assert f"{row['mean']:.3f} ± {row['std']:.3f}" in table
        verdict = "matched" if row["gap"] <= 0 else f"falls short by {row['gap']:.3f} nats"
        assert f"**{row['model']}**: {verdict}" in table
    # Each paper row's choice is its lowest validation NLL; the best is the lowest of all.
    for row in summary["rows"]:
        own = [t for t in search if t["row"] == row["model"]]
        assert min(own, key=lambda t: t["valid_nll"])["key"] == row["key"]
    assert min(search, key=lambda t: t["valid_nll"])["key"] == summary["best"]["key"]
    assert sum(t["chosen"] for t in search) == len({r["key"] for r in
                                                    [*summary["rows"], summary["best"]]})
    # A trial that names a schedule trains with it; the others with the defaults.
    for trial in search:
        config = json.loads((runs / trial["key"] / "seed0" / "result.json").read_text())["config"]
        expected = 2 if trial["configuration"].endswith("batches of 2") else summary["settings"][
            "batch_size"]
        assert config["batch_size"] == expected, trial["key"]
    assert any(t["configuration"].endswith("batches of 2") for t in search)
    assert any(t["row"] == "candidate" for t in search)
    assert "Smoke run" in table and "## Model selection" in table
    assert table.count("\n| ") >= 2 + 6 + 2 + len(search)
    assert (results / "jsb_reproduction_quick.png").stat().st_size > 10_000

    # The totals are the runs' own epoch times: a second call, which finds
    # every run done and trains nothing, reports the same.
    trained = sum(json.loads(p.read_text())["train_time_s"] for p in runs.rglob("result.json"))
    assert summary["budget"]["training_seconds"] == pytest.approx(trained, abs=0.2)
    assert summary["budget"]["runs"] == len(list(runs.rglob("result.json")))
    again = json.loads((run_quick("reproduce_music.py", tmp_path, "--jsb", str(pickle_path))
                        / "jsb_reproduction_quick.json").read_text())
    assert again["budget"]["training_seconds"] == summary["budget"]["training_seconds"]
    assert again["rows"] == summary["rows"]


@pytest.mark.slow
def test_lm_quick_report_matches_its_runs(tmp_path):
    results = run_quick("reproduce_lm.py", tmp_path)
    summary = json.loads((results / "lm_reproduction.json").read_text())
    table = (results / "lm_reproduction.md").read_text()
    rows = summary["rows"]
    assert [r["architecture"] for r in rows] == ["rnn", "dts_rnn", "dots_rnn", "srnn"]
    assert [r["paper_ptb_bits_per_character"] for r in rows] == [1.414, 1.409, 1.386, 1.412]
    for row in rows:
        result = json.loads((pathlib.Path(row["run_dir"]) / "result.json").read_text())
        assert row["bits_per_character"] == result["test"]["bits_per_character"]
        # Perplexity per character is 2 to the bits.
        assert row["perplexity"] == pytest.approx(2 ** row["bits_per_character"], rel=1e-4)
        assert f"| {row['model']} | abc_folk | {row['bits_per_character']:.3f} |" in table
    total = sum(r["train_time_s"] for r in rows)
    assert summary["training_seconds"] == pytest.approx(total, abs=0.2)
    assert f"{total / 60:.1f} minutes of training in all" in table
    assert "Quick run" in table and "split is by whole tune" in table


@pytest.mark.parametrize("argv, message", [
    ([], "give either --jsb PATH"),
    (["--imitations", "--jsb", "x.pickle"], "give either --jsb PATH"),
    (["--jsb", "no/such/file.pickle"], "--jsb must be the path"),
    (["--jsb", "x.pickle", "--worker", "2/2"], "expected K/N with 0 <= K < N"),
])
def test_music_script_refuses_bad_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        reproduce_music.main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def _result(run_dir, epochs_run, stopped_early):
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps(
        {"epochs_run": epochs_run, "stopped_early": stopped_early}))


def test_a_run_that_reached_a_lower_epoch_cap_is_unfinished_under_a_higher_one(tmp_path):
    from keras_deeprnn import training

    def config(name, epochs):
        return training.TrainConfig(run_dir=str(tmp_path / name), epochs=epochs)

    _result(tmp_path / "capped", 100, False)
    _result(tmp_path / "stopped", 60, True)
    assert reproduce_music._finished(config("capped", 100))
    assert not reproduce_music._finished(config("capped", 200))
    assert reproduce_music._finished(config("stopped", 200))
    assert not reproduce_music._finished(config("absent", 1))


def test_a_worker_takes_on_runs_that_no_other_worker_holds(tmp_path, monkeypatch):
    from keras_deeprnn import training

    configs = [training.TrainConfig(run_dir=str(tmp_path / f"run{i}"), epochs=1)
               for i in range(5)]
    trained = []

    def fake_train(config):
        if config.run_dir.endswith("run3"):  # another worker holds its lock
            _result(pathlib.Path(config.run_dir), 1, False)  # ... and finishes it
            raise training.RunDirBusy("busy")
        trained.append(pathlib.Path(config.run_dir).name)
        _result(pathlib.Path(config.run_dir), 1, False)

    _result(tmp_path / "run2", 1, False)  # done before this worker started
    monkeypatch.setattr(training, "train", fake_train)
    reproduce_music._run_share(configs, 0, 2, "search")
    # Its own share (0, 2, 4) first, then the others' runs (1, 3) still open;
    # the finished run 2 and the held run 3 are not trained again.
    assert trained == ["run0", "run4", "run1"]
