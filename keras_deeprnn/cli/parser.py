"""The `keras-deeprnn` parser: one sub-command per module of this package."""

import argparse

from keras_deeprnn._version import __version__
from keras_deeprnn.cli import checks
from keras_deeprnn.cli import datasets
from keras_deeprnn.cli import evaluate
from keras_deeprnn.cli import generate
from keras_deeprnn.cli import train
from keras_deeprnn.cli import tune


def build_parser():
    """The parser of every command; a parsed command's `run(args)` does it.

    Built anew at every call, so a task registered since (`tasks.register`)
    has its name, data sets and flags in it.

    Example:

    ```python
    args = build_parser().parse_args(["train", "--epochs", "2"])
    args.run(args)
    ```
    """
    parser = argparse.ArgumentParser(
        prog="keras-deeprnn",
        description="Deep recurrent networks after Pascanu et al. (2013): train them "
                    "on polyphonic music or text, score them, search them, and sample "
                    "from them.",
        epilog=checks.BACKEND_NOTE,
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}",
                        help="print the version of keras-deeprnn and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (train, tune, evaluate, generate, datasets):
        command.add_parser(commands)
    return parser
