"""Train, checkpoint, resume and score one experiment of the paper.

`train(TrainConfig(...))` runs the whole job: it loads the data, builds the
model with `build_model`, fits it with early stopping on the validation
measure and the learning rate halved on plateaus (as the paper did), keeps a
checkpoint of every epoch, scores the best weights on the test split and
writes everything into `config.run_dir`:

| file | what |
| --- | --- |
| `state.json` | finished epochs, best validation value, history, config, backend, random state |
| `state.previous.json` | the same for the epoch before (a fallback) |
| `checkpoint-epochNNN.keras` | the model after the last (and the one before) finished epoch |
| `best-epochNNN.weights.h5` | the weights of the best validation epoch |
| `history.csv` | one row per epoch (`keras.callbacks.CSVLogger`) |
| `model.keras` | the best model, once training is over |
| `result.json` | test scores, the paper's figure, settings, timings |
| `learning_curve.png` | train and validation measure per epoch |
| `tensorboard/` | Keras's TensorBoard logs, with `tensorboard=True` |
| `.lock` | held by the `train` running there, so only one does |

Every file is written to a temporary name and moved into place with
`os.replace`, and `state.json` names the checkpoint it belongs to, so an
interrupted run (Ctrl-C, a killed job) leaves a consistent last epoch behind.
Running `train` again with the same `run_dir` continues from there, with the
random state (shuffling, dropout draws) where the interrupted run left it, so
the result is the one an uninterrupted run gives. A damaged newest state or
checkpoint falls back to the epoch before.

What differs between the paper's tasks lives in a `keras_deeprnn.tasks.Task`:
how to load the data and make batches, the arguments that fit the model to
the data, the loss, the metrics, the test measure, the published figures and
sampling. `TrainConfig.task` names a registered one (`"music"`, `"lm"`).

Checkpoints hold the classes registered by `keras_deeprnn.metrics` and
`keras_deeprnn.tasks`. `load_trained_model` imports both; with plain
`keras.models.load_model`, `import keras_deeprnn` first.
"""

import dataclasses
import errno
import importlib.util
import json
import math
import os
import pathlib
import random
import sys
import time
import warnings

import keras
import numpy as np

if os.name == "nt":
    import msvcrt
else:
    import fcntl

from keras_deeprnn import _checks
from keras_deeprnn import _files
from keras_deeprnn import compilation
from keras_deeprnn import initializers
from keras_deeprnn import run_folder
from keras_deeprnn.data import music as music_data
from keras_deeprnn.data import text as text_data
from keras_deeprnn.models import build_model
from keras_deeprnn.models import options
from keras_deeprnn.models import presets
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import Task
from keras_deeprnn.tasks import get_task

STATE_FILE = "state.json"
RESULT_FILE = "result.json"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
CURVE_FILE = "learning_curve.png"
PREVIOUS_STATE_FILE = "state.previous.json"
LOCK_FILE = ".lock"
TENSORBOARD_DIR = "tensorboard"
_STATE_KEYS = ("epoch", "best", "best_epoch", "checkpoint", "best_weights", "history",
               "stopped_early", "train_time_s", "callbacks", "config")
OPTIMIZERS = ("adam", "sgd")
# The files of a run that are opened by name (checkpoints are checked as
# the state names them).
_RUN_FILE_NAMES = (STATE_FILE, PREVIOUS_STATE_FILE, HISTORY_FILE, MODEL_FILE, RESULT_FILE,
                   CURVE_FILE, LOCK_FILE, TENSORBOARD_DIR)

# build_model's options that a run sets (declared with `train=True` in
# `keras_deeprnn.models.OPTIONS`): everything that changes the model.
DEPTH_FIELDS = tuple(name for name in options.TRAIN_FIELDS if name in presets.DEPTH_DEFAULTS)
MODEL_FIELDS = ("architecture", *options.TRAIN_FIELDS)
# The main job's sizing, where it differs from build_model's defaults. 200
# units with dropout beat 128 without (test NLL 8.93 vs 9.00 on the chorales)
# and still train in a few minutes on a CPU; 0.5 is the paper's dropout on
# the deep output.
MAIN_JOB_MODEL = {"units": 200, "dropout": 0.2, "output_dropout": 0.5}
_ModelFields = dataclasses.make_dataclass("ModelFields", options.train_fields(MAIN_JOB_MODEL))
# Fields a resumed run may change: they do not alter what the epochs already
# trained mean, only how long training goes on and where files go.
RESUMABLE_FIELDS = ("epochs", "patience", "lr_patience", "progress", "run_dir", "cache_dir",
                    "tensorboard")

@dataclasses.dataclass
class TrainConfig(_ModelFields):
    """Everything one training run depends on; saved with every checkpoint.

    The model fields (`MODEL_FIELDS`: `units`, the depth and width fields,
    dropout, ...) are `build_model`'s arguments, one per option declared with
    `train=True` in `keras_deeprnn.models.OPTIONS` (`None` takes the
    architecture's default). The defaults are the main job: a DOT(S)-RNN
    on the built-in JSB-Chorales imitation, sized to train on a laptop CPU in
    a few minutes.

    Example:

    ```python
    config = TrainConfig(architecture="srnn", num_layers=2, units=64,
                         epochs=5, limit=20, run_dir="runs/srnn-small")
    result = train(config)
    result["test"]["nll"]      # nats per frame
    ```
    """

    # What to train.
    task: str = "music"
    dataset: str = "jsb_chorales"
    architecture: str = "dots_rnn"
    # The model fields come from the options (`_ModelFields`, `MAIN_JOB_MODEL`);
    # the paper's other aids among them are weight noise (0.075 in the
    # authors' code) and "sparse" recurrent initialisation.
    # Data.
    limit: int | None = None
    max_len: int | None = None
    # Small batches: on JSB-sized data, more updates per epoch beat wider
    # batches (2 pieces reach a given NLL in about half the epochs of 8).
    batch_size: int = 2
    # Music: batches of pieces of similar length, so wide batches (a GPU's)
    # waste little padding.
    bucket: bool = False
    # Language modelling (task="lm"): characters or words, and the window of
    # truncated backpropagation through time.
    tokenization: str = "char"
    seq_len: int = 100
    # Another task's own settings (`Task.settings`), by name.
    task_settings: dict = dataclasses.field(default_factory=dict)
    # Optimisation: the paper used SGD; Adam needs no learning-rate search.
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.0
    clipnorm: float | None = 1.0
    # The main job on the chorales is still improving, slowly, at 60.
    epochs: int = 60
    patience: int = 8
    lr_patience: int = 3
    seed: int = 0
    # Bookkeeping.
    run_dir: str | None = None
    cache_dir: str | None = None
    progress: bool = True
    # Keras's TensorBoard logs in RUN_DIR/tensorboard (needs tensorflow).
    tensorboard: bool = False

    def validate(self):
        """Check every field; raises `ValueError` naming the first bad one."""
        _checks.one_of("task", self.task, TASKS)
        get_task(self.task).settings_of(self)
        _checks.one_of("optimizer", self.optimizer, OPTIMIZERS)
        _checks.one_of("tokenization", self.tokenization, ("char", "word"))
        _checks.boolean("bucket", self.bucket)
        presets.get(self.architecture).resolve(**self.depth_kwargs())
        # The model fields follow their options' rules, the ones build_model applies.
        for name in options.TRAIN_FIELDS:
            option, value = options.OPTIONS[name], getattr(self, name)
            per_level = option.per_level and isinstance(value, (list, tuple))
            for one in value if per_level else [value]:
                option.check(name, one)
        for name in ("batch_size", "epochs", "patience", "lr_patience", "seq_len"):
            _checks.positive_int(name, getattr(self, name))
        for name in ("limit", "max_len"):
            _checks.optional_positive_int(name, getattr(self, name))
        _checks.rate("momentum", self.momentum)
        _checks.positive_finite("learning_rate", self.learning_rate)
        if self.clipnorm is not None:
            _checks.positive_finite("clipnorm", self.clipnorm)
        _checks.non_negative_int("seed", self.seed)
        if self.momentum and self.optimizer != "sgd":
            raise ValueError(
                "`momentum` applies to `optimizer='sgd'` only. Received: "
                f"optimizer={self.optimizer!r}, momentum={self.momentum!r}"
            )
        return self

    def depth_kwargs(self):
        return {key: getattr(self, key) for key in DEPTH_FIELDS}

    def model_kwargs(self):
        """The `build_model` arguments this config sets (not the task's)."""
        kwargs = {key: getattr(self, key) for key in MODEL_FIELDS if key != "architecture"}
        if self.recurrent_initializer == "sparse":
            # Unseeded: drawn from NumPy's generator, which `train` seeds, so
            # every level gets its own matrix.
            kwargs["recurrent_initializer"] = initializers.SparseInitializer()
        return kwargs

    def resolved_run_dir(self):
        if self.run_dir is not None:
            return pathlib.Path(self.run_dir).expanduser()
        name = pathlib.Path(str(self.dataset)).stem.lower()
        return pathlib.Path("runs") / f"{self.architecture}-{name}"

    def to_dict(self):
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class TrainingDiverged(RuntimeError):
    """Training met a loss or validation measure that is not a finite number."""


class RunDirBusy(RuntimeError):
    """Another process is training in the same run dir."""


def train(config, *, callbacks=None):
    """Train (or resume) one run and score it on the test split.

    Args:
        config: a `TrainConfig`.
        callbacks: extra Keras callbacks, run after the checkpoint of each
            epoch has been written.

    Returns:
        The dict written to `result.json`: `test` (the task's measures with
        the best weights), `paper` (the published figure or `None`),
        `best_epoch`, `epochs_run`, `stopped_early`, `parameters`,
        `wall_time_s`, `train_time_s`, `backend`, `config` and `files`.

    Raises:
        ValueError: a bad config, a `run_dir` that holds a run of a different
            model or data, or one checkpointed on another backend.
        RunDirBusy: another process is training in `run_dir`.
        TrainingDiverged: the loss became NaN or infinite; the run dir keeps
            the last finished epoch before it.

    Example:

    ```python
    result = train(TrainConfig(units=32, epochs=2, limit=8, run_dir="runs/try"))
    print(result["test"]["nll"], result["paper"]["nll"])
    ```
    """
    started = time.time()
    config.validate()
    task = get_task(config.task)
    if config.tensorboard:
        _check_tensorboard()
    run_dir = config.resolved_run_dir()
    run_folder.check_can_hold_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    compilation.enable_persistent_cache(config.cache_dir)
    if config.tensorboard:
        _check_writable(run_dir / TENSORBOARD_DIR)
    with _RunLock(run_dir):
        # Only ever under the run dir's lock, when no save of ours is in flight.
        _files.remove_stale_temporaries(run_dir)
        return _train_locked(config, task, run_dir, started, callbacks)


def _train_locked(config, task, run_dir, started, callbacks):
    # Links are refused, never followed: a received run dir must not make
    # train read or write outside it.
    for name in _RUN_FILE_NAMES:
        run_folder.refuse_link(run_dir / name)
    _seed_everything(config.seed)
    data_record = _data_record(config)
    state, model = _resume_point(run_dir, config, data_record)
    if state is not None:
        finished = state["stopped_early"] or state["epoch"] >= config.epochs
        if finished and (run_dir / RESULT_FILE).exists():
            result = _read_json(run_dir / RESULT_FILE, missing_ok=True, damaged_ok=True)
            if result is not None:
                _say(config, f"{run_dir} holds a finished run; its result is unchanged.")
                return result

    data = task.load_data(config, saved=state.get("task_state") if state else None)
    if state is None:
        model = build_model(config.architecture, seed=config.seed, **config.model_kwargs(),
                            **task.build_model_kwargs(config, data))
        model.compile(optimizer=_optimizer(config), loss=task.loss(),
                      weighted_metrics=task.metrics())
        state = {"epoch": 0, "best": None, "best_epoch": None, "checkpoint": None,
                 "best_weights": None, "history": {}, "stopped_early": False,
                 "train_time_s": 0.0, "callbacks": {}}
        # Rows of an attempt killed before its first checkpoint back nothing.
        (run_dir / HISTORY_FILE).unlink(missing_ok=True)
    else:
        _restore_random_state(model, state.get("random_state"))
        _say(config, f"Resuming {run_dir} after epoch {state['epoch']}.")
        _truncate_csv(run_dir / HISTORY_FILE, state["epoch"])
    state["config"] = config.to_dict()
    state["data"] = data_record
    state["backend"] = keras.backend.backend()
    state["task_state"] = task.saved_state(data)
    _say(config, _describe(config, task, data, model, run_dir))

    if state["epoch"] < config.epochs and not state["stopped_early"]:
        train_batches = task.batches(data["train"], config, training=True,
                                     epoch=state["epoch"])
        plateau = keras.callbacks.ReduceLROnPlateau(
            task.monitor, factor=0.5, patience=config.lr_patience, mode="min",
            verbose=int(config.progress))
        stopping = keras.callbacks.EarlyStopping(
            task.monitor, patience=config.patience, mode="min", verbose=int(config.progress))
        keeper = _RunKeeper(run_dir, state, task.monitor, {"plateau": plateau,
                                                           "stopping": stopping})
        extra = []
        if config.tensorboard:
            extra.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_DIR)))
        model.fit(
            fit_input(train_batches),
            validation_data=fit_input(task.batches(data["valid"], config, training=False)),
            epochs=config.epochs, initial_epoch=state["epoch"],
            verbose=_verbosity(config),
            shuffle=False,  # the batches shuffle themselves, from a seed
            # The finiteness check comes first, so no callback records or
            # checkpoints a diverged epoch.
            callbacks=[_StopOnNonFinite(task.monitor, config), plateau, stopping,
                       keras.callbacks.CSVLogger(run_dir / HISTORY_FILE, append=True),
                       keeper, *extra, *task.callbacks(), *(callbacks or [])],
        )

    if state["best_weights"] is not None:
        _load_best_weights(model, run_dir, state)
    _files.write_atomically(run_dir / MODEL_FILE, model.save)
    test = task.evaluate(model, data["test"], config)
    result = {
        "task": task.name,
        "dataset": config.dataset,
        "data": data_record,
        "architecture": config.architecture,
        "test": test,
        "measure": " ".join(task.measure),
        "paper": task.paper_figure(config),
        "best_epoch": state["best_epoch"],
        "best_valid": state["best"],
        "epochs_run": state["epoch"],
        "stopped_early": state["stopped_early"],
        "parameters": int(model.count_params()),
        "wall_time_s": round(time.time() - started, 2),
        "train_time_s": round(state["train_time_s"], 2),
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "config": config.to_dict(),
        "files": {"run_dir": str(run_dir), "model": str(run_dir / MODEL_FILE),
                  "history": str(run_dir / HISTORY_FILE),
                  "learning_curve": str(run_dir / CURVE_FILE)},
    }
    if config.tensorboard:
        result["files"]["tensorboard"] = str(run_dir / TENSORBOARD_DIR)
    _plot_learning_curve(state["history"], task, state["best_epoch"], result["paper"],
                         run_dir / CURVE_FILE)
    _write_json(run_dir / RESULT_FILE, result)
    return result


def evaluate(model_or_path, *, task=None, dataset=None, split="test", limit=None,
             batch_size=16, cache_dir=None, progress=True):
    """Score a trained model (a model, a `.keras` file or a run dir) on one split.

    With a run dir, `task`, `dataset` and `limit` default to the run's own
    (and a language model's `tokenization` and `seq_len` follow the run's);
    `task` is `"music"` otherwise. A language model reads any `dataset` in
    the vocabulary of its run.

    Example:

    ```python
    evaluate("runs/dots_rnn-jsb_chorales")["nll"]
    ```
    """
    if task is not None:
        _checks.one_of("task", task, TASKS)
    _checks.one_of("split", split, music_data.SPLITS)
    compilation.enable_persistent_cache(cache_dir)
    saved, task_state, saved_data = {}, None, None
    if isinstance(model_or_path, keras.Model):
        model = model_or_path
    else:
        model, saved = load_trained_model(model_or_path)
        task_state = saved_task_state(model_or_path)
        if pathlib.Path(model_or_path).expanduser().is_dir():
            saved_data = _run_record(pathlib.Path(model_or_path).expanduser()).get("data")
    if task is None:
        task = saved.get("task", TrainConfig.task)
    _check_scorable(model, task)
    own_limit = saved.get("limit")
    if dataset is None:
        dataset = saved.get("dataset", TASKS[task].default_dataset)
        if saved_data and saved_data.get("path") and pathlib.Path(saved_data["path"]).exists():
            # Where the run read its data, whatever folder this runs from.
            dataset = saved_data["path"]
        if saved_data:
            _check_same_data(saved_data, run_folder.data_record(
                dataset, builtin=(*music_data.MUSIC_DATASETS, *text_data.EMBEDDED_CORPORA)),
                model_or_path, "scored")
        limit = own_limit if limit is None else limit
    config = TrainConfig(task=task, dataset=dataset, limit=limit, batch_size=batch_size,
                         tokenization=_saved_tokenization(saved),
                         seq_len=saved.get("seq_len", TrainConfig.seq_len),
                         task_settings=saved.get("task_settings") or {},
                         cache_dir=cache_dir, progress=progress).validate()
    keeps_state = type(TASKS[task]).saved_state is not Task.saved_state
    if task_state is None and keeps_state and saved and dataset != saved.get("dataset"):
        # A run saved before runs kept their task state: its own data gives it.
        own = dataclasses.replace(config, dataset=saved.get("dataset"), limit=own_limit)
        task_state = TASKS[task].saved_state(TASKS[task].load_data(own))
    data = TASKS[task].load_data(config, saved=task_state)
    return TASKS[task].evaluate(model, data[split], config)


# The output activation whose values each built-in task scores as probabilities.
_SCORED_ACTIVATIONS = {"music": "sigmoid", "lm": "softmax"}


def _check_scorable(model, task):
    """A `ValueError` unless `model` is a forward model whose outputs are the
    task's probabilities: a linear output would be scored as if it were
    one, and a bidirectional model reads the very frame it predicts."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    config = config if isinstance(config, dict) else {}
    found = {key: config.get(key) for key in ("output_activation", "bidirectional")}
    expected = _SCORED_ACTIVATIONS.get(task)
    if config.get("bidirectional"):
        raise ValueError(
            "evaluate scores forward models only: a bidirectional model reads the frame it "
            f"predicts, so its score means nothing. Received: {type(model).__name__} with "
            f"{found}")
    if "output_activation" not in config or (
            expected is not None and config["output_activation"] != expected):
        raise ValueError(
            f"evaluate scores a {task} model's outputs as probabilities, so it needs a "
            f"DeepRNNModel with output_activation={expected!r}. Received: "
            f"{type(model).__name__} with {found}")


def load_trained_model(path, *, compile=False):
    """`(model, config dict)` from a run dir (its best model) or a `.keras` file.

    The config is the run's `TrainConfig` as a dict (empty for a bare file).

    Example:

    ```python
    model, config = load_trained_model("runs/dots_rnn-jsb_chorales")
    ```
    """
    path = pathlib.Path(path).expanduser()
    config = {}
    if path.is_dir():
        config = _run_record(path).get("config", {})
        run_folder.refuse_link(path / MODEL_FILE)
        if not (path / MODEL_FILE).exists():
            raise ValueError(
                f"The run dir {str(path)!r} holds no {MODEL_FILE}: its training has not "
                "finished. Run `train` again with the same run_dir to finish it."
            )
        path = path / MODEL_FILE
    elif not (path.is_file() and path.suffix == ".keras"):
        raise ValueError(
            f"Expected a run dir or a `.keras` file. Received: path={str(path)!r}"
        )
    try:
        return keras.models.load_model(path, compile=compile), config
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"Cannot read the model file '{path}': it is damaged or not a "
                         f"Keras model ({type(err).__name__}: {_first_line(err)}).") from err


def _run_record(run_dir):
    """The newest readable record of a run's settings: `state.json`, else
    `state.previous.json`, else `result.json` (each holds `config`)."""
    for name in (STATE_FILE, PREVIOUS_STATE_FILE, RESULT_FILE):
        record = _read_json(pathlib.Path(run_dir) / name, missing_ok=True, damaged_ok=True)
        if record and isinstance(record.get("config"), dict):
            return record
    return {}


def saved_task_state(path):
    """What a run dir kept to read data as its model does (for a language
    model, `{"vocabulary": [...]}`), or `None` for a bare file or an old run.

    Example:

    ```python
    vocabulary = saved_task_state("runs/lm")["vocabulary"]
    ```
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_dir():
        return None
    for name in (STATE_FILE, PREVIOUS_STATE_FILE):
        state = _read_json(path / name, missing_ok=True, damaged_ok=True)
        if state and state.get("task_state"):
            return state["task_state"]
    return None


class _RunKeeper(keras.callbacks.Callback):
    """Writes the checkpoint, best weights and state of every finished epoch."""

    def __init__(self, run_dir, state, monitor, schedules):
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.monitor = monitor
        self.schedules = schedules

    def on_train_begin(self, logs=None):
        # EarlyStopping and ReduceLROnPlateau reset their counters when fit
        # starts; a resumed run carries on with the saved ones.
        for name, saved in self.state["callbacks"].items():
            for key, value in saved.items():
                if value is not None:
                    setattr(self.schedules[name], key, value)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        state = self.state
        previous = json.loads(json.dumps(_finite_or_none(state))) if state["checkpoint"] else None
        for key, value in (logs or {}).items():
            state["history"].setdefault(key, []).append(float(value))
        current = float(logs[self.monitor])
        old = [state["checkpoint"], state["best_weights"]]
        if previous is not None:
            old_previous = _read_json(self.run_dir / PREVIOUS_STATE_FILE, missing_ok=True,
                                      damaged_ok=True) or {}
            old += [old_previous.get("checkpoint"), old_previous.get("best_weights")]
        if state["best"] is None or current < state["best"]:
            state["best"], state["best_epoch"] = current, epoch + 1
            state["best_weights"] = f"best-epoch{epoch + 1:03d}.weights.h5"
            _files.write_atomically(self.run_dir / state["best_weights"], self.model.save_weights)
        state["checkpoint"] = f"checkpoint-epoch{epoch + 1:03d}.keras"
        _files.write_atomically(self.run_dir / state["checkpoint"], self.model.save)
        state["epoch"] = epoch + 1
        state["stopped_early"] = bool(self.model.stop_training)
        state["train_time_s"] += time.time() - self.epoch_started
        state["callbacks"] = {
            name: {key: _plain(getattr(callback, key))
                   for key in ("wait", "best", "cooldown_counter") if hasattr(callback, key)}
            for name, callback in self.schedules.items()
        }
        state["random_state"] = _random_state(self.model)
        # The previous epoch's state and files stay as a fallback, should the
        # newest files be damaged.
        if previous is not None:
            _write_json(self.run_dir / PREVIOUS_STATE_FILE, previous)
        # state.json is the commit point: only after it names the new files
        # may the older ones go.
        _write_json(self.run_dir / STATE_FILE, state)
        keep = {state["checkpoint"], state["best_weights"]}
        if previous is not None:
            keep |= {previous["checkpoint"], previous["best_weights"]}
        for name in old:
            if name and name not in keep and (run_folder.is_member_name(name, "checkpoint")
                                              or run_folder.is_member_name(name,
                                                                           "best_weights")):
                (self.run_dir / name).unlink(missing_ok=True)


class _StopOnNonFinite(keras.callbacks.Callback):
    """Stops training with `TrainingDiverged` when an epoch's loss or
    validation measure is NaN or infinite."""

    def __init__(self, monitor, config):
        super().__init__()
        self.monitor = monitor
        self.config = config

    def on_epoch_end(self, epoch, logs=None):
        bad = {key: float(value) for key, value in (logs or {}).items()
               if key in ("loss", "val_loss", self.monitor) and not math.isfinite(float(value))}
        if bad:
            found = ", ".join(f"{key}={value}" for key, value in sorted(bad.items()))
            raise TrainingDiverged(
                f"Training diverged in epoch {epoch + 1}: {found}. The run dir keeps the "
                f"epochs before it (learning_rate={self.config.learning_rate!r}, "
                f"weight_noise={self.config.weight_noise!r}, "
                f"clipnorm={self.config.clipnorm!r}); lower the learning rate or the "
                "weight noise, and use another run dir."
            )


# ---------------------------------------------------------------------------
# Run dir: lock, resume point, damaged files
# ---------------------------------------------------------------------------


class _RunLock:
    """An exclusive lock on a run dir for one `train` at a time.

    The operating system drops the lock when the process ends, however it
    ends, so a killed run never leaves its run dir locked.
    """

    def __init__(self, run_dir, *, lock_file=LOCK_FILE, command="train"):
        self.path = pathlib.Path(run_dir) / lock_file
        self.command = command
        self.stream = None

    def __enter__(self):
        descriptor = run_folder.open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
        self.stream = os.fdopen(descriptor, "r+", encoding="utf-8")
        try:
            _lock_file(self.stream)
        except OSError as err:
            if err.errno not in _LOCK_HELD:
                self.stream.close()
                raise
            self.stream.seek(0)
            holder = self.stream.read().strip() or "unknown"
            self.stream.close()
            where = ("training in the run dir" if self.command == "train"
                     else f"running in '{self.path}' for the folder")
            raise RunDirBusy(
                f"Another `{self.command}` (process {holder}) is {where} "
                f"'{self.path.parent}'. Wait for it to finish, or use another "
                f"{'run dir' if self.command == 'train' else 'directory or project name'}."
            ) from None
        self.stream.seek(0)
        self.stream.truncate()
        self.stream.write(str(os.getpid()))
        self.stream.flush()
        return self

    def __exit__(self, *exc):
        _unlock_file(self.stream)
        self.stream.close()
        return False


# What a lock held by another process reads as: flock's EWOULDBLOCK (EAGAIN),
# msvcrt's EACCES or EDEADLOCK.
_LOCK_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


def _lock_file(stream):
    """An exclusive, non-blocking lock on an open file; `OSError` if held."""
    if os.name == "nt":
        stream.seek(0)
        msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(stream):
    if os.name == "nt":
        stream.seek(0)
        msvcrt.locking(stream.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


def _resume_point(run_dir, config, data_record=None):
    """`(state, model)` of the last good epoch in `run_dir`, `(None, None)`
    for a new run.

    The newest state and checkpoint come first; if either is damaged the
    previous epoch's are used, with a warning naming the damaged file.
    """
    problems = []
    candidates = []
    for name in (STATE_FILE, PREVIOUS_STATE_FILE):
        try:
            state = _read_json(run_dir / name, missing_ok=True)
        except ValueError as err:
            problems.append(str(err))
            continue
        if state is None:
            continue
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            problems.append(f"'{run_dir / name}' lacks {', '.join(missing)}")
            continue
        try:
            run_folder.member(run_dir, state["checkpoint"], "checkpoint")
            if state["best_weights"] is not None:
                run_folder.member(run_dir, state["best_weights"], "best_weights")
        except ValueError as err:
            problems.append(f"'{run_dir / name}' is damaged: {err}")
            continue
        candidates.append((name, state))
    if not candidates:
        if problems:
            raise ValueError(
                f"The run dir '{run_dir}' cannot be resumed: " + "; ".join(problems)
                + ". No earlier good epoch is left; use another run dir, or delete "
                "this one to start again.")
        return None, None
    # Refused before any file is loaded: the configuration and backend are
    # the same in every state of one run.
    saved_data = candidates[0][1].get("data")
    _check_same_data(saved_data, data_record, run_dir, "resumed")
    _check_same_run(candidates[0][1]["config"], config, run_dir,
                    same_data=bool(saved_data and saved_data.get("sha256")))
    _check_same_backend(candidates[0][1], run_dir)
    for name, state in candidates:
        model = None
        checkpoint = run_dir / str(state["checkpoint"])
        try:
            model = keras.models.load_model(checkpoint)
        except Exception as err:  # noqa: BLE001 - any failure means a damaged file
            # Keras says "File not found" for a file that is there but is no
            # Keras archive; say which of the two it is.
            why = (f"it is damaged: {type(err).__name__}" if checkpoint.is_file()
                   else "it is missing")
            problems.append(f"the checkpoint '{checkpoint}' cannot be read ({why})")
            continue
        if state["best_weights"] and not (run_dir / state["best_weights"]).is_file():
            problems.append(f"the best weights '{run_dir / state['best_weights']}' are missing")
            continue
        if problems:
            warnings.warn(f"Resuming '{run_dir}' from epoch {state['epoch']} ({name}): "
                          + "; ".join(problems) + ".", stacklevel=4)
            _say(config, f"Warning: {'; '.join(problems)}; resuming from epoch "
                         f"{state['epoch']} instead.")
        return state, model
    raise ValueError(f"The run dir '{run_dir}' cannot be resumed: " + "; ".join(problems)
                     + ". Use another run dir, or delete this one to start again.")


def _check_same_backend(state, run_dir):
    saved = state.get("backend")
    current = keras.backend.backend()
    if saved is not None and saved != current:
        raise ValueError(
            f"The run in '{run_dir}' was checkpointed on the {saved} backend and cannot "
            f"be resumed on {current}: a checkpoint's optimizer belongs to the backend "
            f"that saved it. Resume it with KERAS_BACKEND={saved}, or use another run dir. "
            "(A finished run's model.keras loads on every backend.)"
        )


def _load_best_weights(model, run_dir, state):
    path = run_dir / state["best_weights"]
    try:
        model.load_weights(path)
    except Exception as err:  # noqa: BLE001 - any failure means a damaged file
        raise ValueError(f"The best weights '{path}' cannot be read ({type(err).__name__}: "
                         f"{_first_line(err)}). Delete them and the run's state.json to "
                         "train again, or use another run dir.") from err


def _random_state(model):
    """Every random state that `fit` moves: the model's seed generators and
    the NumPy and Python generators."""
    weights = {id(variable) for variable in model.weights}
    seeds = [keras.ops.convert_to_numpy(variable).tolist() for variable in model.variables
             if id(variable) not in weights and variable.name == "seed_generator_state"]
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"seed_generators": seeds,
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(gauss)],
            "python": [version, list(internal), gauss_next]}


def _restore_random_state(model, saved):
    if not saved:
        return
    weights = {id(variable) for variable in model.weights}
    seeds = [variable for variable in model.variables
             if id(variable) not in weights and variable.name == "seed_generator_state"]
    if len(seeds) == len(saved["seed_generators"]):
        for variable, value in zip(seeds, saved["seed_generators"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
    kind, keys, position, has_gauss, gauss = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = saved["python"]
    random.setstate((version, tuple(internal), gauss_next))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _seed_everything(seed):
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    # keras.utils.set_random_seed imports TensorFlow whenever it is installed,
    # seconds of start-up on the other backends, whose Keras random ops and
    # initializers draw their seeds from Python's generator.
    random.seed(seed)
    np.random.seed(seed)


def _verbosity(config):
    if not config.progress:
        return 0
    # A progress bar redraws itself many times a second: right for a
    # terminal, hundreds of kilobytes in a log file. Keras's own choice.
    return 1 if sys.stdout.isatty() else 2


def _check_tensorboard():
    missing = [name for name in ("tensorflow", "tensorboard")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            "tensorboard=True needs the tensorflow and tensorboard packages, whatever the "
            "backend: Keras's TensorBoard callback writes its logs with tf.summary. Missing: "
            f"{', '.join(missing)} (pip install tensorflow-cpu tensorboard). Or train "
            "without it: history.csv holds the same figures."
        )


def _optimizer(config):
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum,
                                    clipnorm=config.clipnorm)
    return keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm)


def fit_input(batches):
    """`batches` (a task's `PyDataset`) as `fit` should get it on this backend.

    On TensorFlow, Keras turns a PyDataset into a `tf.data` pipeline whose
    shapes are fixed by the first two batches, and batches of other lengths
    then fail. A pipeline with unknown batch and time axes avoids that.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    signature = tuple(
        tf.TensorSpec([None, None, *array.shape[2:]], tf.as_dtype(array.dtype))
        for array in batches[0]
    )
    epochs_seen = [0]

    def generate():
        # PyDataset reshuffles in on_epoch_end; tf.data may stop pulling
        # before the generator ends, so the reshuffle comes first instead.
        if epochs_seen[0]:
            batches.on_epoch_end()
        epochs_seen[0] += 1
        for index in range(len(batches)):
            yield tuple(batches[index])

    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)


def _check_same_run(saved, config, run_dir, same_data=False):
    current = config.to_dict()
    if same_data:
        # The same content under another path: the data moved.
        current = {**current, "dataset": saved.get("dataset", current["dataset"])}
    saved = dict(saved)
    if "level" in saved:  # the old name of `tokenization`
        saved.setdefault("tokenization", saved.pop("level"))
    # A field added to TrainConfig after the run was saved held its default.
    saved = {**TrainConfig().to_dict(), **saved}
    changed = [
        f"{key}: saved {saved[key]!r}, now {current[key]!r}"
        for key in current
        if key not in RESUMABLE_FIELDS and saved[key] != current[key]
    ]
    if changed:
        raise ValueError(
            f"The run dir {str(run_dir)!r} holds a run with another configuration, "
            "so it cannot be resumed with this one. Changed: " + "; ".join(changed)
            + ". Use another run dir, or the saved values (only "
            + ", ".join(RESUMABLE_FIELDS) + " may change on resume)."
        )


def _data_record(config):
    return run_folder.data_record(
        config.dataset, builtin=(*music_data.MUSIC_DATASETS, *text_data.EMBEDDED_CORPORA))


def _check_same_data(saved, current, run_dir, doing):
    if current is None or run_folder.same_data(saved, current):
        return
    where = saved.get("path") or saved.get("dataset")
    now = current.get("path") or current.get("dataset")
    raise ValueError(
        f"The run in '{run_dir}' was trained on the data at '{where}' (sha256 "
        f"{saved['sha256'][:16]}...); the data at '{now}' differs (sha256 "
        f"{current['sha256'][:16]}...), so it cannot be {doing} with it. Point it at the "
        "run's own data; to score other data on purpose, give `dataset` explicitly.")


def _check_writable(folder):
    folder.mkdir(exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied (cannot write the "
                              "TensorBoard logs)", str(folder))


def _saved_tokenization(saved):
    return saved.get("tokenization", saved.get("level", TrainConfig.tokenization))


def _describe(config, task, data, model, run_dir):
    counts = ", ".join(f"{len(data[s])} {s}" for s in music_data.SPLITS)
    limit = f" (first {config.limit} {task.limit_items} only)" if config.limit else ""
    return (f"{config.architecture} on {config.dataset}{limit}: {counts} {task.items}; "
            f"{model.count_params():,} parameters; backend {keras.backend.backend()}; "
            f"run dir {run_dir}")


def _say(config, message):
    if config.progress:
        print(message, flush=True)


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite_or_none(value):
    """`value` with every NaN and infinity replaced by `None`: strict JSON
    has no spelling for them."""
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    return value


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _write_json(path, value):
    text = json.dumps(_finite_or_none(value), indent=2, sort_keys=False, allow_nan=False)

    _files.write_text(path, text + "\n")


def _read_json(path, *, missing_ok=True, damaged_ok=False):
    """The JSON object in `path`; `None` if it is missing (with `missing_ok`)
    or damaged (with `damaged_ok`), else a `ValueError` naming the file."""
    path = run_folder.refuse_link(path)
    if not path.exists():
        if missing_ok:
            return None
        raise ValueError(f"'{path}' does not exist.")
    try:
        value = json.loads(run_folder.read_text(path))
    except (ValueError, UnicodeDecodeError) as err:
        if damaged_ok:
            return None
        raise ValueError(f"'{path}' is damaged (not valid JSON: {_first_line(err)})") from None
    if not isinstance(value, dict):
        if damaged_ok:
            return None
        raise ValueError(f"'{path}' is damaged (expected a JSON object)")
    return value


def _truncate_csv(path, epochs):
    """Keep the header and the first `epochs` rows (an interrupted epoch may
    have logged a row that no checkpoint backs)."""
    if not run_folder.refuse_link(path).exists():
        return
    lines = run_folder.read_text(path).splitlines(keepends=True)
    kept = "".join(lines[: epochs + 1])

    _files.write_text(path, kept)


def _plot_learning_curve(history, task, best_epoch, paper, path):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn(f"No learning curve: matplotlib is not installed "
                      f"({music_data.MUSIC_EXTRA_HINT}).", stacklevel=3)
        return None
    key = task.monitor[len("val_"):]
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    axes = figure.add_subplot()
    for name, label in ((key, "train"), (task.monitor, "valid")):
        values = history.get(name, [])
        axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
    if best_epoch:
        axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    if paper:
        axes.axhline(paper["nll"], color="black", linestyle="--", linewidth=0.8,
                     label=f"paper, {paper['model']} on {paper['dataset']}")
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"{task.measure[0]} ({task.measure[1]})")
    axes.legend()
    figure.tight_layout()
    _files.write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
    return path

