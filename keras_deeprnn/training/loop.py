"""`train`: one run of the paper's recipe, from a `TrainConfig` to `result.json`
(the files it writes are listed in `keras_deeprnn.training`)."""

import errno
import importlib.util
import os
import sys
import time

import keras

from keras_deeprnn import _files
from keras_deeprnn import compilation
from keras_deeprnn import run_folder
from keras_deeprnn.data import text as text_data
from keras_deeprnn.data.catalogue import MUSIC_DATASETS
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.models import build_model
from keras_deeprnn.tasks import get_task
from keras_deeprnn.training.callbacks import RunKeeper
from keras_deeprnn.training.callbacks import StopOnNonFinite
from keras_deeprnn.training.config import say
from keras_deeprnn.training.inputs import fit_input
from keras_deeprnn.training.lock import RunLock
from keras_deeprnn.training.plots import plot_learning_curve
from keras_deeprnn.training.random_state import restore_random_state
from keras_deeprnn.training.random_state import seed_everything
from keras_deeprnn.training.records import CURVE_FILE
from keras_deeprnn.training.records import HISTORY_FILE
from keras_deeprnn.training.records import LOCK_FILE
from keras_deeprnn.training.records import MODEL_FILE
from keras_deeprnn.training.records import PREVIOUS_STATE_FILE
from keras_deeprnn.training.records import RESULT_FILE
from keras_deeprnn.training.records import STATE_FILE
from keras_deeprnn.training.records import TENSORBOARD_DIR
from keras_deeprnn.training.records import read_json
from keras_deeprnn.training.records import truncate_csv
from keras_deeprnn.training.records import write_json
from keras_deeprnn.training.resume import load_best_weights
from keras_deeprnn.training.resume import resume_point

# The files of a run that are opened by name (checkpoints are checked as
# the state names them).
_RUN_FILE_NAMES = (STATE_FILE, PREVIOUS_STATE_FILE, HISTORY_FILE, MODEL_FILE, RESULT_FILE,
                   CURVE_FILE, LOCK_FILE, TENSORBOARD_DIR)


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
    with RunLock(run_dir):
        # Only ever under the run dir's lock, when no save of ours is in flight.
        _files.remove_stale_temporaries(run_dir)
        return _train_locked(config, task, run_dir, started, callbacks)


def _train_locked(config, task, run_dir, started, callbacks):
    # Links are refused, never followed: a received run dir must not make
    # train read or write outside it.
    for name in _RUN_FILE_NAMES:
        run_folder.refuse_link(run_dir / name)
    seed_everything(config.seed)
    data_record = _data_record(config)
    state, model = resume_point(run_dir, config, data_record)
    if state is not None:
        finished = state["stopped_early"] or state["epoch"] >= config.epochs
        if finished and (run_dir / RESULT_FILE).exists():
            result = read_json(run_dir / RESULT_FILE, missing_ok=True, damaged_ok=True)
            if result is not None:
                say(config, f"{run_dir} holds a finished run; its result is unchanged.")
                return result

    data = task.load_data(config, saved=state.get("task_state") if state else None)
    # On TensorFlow on a CPU, XLA for the narrow models where it measured
    # faster, if this process trains enough steps to pay for compiling.
    start_epoch = state["epoch"] if state else 0
    train_batches = task.batches(data["train"], config, training=True, epoch=start_epoch)
    steps_left = (config.epochs - start_epoch) * len(train_batches)
    if state is None:
        model = build_model(config.architecture, seed=config.seed, **config.model_kwargs(),
                            **task.build_model_kwargs(config, data))
        model.compile(optimizer=_optimizer(config), loss=task.loss(),
                      weighted_metrics=task.metrics(),
                      jit_compile=compilation.choose_jit_compile(
                          model, batch_size=config.batch_size, steps=steps_left))
        state = {"epoch": 0, "best": None, "best_epoch": None, "checkpoint": None,
                 "best_weights": None, "history": {}, "stopped_early": False,
                 "train_time_s": 0.0, "callbacks": {}}
        # Rows of an attempt killed before its first checkpoint back nothing.
        (run_dir / HISTORY_FILE).unlink(missing_ok=True)
    else:
        restore_random_state(model, state.get("random_state"))
        say(config, f"Resuming {run_dir} after epoch {state['epoch']}.")
        truncate_csv(run_dir / HISTORY_FILE, state["epoch"])
        # The checkpoint's choice was for the steps left when it was made;
        # these (more epochs asked for, or fewer left) may pay otherwise.
        if steps_left > 0:
            choice = compilation.choose_jit_compile(model, batch_size=config.batch_size,
                                                    steps=steps_left)
            if isinstance(choice, bool):
                model.jit_compile = choice
    state["config"] = config.to_dict()
    state["data"] = data_record
    state["backend"] = keras.backend.backend()
    state["task_state"] = task.saved_state(data)
    say(config, _describe(config, task, data, model, run_dir))

    if state["epoch"] < config.epochs and not state["stopped_early"]:
        plateau = keras.callbacks.ReduceLROnPlateau(
            task.monitor, factor=0.5, patience=config.lr_patience, mode="min",
            verbose=int(config.progress))
        stopping = keras.callbacks.EarlyStopping(
            task.monitor, patience=config.patience, mode="min", verbose=int(config.progress))
        keeper = RunKeeper(run_dir, state, task.monitor, {"plateau": plateau,
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
            callbacks=[StopOnNonFinite(task.monitor, config), plateau, stopping,
                       keras.callbacks.CSVLogger(run_dir / HISTORY_FILE, append=True),
                       keeper, *extra, *task.callbacks(), *(callbacks or [])],
        )

    if state["best_weights"] is not None:
        load_best_weights(model, run_dir, state)
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
    plot_learning_curve(state["history"], task, state["best_epoch"], result["paper"],
                        run_dir / CURVE_FILE)
    write_json(run_dir / RESULT_FILE, result)
    return result


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


def _data_record(config):
    return run_folder.data_record(
        config.dataset, builtin=(*MUSIC_DATASETS, *text_data.EMBEDDED_CORPORA))


def _check_writable(folder):
    folder.mkdir(exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "Permission denied (cannot write the "
                              "TensorBoard logs)", str(folder))


def _describe(config, task, data, model, run_dir):
    counts = ", ".join(f"{len(data[s])} {s}" for s in SPLITS)
    limit = f" (first {config.limit} {task.limit_items} only)" if config.limit else ""
    return (f"{config.architecture} on {config.dataset}{limit}: {counts} {task.items}; "
            f"{model.count_params():,} parameters; backend {keras.backend.backend()}; "
            f"run dir {run_dir}")
