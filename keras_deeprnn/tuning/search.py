"""`run_search`: a KerasTuner search over deep RNNs on a music data set.

Its command line is `keras-deeprnn tune` (`keras_deeprnn.cli`).
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import socket
import sys
import time
import zlib

import keras
import keras_tuner

from keras_deeprnn import _checks
from keras_deeprnn.tasks import get_task
from keras_deeprnn.training import TrainConfig
from keras_deeprnn.training import fit_input
from keras_deeprnn.training.lock import RunLock
from keras_deeprnn.training.random_state import seed_everything
from keras_deeprnn.training.records import write_json
from keras_deeprnn.tuning.distribute import check_chief_address
from keras_deeprnn.tuning.distribute import even_batches
from keras_deeprnn.tuning.distribute import num_replicas
from keras_deeprnn.tuning.distribute import signal_ready
from keras_deeprnn.tuning.hypermodel import BUDGET_MODES
from keras_deeprnn.tuning.hypermodel import DeepRNNHyperModel

TUNER_LOG_DIR = "tuner_logs"
DEFAULT_DIRECTORY = "tuning_runs"
# KerasTuner reads a seed of 0 as "no seed" (`seed or random.randint(...)`),
# and seeds its draws with seed, seed + 1, ...: spreading the user's seeds
# keeps 0 a seed like any other and keeps two seeds' draws apart.
_SEED_SPREAD = 10_007
# What a search records of itself, so a resumed one keeps its space.
SPACE_FILE = "search_space.json"
# How long a worker waits for its chief to listen (the chief starts its
# server only once its tuner exists) before it gives up with a message.
CHIEF_WAIT_S = 60


def run_search(
    dataset="jsb_chorales",
    tuner="random",
    max_trials=10,
    epochs=20,
    directory=DEFAULT_DIRECTORY,
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
    bucket=False,
    patience=3,
    seed=0,
    cache_dir=None,
    callbacks=None,
    executions_per_trial=1,
    dtype_policy=None,
    verbose=None,
    hyperparameters=None,
    tune_new_entries=True,
    allow_new_entries=True,
    max_model_size=None,
):
    """Search deep RNN architectures on a polyphonic music data set.

    The data, its batches and the model's input and output are training's
    own (`keras_deeprnn.tasks.get_task("music")`, as `train` uses them):

    ```python
    task, config = get_task("music"), TrainConfig(dataset=..., limit=..., batch_size=...)
    data = task.load_data(config)
    train = task.batches(data["train"], config, training=True)    # (x, y, mask)
    valid = task.batches(data["valid"], config, training=False)
    tuner = Tuner(DeepRNNHyperModel(architectures, max_params=..., task=task,  # loss, metrics
                                    **task.build_model_kwargs(config, data)),
                  objective=Objective(task.monitor, "min"), ...)   # val_frame_nll
    tuner.search(train, validation_data=valid, epochs=epochs,
                 callbacks=[EarlyStopping(task.monitor, patience)])
    ```

    The objective is the validation negative log-likelihood per frame
    (`keras_deeprnn.metrics.FrameNLL`, nats); the frame mask is the
    `sample_weight` of every batch, so padding does not count. Each trial
    stops early after `patience` epochs without improvement.

    The same `seed` gives the same search: the tuner's draws of trials
    (`1 + seed * 10007` is KerasTuner's oracle seed, since it reads 0 as
    "random") and the order of the batches.

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
        batch_size, max_len: of the training batches (`max_len`: windows of
            that many frames; validation reads whole pieces, as `train` does).
        bucket: training batches of pieces of similar length (less padding
            in large batches; `TrainConfig.bucket`).
        patience: early stopping patience, in epochs.
        seed: seed of the tuner's draws and of the batch order (an int >= 0).
        cache_dir: cache of parsed scores (`load_music`).
        callbacks: more Keras callbacks for every trial (deep-copied).
        executions_per_trial: models trained per trial (results averaged).
        dtype_policy: e.g. `"mixed_float16"`.
        verbose: 0 silent, 1 KerasTuner's progress bars, 2 one line per epoch
            and per trial; default 1 when standard output is a terminal, else 2.
        hyperparameters, tune_new_entries, allow_new_entries, max_model_size:
            KerasTuner's, given to the tuner as they are (see
            `DeepRNNHyperModel` for how they meet `fixed` and `max_params`).

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
    _checks.non_negative_int("seed", seed)
    _checks.one_of("budget_mode", budget_mode, BUDGET_MODES)
    if verbose is None:
        verbose = default_verbosity()
    if project_name is None:
        project_name = default_project_name(dataset, tuner)
    role = distributed_role()
    if role == "chief":
        check_chief_address(os.environ["KERASTUNER_ORACLE_IP"],
                            os.environ.get("KERASTUNER_ORACLE_PORT"))
    if role == "worker" and overwrite:
        raise ValueError(
            "A worker of a distributed search must not overwrite the project the chief "
            f"serves. Received: overwrite=True with KERASTUNER_TUNER_ID="
            f"{os.environ.get('KERASTUNER_TUNER_ID')!r}; pass overwrite=True to the chief only"
        )

    with contextlib.ExitStack() as stack:
        if role == "worker":
            _wait_for_chief(os.environ["KERASTUNER_ORACLE_IP"],
                            os.environ.get("KERASTUNER_ORACLE_PORT"))
        else:
            # Two searches in one project would run the same trials and
            # overwrite each other's scores; the chief's workers share it.
            pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
            stack.enter_context(RunLock(directory, lock_file=f".{project_name}.lock",
                                        command="tune"))
        return _search_locked(
            dataset, tuner, max_trials, epochs, directory, project_name, limit, architectures,
            max_params, overwrite, distribute, budget_mode, fixed, batch_size, max_len, bucket,
            patience, seed, cache_dir, callbacks, executions_per_trial, dtype_policy, verbose,
            role, dict(hyperparameters=hyperparameters, tune_new_entries=tune_new_entries,
                       allow_new_entries=allow_new_entries, max_model_size=max_model_size))


def _search_locked(dataset, tuner, max_trials, epochs, directory, project_name, limit,
                   architectures, max_params, overwrite, distribute, budget_mode, fixed,
                   batch_size, max_len, bucket, patience, seed, cache_dir, callbacks,
                   executions_per_trial, dtype_policy, verbose, role, keras_tuner_knobs):
    # === Tuner ===
    task = get_task("music")
    config = TrainConfig(task=task.name, dataset=dataset, limit=limit, cache_dir=cache_dir,
                         batch_size=batch_size, max_len=max_len, bucket=bucket, seed=seed,
                         progress=verbose > 0)
    # The input and output sizes come from the training data, which the
    # chief never loads (and needs not: it builds no model).
    model_kwargs = dict(task.build_model_kwargs(config, None))
    model_kwargs.pop("input_dim", None)
    model_kwargs.pop("output_dim", None)
    hypermodel = DeepRNNHyperModel(
        architectures, output_activation=model_kwargs.pop("output_activation"),
        max_params=max_params, budget_mode=budget_mode, fixed={**model_kwargs, **(fixed or {})},
        distribute=distribute, dtype_policy=dtype_policy, task=task,
    )
    options = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(task.monitor, "min"),
        directory=str(directory),
        project_name=project_name,
        overwrite=overwrite,
        seed=1 + seed * _SEED_SPREAD,
        executions_per_trial=executions_per_trial,
        # KerasTuner's own: hyperparameters, tune_new_entries, allow_new_entries,
        # max_model_size.
        **keras_tuner_knobs,
    )
    if max_params is not None:
        # Trials over the budget (or, deriving, with no width that meets it)
        # fail on purpose; a run of them must not end the search (KerasTuner
        # stops after 3 consecutive failures).
        options["max_consecutive_failed_trials"] = (max_trials or 10**6) + 1
    if tuner == "hyperband":
        options.update(max_epochs=epochs, factor=3)
    else:
        options.update(max_trials=max_trials)
    if tuner == "bayesian":
        _require_bayesian()
    space = {"tuner": tuner, "dataset": str(dataset), "limit": limit,
             "architectures": hypermodel.architectures, "fixed": hypermodel.fixed,
             "max_params": max_params, "budget_mode": budget_mode, "epochs": epochs,
             "max_len": max_len, "bucket": bucket, "dtype_policy": dtype_policy}
    space = json.loads(json.dumps(space, default=_describe_setting))
    space_file = pathlib.Path(directory) / project_name / SPACE_FILE
    if not overwrite:
        _check_same_space(space_file, space)
    search_tuner = TUNERS[tuner](**options)
    if role != "worker":
        space_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(space_file, space)
    signal_ready(search_tuner.project_dir)
    if role == "chief":
        search_tuner.search(verbose=verbose)
        # The oracle saves itself before it forgets a finished trial, and only
        # workers save after that; without this the last trial would look
        # unfinished and be run again on resuming.
        search_tuner.save()
        return search_tuner

    # === Data ===
    data = task.load_data(config)
    replicas = num_replicas(distribute)
    # As `train` feeds them: on TensorFlow, through a pipeline that takes
    # batches of any length. Each trial reshuffles from its own seed.
    train_batches = _Reseedable(task, data["train"], config)
    train = fit_input(even_batches(train_batches, replicas))
    valid = fit_input(even_batches(task.batches(data["valid"], config, training=False), replicas))

    # === Search ===
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=task.monitor, mode="min", patience=patience
    )

    def seed_trial(trial_id):
        # A trial's weights, dropout and batch order depend on the search's
        # seed and the trial's id only, not on the trials run before it in
        # this process: the same search repeats its scores.
        trial_seed = zlib.crc32(f"{seed}:{trial_id}".encode()) & 0x7FFFFFFF
        seed_everything(trial_seed)
        if keras.backend.backend() == "torch":
            # Keras's torch dropout draws from torch's own generator when
            # its layer has no seed.
            import torch

            torch.manual_seed(trial_seed)
        train_batches.reseed(trial_seed)

    search_tuner.seed_trial = seed_trial
    search_tuner.search(
        train, validation_data=valid, epochs=epochs,
        shuffle=False,  # the batches shuffle themselves, from the seed
        callbacks=[early_stopping, *(callbacks or [])], verbose=verbose,
    )
    return search_tuner


class _Reseedable(keras.utils.PyDataset):
    """A task's training batches, made anew from another seed by `reseed`."""

    def __init__(self, task, split, config):
        super().__init__()
        self.task, self.split, self.config = task, split, config
        self.batches = task.batches(split, config, training=True)

    def reseed(self, seed):
        config = dataclasses.replace(self.config, seed=seed)
        self.batches = self.task.batches(self.split, config, training=True)

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]

    def on_epoch_end(self):
        self.batches.on_epoch_end()


def _describe_setting(value):
    """A setting JSON cannot hold (an initializer) as its class and config."""
    if hasattr(value, "get_config"):
        return {"class": type(value).__name__, "config": value.get_config()}
    return repr(value)


def _check_same_space(path, space):
    if not path.exists():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"The search's record '{path}' cannot be read ({err}); resume it "
                         "with overwrite=True (--overwrite) to start again.") from None
    changed = [f"{key}: saved {saved.get(key)!r}, now {space[key]!r}" for key in space
               if saved.get(key) != space[key]]
    if changed:
        raise ValueError(
            f"The search in '{path.parent}' was run with another search space, so resuming it "
            "with this one would mix the two in one report. Changed: " + "; ".join(changed)
            + ". Use another --project-name (project_name), the saved settings, or "
            "--overwrite (overwrite=True) to start this search again.")


def _wait_for_chief(host, port):
    """Return once the chief accepts connections; `ConnectionError` after
    `CHIEF_WAIT_S` seconds of refusals (KerasTuner would wait an hour)."""
    address = (host.strip().strip("[]"), int(port or 8000))
    deadline = time.monotonic() + CHIEF_WAIT_S
    while True:
        try:
            with socket.create_connection(address, timeout=2):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"No tuning chief answers at {address[0]}:{address[1]} "
                    f"(KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) after {CHIEF_WAIT_S} s "
                    f"({err.strerror or err}). Start the chief first (KERASTUNER_TUNER_ID="
                    "chief), or check the address and port.") from None
        time.sleep(0.5)


def default_project_name(dataset, tuner):
    """`"<dataset>_<tuner>"`, e.g. `jsb_chorales_random` (a file's stem for a path)."""
    return f"{pathlib.Path(str(dataset)).stem}_{tuner}"


def default_verbosity(stream=None):
    """1 (progress bars) on a terminal, else 2 (one line per epoch and per trial)."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


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


class _Declarations:
    """A hypermodel whose `build` only declares its search space."""

    def __init__(self, hypermodel):
        self.hypermodel = hypermodel

    def declare_hyperparameters(self, hp):
        self.hypermodel.declare_hyperparameters(hp)

    def build(self, hp):
        self.hypermodel.declare(hp)


class _TrialLog:
    """Appends each trial's start and end to `tuner_logs/<tuner_id>.jsonl`, so
    which process ran which trial (and for how long) is on record."""

    def __init__(self, hypermodel=None, objective=None, *args, **kwargs):
        # A DeepRNNHyperModel knows what to minimise: the task's validation measure.
        if objective is None and isinstance(getattr(hypermodel, "objective", None), str):
            objective = keras_tuner.Objective(hypermodel.objective, "min")
        super().__init__(hypermodel, objective, *args, **kwargs)

    def _populate_initial_space(self):
        # KerasTuner discovers a conditional space by building a model for
        # every branch. A DeepRNNHyperModel declares its whole space without
        # building one; building would also derive each architecture's width,
        # and one architecture that cannot meet the budget would end the
        # search instead of failing its own trials.
        if not hasattr(self.hypermodel, "declare"):
            return super()._populate_initial_space()
        hypermodel = self.hypermodel
        self.hypermodel = _Declarations(hypermodel)
        try:
            return super()._populate_initial_space()
        finally:
            self.hypermodel = hypermodel

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # KerasTuner imports tensorboard under TensorFlow even without a
        # TensorBoard callback, and tensorflow-cpu 2.21 does not install it.
        if any(type(callback).__name__ == "TensorBoard" for callback in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def search(self, *fit_args, **fit_kwargs):
        # A DeepRNNHyperModel without sizes takes them from the training data.
        adapt = getattr(self.hypermodel, "adapt", None)
        x = fit_args[0] if fit_args else fit_kwargs.get("x")
        if adapt is not None and x is not None:
            adapt(x, fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y"))
        return super().search(*fit_args, **fit_kwargs)

    def on_search_begin(self):
        super().on_search_begin()
        # verbose=2 (no terminal): one line per trial, printed here, instead
        # of KerasTuner's table of values and its notebook clearing codes.
        self._one_line = getattr(self.oracle, "verbose", None) == 2
        if self._one_line:
            self.oracle.verbose = 0

    def on_trial_begin(self, trial):
        if getattr(self, "seed_trial", None) is not None:
            self.seed_trial(trial.trial_id)
        self._trial_started = time.time()
        self._log_trial(trial, "begin")
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        seconds = time.time() - self._trial_started
        self._log_trial(trial, "end", seconds=seconds)
        if getattr(self, "_one_line", False):
            print(self._trial_line(self.oracle.get_trial(trial.trial_id), seconds), flush=True)

    def _trial_line(self, trial, seconds):
        """`Trial 3/10 COMPLETED in 42 s: val_frame_nll 8.93 (best 8.80); architecture=...`"""
        total = getattr(self.oracle, "max_trials", None)
        name = self.oracle.objective.name
        score = "" if trial.score is None else f": {name} {trial.score:.4g}"
        best = self.oracle.get_best_trials(1)
        if best and best[0].score is not None and trial.score is not None:
            score += f" (best {best[0].score:.4g})"
        values = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in trial.hyperparameters.values.items())
        count = f"{int(trial.trial_id) + 1}/{total}" if total and trial.trial_id.isdigit() else \
            trial.trial_id
        return f"Trial {count} {trial.status} in {seconds:.0f} s{score}; {values}"

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
           f"`<project>/{TUNER_LOG_DIR}/<tuner id>.jsonl`, discovers a `DeepRNNHyperModel`'s "
           "space from its declarations alone, reads its input and output sizes from the "
           "training data, minimises its `objective` unless told otherwise, and imports "
           "tensorboard only for a TensorBoard callback.")
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
