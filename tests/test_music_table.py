"""`scripts/music_table.py`: jobs, readiness, claims, records and the report they make.

The end-to-end check runs the study's quick mode on small `.mat` files made
here, with the models cut to one paper row and one candidate so that it
takes a minute, and sets the report against the job records: the finals'
test figures, their means, the validation choice of the collection's best,
the `T - 1` figure beside each, and totals that a second call keeps.
"""

import argparse
import datetime
import json
import pathlib
import statistics
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

scipy_io = pytest.importorskip("scipy.io")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import music_table  # noqa: E402

FILES = [file for file, _ in music_table.DATASETS.values()]


def write_sets(folder, pieces=3, frames=(9, 15)):
    """Four small `.mat` files in the layout of Boulanger-Lewandowski's."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        contents = {}
        for name in ("traindata", "validdata", "testdata"):
            cells = np.empty((1, pieces), dtype=object)
            for i in range(pieces):
                cells[0, i] = (rng.random((int(rng.integers(*frames)), 88)) < 0.05).astype(
                    np.uint8)
            contents[name] = cells
        scipy_io.savemat(str(folder / file), contents)
    return folder


def args_for(tmp_path, *extra):
    parser_args = ["--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"),
                   "--results-dir", str(tmp_path / "results"), "--quiet", *extra]
    return parser_args


def test_around_winner_keeps_the_winner_and_adds_one_wider_width_and_the_nearest_dropout():
    space = music_table.SPACES["dots_rnn"]
    winner = {"units": 200, "dropout": 0.2, "weight_noise": 0.075, "learning_rate": 1e-3,
              "output_dropout": 0.5, "output_hidden_activation": "maxout", "clipnorm": 1.0}
    near = music_table.around_winner(winner, space)
    assert near == {"units": [200, 300], "dropout": [0.2, 0.0], "learning_rate": [1e-3],
                    "weight_noise": [0.075], "output_dropout": [0.5],
                    "output_hidden_activation": ["maxout"]}
    assert music_table.around_winner({**winner, "units": 400}, space)["units"] == [400]


class Records(music_table.Study):
    """A study whose records are a dict: for readiness checks without training."""

    def __init__(self, args, records):
        super().__init__(args)
        self.fake = records

    def record(self, dataset, job):
        return self.fake.get((dataset, job))


def test_finals_wait_for_their_searches_and_large_sets_wait_for_jsb(tmp_path):
    args = argparse.Namespace(
        data_dir=tmp_path, datasets=["jsb", "nottingham"], runs_dir=str(tmp_path / "r"),
        results_dir=str(tmp_path / "o"), quick=False, quiet=True)
    searched = {("jsb", f"search-{k}"): {"best": {"score": 9.0 - i, "values": {}}}
                for i, k in enumerate(music_table.MODELS)}
    study = Records(args, {})
    ready = {(d, j): ok for d, j, ok in study.jobs()}
    assert ready[("jsb", "search-rnn")] and not ready[("nottingham", "search-rnn")]
    assert not ready[("jsb", "final-rnn-seed0")]
    # A row's finals start once its own search is done, before the other searches.
    one_row = {("jsb", "search-dts_rnn"): {"best": {"score": 9.0, "values": {}}}}
    jobs = Records(args, one_row).jobs()
    ready = {(d, j): ok for d, j, ok in jobs}
    assert ready[("jsb", "final-dts_rnn-seed1")] and not ready[("jsb", "final-rnn-seed1")]
    assert [j for _, j, _ in jobs].index("final-dts_rnn-seed0") < [
        j for _, j, _ in jobs].index("search-rnn")
    last = list(music_table.MODELS)[-1]
    one_candidate = {("jsb", f"search-{last}"): {"best": {"score": 9.0, "values": {}}}}
    assert not {(d, j): ok for d, j, ok in Records(args, one_candidate).jobs()}[
        ("jsb", f"final-{last}-seed0")]
    study = Records(args, searched)
    jobs = study.jobs()
    ready = {(d, j): ok for d, j, ok in jobs}
    assert ready[("nottingham", "search-rnn")] and ready[("jsb", "final-srnn-seed2")]
    # The candidate with the lowest validation score joins the four rows.
    finals = {j for d, j, _ in jobs if d == "jsb" and j.startswith("final-")}
    assert finals == {f"final-{k}-seed{s}" for k in [*music_table.ROWS, last]
                      for s in music_table.SEEDS}
    assert not ready[("nottingham", "final-rnn-seed0")]
    # A larger set searches the four rows and JSB's winning candidate only.
    assert study.models("nottingham") == [*music_table.ROWS, last]
    assert study.models("jsb") == list(music_table.MODELS)


def test_larger_sets_run_every_first_seed_before_the_second(tmp_path):
    args = argparse.Namespace(
        data_dir=tmp_path, datasets=["jsb", "nottingham", "musedata"],
        runs_dir=str(tmp_path / "r"), results_dir=str(tmp_path / "o"), quick=False,
        quiet=True)
    done = {("jsb", f"search-{k}"): {"best": {"score": 9.0, "values": {}}}
            for k in music_table.MODELS}
    order = [(d, j) for d, j, _ in Records(args, done).jobs()]
    assert order.index(("nottingham", "final-rnn-seed0")) < order.index(
        ("musedata", "search-rnn")) < order.index(("nottingham", "final-rnn-seed1"))
    assert order.index(("musedata", "final-srnn-seed0")) < order.index(
        ("nottingham", "final-rnn-seed1"))
    # JSB keeps its seeds together: its own finals never wait behind a larger set.
    assert order.index(("jsb", "final-rnn-seed2")) < order.index(("nottingham", "search-rnn"))


def test_a_claimed_job_is_left_to_its_holder(tmp_path):
    path = tmp_path / "claims" / "jsb-search-rnn"
    with music_table._claim(path) as first:
        assert first
        with music_table._claim(path) as second:
            assert not second
    with music_table._claim(path) as again:
        assert again


@pytest.mark.slow
def test_quick_study_reports_what_its_records_hold(tmp_path, monkeypatch, capsys):
    write_sets(tmp_path / "data")
    monkeypatch.setattr(music_table, "MODELS", {"rnn": ("rnn", {}),
                                                "deep_gru": ("deep_gru", {})})
    monkeypatch.setattr(music_table, "ROWS", {"rnn": "RNN"})
    monkeypatch.setattr(music_table, "CANDIDATES", ("deep_gru",))
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb")) == 0
    results = tmp_path / "results"
    summary = json.loads((results / "music_table_quick.json").read_text())
    assert summary["pending"] == [] and summary["quick"]
    info = summary["datasets"]["jsb"]
    records = results / "music_table-quick" / "jsb"
    searches = {k: json.loads((records / f"search-{k}.json").read_text())
                for k in ("rnn", "deep_gru")}
    for record in searches.values():
        assert len(record["trials"]) == music_table.QUICK["trials"]
        assert record["best"]["score"] == min(t["score"] for t in record["trials"])
    best = min(searches, key=lambda k: searches[k]["best"]["score"])
    assert info["best"] == best
    keys = [row["key"] for row in info["rows"]]
    assert keys == ["rnn"] + ([best] if best != "rnn" else [])
    for row in info["rows"]:
        finals = [json.loads((records / f"final-{row['key']}-seed{s}.json").read_text())
                  for s in music_table.QUICK["seeds"]]
        assert row["test_nll"] == [f["test"]["nll"] for f in finals]
        assert row["nll_without_first_frame"] == [
            f["test"]["nll_without_first_frame"] for f in finals]
        assert row["mean"] == pytest.approx(statistics.fmean(row["test_nll"]))
        assert row["chosen"] == searches[row["key"]]["best"]["values"]
        assert finals[0]["test"]["frames"] == info_frames(tmp_path / "data" / "JSB_Chorales.mat")
        assert row["best_of_collection"] == (row["key"] == best)
    rnn = info["rows"][0]
    assert rnn["paper_nll"] == 8.338 and rnn["gap"] == pytest.approx(rnn["mean"] - 8.338)
    report = (results / "music_table_quick.md").read_text()
    assert f"{rnn['mean']:.3f} ± {rnn['std']:.3f} (8.338)" in report
    assert (results / "music_table_quick.png").stat().st_size > 0
    # A second call finds every job done: it trains nothing, and the report of
    # unchanged records stands. Written again from the records alone, it keeps
    # the totals the jobs recorded.
    capsys.readouterr()
    written = (results / "music_table_quick.json").stat().st_mtime_ns
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb")) == 0
    assert "===" not in capsys.readouterr().out
    assert (results / "music_table_quick.json").stat().st_mtime_ns == written
    (results / "music_table_quick.json").unlink()
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb", "--report-only")) == 0
    again = json.loads((results / "music_table_quick.json").read_text())
    assert again["budget"] == summary["budget"] and again["budget"]["seconds"] > 0


def info_frames(path):
    contents = scipy_io.loadmat(str(path))
    return sum(len(piece) for piece in contents["testdata"].reshape(-1))


def test_the_study_refuses_a_folder_without_the_files(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    with pytest.raises(SystemExit):
        music_table.main(args_for(tmp_path, "--datasets", "jsb", "nottingham"))
    assert "lacks JSB_Chorales.mat, Nottingham.mat" in capsys.readouterr().err


def test_the_readme_gets_the_overview_between_its_markers_and_nothing_else(tmp_path):
    import music_table_report as report

    row = dict(key="rnn", model="RNN", paper_nll=8.338, best_of_collection=False, seeds=[0, 1],
               complete=False, test_nll=[8.5, 8.6], mean=8.55, std=0.0707)
    summary = {"pending": ["jsb: final-rnn-seed2"], "datasets": {"jsb": {
        "column": "JSB Chorales", "rows": [row], "paper_best": 7.92}}}
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{report.README_START}\nold table\n"
                      f"{report.README_END}\n\nafter\n")
    report.fill_readme(summary, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old table" not in text
    assert "| RNN | 8.550 ± 0.071 (seeds 0, 1 only) (8.338) |" in text
    assert "1 job of the study is still to run" in text
    assert "of its 1 cells in this table, 0 are at or below the paper's figure and 1 has " \
           "not finished every seed (JSB Chorales RNN)" in text
    report.fill_readme(summary, readme)
    assert readme.read_text() == text  # a second call changes nothing
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        report.fill_readme(summary, readme)


def test_the_tally_counts_only_cells_with_every_seed_against_the_paper():
    import music_table_report as report

    def row(model, paper, test, complete=True, best=False):
        mean = statistics.fmean(test)
        return dict(model=model, paper_nll=paper, best_of_collection=best, test_nll=test,
                    complete=complete, mean=mean,
                    gap=None if paper is None else mean - paper)

    summary = {"datasets": {
        "jsb": {"column": "JSB Chorales", "paper_best": 7.92, "rows": [
            row("RNN", 8.338, [8.5, 8.52, 8.53]),
            row("DOT(S)-RNN", 8.437, [8.39, 8.40, 8.41]),
            row("deep_lstm", None, [7.90, 7.91, 7.92], best=True)]},
        "musedata": {"column": "MuseData", "paper_best": 6.59, "rows": [
            row("DT(S)-RNN", 6.988, [6.5, 6.6], complete=False),  # below, but a seed is missing
            row("sRNN (2 levels)", 6.954, [7.96, 7.97, 7.965]),
            row("DOT(S)-RNN", 6.973, [6.92, 6.93, 6.91], best=True)]},
        "piano_midi": {"column": None, "paper_best": None, "rows": [
            row("RNN", None, [7.6, 7.7, 7.65], best=True)]}}}
    text = " ".join(report.tally(summary))
    assert text.startswith("Against the paper: of its 5 cells in this table, 2 are at or below "
                           "the paper's figure (JSB Chorales DOT(S)-RNN, 8.400 against 8.437; "
                           "MuseData DOT(S)-RNN, 6.920 against 6.973), 2 are above it, by 0.179 "
                           "to 1.011, and 1 has not finished every seed (MuseData DT(S)-RNN).")
    assert ("The collection's best is at or below the paper's best on 1 of its 2 sets "
            "(JSB Chorales, 7.910 against 7.92) and above it on 1, by 0.330.") in text
    assert "piano" not in text  # a set beyond the paper has nothing to count
    summary["datasets"]["musedata"]["rows"][-1]["complete"] = False
    assert "not finished on MuseData." in " ".join(report.tally(summary))
    assert report.tally({"datasets": {"piano_midi": summary["datasets"]["piano_midi"]}}) == []


def test_the_budget_gives_hours_on_two_workers_and_says_when_a_whole_study_passed_a_day():
    import music_table_report as report

    summary = dict(budget=dict(searches=2, trials=6, finals=3, seconds=20 * 3600.0),
                   pending=[], backend="jax", keras_version="3", cpu_count=2,
                   this_invocation_seconds=6.0)
    text = report._budget(summary)
    assert "1200.0 minutes of training in all" in text
    assert "about 10.0 hours on the two workers, longer than the working day" in text
    summary["pending"] = ["jsb: final-rnn-seed2"]  # the outlook speaks of the whole study then
    assert "about 10.0 hours on the two workers;" in report._budget(summary)
    summary.update(pending=[], budget=dict(summary["budget"], seconds=15 * 3600.0))
    assert "about 7.5 hours on the two workers;" in report._budget(summary)


def test_a_cell_of_one_seed_shows_no_spread_and_names_the_seed():
    import music_table_report as report

    row = dict(seeds=[0], complete=False, test_nll=[3.3507], mean=3.3507, std=0.0)
    assert report._cell(row) == "3.351 (seed 0 only)"
    row.update(seeds=[0, 2], test_nll=[3.3, 3.4], mean=3.35, std=0.0707)
    assert report._cell(row) == "3.350 ± 0.071 (seeds 0, 2 only)"
    row.update(seeds=[0, 1, 2], complete=True, test_nll=[3.3, 3.4, 3.5], mean=3.4, std=0.1)
    assert report._cell(row) == "3.400 ± 0.100"


def test_time_left_comes_from_the_same_model_first_then_scales_by_frames():
    import music_table_report as report

    short, long = [("epochs", 30)], [("epochs", 150)]
    frames = {"jsb": 100, "nottingham": 1000, "musedata": 2000, "piano_midi": 500}
    done = [dict(dataset="nottingham", kind="final", key="rnn", settings=short, seconds=600.0),
            dict(dataset="nottingham", kind="final", key="rnn", settings=short, seconds=400.0),
            dict(dataset="nottingham", kind="final", key="srnn", settings=short, seconds=3000.0),
            dict(dataset="jsb", kind="final", key="dts_rnn", settings=long, seconds=70.0),
            dict(dataset="nottingham", kind="search", key="rnn", settings=short, seconds=900.0)]

    def left(dataset, kind, key, settings=short):
        return report.remaining_seconds(
            done, [dict(dataset=dataset, kind=kind, key=key, settings=settings)], frames)

    # The same model's finished seeds on the same set: their mean.
    assert left("nottingham", "final", "rnn") == (500.0, 1)
    # The same model on a set of the same schedule, scaled by training frames.
    assert left("musedata", "final", "srnn") == (6000.0, 1)
    # No run of that model anywhere on this schedule: the set's other finals.
    assert left("nottingham", "final", "dts_rnn") == (pytest.approx(4000.0 / 3), 1)
    # A set of its own schedule never mixes with the other schedule's runs.
    assert left("jsb", "final", "rnn", long) == (70.0, 1)
    # Searches are timed by searches only.
    assert left("piano_midi", "search", "dots_rnn") == (450.0, 1)
    assert left("piano_midi", "search", "rnn", long) == (0.0, 0)
    both = report.remaining_seconds(
        done, [dict(dataset="nottingham", kind="final", key="rnn", settings=short),
               dict(dataset="musedata", kind="final", key="srnn", settings=short)], frames)
    assert both == (6500.0, 2)


def test_a_shortfall_names_the_epoch_caps_its_runs_ended_at():
    import music_table_report as report

    summary = {"settings": {"final": {"musedata": {"epochs": 60}},
                            "search": {"musedata": {"epochs": 30}}}}
    row = dict(seeds=[0, 1, 2], epochs=[60, 60, 44], best_epochs=[60, 57, 39],
               stopped_early=[False, True, True])
    search = {"trials": [{"best_epoch": 30}, {"best_epoch": 12}, {"best_epoch": 30}]}
    why = report._why(row, search, summary, "musedata")
    assert "ended at the 60-epoch cap before early stopping, still improving: seed 0 " \
           "(best epoch 60);" in why
    assert "seed 1" not in why  # it hit the cap on the epoch early stopping ended it
    assert "2 of its 3 search trials were still improving at the search's 30-epoch cap" in why
    row.update(epochs=[50, 40, 44], stopped_early=[True, True, True])
    assert report._why(row, {"trials": [{"best_epoch": 12}]}, summary, "musedata") == ""


def test_every_trial_of_every_search_is_listed_best_first():
    import music_table_report as report

    trial = dict(values={"units": 100}, parameters=1234, fit_seconds=90.0, best_epoch=7)
    searches = {"rnn": {"trials": [dict(trial, trial="0", score=8.5),
                                   dict(trial, trial="1", score=8.2, fit_seconds=None)]},
                "srnn": {"trials": [dict(trial, trial="0", score=9.0)]}}
    rows = [line for line in report._trials(searches) if line.startswith("| rnn")
            or line.startswith("| srnn")]
    assert rows == ["| rnn | 1 | units=100 | 8.200 | 7 | 1,234 | - |",
                    "| rnn | 0 | units=100 | 8.500 | 7 | 1,234 | 1.5 |",
                    "| srnn | 0 | units=100 | 9.000 | 7 | 1,234 | 1.5 |"]
    assert report._trials({}) == []


# --- A study whose jobs are made up: the scheduling, failures and report of
# `work` and `main` without training anything. ---------------------------

SMALL_ROWS = {"rnn": "RNN", "srnn": "sRNN (2 levels)"}
SMALL_MODELS = {"rnn": ("rnn", {}), "srnn": ("srnn", {"num_layers": 2}),
                "deep_gru": ("deep_gru", {})}


def small_study(monkeypatch):
    """Two paper rows and one candidate, as the quick mode's job list."""
    monkeypatch.setattr(music_table, "MODELS", SMALL_MODELS)
    monkeypatch.setattr(music_table, "ROWS", SMALL_ROWS)
    monkeypatch.setattr(music_table, "CANDIDATES", ("deep_gru",))


class Runaway(BaseException):
    """A job started twice, or a worker waiting when nothing can change:
    raised past the study's handling of failed jobs."""


class NoWaiting:
    """Stands in for the `time` module of `music_table`: a worker that
    goes to sleep raises `Runaway` instead of waiting for ever."""

    def __getattr__(self, name):
        return getattr(time, name)

    def sleep(self, seconds):
        raise Runaway(f"the worker waited ({seconds} s) with no other worker running")


class MadeUpJobs:
    """Stands in for `Study.search` and `Study.final`: records of the shape
    they return, made at once. `scores` gives each search's validation
    score; `fail` maps `(dataset, job)` to the error that job raises."""

    def __init__(self, monkeypatch, scores=None, fail=None):
        self.scores = {"rnn": 5.0, "srnn": 5.5, "deep_gru": 4.5, **(scores or {})}
        self.fail = dict(fail or {})
        self.ran = []
        jobs = self

        def search(study, dataset, key):
            return jobs.search(dataset, key)

        def final(study, dataset, key, seed):
            return jobs.final(dataset, key, seed)

        monkeypatch.setattr(music_table.Study, "search", search)
        monkeypatch.setattr(music_table.Study, "final", final)
        monkeypatch.setattr(music_table, "time", NoWaiting())

    def _start(self, dataset, job):
        if (dataset, job) in self.ran:
            raise Runaway(f"{dataset}: {job} was started a second time")
        self.ran.append((dataset, job))
        if (dataset, job) in self.fail:
            raise self.fail[(dataset, job)]

    def search(self, dataset, key):
        self._start(dataset, f"search-{key}")
        trial = dict(trial="0", score=self.scores[key], best_epoch=1, values={"units": 6},
                     parameters=100, fit_seconds=1.0)
        return dict(kind="search", dataset=dataset, key=key,
                    architecture=music_table.MODELS[key][0], space={"units": [6]}, fixed={},
                    settings={}, max_trials=1, trials=[trial], best=trial, backend="none")

    def final(self, dataset, key, seed):
        self._start(dataset, f"final-{key}-seed{seed}")
        nll = self.scores[key] + seed / 10
        return dict(kind="final", dataset=dataset, key=key, seed=seed,
                    test={"nll": nll, "nll_without_first_frame": nll + 0.01, "frames": 10},
                    paper=None, best_valid=nll, best_epoch=1, epochs_run=1, stopped_early=True,
                    parameters=100, train_time_s=2.0, config={},
                    curves={"valid": [nll], "train": [nll]}, backend="none",
                    keras_version=None)


def quick_study(tmp_path, datasets=("jsb",)):
    args = argparse.Namespace(
        data_dir=tmp_path / "data", datasets=list(datasets), runs_dir=str(tmp_path / "runs"),
        results_dir=str(tmp_path / "results"), quick=True, quiet=True)
    return music_table.Study(args)


def test_an_unreadable_record_counts_as_missing_with_a_warning_and_its_job_runs_again(
        tmp_path, monkeypatch):
    small_study(monkeypatch)
    jobs = MadeUpJobs(monkeypatch)
    study = quick_study(tmp_path)
    folder = study.records / "jsb"
    folder.mkdir(parents=True)
    (folder / "search-rnn.json").write_text("")  # a crash before the first byte
    cut = json.dumps(jobs.search("jsb", "srnn"))
    (folder / "search-srnn.json").write_text(cut[:len(cut) // 2])
    (folder / "search-deep_gru.json").write_text("[]")
    for name in ("search-rnn", "search-srnn", "search-deep_gru"):
        with pytest.warns(RuntimeWarning, match=f"{name}.json cannot be read"):
            assert study.record("jsb", name) is None
    with pytest.warns(RuntimeWarning) as caught:
        ready = {job: ok for _, job, ok in study.jobs()}
    assert {pathlib.Path(str(w.message).split(" cannot")[0].split()[-1]).name
            for w in caught} == {"search-rnn.json", "search-srnn.json", "search-deep_gru.json"}
    assert ready["search-srnn"] and not ready["final-srnn-seed0"]
    jobs.ran.clear()
    with pytest.warns(RuntimeWarning):
        study.work(0, 1)
    assert ("jsb", "search-srnn") in jobs.ran and ("jsb", "search-rnn") in jobs.ran
    assert study.record("jsb", "search-srnn")["best"]["score"] == 5.5


def test_a_score_that_is_not_a_finite_number_never_wins_a_search(tmp_path):
    nan, inf = float("nan"), float("inf")
    trials = [dict(trial="0", score=nan), dict(trial="1", score=8.4),
              dict(trial="2", score=inf), dict(trial="3", score=8.2)]
    assert music_table.best_trial(trials)["trial"] == "3"
    assert music_table.best_trial([dict(trial="0", score=nan)]) is None
    assert music_table.best_trial([]) is None
    # Between searches: the first search's best is NaN, the second's infinite.
    args = argparse.Namespace(
        data_dir=tmp_path, datasets=["jsb"], runs_dir=str(tmp_path / "r"),
        results_dir=str(tmp_path / "o"), quick=False, quiet=True)
    keys = list(music_table.MODELS)
    scores = {keys[0]: nan, keys[1]: -inf, keys[-1]: 7.5}
    records = {("jsb", f"search-{k}"): {"best": {"score": scores.get(k, 8.0), "values": {}}}
               for k in keys}
    study = Records(args, records)
    assert study.best_search("jsb") == keys[-1]
    assert study.finalists("jsb") == [*music_table.ROWS, keys[-1]]
    unscored = {job: {"best": {"score": nan, "values": {}}} for job in records}
    assert Records(args, unscored).best_search("jsb") is None
    assert Records(args, unscored).finalists("jsb") == list(music_table.ROWS)


def test_a_failed_job_is_recorded_once_and_the_study_goes_on_without_it(tmp_path, monkeypatch):
    from keras_deeprnn.training import TrainingDiverged

    write_sets(tmp_path / "data")
    small_study(monkeypatch)
    jobs = MadeUpJobs(monkeypatch, fail={
        ("jsb", "search-srnn"): RuntimeError("The search jsb/srnn finished no trial."),
        ("jsb", "final-rnn-seed0"): TrainingDiverged("Training diverged in epoch 3: loss=nan.")})
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb")) == 0
    # Every job was tried once; the failed search's finals never started.
    assert sorted(job for _, job in jobs.ran) == sorted([
        "search-rnn", "search-srnn", "search-deep_gru", "final-rnn-seed0", "final-rnn-seed1",
        "final-deep_gru-seed0", "final-deep_gru-seed1"])
    study = quick_study(tmp_path)
    diverged = study.failure("jsb", "final-rnn-seed0")
    assert diverged["error"] == "TrainingDiverged"
    assert diverged["message"] == "Training diverged in epoch 3: loss=nan."
    assert "Traceback" in diverged["traceback"] and "TrainingDiverged" in diverged["traceback"]
    assert datetime.datetime.fromisoformat(diverged["failed_at"]).tzinfo is not None
    assert study.failure("jsb", "search-srnn")["error"] == "RuntimeError"
    assert study.record("jsb", "final-rnn-seed0") is None
    assert study.record("jsb", "search-srnn") is None
    assert study.failure("jsb", "final-rnn-seed1") is None
    assert study.todo() == []
    # The report: no job pending, the failures listed, cells without their figures.
    summary = json.loads((tmp_path / "results" / "music_table_quick.json").read_text())
    assert summary["pending"] == []
    assert {(f["job"], f["error"]) for f in summary["failed"]} == {
        ("search-srnn", "RuntimeError"), ("final-rnn-seed0", "TrainingDiverged")}
    assert [(b["job"], b["needs"]) for b in summary["blocked"]] == [
        ("final-srnn-seed0", ["jsb: search-srnn"]), ("final-srnn-seed1", ["jsb: search-srnn"])]
    rows = {row["key"]: row for row in summary["datasets"]["jsb"]["rows"]}
    assert rows["rnn"]["test_nll"] == [5.1] and rows["rnn"]["failed_seeds"] == [0]
    assert rows["srnn"]["test_nll"] == [] and rows["srnn"]["blocked_by"] == ["jsb: search-srnn"]
    assert summary["datasets"]["jsb"]["best"] == "deep_gru"
    report = (tmp_path / "results" / "music_table_quick.md").read_text()
    assert "**Failed: 2 jobs**, and 2 that need them cannot run" in report
    assert "\n## Failed jobs\n" in report
    assert ("- jsb: final-rnn-seed0: `TrainingDiverged`: Training diverged in epoch 3: "
            "loss=nan. (at ") in report
    assert "`music_table-quick/jsb/failed/final-rnn-seed0.json`" in report
    assert "- jsb: final-srnn-seed1 (needs jsb: search-srnn)" in report
    assert "| RNN | 5.100 (seed 1 only; seed 0 failed) (8.338) |" in report
    assert "| sRNN (2 levels) | cannot run: jsb: search-srnn failed (8.367) |" in report
    # A second call takes no failed job again.
    jobs.ran.clear()
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb")) == 0
    assert jobs.ran == []
    # Deleting a failure record retries its job.
    study.failure_path("jsb", "final-rnn-seed0").unlink()
    jobs.fail.clear()
    assert music_table.main(args_for(tmp_path, "--quick", "--datasets", "jsb")) == 0
    assert jobs.ran == [("jsb", "final-rnn-seed0")]
    assert study.record("jsb", "final-rnn-seed0")["test"]["nll"] == 5.0
    summary = json.loads((tmp_path / "results" / "music_table_quick.json").read_text())
    assert [f["job"] for f in summary["failed"]] == ["search-srnn"]


class Outcomes(Records):
    """`Records` with failures too: `failed` is a set of `(dataset, job)`."""

    def __init__(self, args, records, failed):
        super().__init__(args, records)
        self.failed = failed

    def failure(self, dataset, job):
        return {"error": "RuntimeError"} if (dataset, job) in self.failed else None


def test_a_failed_search_blocks_what_reads_it_and_nothing_else(tmp_path):
    args = argparse.Namespace(
        data_dir=tmp_path, datasets=["jsb", "nottingham"], runs_dir=str(tmp_path / "r"),
        results_dir=str(tmp_path / "o"), quick=False, quiet=True)
    keys = list(music_table.MODELS)
    lost = keys[-1]  # JSB's would-be winner
    records = {("jsb", f"search-{k}"): {"best": {"score": 9.0 - i, "values": {}}}
               for i, k in enumerate(keys) if k not in ("srnn", lost)}
    study = Outcomes(args, records, {("jsb", "search-srnn"), ("jsb", f"search-{lost}")})
    states = {(d, j): ok for d, j, ok in study.jobs()}
    # The collection's best is chosen among the searches that succeeded.
    best = keys[-2]
    assert study.best_search("jsb") == best and study.models("nottingham")[-1] == best
    assert states[("jsb", f"final-{best}-seed0")] and states[("nottingham", "search-rnn")]
    assert not states[("nottingham", "search-srnn")]
    assert study.settled("nottingham", "search-srnn")
    assert study.failed_prerequisites("nottingham", "final-srnn-seed1") == [
        ("jsb", "search-srnn")]
    assert study.failed_prerequisites("jsb", "final-srnn-seed1") == [("jsb", "search-srnn")]
    assert not study.settled("nottingham", "search-rnn")
    assert not study.failed_prerequisites("nottingham", "final-rnn-seed0")
    assert {(d, j) for d, j, _ in study.todo()} == {
        (d, j) for d, j, _ in study.jobs()
        if (d, j) not in records and "srnn" not in j and lost not in j}


def study_args(tmp_path, datasets, quick=False):
    return argparse.Namespace(
        data_dir=tmp_path / "data", datasets=list(datasets), runs_dir=str(tmp_path / "runs"),
        results_dir=str(tmp_path / "results"), quick=quick, quiet=True)


def test_larger_sets_without_jsb_are_refused_while_its_searches_have_no_record(
        tmp_path, monkeypatch, capsys):
    write_sets(tmp_path / "data")
    small_study(monkeypatch)
    jobs = MadeUpJobs(monkeypatch)
    with pytest.raises(SystemExit):
        music_table.main(args_for(tmp_path, "--datasets", "nottingham", "musedata"))
    error = capsys.readouterr().err
    assert "--datasets nottingham musedata leaves out jsb" in error
    assert "no record of search-rnn, search-srnn, search-deep_gru" in error
    assert "pass --datasets jsb nottingham musedata" in error
    assert jobs.ran == []
    # Reporting needs no JSB records.
    assert music_table.main(args_for(tmp_path, "--datasets", "nottingham", "--report-only")) == 0
    # Once JSB Chorales' searches are recorded, the larger sets run on their own.
    study = music_table.Study(study_args(tmp_path, ["jsb"]))
    for key in music_table.MODELS:
        music_table._write_json(study.record_path("jsb", f"search-{key}"),
                                jobs.search("jsb", key))
    jobs.ran.clear()
    assert music_table.main(args_for(tmp_path, "--datasets", "nottingham")) == 0
    assert ("nottingham", "search-rnn") in jobs.ran
    assert ("nottingham", "final-deep_gru-seed2") in jobs.ran
    assert all(dataset == "nottingham" for dataset, _ in jobs.ran)


def test_a_worker_whose_jobs_wait_for_jobs_nothing_runs_stops_and_names_them(
        tmp_path, monkeypatch):
    small_study(monkeypatch)
    MadeUpJobs(monkeypatch)  # a worker that goes to sleep raises Runaway
    study = music_table.Study(study_args(tmp_path, ["nottingham"]))
    with pytest.raises(music_table.Stuck) as caught:
        study.work(0, 2)
    assert "the 8 jobs left of --datasets nottingham wait for jsb: search-rnn, " \
           "jsb: search-srnn, jsb: search-deep_gru, which have no record" in str(caught.value)
    # While another worker holds a claim (a JSB search, say), it waits.
    with music_table._claim(study.runs / ".claims" / "jsb-search-rnn") as claimed:
        assert claimed
        with pytest.raises(Runaway, match="waited"):
            study.work(1, 2)


def test_of_two_workers_only_one_writes_the_report(tmp_path, monkeypatch, capsys):
    write_sets(tmp_path / "data")
    small_study(monkeypatch)
    jobs = MadeUpJobs(monkeypatch)
    written = []
    report = music_table.Study.report
    monkeypatch.setattr(music_table.Study, "report",
                        lambda study, seconds: written.append(study) or report(study, seconds))
    quick = ("--quick", "--datasets", "jsb", "nottingham")
    # Worker 0 finds every job free and runs them all; worker 1 then finds none left.
    assert music_table.main(args_for(tmp_path, *quick, "--worker", "0/2")) == 0
    assert len(jobs.ran) == 2 * (3 + 3 * 2) and len(written) == 1
    summary = (tmp_path / "results" / "music_table_quick.json").read_text()
    capsys.readouterr()
    assert music_table.main(args_for(tmp_path, *quick, "--worker", "1/2")) == 0
    assert len(written) == 1 and "another worker's to write" in capsys.readouterr().out
    assert (tmp_path / "results" / "music_table_quick.json").read_text() == summary
    # Of two workers that find the same records, the first to claim their report writes it.
    studies = [quick_study(tmp_path, ["jsb", "nottingham"]) for _ in range(2)]
    assert sorted(study.work(k, 2) for k, study in enumerate(studies)) == [False, False]
    music_table.Study(study_args(tmp_path, ["jsb", "nottingham"], quick=True)).record_path(
        "jsb", "final-rnn-seed1").unlink()
    jobs.ran.clear()
    assert [study.work(k, 2) for k, study in enumerate(studies)] == [True, False]
    assert jobs.ran == [("jsb", "final-rnn-seed1")]
    # --report-only writes it whenever asked.
    assert music_table.main(args_for(tmp_path, *quick, "--report-only")) == 0
    assert len(written) == 2


def test_two_workers_at_work_together_run_each_job_once_and_one_writes_the_report(
        tmp_path, monkeypatch):
    import threading

    small_study(monkeypatch)
    jobs = MadeUpJobs(monkeypatch)
    monkeypatch.setattr(music_table, "time", time)  # they wait for each other here
    monkeypatch.setattr(music_table, "WAIT_SECONDS", 0.01)
    search, final = jobs.search, jobs.final

    def slowly(run):
        def job(*args):
            time.sleep(0.02)
            return run(*args)
        return job

    monkeypatch.setattr(jobs, "search", slowly(search))
    monkeypatch.setattr(jobs, "final", slowly(final))
    outcomes = {}
    workers = [threading.Thread(target=lambda k=k: outcomes.update(
        {k: quick_study(tmp_path, ["jsb", "nottingham"]).work(k, 2)})) for k in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert sorted(outcomes.values()) == [False, True]
    assert sorted(jobs.ran) == sorted(set(jobs.ran)) and len(jobs.ran) == 2 * (3 + 3 * 2)
