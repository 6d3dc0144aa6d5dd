"""What every command shares: the help layout, the flags several commands
take, and the checks of its arguments.

Each check raises a `ValueError` naming the flag, what it received and what
it expects; `keras_deeprnn.cli.main` turns it into one line and exit status 2.
"""

import argparse
import pathlib
import sys

from keras_deeprnn import _checks
from keras_deeprnn.tasks import TASKS

BACKEND_NOTE = (
    "The backend comes from the environment variable KERAS_BACKEND "
    "(tensorflow, jax or torch), e.g. `KERAS_BACKEND=jax keras-deeprnn train`; "
    "Keras fixes it on import, so it cannot be a flag."
)


class HelpFormatter(argparse.HelpFormatter):
    """Shows a flag's default once, after its help: not where the help
    already says it in words, and not where there is none to show (None, an
    unset switch, an empty list)."""

    def _get_help_string(self, action):
        # BooleanOptionalAction writes its own "(default: ...)" into the help.
        text = (action.help or "").replace(" (default: %(default)s)", "")
        default = action.default
        if ("default" in text or not action.option_strings or default is argparse.SUPPRESS
                or default is None or default is False or default == []):
            return text
        return f"{text} (default: %(default)s)"


class Refuse(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} is not available for training: the models here predict "
            "the next frame from the frames before it, and a backward RNN would read "
            "the very frames it has to predict."
        )


def add_cache_dir(group):
    """`--cache-dir`, the same for every command that reads a data set."""
    group.add_argument("--cache-dir", default=None,
                       help="built piano rolls (default $KERAS_DEEPRNN_CACHE, else "
                            "~/.cache/keras_deeprnn)")


def dataset(value):
    """`--dataset`: a registered task's built-in data set, or a path that exists."""
    builtin = {name: task for task in TASKS.values() for name in task.datasets}
    if value in builtin or pathlib.Path(value).expanduser().exists():
        return value
    names = "; ".join(f"{', '.join(task.datasets)} for --task {task.name}"
                      for task in TASKS.values() if task.datasets)
    raise argparse.ArgumentTypeError(
        f"expected a built-in data set ({names}), a .pickle file, a text "
        f"file or a folder; received {value!r}, which is none of these"
    )


def task_flags():
    """`{task name: its settings' flag names}` for every registered task."""
    return {task.name: task.setting_names() for task in TASKS.values()}


def refuse_other_tasks_flags(args, task):
    """A `ValueError` for a flag of another task given a value of its own:
    it would do nothing for `task` (unless that task lets it pass,
    `Task.tolerated_elsewhere`)."""
    own = set(task.setting_names())
    for other in TASKS.values():
        owner = other.name
        for name in other.setting_names():
            if (name in own or name in other.tolerated_elsewhere
                    or name not in args.task_flag_defaults):
                continue
            if getattr(args, name) != args.task_flag_defaults[name]:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"`{flag}` applies to --task {owner} only. Received: "
                                 f"--task {task.name} {flag} {getattr(args, name)}")


def positive(flag, value):
    if value < 1:
        raise ValueError(f"`{flag}` must be a positive integer. Received: {value}")


def sample_length(flag, value, most):
    """A `MemoryError` naming `flag` for a sample longer than its task's
    `max_sample_length`, before any memory is asked for."""
    if value > most:
        raise MemoryError(f"not enough memory, or time, for {flag} {value}: ask for at most "
                          f"{most:,} (each step is one call of the model, and the whole "
                          "sample is held in memory)")


def non_negative(flag, value):
    if value < 0:
        raise ValueError(f"`{flag}` must be 0 or more. Received: {value}")


def positive_number(flag, value):
    try:
        _checks.positive_finite(flag, value)
    except ValueError:
        raise ValueError(f"`{flag}` must be a finite number > 0. Received: {value}") from None


def os_error(err):
    """An `OSError` as one line: what failed, on which file."""
    what = err.strerror or str(err) or type(err).__name__
    where = f": '{err.filename}'" if err.filename else ""
    return f"{what}{where}"


def print_text(text):
    """Print sampled text on any terminal: characters it cannot show are
    replaced, not an error after the work is done (the file holds them all)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, errors="replace").decode(encoding, errors="replace"))
