"""The callbacks `train` gives `fit`: each epoch's checkpoint and state, and a
stop when the loss is no longer a number."""

import json
import math
import time

import keras
import numpy as np

from keras_deeprnn import _files
from keras_deeprnn import run_folder
from keras_deeprnn.training.random_state import current_random_state
from keras_deeprnn.training.records import PREVIOUS_STATE_FILE
from keras_deeprnn.training.records import STATE_FILE
from keras_deeprnn.training.records import finite_or_none
from keras_deeprnn.training.records import read_json
from keras_deeprnn.training.records import write_json


class TrainingDiverged(RuntimeError):
    """Training met a loss or validation measure that is not a finite number."""


class RunKeeper(keras.callbacks.Callback):
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
        previous = json.loads(json.dumps(finite_or_none(state))) if state["checkpoint"] else None
        for key, value in (logs or {}).items():
            state["history"].setdefault(key, []).append(float(value))
        current = float(logs[self.monitor])
        old = [state["checkpoint"], state["best_weights"]]
        if previous is not None:
            old_previous = read_json(self.run_dir / PREVIOUS_STATE_FILE, missing_ok=True,
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
        state["random_state"] = current_random_state(self.model)
        # The previous epoch's state and files stay as a fallback, should the
        # newest files be damaged.
        if previous is not None:
            write_json(self.run_dir / PREVIOUS_STATE_FILE, previous)
        # state.json is the commit point: only after it names the new files
        # may the older ones go.
        write_json(self.run_dir / STATE_FILE, state)
        keep = {state["checkpoint"], state["best_weights"]}
        if previous is not None:
            keep |= {previous["checkpoint"], previous["best_weights"]}
        for name in old:
            if name and name not in keep and (run_folder.is_member_name(name, "checkpoint")
                                              or run_folder.is_member_name(name,
                                                                           "best_weights")):
                (self.run_dir / name).unlink(missing_ok=True)


class StopOnNonFinite(keras.callbacks.Callback):
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


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
