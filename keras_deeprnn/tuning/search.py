"""`run_search`: a KerasTuner search over deep RNNs on a music data set, and its CLI."""

import argparse
import ast
import json
import os
import pathlib
import time

import keras
import keras_tuner

from keras_deeprnn import _checks
from keras_deeprnn.data.music import load_music
from keras_deeprnn.data.music import piano_roll_batches
from keras_deeprnn.tuning.distribute import even_batches
from keras_deeprnn.tuning.distribute import num_replicas
from keras_deeprnn.tuning.hypermodel import BUDGET_MODES
from keras_deeprnn.tuning.hypermodel import DeepRNNHyperModel

TUNER_LOG_DIR = "tuner_logs"


def run_search(
    dataset="jsb_chorales",
    tuner="random",
    max_trials=10,
    epochs=20,
    directory="tuning_runs",
    project_name=None,
    limit=None,
    architectures=None,
    max_params=None,
    overwrite=False,
    distribute=None,
    *,
    budget_mode="skip",
    fixed=None,
    batch_size=16,
    max_len=None,
    patience=3,
    seed=0,
    cache_dir=None,
    callbacks=None,
    executions_per_trial=1,
    dtype_policy=None,
    verbose=1,
):
    """Search deep RNN architectures on a polyphonic music data set.

    ```python
    data = load_music(dataset, limit=limit)
    train = piano_roll_batches(data["train"], batch_size)    # (x, y, mask)
    valid = piano_roll_batches(data["valid"], batch_size, shuffle=False)
    tuner = Tuner(DeepRNNHyperModel(architectures, max_params=..., ...),
                  objective=Objective("val_frame_nll", "min"), ...)
    tuner.search(train, validation_data=valid, epochs=epochs,
                 callbacks=[EarlyStopping("val_frame_nll", patience)])
    ```

    The objective is the validation negative log-likelihood per frame
    (`keras_deeprnn.metrics.FrameNLL`, nats); the frame mask is the
    `sample_weight` of every batch, so padding does not count. Each trial
    stops early after `patience` epochs without improvement.

    The search lives in `directory/project_name`. With `overwrite=False` (the
    default) a search that was interrupted resumes where it stopped: the
    finished trials are kept, the trial that was running is run again, and
    the search goes on up to `max_trials` trials in total. Each process
    appends what it ran to `directory/project_name/tuner_logs/<tuner id>.jsonl`.

    In KerasTuner's chief/worker mode (the `KERASTUNER_*` environment
    variables, see `keras_deeprnn.tuning`) the chief only serves trials (it
    loads no data) and returns when the workers are done.

    Args:
        dataset: a name of `keras_deeprnn.data.MUSIC_DATASETS`, a
            Boulanger-Lewandowski pickle or a folder of scores (`load_music`).
        tuner: `"random"`, `"grid"`, `"bayesian"` (needs scikit-learn and
            scipy) or `"hyperband"`.
        max_trials: trials in total (`None` lets a grid run to its end);
            Hyperband ignores it and runs the trials its brackets need for
            `max_epochs=epochs`.
        epochs: epochs per trial (at most).
        directory, project_name: where the search is kept (project name
            default: `"<dataset>_<tuner>"`).
        limit: parse at most this many pieces (`load_music`), for quick runs.
        architectures: names to search over (default all).
        max_params: parameter budget; budget_mode: `"skip"` or `"derive"`
            (see `DeepRNNHyperModel`).
        overwrite: start afresh instead of resuming.
        distribute: `None` or `"data_parallel"` (each trial on every local
            device; see `distribution_scope`).
        fixed: `{name: value}` settings held fixed (see `DeepRNNHyperModel`).
        batch_size, max_len: of the piano-roll batches.
        patience: early stopping patience, in epochs.
        seed: seed of the tuner and of the batch order.
        cache_dir: cache of parsed scores (`load_music`).
        callbacks: more Keras callbacks for every trial (deep-copied).
        executions_per_trial: models trained per trial (results averaged).
        dtype_policy: e.g. `"mixed_float16"`.
        verbose: 0 silent, 1 KerasTuner's progress, 2 one line per epoch.

    Returns:
        The tuner, e.g. for `tuner.get_best_hyperparameters()`.

    Example:

    ```python
    tuner = run_search("jsb_chorales", "random", max_trials=20, epochs=10,
                       architectures=["rnn", "dts_rnn", "dots_rnn", "srnn"],
                       max_params=100_000, budget_mode="derive")
    report("tuning_runs", "jsb_chorales_random", "report")
    ```
    """
    # === Arguments ===
    _checks.one_of("tuner", tuner, TUNERS)
    if max_trials is not None:
        _checks.positive_int("max_trials", max_trials)
    elif tuner in ("random", "bayesian"):
        raise ValueError(
            f"tuner='{tuner}' needs a number of trials. Received: max_trials=None; "
            "expected a positive integer"
        )
    _checks.positive_int("epochs", epochs)
    _checks.positive_int("patience", patience)
    _checks.one_of("budget_mode", budget_mode, BUDGET_MODES)
    if project_name is None:
        project_name = f"{pathlib.Path(str(dataset)).stem}_{tuner}"
    role = distributed_role()
    if role == "worker" and overwrite:
        raise ValueError(
            "A worker of a distributed search must not overwrite the project the chief "
            f"serves. Received: overwrite=True with KERASTUNER_TUNER_ID="
            f"{os.environ.get('KERASTUNER_TUNER_ID')!r}; pass overwrite=True to the chief only"
        )

    # === Tuner ===
    hypermodel = DeepRNNHyperModel(
        architectures, max_params=max_params, budget_mode=budget_mode, fixed=fixed,
        distribute=distribute, dtype_policy=dtype_policy,
    )
    options = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(hypermodel.objective, "min"),
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
        seed=seed,
        executions_per_trial=executions_per_trial,
    )
    if budget_mode == "skip" and max_params is not None:
        # Trials over the budget fail on purpose; a run of them must not end
        # the search (KerasTuner stops after 3 consecutive failures).
        options["max_consecutive_failed_trials"] = (max_trials or 10**6) + 1
    if tuner == "hyperband":
        options.update(max_epochs=epochs, factor=3)
    else:
        options.update(max_trials=max_trials)
    if tuner == "bayesian":
        _require_bayesian()
    search_tuner = TUNERS[tuner](**options)
    if role == "chief":
        search_tuner.search(verbose=verbose)
        # The oracle saves itself before it forgets a finished trial, and only
        # workers save after that; without this the last trial would look
        # unfinished and be run again on resuming.
        search_tuner.save()
        return search_tuner

    # === Data ===
    data = load_music(dataset, limit=limit, cache_dir=cache_dir, progress=verbose > 0)
    for split in ("train", "valid"):
        if not data[split]:
            raise ValueError(
                f"The '{split}' split of {dataset!r} is empty (limit={limit!r}). "
                "Expected pieces in train and valid; raise `limit` (5 or more)"
            )
    replicas = num_replicas(distribute)
    train = even_batches(
        piano_roll_batches(data["train"], batch_size, seed=seed, max_len=max_len), replicas
    )
    valid = even_batches(
        piano_roll_batches(data["valid"], batch_size, shuffle=False, max_len=max_len), replicas
    )

    # === Search ===
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=hypermodel.objective, mode="min", patience=patience
    )
    search_tuner.search(
        train, validation_data=valid, epochs=epochs,
        callbacks=[early_stopping, *(callbacks or [])], verbose=verbose,
    )
    return search_tuner


def distributed_role():
    """`"chief"`, `"worker"` or `None`, from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _require_bayesian():
    try:
        import scipy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "tuner='bayesian' needs scikit-learn and scipy: "
            'pip install "keras-tuner[bayesian]" (or scikit-learn scipy)'
        ) from error


class _TrialLog:
    """Appends each trial's start and end to `tuner_logs/<tuner_id>.jsonl`, so
    which process ran which trial (and for how long) is on record."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # KerasTuner imports tensorboard under TensorFlow even without a
        # TensorBoard callback, and tensorflow-cpu 2.21 does not install it.
        if any(type(callback).__name__ == "TensorBoard" for callback in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def on_trial_begin(self, trial):
        self._trial_started = time.time()
        self._log_trial(trial, "begin")
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self._log_trial(trial, "end", seconds=time.time() - self._trial_started)

    def _log_trial(self, trial, event, **extra):
        folder = pathlib.Path(self.project_dir) / TUNER_LOG_DIR
        folder.mkdir(parents=True, exist_ok=True)
        line = dict(
            event=event, trial_id=trial.trial_id, tuner_id=self.tuner_id,
            status=trial.status, pid=os.getpid(), time=time.time(), **extra,
        )
        with open(folder / f"{self.tuner_id}.jsonl", "a") as stream:
            stream.write(json.dumps(line) + "\n")


def _with_trial_log(tuner_class):
    doc = (f"`keras_tuner.{tuner_class.__name__}` that appends each trial's start and end to "
           f"`<project>/{TUNER_LOG_DIR}/<tuner id>.jsonl` and imports tensorboard only for a "
           "TensorBoard callback.")
    return type(tuner_class.__name__, (_TrialLog, tuner_class),
                {"__doc__": doc, "__module__": __name__})


# KerasTuner's tuners, each recording which process ran which trial; under
# TensorFlow >= 2.21 (which no longer installs tensorboard) the stock ones
# need `pip install tensorboard`, these do not.
TUNERS = {
    name: _with_trial_log(tuner_class)
    for name, tuner_class in (
        ("random", keras_tuner.RandomSearch),
        ("grid", keras_tuner.GridSearch),
        ("bayesian", keras_tuner.BayesianOptimization),
        ("hyperband", keras_tuner.Hyperband),
    )
}


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser(prog="python -m keras_deeprnn.tuning"):
    """The flags of `python -m keras_deeprnn.tuning` (and `keras-deeprnn tune`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Search deep RNN architectures on polyphonic music with KerasTuner, "
        "then write a report of the trials.",
    )
    parser.add_argument("--dataset", default="jsb_chorales",
                        help="built-in name, Boulanger-Lewandowski pickle or folder of scores")
    parser.add_argument("--tuner", default="random", choices=sorted(TUNERS))
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--directory", default="tuning_runs")
    parser.add_argument("--project-name", default=None)
    parser.add_argument("--limit", type=int, default=None, help="parse at most this many pieces")
    parser.add_argument("--architectures", default=None,
                        help="comma-separated names (default: all)")
    parser.add_argument("--max-params", type=int, default=None)
    parser.add_argument("--budget-mode", default="skip", choices=BUDGET_MODES)
    parser.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    parser.add_argument("--distribute", default=None, choices=["data_parallel"])
    parser.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                        help="hold a setting fixed, e.g. --fixed units=64 (repeatable)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-len", type=int, default=None)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--dtype-policy", default=None)
    parser.add_argument("--report-dir", default=None,
                        help="default: <directory>/<project-name>/report")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--verbose", type=int, default=1)
    return parser


def parse_args(argv, prog="python -m keras_deeprnn.tuning"):
    """Parsed flags, with the project name filled in and `--fixed` read."""
    args = build_parser(prog).parse_args(argv)
    if args.project_name is None:
        args.project_name = f"{pathlib.Path(args.dataset).stem}_{args.tuner}"
    args.fixed = dict(_parse_fixed(item) for item in args.fixed)
    return args


def _parse_fixed(item):
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise SystemExit(f"--fixed expects NAME=VALUE. Received: {item!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word such as tanh
    return name.strip(), value


def main(argv=None, prog="python -m keras_deeprnn.tuning"):
    """`python -m keras_deeprnn.tuning [flags]`: run a search, then report it.

    `argv` defaults to `sys.argv[1:]`; `prog` names the command in `--help`
    (`"keras-deeprnn tune"` when called from the package's command line).
    Returns the exit status.

    Example:

    ```
    python -m keras_deeprnn.tuning --dataset jsb_chorales --tuner hyperband \\
        --max-trials 30 --epochs 20 --architectures rnn,dts_rnn,dots_rnn,srnn \\
        --max-params 100000 --budget-mode derive
    ```
    """
    from keras_deeprnn.tuning.report import report  # report.py imports this module

    args = parse_args(argv, prog)
    run_search(
        dataset=args.dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
        directory=args.directory, project_name=args.project_name, limit=args.limit,
        architectures=args.architectures, max_params=args.max_params,
        overwrite=args.overwrite, distribute=args.distribute, budget_mode=args.budget_mode,
        fixed=args.fixed, batch_size=args.batch_size, max_len=args.max_len,
        patience=args.patience, seed=args.seed, cache_dir=args.cache_dir,
        dtype_policy=args.dtype_policy, verbose=args.verbose,
    )
    if args.no_report or distributed_role() is not None:
        # In a distributed search the launcher reports once everyone is done.
        return 0
    written = report(args.directory, args.project_name, args.report_dir)
    print(f"Report: {written['markdown']}")
    return 0
