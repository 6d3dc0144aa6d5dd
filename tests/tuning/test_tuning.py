"""Searches: the parameter budget in a search, searches that resume and
repeat, reports of partial searches, the chief's address and the
`keras-deeprnn tune` command line (the hypermodel on its own, its space and
its budget, is `test_hypermodel.py`'s)."""

import ast
import importlib
import json
import os
import pathlib
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner")

from keras_deeprnn import ARCHITECTURES  # noqa: E402
from keras_deeprnn import cli  # noqa: E402
from keras_deeprnn import tuning  # noqa: E402
from keras_deeprnn.data import piano_roll_batches  # noqa: E402
from keras_deeprnn.tasks import get_task  # noqa: E402
from keras_deeprnn.training import TrainConfig  # noqa: E402
from keras_deeprnn.tuning import TUNERS  # noqa: E402
from keras_deeprnn.tuning import check_chief_address  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402
from keras_deeprnn.tuning import report  # noqa: E402
from keras_deeprnn.tuning import run_search  # noqa: E402
from keras_deeprnn.tuning import search  # noqa: E402
from keras_deeprnn.tuning.sizes import training_steps  # noqa: E402

# A piano roll's 88 notes in and out (the hypermodel otherwise reads them from the data).
NOTES = dict(input_dim=88, output_dim=88)

BACKEND = keras.backend.backend()

# Every searched setting pinned: a tiny model and a one-trial grid per architecture.
TINY = dict(units=4, transition_units=4, output_units=4, dropout=0.0, output_dropout=0.0,
            weight_noise=0.0, learning_rate=1e-2, clipnorm=1.0, num_layers=2,
            num_transition_layers=2, num_output_layers=1, skip_connections=False,
            residual_connections=False, recurrent_weight_dropout=0.0, zoneout=0.0,
            layer_norm=False, trainable_initial_state=False,
            transition_activation="tanh", output_hidden_activation="tanh")


@pytest.fixture(scope="session")
def music_cache(tmp_path_factory):
    # Shared by the xdist workers, so the chorales are parsed once.
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root / "tuning_music_cache"


def synthetic_batches(num_pieces=4, batch_size=2, seed=0):
    rng = np.random.default_rng(seed)
    rolls = [(rng.random((n, 88)) < 0.1).astype("float32") for n in range(6, 6 + num_pieces)]
    return piano_roll_batches(rolls, batch_size, shuffle=False)


def hyperparameters(architecture):
    hp = kt.HyperParameters()
    hp.Fixed("architecture", architecture)
    return hp


# ---------------------------------------------------------------------------
# Parameter budget
# ---------------------------------------------------------------------------


def test_models_over_the_budget_fail_and_the_search_goes_on(tmp_path):
    sizes = {"rnn": DeepRNNHyperModel(["rnn"], **NOTES).count_params("rnn", units=4),
             "srnn": DeepRNNHyperModel(["srnn"], **NOTES).count_params("srnn", units=4, num_layers=2)}
    assert sizes["rnn"] < sizes["srnn"]
    hypermodel = DeepRNNHyperModel(["srnn", "rnn"], fixed=TINY,
                                   max_params=(sizes["rnn"] + sizes["srnn"]) // 2)
    # A KerasTuner tuner takes the hypermodel; a grid visits both.
    trials = _grid_trials(_grid_tuner(hypermodel, tmp_path, "budget"))
    assert trials["srnn"].status == "FAILED"
    assert "over the budget" in trials["srnn"].message
    assert trials["rnn"].status == "COMPLETED"
    assert trials["rnn"].metrics.get_last_value("num_params") == sizes["rnn"]


def _grid_tuner(hypermodel, folder, project):
    """A grid tuner over both architectures that lets their trials fail."""
    return TUNERS["grid"](hypermodel, objective=kt.Objective("val_frame_nll", "min"),
                          max_trials=2, directory=str(folder), project_name=project,
                          max_consecutive_failed_trials=3)


def _grid_trials(tuner):
    """Search one epoch of synthetic batches; `{architecture: trial}`."""
    batches = synthetic_batches()
    tuner.search(batches, validation_data=batches, epochs=1, verbose=0)
    return {t.hyperparameters.values["architecture"]: t for t in tuner.oracle.trials.values()}


def test_an_architecture_that_cannot_meet_a_derived_budget_fails_only_its_trials(tmp_path):
    # rnn fits 600 parameters (with 2 units); dots_lstm has more at units=1.
    budget = 600
    hypermodel = DeepRNNHyperModel(["rnn", "dots_lstm"], **NOTES, max_params=budget, budget_mode="derive",
                                   fixed={k: v for k, v in TINY.items()
                                          if k not in ("units", "transition_units",
                                                       "output_units")})
    assert hypermodel.count_params("dots_lstm", units=1, transition_units=1,
                                   output_units=1) > budget
    # Discovering the space (in the constructor) used to build dots_lstm and fail.
    tuner = _grid_tuner(hypermodel, tmp_path, "derive")
    assert tuner.oracle.get_space().get("architecture") == "rnn"
    trials = _grid_trials(tuner)
    assert trials["dots_lstm"].status == "FAILED"
    assert "units=1" in trials["dots_lstm"].message
    assert trials["rnn"].status == "COMPLETED"
    assert trials["rnn"].metrics.get_last_value("num_params") <= budget
    config = hypermodel.declare(hyperparameters("rnn"))
    del config["architecture"], config["learning_rate"], config["clipnorm"]
    assert trials["rnn"].metrics.get_last_value("units") == hypermodel.derive_units("rnn", **config)


def test_run_search_goes_on_after_failed_trials_with_any_budget(tmp_path, recorded_tuner):
    made = recorded_tuner.options
    for mode in ("skip", "derive"):
        with pytest.raises(recorded_tuner.Stop):
            run_search(directory=tmp_path, max_trials=5, max_params=10_000, budget_mode=mode)
        assert made["max_consecutive_failed_trials"] > 5, mode
        assert made["hypermodel"].budget_mode == mode
    # Trials are built, compiled and scored as `train` does for the music task.
    task = get_task("music")
    hypermodel = made["hypermodel"]
    assert hypermodel.task is task and made["objective"].name == task.monitor
    expected = task.build_model_kwargs(TrainConfig(), None)
    # the sizes come from the training data when the search starts
    assert (hypermodel.input_dim, hypermodel.output_dim) == (None, None)
    assert hypermodel.output_activation == expected["output_activation"]
    assert all(hypermodel.fixed[k] == v for k, v in expected.items()
               if k not in ("input_dim", "output_dim", "output_activation"))


@pytest.mark.parametrize("tuner_name", ["hyperband", "bayesian"])
def test_other_tuners_take_the_hypermodel(tmp_path, tuner_name):
    if tuner_name == "bayesian":
        pytest.importorskip("sklearn", reason="BayesianOptimization needs scikit-learn")
    hypermodel = DeepRNNHyperModel(["rnn", "dts_rnn"], fixed={"units": 4})
    objective = kt.Objective("val_frame_nll", "min")
    common = dict(directory=str(tmp_path), project_name=tuner_name, seed=1)
    if tuner_name == "hyperband":
        tuner = TUNERS["hyperband"](hypermodel, objective=objective, max_epochs=1, factor=3,
                                    **common)
    else:
        tuner = TUNERS["bayesian"](hypermodel, objective=objective, max_trials=2, **common)
    assert isinstance(tuner, {"hyperband": kt.Hyperband,
                              "bayesian": kt.BayesianOptimization}[tuner_name])
    batches = synthetic_batches()
    tuner.search(batches, validation_data=batches, epochs=1, verbose=0)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert completed and all(np.isfinite(t.score) for t in completed)


# Epochs (3, Hyperband's max_epochs 5) times batches an epoch (2, then 3).
@pytest.mark.parametrize("tuner_name, given, counted", [
    ("random", None, [3 * 2, 3 * 3]), ("hyperband", None, [5 * 2, 5 * 3]),
    ("hyperband_worker", None, [5 * 2, 5 * 3]), ("random", 7, [7, 7])])
def test_a_tuners_search_counts_the_trials_steps_unless_given(tmp_path, monkeypatch,
                                                              tuner_name, given, counted):
    seen = []

    def trials(self, *fit_args, **fit_kwargs):  # stands in for KerasTuner's own search
        seen.append(self.hypermodel.train_steps)

    monkeypatch.setattr(kt.Tuner, "search", trials)
    hypermodel = DeepRNNHyperModel(["rnn"], fixed={"units": 4}, train_steps=given)
    objective = kt.Objective("val_frame_nll", "min")
    common = dict(directory=str(tmp_path), project_name=tuner_name, seed=1)
    if tuner_name.startswith("hyperband"):  # its trials train for up to max_epochs
        tuner = TUNERS["hyperband"](hypermodel, objective=objective, max_epochs=5, **common)
    else:
        tuner = TUNERS["random"](hypermodel, objective=objective, max_trials=1, **common)
    if tuner_name == "hyperband_worker":
        from keras_tuner.src.distribute import oracle_client

        # A worker's oracle: KerasTuner's client of the chief's (no call reaches it here).
        for name, value in [("KERASTUNER_ORACLE_IP", "127.0.0.1"),
                            ("KERASTUNER_ORACLE_PORT", "1"), ("KERASTUNER_TUNER_ID", "w1")]:
            monkeypatch.setenv(name, value)
        tuner.oracle = oracle_client.OracleClient(tuner.oracle)
    tuner.search(synthetic_batches(), epochs=3, verbose=0)
    tuner.search(synthetic_batches(6), epochs=3, verbose=0)  # counts its own data
    assert seen == counted
    assert hypermodel.train_steps == given  # a count is the search's, not the hypermodel's


def test_training_steps_are_counted_from_what_fit_takes():
    x = np.zeros((10, 4, 3))
    assert training_steps(x, x, epochs=2, batch_size=4) == 2 * 3
    assert training_steps(x, x) == 1  # Keras's default batch of 32
    assert training_steps(synthetic_batches(6), epochs=4) == 4 * 3
    assert training_steps([(x, x)] * 5, epochs=2) == 10
    assert training_steps(x, x, epochs=3, steps_per_epoch=7) == 21
    assert training_steps(x, x, epochs=3, steps_per_epoch=7.0) == 21
    assert type(training_steps(x, x, steps_per_epoch=7.0)) is int
    # Several inputs: the samples of the first, not how many inputs there are.
    assert training_steps([x, x], x, epochs=2, batch_size=4) == 2 * 3
    assert training_steps({"a": x, "b": x}, x, batch_size=4) == 3
    # What cannot say its length, or is empty: unknown.
    assert training_steps(iter([(x, x)]), epochs=2) is None
    assert training_steps([], epochs=2) is None
    assert training_steps([], x, epochs=2) is None

    class Endless(keras.utils.PyDataset):  # neither a length nor `num_batches`
        def __getitem__(self, index):
            return x, x

    assert training_steps(Endless(), epochs=2) is None
    if BACKEND == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices((x, x))
        assert training_steps(dataset.batch(4), epochs=2) == 2 * 3
        assert training_steps(dataset.repeat().batch(4), epochs=2) is None  # infinite


# ---------------------------------------------------------------------------
# Searching, resuming, reporting
# ---------------------------------------------------------------------------


class Interrupted(BaseException):
    """Like Ctrl-C: not an `Exception`, so KerasTuner does not catch it."""


class InterruptSecondTrial(keras.callbacks.Callback):
    trials_started = 0  # on the class: KerasTuner deep-copies callbacks per trial

    def on_train_begin(self, logs=None):
        type(self).trials_started += 1
        if type(self).trials_started == 2:
            raise Interrupted()


def read_tuner_log(project):
    lines = (project / "tuner_logs" / "tuner0.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_an_interrupted_search_reports_and_resumes(tmp_path, music_cache, capsys):
    options = dict(dataset="jsb_chorales", tuner="random", max_trials=2, epochs=1,
                   directory=tmp_path, project_name="resume", limit=5,
                   architectures=["rnn", "srnn"], fixed={"units": 4}, seed=3,
                   cache_dir=music_cache, verbose=0)
    InterruptSecondTrial.trials_started = 0
    with pytest.raises(Interrupted):
        run_search(callbacks=[InterruptSecondTrial()], **options)
    project = tmp_path / "resume"

    # The report reads the partial directory as it is.
    partial = report(tmp_path, "resume", tmp_path / "partial")
    assert [(r["trial_id"], r["status"]) for r in partial["rows"]] == [("0", "COMPLETED"),
                                                                       ("1", "RUNNING")]
    first = partial["rows"][0]
    assert first["rank"] == 1 and first["objective"] > 0 and first["num_params"] > 0
    assert first["fit_seconds"] > 0 and first["units"] == 4 and first["tuner_id"] == "tuner0"
    assert partial["rows"][1]["rank"] is None and partial["rows"][1]["objective"] is None
    assert "| 1 | 0 | COMPLETED |" in partial["markdown"].read_text()
    assert partial["csv"].read_text().splitlines()[0].startswith("rank,trial_id,status")
    assert [p.name for p in partial["plots"]] == ["objective_vs_depth.png",
                                                  "objective_vs_params.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in partial["plots"])
    completed_before = json.loads((project / "trial_0" / "trial.json").read_text())

    # Run again: trial 1 is run again, trial 0 is kept, 2 trials in all.
    tuner = run_search(**options)
    assert sorted(tuner.oracle.trials) == ["0", "1"]
    assert all(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    assert json.loads((project / "trial_0" / "trial.json").read_text()) == completed_before
    log = read_tuner_log(project)
    begun = [e["trial_id"] for e in log if e["event"] == "begin"]
    ended = [e["trial_id"] for e in log if e["event"] == "end"]
    assert begun == ["0", "1", "1"] and ended == ["0", "1"]

    final = report(tmp_path, "resume")
    objectives = [r["objective"] for r in final["rows"]]
    assert objectives == sorted(objectives) and [r["rank"] for r in final["rows"]] == [1, 2]
    assert {r["architecture"] for r in final["rows"]} <= {"rnn", "srnn"}
    for row in final["rows"]:
        assert row["depth"] == 1 + row["num_layers"]  # one transition layer per level, + output

    # The command line on the finished search: nothing left to run, a report.
    assert cli.main(["tune", "--max-trials", "2", "--epochs", "1", "--limit", "5",
                     "--architectures", "rnn,srnn", "--fixed", "units=4", "--seed", "3",
                     "--directory", str(tmp_path), "--project-name", "resume",
                     "--cache-dir", str(music_cache), "--verbose", "0"]) == 0
    markdown = tmp_path / "resume" / "report" / "trials.md"
    assert f"Report: {markdown}" in capsys.readouterr().out
    assert "| 2 | " in markdown.read_text()
    assert [e["event"] for e in read_tuner_log(project)] == ["begin", "end", "begin", "begin", "end"]


def test_report_needs_a_tuner_directory(tmp_path):
    with pytest.raises(ValueError, match="No tuner directory"):
        report(tmp_path, "nothing_here")


def test_run_search_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="tuner"):
        run_search(tuner="annealing", directory=tmp_path)
    with pytest.raises(ValueError, match="max_trials=None"):
        run_search(tuner="random", max_trials=None, directory=tmp_path)


def test_a_worker_must_not_overwrite(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    assert search.distributed_role() == "worker"
    with pytest.raises(ValueError, match="overwrite=True"):
        run_search(directory=tmp_path, overwrite=True)
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert search.distributed_role() == "chief"


def tune_arguments(monkeypatch, argv):
    """What `keras-deeprnn tune ARGV` passes to `run_search`, without searching."""
    received = {}
    monkeypatch.setattr(tuning, "run_search", lambda **kwargs: received.update(kwargs))
    assert cli.main(["tune", *argv, "--no-report"]) == 0
    return received


def test_tune_shares_the_train_flags_and_defaults(monkeypatch):
    train = cli.build_parser().parse_args(["train"])
    # tune's own defaults (None: searched) must not leak into train's flags.
    main_job = cli.training.TrainConfig()
    assert (train.units, train.dropout, train.output_dropout) == (
        main_job.units, main_job.dropout, main_job.output_dropout)
    received = tune_arguments(monkeypatch, [])
    for name in ("epochs", "batch_size", "max_len", "bucket", "patience", "seed", "limit",
                 "cache_dir"):
        assert received[name] == getattr(train, name), name
    assert received["dataset"] == "jsb_chorales" and received["tuner"] == "random"
    assert received["project_name"] == "jsb_chorales_random"
    assert received["fixed"] == {} and received["architectures"] is None
    # Not a terminal here: one line per epoch and per trial.
    assert received["verbose"] == 2


def test_tune_model_flags_hold_settings_fixed(monkeypatch):
    received = tune_arguments(monkeypatch, [
        "--tuner", "hyperband", "--units", "64", "--layer-norm", "--learning-rate", "0.003",
        "--fixed", "output_hidden_activation=maxout", "--fixed", "dropout=0.2",
        "--architecture", "srnn", "--batch-size", "4", "--bucket", "--quiet"])
    assert received["fixed"] == {"units": 64, "layer_norm": True, "learning_rate": 0.003,
                                 "output_hidden_activation": "maxout", "dropout": 0.2}
    assert received["architectures"] == "srnn" and received["batch_size"] == 4
    assert received["bucket"] is True
    assert received["project_name"] == "jsb_chorales_hyperband" and received["verbose"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--fixed", "units"], "NAME=VALUE"),
        (["--run-dir", "somewhere"], "--run-dir: train only"),
        (["--optimizer", "sgd"], "--optimizer: train only"),
        (["--task", "lm"], "music models"),
        (["--units", "8", "--fixed", "units=16"], "fixed twice"),
        (["--units", "8,4"], "one width"),
        (["--architecture", "rnn", "--architectures", "rnn,srnn"], "not both"),
    ],
)
def test_tune_refuses_flags_it_cannot_honour(monkeypatch, capsys, argv, message):
    monkeypatch.setattr(tuning, "run_search", lambda **kwargs: pytest.fail("searched"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tune", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_module_entry_point_runs_the_tune_command():
    result = subprocess.run([sys.executable, "-m", "keras_deeprnn", "tune", "--help"],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, KERAS_BACKEND=BACKEND))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: keras-deeprnn tune" in result.stdout
    for flag in ("--max-trials", "--budget-mode", "--units", "--batch-size", "--layer-norm"):
        assert flag in result.stdout, flag


def test_a_small_search_from_the_command_line_writes_its_report(tmp_path, music_cache, capsys):
    argv = ["tune", "--architectures", "rnn,srnn", "--units", "4", "--max-trials", "2",
            "--epochs", "2", "--limit", "5", "--batch-size", "4", "--directory", str(tmp_path),
            "--cache-dir", str(music_cache)]
    assert cli.main(argv) == 0
    output = capsys.readouterr().out
    markdown = tmp_path / "jsb_chorales_random" / "report" / "trials.md"
    assert f"Report: {markdown}" in output
    rows = [line for line in markdown.read_text().splitlines() if "COMPLETED" in line]
    assert len(rows) == 2
    trials = report(tmp_path, "jsb_chorales_random")["rows"]
    assert all(row["units"] == 4 for row in trials)  # --units held fixed
    # Not a terminal: no progress-bar redraws, a line per epoch and per trial.
    assert "\r" not in output and "\x08" not in output and "\x1b" not in output
    assert output.count("Epoch 2/2") == 2
    trial_lines = [line for line in output.splitlines() if line.startswith("Trial ")]
    assert [line.split(" in ")[0] for line in trial_lines] == ["Trial 1/2 COMPLETED",
                                                               "Trial 2/2 COMPLETED"]
    assert all("val_frame_nll" in line and "units=4" in line for line in trial_lines)
    assert "Search: Running Trial" not in output  # KerasTuner's table of values


def test_importing_the_package_leaves_keras_tuner_alone():
    code = (
        "import sys\n"
        "import keras_deeprnn\n"
        "assert 'keras_tuner' not in sys.modules, 'keras_deeprnn imported keras_tuner'\n"
        "sys.modules['keras_tuner'] = None  # as if it were not installed\n"
        "try:\n"
        "    import keras_deeprnn.tuning\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, KERAS_BACKEND=BACKEND))
    assert result.returncode == 0, result.stderr
    assert 'pip install "keras-deeprnn[tuning]"' in result.stdout


# ---------------------------------------------------------------------------
# Repeatable searches
# ---------------------------------------------------------------------------


def drawn_trials(recorded_tuner, directory, seed, count=6):
    """The first trials a `run_search` tuner draws, without training them."""
    recorded_tuner.build = True
    with pytest.raises(recorded_tuner.Stop):  # stopped before it loads data
        run_search(directory=directory, max_trials=count, seed=seed,
                   architectures=["rnn", "dts_rnn", "srnn", "dots_rnn"])
    oracle = recorded_tuner.tuners[-1].oracle
    return oracle.seed, [oracle.create_trial(f"t{i}").hyperparameters.values
                         for i in range(count)]


def test_trials_compile_knowing_how_many_steps_the_search_gives_them(tmp_path, monkeypatch):
    from small_runs import search_options

    class Stop(Exception):
        pass

    seen = {}

    def stop(self, *fit_args, **fit_kwargs):  # KerasTuner's search: before any trial
        seen.update(train_steps=self.hypermodel.train_steps, epochs=fit_kwargs["epochs"])
        raise Stop

    monkeypatch.setattr(kt.Tuner, "search", stop)
    with pytest.raises(Stop):
        run_search(**search_options(tmp_path, epochs=3))
    # Six training pieces in batches of 2: 3 batches an epoch, for 3 epochs.
    assert seen == dict(train_steps=9, epochs=3)


def test_the_same_seed_draws_the_same_trials(tmp_path, recorded_tuner):
    seed, first = drawn_trials(recorded_tuner, tmp_path / "a", seed=0)
    again_seed, again = drawn_trials(recorded_tuner, tmp_path / "b", seed=0)
    assert seed == again_seed == 1  # KerasTuner would read 0 as "random"
    assert first == again
    assert len({json.dumps(t, sort_keys=True) for t in first}) > 1
    _, other = drawn_trials(recorded_tuner, tmp_path / "c", seed=1)
    assert other != first


# ---------------------------------------------------------------------------
# The chief's address
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_a_chief_on_loopback_is_quiet(host):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_chief_address(host, 8000)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "192.168.1.5", "::", "tuner.example"])
def test_a_chief_beyond_loopback_warns(host):
    with pytest.warns(UserWarning, match="without authentication") as record:
        assert not check_chief_address(host, 8000)
    assert f"{host}:8000" in str(record[0].message)


def test_run_search_as_a_chief_warns_before_it_serves(tmp_path, monkeypatch, recorded_tuner):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "0.0.0.0")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with pytest.warns(UserWarning, match="0.0.0.0:8000 .every interface"):
        with pytest.raises(recorded_tuner.Stop):  # before it serves
            run_search(directory=tmp_path)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(recorded_tuner.Stop):
            run_search(directory=tmp_path)


# ---------------------------------------------------------------------------
# The package's layout
# ---------------------------------------------------------------------------


def package_imports(path):
    """(module imported, at the top of the file?) for each keras_deeprnn import."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "keras_deeprnn"):
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("keras_deeprnn")]
        else:
            continue
        found += [(name, id(node) in top) for name in names]
    return found


def test_the_tuning_modules_import_each_other_without_a_cycle():
    folder = pathlib.Path(tuning.__file__).parent
    modules = {f"keras_deeprnn.tuning.{p.stem}": p for p in folder.glob("*.py")
               if p.stem not in ("__init__", "__main__")}
    graph = {}
    for module, path in modules.items():
        imports = package_imports(path)
        late = [name for name, at_top in imports if not at_top]
        assert not late, f"{module} imports {late} inside a function or block"
        assert not any(name.startswith("keras_deeprnn.cli") for name, _ in imports), module
        graph[module] = {m for m in modules for name, _ in imports
                         if name == m or name.startswith(m + ".")} - {module}
    # Depth-first search for a cycle.
    state = {}

    def visit(module, path):
        state[module] = "open"
        for other in graph[module]:
            assert state.get(other) != "open", f"import cycle: {' -> '.join(path + [other])}"
            if other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert graph["keras_deeprnn.tuning.report"] == {"keras_deeprnn.tuning.tuners"}


def test_the_report_columns_are_the_depth_arguments_the_rows_leave_free(toy_row):
    report_module = importlib.import_module("keras_deeprnn.tuning.report")
    assert report_module.depth_arguments() == (
        "num_input_layers", "num_transition_layers", "num_output_layers", "num_layers",
        "skip_connections", "residual_connections")
    toy_row(free=("shortcut",))
    assert "shortcut" in report_module.depth_arguments()
    assert "shortcut" in report_module.columns()
    ARCHITECTURES.pop("toy_rnn")
    assert "shortcut" not in report_module.columns()
