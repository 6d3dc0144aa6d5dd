"""The paper's music table on its own data: four models, four data sets, searched by KerasTuner.

    python scripts/music_table.py --data-dir DIR --worker 0/2 &     # the study, on two cores
    python scripts/music_table.py --data-dir DIR --worker 1/2
    python scripts/music_table.py --data-dir DIR --report-only      # report what is finished
    python scripts/music_table.py --data-dir DIR --report-only --readme README.md
    python scripts/music_table.py --data-dir DIR --quick            # smoke run, tiny models

`DIR` holds Boulanger-Lewandowski's four piano-roll sets in their MATLAB form
(`JSB_Chorales.mat`, `Nottingham.mat`, `MuseData.mat`, `Piano_midi.mat`);
`--datasets` picks some. For each data set, in that order:

1. **Search.** For each of the paper's rows (RNN, DT(S)-RNN, DOT(S)-RNN, a
   2-level sRNN) a KerasTuner random search (`DeepRNNHyperModel`, the
   project's tuner, objective the validation NLL) over width and the paper's
   aids (weight noise, dropout, the deep output's dropout and units) and the
   learning rate; and for the collection's best, searches over the
   collection's other models and regularisers (`CANDIDATES`: Lp units,
   zoneout, GRU and LSTM stacks). JSB Chorales is searched widely
   (`SPACES`); the larger sets around what won on JSB Chorales
   (`around_winner`), for the four rows and JSB's winning candidate only,
   with shorter schedules, since an epoch there costs four to six times as
   much.
2. **Finals.** The best trial of each row (and the best of all searches for
   the collection's best) is trained from scratch with seeds 0, 1 and 2 on
   the full schedule (`FINAL_TRAINING`: learning rate halved on plateaus,
   early stopping, the best validation epoch's weights) and scored once on
   the test split, over every time step (the paper's measure) and without
   each piece's first frame (the `T - 1` convention).

Every search and final run is a job. A finished job leaves a small record
(`results/music_table/<set>/<job>.json`: the trials, or the run's scores and
learning curve), written atomically and committed with the results, so a
later call, on this machine or another, skips it; an interrupted job resumes
from its run folder (`--runs-dir`) when that is still there. A job that
raises (a final whose loss diverged, a search that finished no trial)
leaves a record of its error instead (`<set>/failed/<job>.json`, with the
traceback): the study goes on without it and without the jobs that need it,
no worker takes it again, and the report lists it; deleting that record
retries the job. `--worker K/N` workers share the jobs through lock files,
each taking the next job that is ready (a data set's finals wait for its
searches, the larger sets' searches for JSB Chorales', so the larger sets
without `jsb` are refused while JSB's searches have no records). A worker
whose jobs wait for jobs that no worker holds stops and names them. When
no job is left to run, one worker writes `results/music_table.md`, `.json`
and `.png` (`music_table_report.py`): the first to claim the report of the
jobs' outcomes as they stand (a claim file in `--runs-dir`), so of workers
that finish together only one writes, and a later call that finds nothing
changed writes nothing. `--report-only` writes them from the records at any
time, marking what is still to run.

`--quick`: 6-unit models, one or two epochs, 3 pieces per split, 2 trials per
search, 2 seeds: a check that everything runs, with meaningless numbers.
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import pathlib
import sys
import time
import traceback
import warnings

if os.name != "nt":
    import fcntl

import keras
import keras_tuner

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import music_table_report  # noqa: E402

from keras_deeprnn import _files  # noqa: E402
from keras_deeprnn import training  # noqa: E402
from keras_deeprnn.initializers import SparseInitializer  # noqa: E402
from keras_deeprnn.tasks import get_task  # noqa: E402
from keras_deeprnn.tuning.hypermodel import DeepRNNHyperModel  # noqa: E402
from keras_deeprnn.tuning.search import TUNERS  # noqa: E402

# Data set key: (file in --data-dir, the paper's column or None).
DATASETS = {"jsb": ("JSB_Chorales.mat", "JSB Chorales"),
            "nottingham": ("Nottingham.mat", "Nottingham"),
            "musedata": ("MuseData.mat", "MuseData"),
            "piano_midi": ("Piano_midi.mat", None)}
ROWS = {"rnn": "RNN", "dts_rnn": "DT(S)-RNN", "dots_rnn": "DOT(S)-RNN", "srnn": "sRNN (2 levels)"}
# Row or candidate key: (architecture, fixed hyperparameters).
MODELS = {"rnn": ("rnn", {}), "dts_rnn": ("dts_rnn", {}),
          "dots_rnn": ("dots_rnn", {}), "srnn": ("srnn", {"num_layers": 2}),
          "dots_rnn_lp": ("dots_rnn", {"output_hidden_activation": "lp"}),
          "dts_rnn_zoneout": ("dts_rnn", {}),
          "deep_gru": ("deep_gru", {}), "deep_lstm": ("deep_lstm", {})}
CANDIDATES = ("dots_rnn_lp", "dts_rnn_zoneout", "deep_gru", "deep_lstm")
# The paper's sizes (100-400 units) and aids, the learning rate around Adam's usual.
_COMMON = {"units": [100, 150, 200, 300, 400], "dropout": [0.0, 0.2, 0.4],
           "learning_rate": [5e-4, 1e-3, 2e-3]}
SPACES = {
    "rnn": {**_COMMON, "weight_noise": [0.0, 0.075]},
    "dts_rnn": {**_COMMON, "weight_noise": [0.0, 0.075]},
    "dots_rnn": {**_COMMON, "weight_noise": [0.0, 0.075], "output_dropout": [0.0, 0.5],
                 "output_hidden_activation": ["tanh", "maxout"]},
    "srnn": {**_COMMON, "weight_noise": [0.0, 0.075]},
    # The paper's best recipe (Lp units, dropout on the deep output) with zoneout.
    "dots_rnn_lp": {"units": [150, 200, 300], "dropout": [0.0, 0.2],
                    "output_dropout": [0.3, 0.5], "zoneout": [0.0, 0.1],
                    "learning_rate": [1e-3, 2e-3]},
    "dts_rnn_zoneout": {"units": [150, 200, 300], "dropout": [0.2, 0.3],
                        "zoneout": [0.1, 0.2], "learning_rate": [1e-3, 2e-3]},
    "deep_gru": {"units": [100, 200, 300], "num_layers": [1, 2], "dropout": [0.2, 0.4],
                 "learning_rate": [1e-3, 2e-3]},
    "deep_lstm": {"units": [100, 200, 300], "num_layers": [1, 2], "dropout": [0.2, 0.4],
                  "learning_rate": [1e-3, 2e-3]},
}
# Few trials per search (the report states the time the study takes on 2 cores).
TRIALS = {"jsb": {**{row: 6 for row in ROWS}, **{c: 3 for c in CANDIDATES}}}
TRIALS_AROUND_WINNER = 2
# Batches of 2 pieces won every row of the earlier JSB study.
SEARCH_TRAINING = {"jsb": dict(batch_size=2, epochs=150, patience=6)}
SEARCH_TRAINING_LARGE = dict(batch_size=2, epochs=30, patience=3)
FINAL_TRAINING = {"jsb": dict(batch_size=2, epochs=200, patience=10, lr_patience=4)}
FINAL_TRAINING_LARGE = dict(batch_size=2, epochs=60, patience=5, lr_patience=2)
SEEDS = (0, 1, 2)
QUICK = dict(limit=3, units=[6], trials=2, seeds=(0, 1),
             search=dict(batch_size=2, epochs=1, patience=1),
             final=dict(batch_size=2, epochs=2, patience=1, lr_patience=1))
# Tuner dimensions that are not `build_model` arguments, and widths that
# must follow `units` (the hypermodel would fix them at its default).
_OPTIMIZER = ("learning_rate", "clipnorm")
_TIED_WIDTHS = ("transition_units", "output_units")
WAIT_SECONDS = 20


class StudyHyperModel(DeepRNNHyperModel):
    """`DeepRNNHyperModel` whose intermediate widths follow `units`, as in `train`."""

    def declare(self, hp):
        config = super().declare(hp)
        for name in _TIED_WIDTHS:
            config.pop(name, None)
        return config


def best_trial(trials):
    """The trial of the lowest finite `score`; `None` if none has one.

    A NaN score (a trial that diverged) compares false with every number,
    so `min` would keep one that came first: such scores are set aside.
    """
    finite = [trial for trial in trials if _finite(trial["score"])]
    return min(finite, key=lambda trial: trial["score"]) if finite else None


def _finite(score):
    return isinstance(score, (int, float)) and math.isfinite(score)


def _with_best(best):
    """The paper's rows, and `best` if it is a candidate beyond them."""
    return [*ROWS, *([best] if best is not None and best not in ROWS else [])]


def around_winner(values, space):
    """A small space about the JSB winner's `values`: its settings, and a
    width one step wider, and the other dropout, of the JSB space."""
    near = {}
    for name, choices in space.items():
        if name not in values:
            continue
        value = values[name]
        if name == "units":
            wider = [u for u in choices if u > value][:1]
            near[name] = [value, *wider]
        elif name == "dropout" and len(choices) > 1:
            others = sorted((c for c in choices if c != value), key=lambda c: abs(c - value))
            near[name] = [value, others[0]]
        else:
            near[name] = [value]
    return near


class Study:
    """The jobs of the study and how to run, record and report them."""

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.datasets = list(args.datasets)
        suffix = "-quick" if self.quick else ""
        self.runs = pathlib.Path(args.runs_dir + suffix)
        self.results = pathlib.Path(args.results_dir)
        self.records = self.results / f"music_table{suffix}"
        self.seeds = QUICK["seeds"] if self.quick else SEEDS

    # --- Jobs -----------------------------------------------------------

    def path(self, dataset):
        return self.args.data_dir / DATASETS[dataset][0]

    def record_path(self, dataset, job):
        return self.records / dataset / f"{job}.json"

    def record(self, dataset, job):
        """The job's record, or `None` while it has none (or one that cannot be read)."""
        return _read_record(self.record_path(dataset, job))

    def failure_path(self, dataset, job):
        return self.records / dataset / "failed" / f"{job}.json"

    def failure(self, dataset, job):
        """The record of the job's failure, or `None` if it has not failed."""
        return _read_record(self.failure_path(dataset, job))

    def prerequisites(self, dataset, job):
        """`(needed, awaited)`: the jobs whose records `job` reads, which must
        have succeeded before it can run, and the jobs that must be settled
        (`settled`) before it: a larger set's search reads JSB Chorales'
        search of its model and waits for all of them (they choose the
        candidate it searches); a final reads its model's search, and the
        collection's best waits for every search of its data set."""
        if job.startswith("search-"):
            if dataset == "jsb" or self.quick:
                return [], []
            return [("jsb", job)], [("jsb", f"search-{k}") for k in MODELS]
        key = job.removeprefix("final-").rsplit("-seed", 1)[0]
        awaited = [] if key in ROWS else [(dataset, f"search-{k}") for k in self.models(dataset)]
        return [(dataset, f"search-{key}")], awaited

    def failed_prerequisites(self, dataset, job):
        """The failed jobs that `job` needs, directly or through the jobs it needs."""
        failed = []
        for need in self.prerequisites(dataset, job)[0]:
            if self.record(*need) is not None:
                continue
            if self.failure(*need) is not None:
                failed.append(need)
            else:
                failed += self.failed_prerequisites(*need)
        return failed

    def settled(self, dataset, job):
        """Whether `job` will not run (again): it has a record, or it failed,
        or a job it needs failed."""
        return (self.record(dataset, job) is not None or self.failure(dataset, job) is not None
                or bool(self.failed_prerequisites(dataset, job)))

    def ready(self, dataset, job):
        """Whether `job`'s prerequisites allow it to run now."""
        needed, awaited = self.prerequisites(dataset, job)
        return (all(self.record(*need) is not None for need in needed)
                and all(self.settled(*wait) for wait in awaited))

    def space(self, dataset, key):
        if self.quick:
            return {"units": QUICK["units"], "dropout": [0.0, 0.2], "learning_rate": [3e-3]}
        if dataset == "jsb":
            return SPACES[key]
        winner = self.record("jsb", f"search-{key}")
        return around_winner(winner["best"]["values"], SPACES[key])

    def trials(self, dataset, key):
        if self.quick:
            return QUICK["trials"]
        return TRIALS["jsb"][key] if dataset == "jsb" else TRIALS_AROUND_WINNER

    def search_settings(self, dataset):
        if self.quick:
            return QUICK["search"]
        return SEARCH_TRAINING.get(dataset, SEARCH_TRAINING_LARGE)

    def final_settings(self, dataset):
        if self.quick:
            return QUICK["final"]
        return FINAL_TRAINING.get(dataset, FINAL_TRAINING_LARGE)

    def models(self, dataset):
        """The models searched on `dataset`: every one on JSB Chorales; on a
        larger set the paper's rows and the candidate that won on JSB."""
        if dataset == "jsb" or self.quick:
            return list(MODELS)
        if not all(self.settled("jsb", f"search-{k}") for k in MODELS):
            return list(ROWS)
        return _with_best(self.best_search("jsb"))

    def jobs(self):
        """`(dataset, job, ready)` for every job, in the order they run.

        A paper row's finals are ready once its own search is done, and come
        before the searches still to run, so that a study cut short has whole
        cells of the table rather than searches without finals; the
        collection's best waits for every search of its data set, and is
        chosen among those that succeeded. On the larger sets the first seed
        of every data set comes before the second and third, so that a study
        cut short has every column. A job that failed, or that needs one
        that failed, is `settled`: listed, but never run.
        """
        first, later = [], []
        for dataset in self.datasets:
            needs_jsb = dataset != "jsb" and not self.quick
            searches = [f"search-{key}" for key in self.models(dataset)]
            searched = all(self.settled(dataset, job) for job in searches)
            for seed in self.seeds:
                queue = first if seed == self.seeds[0] or not needs_jsb else later
                for key in self.finalists(dataset) if searched else self.models(dataset):
                    job = f"final-{key}-seed{seed}"
                    queue.append((dataset, job, self.ready(dataset, job)))
            for job in searches:
                first.append((dataset, job, self.ready(dataset, job)))
        return first + later

    def todo(self):
        """The `jobs` that are not `settled`: those still to run."""
        return [(d, j, ready) for d, j, ready in self.jobs() if not self.settled(d, j)]

    def finalists(self, dataset):
        """The four rows, and the candidate that won the search if one did."""
        return _with_best(self.best_search(dataset))

    def best_search(self, dataset):
        """The model whose search found the lowest validation score on
        `dataset`; `None` while no search has a finite one."""
        scored = {}
        for key in self.models(dataset):
            record = self.record(dataset, f"search-{key}")
            if record is not None and _finite(record["best"]["score"]):
                scored[key] = record["best"]["score"]
        return min(scored, key=scored.get) if scored else None

    # --- Running --------------------------------------------------------

    def run_job(self, dataset, job):
        """Run `job` and write its record; if it raises, write a record of
        the failure instead (`failure`), so that the study goes on without
        it. Returns whether it succeeded."""
        started = time.time()
        try:
            if job.startswith("search-"):
                record = self.search(dataset, job.removeprefix("search-"))
            else:
                key, seed = job.removeprefix("final-").rsplit("-seed", 1)
                record = self.final(dataset, key, int(seed))
        except Exception as error:  # one job's failure must not end the study
            path = self.failure_path(dataset, job)
            _write_json(path, dict(
                kind="failure", dataset=dataset, job=job, error=type(error).__name__,
                message=str(error), traceback="".join(traceback.format_exception(error)),
                failed_at=datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"),
                job_seconds_this_call=round(time.time() - started, 1),
                backend=keras.backend.backend()))
            traceback.print_exc()
            print(f"=== [{dataset}] {job} failed ({type(error).__name__}: {error}); "
                  f"recorded in {path}, and the study goes on without it ===", flush=True)
            return False
        finally:
            keras.backend.clear_session()
        record["job_seconds_this_call"] = round(time.time() - started, 1)
        _write_json(self.record_path(dataset, job), record)
        return True

    def search(self, dataset, key):
        architecture, fixed = MODELS[key]
        task = get_task("music")
        settings = self.search_settings(dataset)
        config = training.TrainConfig(dataset=str(self.path(dataset)), seed=0,
                                      batch_size=settings["batch_size"],
                                      limit=QUICK["limit"] if self.quick else None,
                                      progress=not self.args.quiet)
        data = task.load_data(config)
        hypermodel = StudyHyperModel(
            [architecture], **_io(task, config, data), task=task,
            fixed={"masking": False, "recurrent_initializer": SparseInitializer()})
        space = self.space(dataset, key)
        hp = keras_tuner.HyperParameters()
        for name, values in space.items():
            if hypermodel.where(name) or name in _OPTIMIZER:
                hp.Choice(name, values)
        for name, value in {"clipnorm": 1.0, **fixed}.items():
            hp.Fixed(name, value)
        keras.utils.set_random_seed(0)
        tuner = TUNERS["random"](
            hypermodel, objective=keras_tuner.Objective(task.monitor, "min"),
            max_trials=self.trials(dataset, key), hyperparameters=hp, tune_new_entries=False,
            directory=str(self.runs / dataset), project_name=f"search-{key}", seed=1,
            overwrite=False)
        tuner.search(
            training.fit_input(task.batches(data["train"], config, training=True)),
            validation_data=training.fit_input(task.batches(data["valid"], config,
                                                            training=False)),
            epochs=settings["epochs"], shuffle=False, verbose=0 if self.args.quiet else 2,
            callbacks=[keras.callbacks.EarlyStopping(task.monitor, mode="min",
                                                     patience=settings["patience"])])
        tuner.save()
        trials = []
        chosen_names = set(space) | set(fixed) | {"clipnorm"}
        for trial in tuner.oracle.trials.values():
            if trial.score is None:
                continue
            metrics = trial.metrics.metrics
            trials.append(dict(
                trial=trial.trial_id, score=float(trial.score), best_epoch=trial.best_step + 1,
                values={k: v for k, v in trial.hyperparameters.values.items()
                        if k in chosen_names},
                parameters=int(metrics["num_params"].get_last_value())
                if "num_params" in metrics else None,
                fit_seconds=round(metrics["fit_seconds"].get_last_value(), 1)
                if "fit_seconds" in metrics else None))
        best = best_trial(trials)
        if best is None:
            raise RuntimeError(f"The search {dataset}/{key} finished no trial with a finite "
                               f"validation score (of {len(trials)} scored trials).")
        return dict(kind="search", dataset=dataset, key=key, architecture=architecture,
                    space=space, fixed=fixed, settings=settings,
                    max_trials=self.trials(dataset, key), trials=trials, best=best,
                    backend=keras.backend.backend())

    def final_config(self, dataset, key, seed):
        architecture, _ = MODELS[key]
        values = dict(self.record(dataset, f"search-{key}")["best"]["values"])
        settings = dict(self.final_settings(dataset))
        settings["learning_rate"] = values.pop("learning_rate")
        settings["clipnorm"] = values.pop("clipnorm")
        return training.TrainConfig(
            dataset=str(self.path(dataset)), architecture=architecture, seed=seed,
            recurrent_initializer="sparse", progress=not self.args.quiet,
            limit=QUICK["limit"] if self.quick else None,
            run_dir=str(self.runs / dataset / f"final-{key}" / f"seed{seed}"),
            **settings, **values)

    def final(self, dataset, key, seed):
        config = self.final_config(dataset, key, seed)
        result = training.train(config)
        state = json.loads((pathlib.Path(config.run_dir) / training.STATE_FILE).read_text())
        history = state["history"]
        return dict(kind="final", dataset=dataset, key=key, seed=seed,
                    test=result["test"], paper=result["paper"],
                    best_valid=result["best_valid"], best_epoch=result["best_epoch"],
                    epochs_run=result["epochs_run"], stopped_early=result["stopped_early"],
                    parameters=result["parameters"], train_time_s=result["train_time_s"],
                    config={k: v for k, v in result["config"].items()
                            if k not in ("run_dir", "cache_dir", "progress", "dataset")},
                    curves={"valid": history.get("val_frame_nll", []),
                            "train": history.get("frame_nll", [])},
                    backend=result["backend"], keras_version=result["keras_version"])

    def work(self, worker, workers):
        """Take ready jobs no other worker holds until none is left.

        Returns whether this worker is the one to write the report
        (`claim_report`). Raises `Stuck` when jobs are left, none is ready
        and no worker holds a claim: they wait for jobs that nothing is
        running.
        """
        self.records.mkdir(parents=True, exist_ok=True)
        while True:
            todo = self.todo()
            if not todo:
                return self.claim_report()
            ready = [(d, j) for d, j, ok in todo if ok]
            ours = sorted(range(len(ready)), key=lambda i: i % workers != worker)
            ran = False
            for index in ours:
                dataset, job = ready[index]
                with _claim(self.runs / ".claims" / f"{dataset}-{job}") as claimed:
                    if not claimed or self.settled(dataset, job):
                        continue
                    print(f"\n=== [{dataset}] {job} (worker {worker}/{workers}) ===",
                          flush=True)
                    self.run_job(dataset, job)
                    ran = True
                    break  # readiness may have changed: look again
            if not ran:
                if not ready and not _claims_held(self.runs / ".claims"):
                    # A job that ended while we looked has its record by now.
                    todo = self.todo()
                    if todo and not any(ok for _, _, ok in todo):
                        raise Stuck(self.stuck_message(todo))
                    continue
                print(f"Waiting: {len(todo)} jobs left, none free for worker {worker}",
                      flush=True)
                time.sleep(WAIT_SECONDS)

    def claim_report(self):
        """Whether this worker writes the report of the finished jobs: the
        first worker to ask for their outcomes as they are now.

        The claim is a file named by a digest of every job's outcome (its
        record, or its failure's, and when that was written; or neither: not
        run for a failed job it needs), created only if it is not there yet,
        in one step: of workers that run out of jobs together one wins, and
        a call that finds the records as an earlier one left them writes
        nothing. A job run again later changes the outcomes, so the study's
        next end is reported again.
        """
        outcomes = []
        for dataset, job, _ in self.jobs():
            for path in (self.record_path(dataset, job), self.failure_path(dataset, job)):
                if path.exists():
                    outcomes.append(f"{path.relative_to(self.records)} {path.stat().st_mtime_ns}")
                    break
            else:
                outcomes.append(f"{dataset}/{job} not run")
        digest = hashlib.sha256("\n".join(outcomes).encode()).hexdigest()[:24]
        path = self.runs / ".reports" / digest
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def waiting_for(self, todo):
        """The jobs that the jobs of `todo` wait for and that are not in `todo`
        (all that they wait for if every one is), in order."""
        listed = {(d, j) for d, j, _ in todo}
        waited, outside = [], []
        for dataset, job, ready in todo:
            if ready:
                continue
            needed, awaited = self.prerequisites(dataset, job)
            for prerequisite in [*(n for n in needed if self.record(*n) is None),
                                 *(a for a in awaited if not self.settled(*a))]:
                if prerequisite not in waited:
                    waited.append(prerequisite)
                    if prerequisite not in listed:
                        outside.append(prerequisite)
        return outside or waited

    def stuck_message(self, todo):
        waited = self.waiting_for(todo)
        return (f"no job can start and no worker holds a claim: the {len(todo)} jobs left of "
                f"--datasets {' '.join(self.datasets)} wait for "
                f"{', '.join(f'{d}: {j}' for d, j in waited)}, which "
                f"{'has' if len(waited) == 1 else 'have'} no record under {self.records}. "
                "Run those first (with their data sets in --datasets), then call again.")

    def report(self, seconds):
        summary = music_table_report.summarise(self, seconds)
        name = "music_table_quick" if self.quick else "music_table"
        _write_json(self.results / f"{name}.json", summary)
        _write_text(self.results / f"{name}.md", music_table_report.markdown(summary))
        music_table_report.plot(summary, self.results / f"{name}.png")
        print(f"Wrote {self.results / name}.md, .json and .png", flush=True)
        if getattr(self.args, "readme", None) is not None:
            music_table_report.fill_readme(summary, self.args.readme)
            print(f"Wrote the table into {self.args.readme}", flush=True)


def _read_record(path):
    """The JSON object in `path`; `None` if there is no such file, or if
    it cannot be read (empty, or cut short by a crash): then with a warning
    naming it, and the job it records counts as not run, so it runs again."""
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as error:  # empty, cut short, or not UTF-8
        problem = f"not JSON ({error})"
    else:
        if isinstance(value, dict) and value:
            return value
        problem = f"a JSON {type(value).__name__} {value!r:.40}, where a record is an object"
    warnings.warn(f"The job record {path} cannot be read: {problem}. Its job counts as not "
                  "run and runs again, replacing it.", RuntimeWarning, stacklevel=2)
    return None


class Stuck(RuntimeError):
    """Jobs are left that wait for jobs nothing is running."""


def _write_json(path, value):
    _write_text(path, json.dumps(value, indent=1) + "\n")


def _write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    _files.write_text(path, text)


def _io(task, config, data):
    kwargs = dict(task.build_model_kwargs(config, data))
    return {key: kwargs[key] for key in ("input_dim", "output_dim", "output_activation")}


def _claims_held(folder):
    """Whether a worker, here or in another process, holds a claim in `folder`."""
    if not folder.is_dir():
        return False
    for path in sorted(folder.iterdir()):
        with _claim(path) as free:
            if not free:
                return True
    return False


@contextlib.contextmanager
def _claim(path):
    """Hold `path`'s lock while the job runs; yields whether it was free."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=pathlib.Path, required=True, metavar="DIR",
                        help="folder of JSB_Chorales.mat, Nottingham.mat, MuseData.mat, "
                             "Piano_midi.mat")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                        help="which data sets (default: all four, in this order)")
    parser.add_argument("--worker", default="0/1", type=_worker, metavar="K/N",
                        help="this is worker K of N sharing the jobs (default: 0/1)")
    parser.add_argument("--runs-dir", default="runs/music_table",
                        help="run folders and searches (default: runs/music_table)")
    parser.add_argument("--results-dir", default="results",
                        help="the report and the job records (default: results)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report the finished jobs")
    parser.add_argument("--readme", type=pathlib.Path, metavar="README.md",
                        help="also write the table between the music-table markers of this file")
    parser.add_argument("--quick", action="store_true", help="tiny models, a smoke run")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    missing = [DATASETS[d][0] for d in args.datasets
               if not (args.data_dir / DATASETS[d][0]).is_file()]
    if missing:
        parser.error(f"--data-dir {args.data_dir} lacks {', '.join(missing)}; expected the "
                     "MATLAB piano-roll files of the chosen --datasets")
    started = time.time()
    study = Study(args)
    if not args.report_only and not args.quick and "jsb" not in args.datasets:
        # The larger sets search around JSB Chorales' winners: without its
        # searches' records, and with nothing to run them, they would wait.
        missing = [f"search-{key}" for key in MODELS if not study.settled("jsb", f"search-{key}")]
        if missing:
            parser.error(
                f"--datasets {' '.join(args.datasets)} leaves out jsb, but the larger sets' "
                f"searches start from JSB Chorales' searches, and {study.records / 'jsb'} has "
                f"no record of {', '.join(missing)}; pass --datasets jsb "
                f"{' '.join(args.datasets)} (JSB Chorales' searches then run first), or run "
                "--datasets jsb before")
    if not args.report_only:
        try:
            writes_report = study.work(*args.worker)
        except Stuck as error:
            print(f"{parser.prog}: stopped: {error}", file=sys.stderr, flush=True)
            return 1
        if not writes_report:
            print("Every job has finished; the report of these records is another worker's "
                  "to write, or written already (--report-only writes it again).", flush=True)
            return 0
    study.report(time.time() - started)
    return 0


def _worker(text):
    try:
        worker, workers = (int(part) for part in text.split("/"))
    except ValueError:
        worker = workers = -1
    if not 0 <= worker < workers:
        raise argparse.ArgumentTypeError(
            f"expected K/N with 0 <= K < N (e.g. 0/2); received {text!r}")
    return worker, workers


if __name__ == "__main__":
    sys.exit(main())
