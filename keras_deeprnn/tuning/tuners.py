"""`TUNERS`: KerasTuner's tuners, each recording which process ran which trial.

A tuner of `TUNERS` replaces the files of a search atomically, which
KerasTuner rewrites in place: its oracle's `oracle.json`, its own
`<tuner id>.json` and, in each `trial_<id>/`, `trial.json`, the best epoch's
weights `checkpoint.weights.h5` and the model's `build_config.json`. It
appends each trial's start and end to
`<project>/tuner_logs/<tuner id>.jsonl`, discovers a `DeepRNNHyperModel`'s
space from its declarations alone, reads its input and output sizes from the
training data, minimises its `objective` unless told otherwise, prints one
line per trial at `verbose=2` and imports tensorboard only for a TensorBoard
callback.
"""

import functools
import json
import os
import pathlib
import time

import keras_tuner
# KerasTuner's checkpoint callback and its check of a fit's results, which
# it keeps out of its public API (the tests of the atomic files cover them).
from keras_tuner.src.engine import tuner_utils

from keras_deeprnn import _files
from keras_deeprnn.tuning.sizes import training_steps
from keras_deeprnn.tuning.trial_failures import run_trial

TUNER_LOG_DIR = "tuner_logs"


class _Declarations:
    """A hypermodel whose `build` only declares its search space."""

    def __init__(self, hypermodel):
        self.hypermodel = hypermodel

    def declare_hyperparameters(self, hp):
        self.hypermodel.declare_hyperparameters(hp)

    def build(self, hp):
        self.hypermodel.declare(hp)


class _AtomicOracleFiles:
    """An oracle that replaces `oracle.json` and `trial_<id>/trial.json` in
    one step (`keras_deeprnn._files`). KerasTuner rewrites them in place after
    every trial, so a process killed mid-write would leave a torn file that
    stops the search from reloading."""

    def save(self):
        # What KerasTuner's `Oracle.save` writes: the oracle's state as JSON.
        _files.write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        _files.write_atomically(path, trial.save)


class _AtomicCheckpoint:
    """KerasTuner's best-epoch checkpoint callback, replacing a trial's
    `checkpoint.weights.h5` in one step. It rewrites the file at every better
    epoch, and a torn one fails whatever loads the trial's model (Hyperband
    continuing the trial in its next round, `get_best_models`)."""

    def _save_model(self):
        strategy = getattr(self.model, "distribute_strategy", None)
        extended = getattr(strategy, "extended", None)
        if extended is not None and extended._in_multi_worker_mode() \
                and not extended.should_checkpoint:
            # A TensorFlow multi-worker replica other than the chief, whose
            # copy KerasTuner writes into a folder it deletes again.
            return super()._save_model()
        _files.write_atomically(self.filepath, self.model.save_weights)


class _AtomicTunerFiles:
    """A tuner that replaces its own `<tuner id>.json` and each trial's
    `build_config.json` in one step, and makes its trials' checkpoints
    `_AtomicCheckpoint`s. KerasTuner writes them in place: the tuner's file
    after every trial (a torn one stops the search from reloading), the
    build config after every execution of a trial (a torn one stops its
    model from loading)."""

    def save(self):
        # What KerasTuner's `BaseTuner.save` writes: the oracle's files (a
        # worker's oracle is the chief's, which writes them), then the
        # tuner's state as JSON.
        if not self._is_worker():
            self.oracle.save()
        _files.write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    def _build_and_fit_model(self, trial, *fit_args, **fit_kwargs):
        # What KerasTuner's `Tuner._build_and_fit_model` does, its checkpoint
        # and build config written atomically. Its `run_trial` makes the
        # checkpoint callback and hands it over here, among the callbacks.
        for callback in fit_kwargs.get("callbacks") or ():
            if isinstance(callback, tuner_utils.SaveBestEpoch) and \
                    not isinstance(callback, _AtomicCheckpoint):
                callback.__class__ = _with_atomic_files(type(callback), _AtomicCheckpoint)
        hp = trial.hyperparameters
        model = self._try_build(hp)
        results = self.hypermodel.fit(hp, model, *fit_args, **fit_kwargs)
        # What loading the trial's model builds it from (Keras 3 only, which
        # the package requires).
        _files.write_text(self._get_build_config_fname(trial.trial_id),
                          json.dumps(model.get_build_config()))
        tuner_utils.validate_trial_results(results, self.oracle.objective, "HyperModel.fit()")
        return results


@functools.cache
def _with_atomic_files(cls, mixin):
    """`cls` with `mixin`'s atomic writes, for an object KerasTuner made,
    whose `__class__` is then swapped for it; the same class on every call."""
    return type(cls.__name__, (mixin, cls),
                {"__module__": cls.__module__, "__doc__": cls.__doc__})


class _TrialLog:
    """Appends each trial's start and end to `tuner_logs/<tuner_id>.jsonl`, so
    which process ran which trial (and for how long) is on record."""

    def __init__(self, hypermodel=None, objective=None, *args, **kwargs):
        # A DeepRNNHyperModel knows what to minimise: the task's validation measure.
        if objective is None and isinstance(getattr(hypermodel, "objective", None), str):
            objective = keras_tuner.Objective(hypermodel.objective, "min")
        super().__init__(hypermodel, objective, *args, **kwargs)
        # The tuner makes its own oracle, so its files are made atomic here.
        # A worker's oracle is a client of the chief's, which writes the files.
        oracle = self.oracle
        if isinstance(oracle, keras_tuner.Oracle) and not isinstance(oracle, _AtomicOracleFiles):
            oracle.__class__ = _with_atomic_files(type(oracle), _AtomicOracleFiles)

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

    def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
        # KerasTuner prints every failed trial's traceback, even at verbose=0.
        run_trial(self, trial, fit_args, fit_kwargs)

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
        # KerasTuner imports tensorboard under TensorFlow even without a
        # TensorBoard callback, and tensorflow-cpu 2.21 does not install it.
        if any(type(callback).__name__ == "TensorBoard" for callback in callbacks):
            super()._configure_tensorboard_dir(callbacks, trial, execution)

    def search(self, *fit_args, **fit_kwargs):
        # A DeepRNNHyperModel without sizes takes them from the training
        # data, and without `train_steps` counts them there for this search
        # (another search counts its own data), so short trials skip XLA.
        hypermodel = self.hypermodel
        adapt = getattr(hypermodel, "adapt", None)
        x = fit_args[0] if fit_args else fit_kwargs.get("x")
        y = fit_args[1] if len(fit_args) > 1 else fit_kwargs.get("y")
        if adapt is not None and x is not None:
            adapt(x, y)
        if x is None or getattr(hypermodel, "train_steps", 0) is not None:
            return super().search(*fit_args, **fit_kwargs)
        # Hyperband's trials train for up to `max_epochs`; on a worker the
        # oracle is KerasTuner's client, which holds the tuner's own.
        oracle = getattr(self.oracle, "_oracle", self.oracle)
        epochs = getattr(oracle, "max_epochs", None) or fit_kwargs.get("epochs", 1)
        hypermodel.train_steps = training_steps(
            x, y, epochs=epochs, batch_size=fit_kwargs.get("batch_size"),
            steps_per_epoch=fit_kwargs.get("steps_per_epoch"))
        try:
            return super().search(*fit_args, **fit_kwargs)
        finally:
            hypermodel.train_steps = None

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
    doc = (f"`keras_tuner.{tuner_class.__name__}` that replaces `oracle.json`, "
           "`<tuner id>.json` and each trial's `trial.json`, checkpoint and build config "
           "atomically, appends each trial's start and end to "
           f"`<project>/{TUNER_LOG_DIR}/<tuner id>.jsonl`, discovers a `DeepRNNHyperModel`'s "
           "space from its declarations alone, reads its input and output sizes from the "
           "training data, minimises its `objective` unless told otherwise, and imports "
           "tensorboard only for a TensorBoard callback.")
    return type(tuner_class.__name__, (_TrialLog, _AtomicTunerFiles, tuner_class),
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
