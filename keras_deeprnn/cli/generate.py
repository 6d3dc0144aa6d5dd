"""`keras-deeprnn generate`: sample from a trained model with its task's `sample`."""

import dataclasses
import pathlib

from keras_deeprnn import pretrained
from keras_deeprnn import training
from keras_deeprnn.cli import checks
from keras_deeprnn.tasks import Task
from keras_deeprnn.tasks import get_task

# Frames of the --prime-from piece a sample opens with when --prime-frames is not given.
PRIME_FRAMES = 8


def add_parser(commands):
    generate = commands.add_parser(
        "generate", help="sample a piece (or text) from a trained model",
        description="Sample from a run dir, a .keras file or a model that ships with the "
                    "package (--pretrained jsb), one step at a time, with the model's task: "
                    "music writes a piano roll as MIDI, MusicXML and a PNG; a language "
                    "model writes text.",
        formatter_class=checks.HelpFormatter,
    )
    generate.add_argument("model", nargs="?", default=None,
                          help="a run dir or a .keras file (or give --pretrained)")
    generate.add_argument("--pretrained", choices=list(pretrained.PRETRAINED), default=None,
                          help="sample from a model that ships with the package instead: "
                               "jsb, a DOT(S)-RNN trained on the built-in chorales (default: "
                               "none, sample from MODEL)")
    generate.add_argument("--frames", type=int, default=64,
                          help="length of the piece, prime included")
    generate.add_argument("--temperature", type=float, default=1.0,
                          help="sampling temperature: below 1 surer, above 1 wilder")
    generate.add_argument("--prime-from", default=None, metavar="[SPLIT:]INDEX",
                          help="open with the start of this piece of the data set, e.g. "
                               "test:0 (default: start from silence)")
    # None, not 8: a --prime-frames given without --prime-from is refused,
    # which needs to know whether it was given at all.
    generate.add_argument("--prime-frames", type=int, default=None,
                          help="frames of the --prime-from piece to open with; only with "
                               f"--prime-from (default: {PRIME_FRAMES})")
    generate.add_argument("--dataset", type=checks.dataset, default=None,
                          help="data set of --prime-from and of the frame length "
                               "(default: the run's own)")
    generate.add_argument("--limit", type=int, default=None,
                          help="read only the first N files of that data set (default: the "
                               "run's own when --dataset is not given)")
    checks.add_cache_dir(generate)
    generate.add_argument("--seed", type=int, default=None,
                          help="seed of the sampling (default: a different piece each time)")
    generate.add_argument("--out", default=None,
                          help="path prefix of the files (default RUN_DIR/sample; "
                               "NAME-sample in the current folder for --pretrained NAME)")
    generate.add_argument("--prime", default=None,
                          help="language models: text to continue (--frames counts the "
                               "new tokens; default: start from nothing)")
    generate.add_argument("--quiet", action="store_true",
                          help="no progress bar while sampling")
    generate.set_defaults(run=run)


def run(args):
    checks.positive("--frames", args.frames)
    checks.positive_number("--temperature", args.temperature)
    _check_prime_frames(args)
    if (args.model is None) == (args.pretrained is None):
        raise ValueError(
            "Give either a run dir or .keras file, or --pretrained NAME. Received: "
            f"model={args.model!r}, --pretrained={args.pretrained!r}"
        )
    if args.pretrained is not None:
        model, record = pretrained.load(args.pretrained)
        saved = {"task": record["settings"].get("task", training.TrainConfig.task),
                 "dataset": record["settings"]["dataset"]}
        task_state = None
    else:
        model, saved = training.load_trained_model(args.model)
        task_state = training.saved_task_state(args.model)
    task = get_task(saved.get("task", training.TrainConfig.task))
    checks.sample_length("--frames", args.frames, task.max_sample_length)
    if task_state is None and saved and type(task).saved_state is not Task.saved_state:
        # A run saved before runs kept their task state: its own data gives it.
        task_state = task.saved_state(task.load_data(_run_config(saved)))
    prime = task.sample_prime(args, saved)
    sample = task.sample(model, args.frames, temperature=args.temperature, prime=prime,
                         seed=args.seed, saved=task_state, progress=not args.quiet)
    for line in task.save_sample(sample, _prefix(args), args=args, config=saved, prime=prime):
        checks.print_text(line)
    return 0


def _check_prime_frames(args):
    """Refuse `--prime-frames` without `--prime-from`, where it would do
    nothing; give it its default where `--prime-from` is given without it."""
    if args.prime_frames is None:
        if args.prime_from is not None:
            args.prime_frames = PRIME_FRAMES
        return
    if args.prime_from is None:
        raise ValueError(
            "`--prime-frames` counts the frames taken from the piece --prime-from names, "
            "and does nothing without it. Received: --prime-frames "
            f"{args.prime_frames} without --prime-from; expected, for a music model, "
            "--prime-from [SPLIT:]INDEX as well (e.g. --prime-from test:0), or no "
            "--prime-frames")
    checks.positive("--prime-frames", args.prime_frames)


def _run_config(saved):
    """The run's `TrainConfig` from its saved dict (older runs: renamed fields)."""
    saved = dict(saved)
    if "level" in saved:  # the old name of `tokenization`
        saved.setdefault("tokenization", saved.pop("level"))
    fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    return training.TrainConfig(**{k: v for k, v in saved.items() if k in fields})


def _prefix(args):
    if args.out is not None:
        return pathlib.Path(args.out)
    if args.pretrained is not None:
        return pathlib.Path(f"{args.pretrained}-sample")
    model = pathlib.Path(args.model)
    if model.is_dir():
        return model / "sample"
    return model.with_suffix("").with_name(model.stem + "-sample")
