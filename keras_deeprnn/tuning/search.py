"""`run_search`: a KerasTuner search over deep RNNs on a music data set.

Its command line is `keras-deeprnn tune` (`keras_deeprnn.cli`).
"""

import contextlib
import dataclasses
import inspect
import json
import os
import pathlib
import sys
import types
import zlib

import keras
import keras_tuner

from keras_deeprnn import _checks
from keras_deeprnn import _files
from keras_deeprnn.tasks import get_task
from keras_deeprnn.training import TrainConfig
from keras_deeprnn.training import fit_input
from keras_deeprnn.training.lock import RunLock
from keras_deeprnn.training.random_state import seed_everything
from keras_deeprnn.training.records import write_json
from keras_deeprnn.tuning.chief_calls import bound_chief_calls
from keras_deeprnn.tuning.chief_calls import chief_timeout
from keras_deeprnn.tuning.distribute import check_chief_address
from keras_deeprnn.tuning.distribute import even_batches
from keras_deeprnn.tuning.distribute import num_replicas
from keras_deeprnn.tuning.distribute import signal_ready
from keras_deeprnn.tuning.distribute import wait_for_chief
from keras_deeprnn.tuning.hypermodel import BUDGET_MODES
from keras_deeprnn.tuning.hypermodel import DeepRNNHyperModel
from keras_deeprnn.tuning.space_record import SPACE_FILE
from keras_deeprnn.tuning.space_record import check_same_space
from keras_deeprnn.tuning.space_record import describe_setting
from keras_deeprnn.tuning.tuners import TUNERS

DEFAULT_DIRECTORY = "tuning_runs"
# KerasTuner reads a seed of 0 as "no seed" (`seed or random.randint(...)`),
# and seeds its draws with seed, seed + 1, ...: spreading the user's seeds
# keeps 0 a seed like any other and keeps two seeds' draws apart.
_SEED_SPREAD = 10_007
# How long a worker waits for its chief to listen (the chief starts its
# server only once its tuner exists) before it gives up with a message.
CHIEF_WAIT_S = 60


def run_search(
    # What to search and where the search is kept: positional, in this order.
    dataset="jsb_chorales", tuner="random", max_trials=10, epochs=20,
    directory=DEFAULT_DIRECTORY, project_name=None, limit=None, architectures=None,
    max_params=None, overwrite=False, distribute=None,
    *,
    # The models: how the budget is met, and the settings held fixed.
    budget_mode="skip", fixed=None,
    # The data and each trial's fit.
    batch_size=16, max_len=None, bucket=False, patience=3, seed=0, cache_dir=None,
    callbacks=None, executions_per_trial=1, dtype_policy=None, verbose=None,
    # The task whose models are searched, and its own settings.
    task="music", task_settings=None,
    # KerasTuner's own, given to the tuner as they are.
    hyperparameters=None, tune_new_entries=True, allow_new_entries=True, max_model_size=None,
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
    loads no data) and returns when the workers are done. A worker waits
    `CHIEF_WAIT_S` seconds for its chief to start, then up to
    `$KERAS_DEEPRNN_CHIEF_TIMEOUT` seconds (default 300) for each answer,
    and stops with a `ConnectionError` naming the chief if one does not come.

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
        task: the name of a registered task (`keras_deeprnn.tasks`) whose
            models can be searched (`Task.tunable`); its `monitor` is the
            objective, its data, batches, loss and metrics every trial's.
        task_settings: that task's own settings (`TrainConfig.task_settings`).
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
    get_task(task).check_tunable()
    if verbose is None:
        verbose = default_verbosity()
    if project_name is None:
        project_name = default_project_name(dataset, tuner)
    role = distributed_role()
    if role == "chief":
        check_chief_address(os.environ["KERASTUNER_ORACLE_IP"],
                            os.environ.get("KERASTUNER_ORACLE_PORT"))
    if role == "worker":
        chief_timeout()  # a bad $KERAS_DEEPRNN_CHIEF_TIMEOUT fails before any wait
    if role == "worker" and overwrite:
        raise ValueError(
            "A worker of a distributed search must not overwrite the project the chief "
            f"serves. Received: overwrite=True with KERASTUNER_TUNER_ID="
            f"{os.environ.get('KERASTUNER_TUNER_ID')!r}; pass overwrite=True to the chief only"
        )

    # Every argument by name, as checked and completed above.
    values = locals()
    arguments = {name: values[name] for name in inspect.signature(run_search).parameters}
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
            _remove_stale_temporaries(pathlib.Path(directory) / project_name, role)
        return _search_locked(types.SimpleNamespace(**arguments), role)


def _remove_stale_temporaries(project, role):
    """Delete what writes killed mid-way left in the project and its trial
    folders. Alone in the project (no distributed search) every temporary is
    stale; a chief's workers may be writing theirs, so it spares young ones."""
    if not project.is_dir():
        return
    older_than = 0.0 if role is None else 3600.0
    for folder in (project, *(path for path in project.iterdir() if path.is_dir())):
        _files.remove_stale_temporaries(folder, older_than=older_than)


def _search_locked(search, role):
    """`run_search` once its project is locked; `search` holds its arguments
    by name, `role` is `distributed_role()`."""
    # === Tuner ===
    task = get_task(search.task)
    config = TrainConfig(task=task.name, dataset=search.dataset, limit=search.limit,
                         cache_dir=search.cache_dir, batch_size=search.batch_size,
                         max_len=search.max_len, bucket=search.bucket, seed=search.seed,
                         progress=search.verbose > 0,
                         task_settings=dict(search.task_settings or {}))
    task.settings_of(config)
    # The input and output sizes come from the training data, which the
    # chief never loads (and needs not: it builds no model).
    model_kwargs = dict(task.build_model_kwargs(config, None))
    model_kwargs.pop("input_dim", None)
    model_kwargs.pop("output_dim", None)
    hypermodel = DeepRNNHyperModel(
        search.architectures, output_activation=model_kwargs.pop("output_activation"),
        max_params=search.max_params, budget_mode=search.budget_mode,
        fixed={**model_kwargs, **(search.fixed or {})}, distribute=search.distribute,
        dtype_policy=search.dtype_policy, task=task, batch_size=search.batch_size,
    )
    options = dict(
        hypermodel=hypermodel,
        objective=keras_tuner.Objective(task.monitor, "min"),
        directory=str(search.directory),
        project_name=search.project_name,
        overwrite=search.overwrite,
        seed=1 + search.seed * _SEED_SPREAD,
        executions_per_trial=search.executions_per_trial,
        # KerasTuner's own: hyperparameters, tune_new_entries, allow_new_entries,
        # max_model_size.
        hyperparameters=search.hyperparameters,
        tune_new_entries=search.tune_new_entries,
        allow_new_entries=search.allow_new_entries,
        max_model_size=search.max_model_size,
    )
    if search.max_params is not None:
        # Trials over the budget (or, deriving, with no width that meets it)
        # fail on purpose; a run of them must not end the search (KerasTuner
        # stops after 3 consecutive failures).
        options["max_consecutive_failed_trials"] = (search.max_trials or 10**6) + 1
    if search.tuner == "hyperband":
        options.update(max_epochs=search.epochs, factor=3)
    else:
        options.update(max_trials=search.max_trials)
    if search.tuner == "bayesian":
        _require_bayesian()
    space = {"tuner": search.tuner, "dataset": str(search.dataset), "limit": search.limit,
             "architectures": hypermodel.architectures, "fixed": hypermodel.fixed,
             "max_params": search.max_params, "budget_mode": search.budget_mode,
             "epochs": search.epochs, "max_len": search.max_len, "bucket": search.bucket,
             "dtype_policy": search.dtype_policy,
             "task": task.name, "task_settings": config.task_settings}
    space = json.loads(json.dumps(space, default=describe_setting))
    space_file = pathlib.Path(search.directory) / search.project_name / SPACE_FILE
    if not search.overwrite:
        check_same_space(space_file, space)
    search_tuner = TUNERS[search.tuner](**options)
    if role == "worker":
        bound_chief_calls(search_tuner.oracle, chief_timeout())
    if role != "worker":
        space_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(space_file, space)
    signal_ready(search_tuner.project_dir)
    if role == "chief":
        search_tuner.search(verbose=search.verbose)
        # The oracle saves itself before it forgets a finished trial, and only
        # workers save after that; without this the last trial would look
        # unfinished and be run again on resuming.
        search_tuner.save()
        return search_tuner

    # === Data ===
    data = task.load_data(config)
    replicas = num_replicas(search.distribute)
    # As `train` feeds them: on TensorFlow, through a pipeline that takes
    # batches of any length. Each trial reshuffles from its own seed.
    train_batches = _Reseedable(task, data["train"], config)
    train = fit_input(even_batches(train_batches, replicas))
    valid = fit_input(even_batches(task.batches(data["valid"], config, training=False), replicas))

    # === Search ===
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=task.monitor, mode="min", patience=search.patience
    )

    def seed_trial(trial_id):
        # A trial's weights, dropout and batch order depend on the search's
        # seed and the trial's id only, not on the trials run before it in
        # this process: the same search repeats its scores.
        trial_seed = zlib.crc32(f"{search.seed}:{trial_id}".encode()) & 0x7FFFFFFF
        seed_everything(trial_seed)
        if keras.backend.backend() == "torch":
            # Keras's torch dropout draws from torch's own generator when
            # its layer has no seed.
            import torch

            torch.manual_seed(trial_seed)
        train_batches.reseed(trial_seed)

    search_tuner.seed_trial = seed_trial
    search_tuner.search(
        train, validation_data=valid, epochs=search.epochs,
        shuffle=False,  # the batches shuffle themselves, from the seed
        callbacks=[early_stopping, *(search.callbacks or [])], verbose=search.verbose,
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


def _wait_for_chief(host, port):
    """Return once a KerasTuner chief answers; a one-line `ConnectionError`
    after `CHIEF_WAIT_S` s of refusals, or at once from a listener that is
    no chief (KerasTuner itself would wait an hour in silence)."""
    wait_for_chief(host, port, CHIEF_WAIT_S)


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
