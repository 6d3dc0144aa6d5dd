"""The task interface and its registry.

A task is everything `keras_deeprnn.training.train` (and the tuner) needs to
know about one of the paper's problems: where its data comes from and how it
is batched, the arguments that fit a model to that data, the loss, the
metrics, the test measure, the published figures, and how to sample from a
trained model. Music (`"music"`) and language modelling (`"lm"`) are the two
implementations; a new one subclasses `Task` and calls `register`.

`config` is a `keras_deeprnn.training.TrainConfig`, read by attribute only,
so this package never imports the training module.
"""

from keras_deeprnn import _checks

TASKS = {}


class Task:
    """What training, scoring and sampling need to know about one task.

    `monitor` is the validation measure that early stopping and the learning
    rate schedule watch (lower is better); `measure` names the test measure
    and its unit for printing.

    Example:

    ```python
    class MyTask(MusicTask):
        name = "my_music"
        def paper_figure(self, config):
            return None

    register(MyTask())
    train(TrainConfig(task="my_music"))
    ```
    """

    name = None
    monitor = None
    measure = None
    # What the data holds, for the run's description line.
    items = "pieces"
    limit_items = "files"
    default_dataset = None

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

    def sample(self, model, length, *, temperature=1.0, prime=None, seed=None, saved=None):
        """Something new drawn from a trained model (a piano roll, a text)."""
        raise NotImplementedError


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
