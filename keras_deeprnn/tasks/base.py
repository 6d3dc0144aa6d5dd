"""The task interface and its registry.

A task is everything `keras_deeprnn.training.train` (and the tuner) needs to
know about one of the paper's problems: where its data comes from and how it
is batched, the arguments that fit a model to that data, the loss, the
metrics, the test measure, the published figures, and how to sample from a
trained model, its command-line flags and the lines the command line
prints. Music (`"music"`) and language modelling (`"lm"`) are the two
implementations; a new one subclasses `Task` and calls `register`, and is
then trained, scored, sampled and searched by `keras-deeprnn train`,
`evaluate`, `generate` and `tune --task NAME` with no other file changed.

`config` is a `keras_deeprnn.training.TrainConfig`, read by attribute only,
so this package never imports the training module. A task's own settings
are a dataclass (`Task.settings`); `TrainConfig` holds their values, as
fields of its own for the built-in tasks (`tokenization`, `seq_len`,
`max_len`, `bucket`) and in `TrainConfig.task_settings` for any other.
"""

import argparse
import dataclasses
import sys

import keras

from keras_deeprnn import _checks

TASKS = {}


class Task:
    """What training, scoring and sampling need to know about one task.

    `monitor` is the validation measure that early stopping and the learning
    rate schedule watch (lower is better); `measure` names the test measure
    and its unit for printing.

    A task owns:

    * its data, batches, model arguments, loss, metrics and test measure
      (`load_data`, `batches`, `build_model_kwargs`, `loss`, `metrics`,
      `evaluate`), and the paper's figure (`paper_figure`);
    * its settings: `settings`, a dataclass whose fields become `train`
      flags (`add_arguments`, `read_arguments`; a field's `metadata` may give
      `help`, `choices` and `type`) and are read back by `settings_of`;
    * what `train` and `evaluate` print (`result_lines`, `score_line`);
    * its sampling (`sample`, `sample_prime`, `save_sample`,
      `training_sample_lines`), for `generate` and the end of `train`;
    * its tuning objective: `monitor`, minimised by `tune` when `tunable`.

    Example:

    ```python
    @dataclasses.dataclass
    class Settings:
        width: int = dataclasses.field(default=8, metadata={"help": "features per step"})

    class MyTask(Task):
        name, monitor, measure = "mine", "val_loss", ("loss", "per step")
        settings = Settings
        ...                          # load_data, batches, evaluate, ...

    register(MyTask())
    train(TrainConfig(task="mine", task_settings={"width": 4}))
    ```
    """

    name = None
    monitor = None
    measure = None
    # What the data holds, for the run's description line.
    items = "pieces"
    limit_items = "files"
    default_dataset = None
    # Names `dataset` may take besides a path (built-in data sets).
    datasets = ()
    # A dataclass of the task's own settings, or None for none.
    settings = None
    # Settings whose flags other tasks accept and ignore (any other given
    # to another task is an error naming it).
    tolerated_elsewhere = ()
    # Whether `tune` can search this task's models; `tuning_refusal` says why not.
    tunable = True
    tuning_refusal = ""
    # The longest sample `generate` asks for: every step is one call of the
    # model, and the sample is held in memory.
    max_sample_length = 1_000_000

    # --- settings and flags ------------------------------------------------

    def setting_names(self):
        """The names of the task's settings (its flags' `dest`s), in order."""
        return tuple(f.name for f in dataclasses.fields(self.settings)) if self.settings else ()

    def add_arguments(self, group, *, skip=()):
        """Add one flag per setting to `group` (an argparse parser or group):
        `--name-with-dashes`, a switch for a `bool`, else typed by the
        field's `metadata["type"]` or its default's type. Settings named in
        `skip` already have their flag (another task shares them)."""
        for field in dataclasses.fields(self.settings) if self.settings else ():
            if field.name in skip:
                continue
            flag = "--" + field.name.replace("_", "-")
            meta = dict(field.metadata)
            if isinstance(field.default, bool):
                group.add_argument(flag, action="store_true" if not field.default
                                   else argparse.BooleanOptionalAction,
                                   default=field.default, help=meta.get("help"))
                continue
            kind = meta.get("type", type(field.default) if field.default is not None else str)
            extra = {"choices": meta["choices"]} if "choices" in meta else {}
            group.add_argument(flag, type=kind, default=field.default,
                               help=meta.get("help"), **extra)

    def read_arguments(self, args):
        """`{setting: value}` from parsed flags (`add_arguments`'s)."""
        return {name: getattr(args, name) for name in self.setting_names()}

    def settings_of(self, config):
        """The task's settings of `config`, checked: a value in
        `config.task_settings`, else `config`'s field of that name, else the
        setting's default."""
        given = dict(getattr(config, "task_settings", None) or {})
        names = self.setting_names()
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(
                f"`task_settings` has {unknown} which task {self.name!r} does not take. "
                f"Received: task_settings={given!r}; expected names among {list(names)}")
        shadowed = sorted(name for name in given if hasattr(config, name))
        if shadowed:
            raise ValueError(
                f"`task_settings` sets {shadowed}, which the config holds as fields of its "
                f"own. Received: task_settings={given!r}; set them as fields instead")
        if self.settings is None:
            return None
        values = {name: given[name] if name in given else getattr(config, name)
                  for name in names if name in given or hasattr(config, name)}
        settings = self.settings(**values)
        self.check_settings(settings)
        return settings

    def check_settings(self, settings):
        """Raise `ValueError` naming a bad setting (none checked by default)."""

    # --- what the command line prints -------------------------------------

    def score_line(self, scores, split):
        """One line of `evaluate`'s scores on `split`, for people."""
        unit = " ".join(self.measure) if self.measure else ""
        shown = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                          for key, value in scores.items())
        return f"{split}: {shown}" + (f" ({unit})" if unit else "")

    def result_lines(self, result, config):
        """What `train` prints when a run ends: the test score, the paper's
        figure, the time taken and the files written."""
        best = (f"best epoch {result['best_epoch']} of {result['epochs_run']}"
                f"{' (stopped early)' if result['stopped_early'] else ''}")
        lines = [f"\n{self.score_line(result['test'], 'Test')}, {best}."]
        paper = result.get("paper")
        if paper:
            lines.append(f"Paper, {paper['model']} on {paper['dataset']}: {paper['nll']:.3f}. "
                         f"{paper.get('note', '')}".rstrip())
        files = result["files"]
        lines.append(f"Training took {result['train_time_s']:.0f} s on {result['backend']} "
                     f"({result['wall_time_s']:.0f} s in all, data and scoring included). "
                     "Wrote:")
        lines += [f"  {kind:14s} {path}" for kind, path in files.items() if kind != "run_dir"]
        return lines

    def load_data(self, config, *, saved=None):
        """`{"train": ..., "valid": ..., "test": ...}` for `config.dataset`.

        `saved` is what `saved_state` returned for the run being continued or
        scored (for a language model its vocabulary), or `None`.
        """
        raise NotImplementedError

    def saved_state(self, data):
        """What a run must keep to read other data the way it read its own
        (JSON-serialisable; stored in the run's `state.json`)."""
        return {}

    def batches(self, split, config, *, training, epoch=0):
        """A `keras.utils.PyDataset` of `(x, y, sample_weight)` batches.

        Training batches start at `epoch` in the order an uninterrupted run
        reaches there (a resumed run must see what it would have seen), and
        reshuffle in `on_epoch_end`."""
        raise NotImplementedError

    def build_model_kwargs(self, config, data):
        """`build_model` arguments that fit the model to the data."""
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def metrics(self):
        """Weighted metrics: Keras passes `sample_weight` to these only."""
        raise NotImplementedError

    def evaluate(self, model, split, config):
        """Test measures of `model` on one split, as a dict of floats."""
        raise NotImplementedError

    def paper_figure(self, config):
        """The paper's figure for this architecture and data set, or `None`."""
        return None

    def callbacks(self):
        """Keras callbacks the task's training needs (e.g. resetting state)."""
        return []

    # --- sampling ----------------------------------------------------------

    def sample(self, model, length, *, temperature=1.0, prime=None, seed=None, saved=None,
               progress=False):
        """Something new drawn from a trained model (a piano roll, a text).

        `saved` is the run's `saved_state`; `prime` what `sample_prime` gave;
        `progress` shows a progress bar (`progress_bar`)."""
        raise NotImplementedError

    def sample_prime(self, args, config):
        """What `generate` opens the sample with, from its flags (`args`:
        `prime`, `prime_from`, `prime_frames`, `dataset`, `limit`,
        `cache_dir`; `prime_frames` is an int whenever `prime_from` is
        given, `generate` having refused it alone) and the run's `config`
        dict; `None` by default, and a prime this task cannot use is an
        error naming its flag."""
        for flag, value in (("--prime", args.prime), ("--prime-from", args.prime_from)):
            if value is not None:
                raise ValueError(f"`{flag}` does not apply to a {self.name} model. "
                                 f"Received: {flag} {value!r}")
        return None

    def save_sample(self, sample, prefix, *, args, config, prime=None):
        """Write what `sample` drew under the path `prefix` (no suffix) for
        `generate`; returns the lines to print."""
        raise NotImplementedError

    def training_sample_lines(self, sample, run_dir, config, *, length, temperature):
        """What the end of `train` does with its sample (written in
        `run_dir`, or shown); returns the lines to print."""
        return self.save_sample(sample, f"{run_dir}/generated", args=None,
                                config=dataclasses.asdict(config))

    def check_tunable(self):
        """Raise `ValueError` unless `tune` can search this task's models."""
        if not self.tunable:
            raise ValueError(f"`tune` cannot search {self.name} models: "
                             f"{self.tuning_refusal} Received: task={self.name!r}")


def progress_bar(steps, unit_name, enabled):
    """A Keras progress bar of `steps` steps, or `None` when not `enabled`.

    On a terminal it redraws itself; in a log file it writes one line when
    done, not one per step.

    Example:

    ```python
    bar = progress_bar(1000, "frame", enabled=True)
    for step in range(1000):
        ...
        bar.update(step + 1)
    ```
    """
    if not enabled or steps < 1:
        return None
    terminal = getattr(sys.stdout, "isatty", lambda: False)()
    return keras.utils.Progbar(steps, unit_name=unit_name,
                               interval=0.05 if terminal else float("inf"))


def register(task):
    """Add `task` to the registry under `task.name`, so `TrainConfig(task=...)`,
    the command line and the tuner accept it; returns it.

    Example:

    ```python
    register(MyTask())
    ```
    """
    if not isinstance(task, Task):
        raise ValueError(f"`task` must be a Task instance. Received: task={task!r}")
    if not isinstance(task.name, str) or not task.name:
        raise ValueError(f"`task.name` must be a non-empty string. Received: "
                         f"task.name={task.name!r}")
    TASKS[task.name] = task
    return task


def get_task(name):
    """The registered task called `name` (`"music"` or `"lm"` built in).

    Example:

    >>> get_task("music").monitor
    'val_frame_nll'
    """
    _checks.one_of("task", name, TASKS)
    return TASKS[name]
