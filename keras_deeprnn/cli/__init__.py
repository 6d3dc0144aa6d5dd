"""The `keras-deeprnn` command (also `python -m keras_deeprnn`).

    keras-deeprnn train                 # the main job: DOT(S)-RNN on JSB chorales
    keras-deeprnn train --architecture srnn --num-layers 3 --units 200
    keras-deeprnn evaluate runs/dots_rnn-jsb_chorales --split valid
    keras-deeprnn generate runs/dots_rnn-jsb_chorales --frames 96 --prime-from test:0
    keras-deeprnn datasets
    keras-deeprnn train --task lm                    # character model of the abc_folk text
    keras-deeprnn train --task lm --dataset data/ptb --tokenization word

The backend is chosen by the environment variable `KERAS_BACKEND`
(`tensorflow`, `jax` or `torch`), not by a flag: Keras fixes it once, when
it is first imported, which happens before any flag is read.

`train` with no arguments is the main job of this package: a DOT(S)-RNN
(deep transition with shortcuts plus a deep output) trained on the built-in
imitation of JSB Chorales, sized to finish on a laptop CPU in a few minutes,
scored on the test split next to the paper's figure, and asked for a new
chorale (MIDI, MusicXML and a PNG piano roll in the run dir).

Each command is a module here (`train`, `tune`, `evaluate`, `generate`,
`datasets`), `parser` gathers them and `checks` holds what they share.
None asks which task it runs: what differs between tasks (their flags,
settings, printed lines, sampling and tuning objective) is the task's own
(`keras_deeprnn.tasks.Task`), so a task registered with
`keras_deeprnn.tasks.register` works with every command.
"""

import sys

from keras_deeprnn import _console
from keras_deeprnn import training
from keras_deeprnn.cli import checks
from keras_deeprnn.cli.parser import build_parser

__all__ = ["main", "build_parser"]


def main(argv=None):
    """Run the command line; returns the exit status.

    Example:

    ```python
    main(["train", "--units", "32", "--epochs", "2", "--limit", "8"])
    ```
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line per failure a user can act on, and an exit status a script
    # can test; a traceback only for what is a bug of this package.
    try:
        with _console.one_line_warnings(f"keras-deeprnn {args.command}"):
            return args.run(args)
    except (ValueError, ImportError) as err:
        parser.exit(2, f"keras-deeprnn {args.command}: error: {err}\n")
    except (training.RunDirBusy, training.TrainingDiverged) as err:
        parser.exit(1, f"keras-deeprnn {args.command}: error: {err}\n")
    except OSError as err:
        parser.exit(1, f"keras-deeprnn {args.command}: error: {checks.os_error(err)}\n")
    except MemoryError as err:
        message = str(err) or ("not enough memory for this request (MemoryError); ask for "
                               "less, e.g. fewer --frames.")
        parser.exit(1, f"keras-deeprnn {args.command}: error: {message}\n")
    except KeyboardInterrupt:
        note = (" The run dir keeps every finished epoch; the same command resumes."
                if args.command == "train" else "")
        parser.exit(130, f"keras-deeprnn {args.command}: interrupted.{note}\n")


if __name__ == "__main__":
    sys.exit(main())
