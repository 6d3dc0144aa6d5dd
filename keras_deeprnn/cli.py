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
"""

import argparse
import ast
import dataclasses
import json
import pathlib
import sys

import keras

from keras_deeprnn import _checks
from keras_deeprnn import _files
from keras_deeprnn._version import __version__
from keras_deeprnn import initializers
from keras_deeprnn import pretrained
from keras_deeprnn import training
from keras_deeprnn.data import music as music_data
from keras_deeprnn.data import text as text_data
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import options
from keras_deeprnn.models import presets
from keras_deeprnn.tasks import language
from keras_deeprnn.tasks import music
from keras_deeprnn.tasks.paper import PAPER_MUSIC_COLUMNS

_DEFAULTS = training.TrainConfig()
_BACKEND_NOTE = (
    "The backend comes from the environment variable KERAS_BACKEND "
    "(tensorflow, jax or torch), e.g. `KERAS_BACKEND=jax keras-deeprnn train`; "
    "Keras fixes it on import, so it cannot be a flag."
)


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
        return args.run(args)
    except (ValueError, ImportError) as err:
        parser.exit(2, f"keras-deeprnn {args.command}: error: {err}\n")
    except (training.RunDirBusy, training.TrainingDiverged) as err:
        parser.exit(1, f"keras-deeprnn {args.command}: error: {err}\n")
    except OSError as err:
        parser.exit(1, f"keras-deeprnn {args.command}: error: {_os_error(err)}\n")
    except MemoryError:
        parser.exit(1, f"keras-deeprnn {args.command}: error: not enough memory for this "
                       "request (MemoryError); ask for less, e.g. fewer --frames.\n")
    except KeyboardInterrupt:
        note = (" The run dir keeps every finished epoch; the same command resumes."
                if args.command == "train" else "")
        parser.exit(130, f"keras-deeprnn {args.command}: interrupted.{note}\n")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-deeprnn",
        description="Deep recurrent networks after Pascanu et al. (2013): train them "
                    "on polyphonic music, score them, and sample new music.",
        epilog=_BACKEND_NOTE,
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}",
                        help="print the version of keras-deeprnn and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_tune(commands)
    _add_evaluate(commands)
    _add_generate(commands)
    listing = commands.add_parser("datasets", help="list the built-in music data sets",
                                  description="List the built-in music data sets.")
    listing.set_defaults(run=_run_datasets)
    return parser


class _HelpFormatter(argparse.HelpFormatter):
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


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------


def _add_train(commands):
    d = _DEFAULTS
    train = commands.add_parser(
        "train", help="train (or resume) a model on a music data set",
        description="Train a deep RNN to predict the next frame of piano rolls, with "
                    "early stopping and the learning rate halved on plateaus, "
                    "checkpointing every epoch. With no arguments: the main job "
                    "(DOT(S)-RNN on jsb_chorales, a few minutes on a CPU). Re-running "
                    "with the same --run-dir resumes.",
        epilog=_BACKEND_NOTE, formatter_class=_HelpFormatter,
    )
    what = train.add_argument_group("what to train")
    what.add_argument("--task", choices=list(training.TASKS), default=d.task,
                      help="music: next piano-roll frame; lm: next character or word")
    what.add_argument("--architecture", choices=list(ARCHITECTURES), default=d.architecture,
                      metavar="NAME",
                      help=f"the deep RNN to build: {', '.join(ARCHITECTURES)}")
    what.add_argument("--dataset", type=_dataset, default=None,
                      help=f"music: a built-in name ({', '.join(music_data.MUSIC_DATASETS)}), "
                           "a Boulanger-Lewandowski .pickle, or a folder of scores; lm: "
                           f"{', '.join(text_data.EMBEDDED_CORPORA)}, a text file, or a folder "
                           f"of Penn Treebank or .txt files (default: {d.dataset} for music, "
                           f"{language.DEFAULT_DATASET} for lm)")
    what.add_argument("--limit", type=int, default=d.limit,
                      help="read only the first N files of the data set (lm: the first N "
                           "tokens of each split) for quick runs (default: all)")
    what.add_argument("--tokenization", choices=("char", "word"), default=d.tokenization,
                      help="lm only: tokens are characters or words")
    what.add_argument("--seq-len", type=int, default=d.seq_len,
                      help="lm only: window of truncated backpropagation, in tokens")
    shape = train.add_argument_group("the model")
    for name in options.TRAIN_FIELDS:
        _add_model_flag(shape, options.OPTIONS[name], getattr(d, name))
    shape.add_argument("--bidirectional", action=_Refuse, nargs=0,
                       help="refused: a backward RNN reads the frames it should predict")
    fit = train.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=int, default=d.epochs,
                     help="most epochs (early stopping may end the run sooner)")
    fit.add_argument("--batch-size", type=int, default=d.batch_size,
                     help="sequences per batch (music: pieces; lm: parallel streams)")
    fit.add_argument("--bucket", action="store_true",
                     help="music: batch pieces of similar length together, so wide batches "
                          "(--batch-size 32 on a GPU) waste little padding")
    fit.add_argument("--max-len", type=int, default=d.max_len,
                     help="train on windows of this many steps (default: whole pieces)")
    fit.add_argument("--optimizer", choices=training.OPTIMIZERS, default=d.optimizer,
                     help="the paper used sgd (try --learning-rate 0.05 --momentum 0.9)")
    fit.add_argument("--learning-rate", type=float, default=d.learning_rate,
                     help="the optimizer's starting learning rate")
    fit.add_argument("--momentum", type=float, default=d.momentum, help="sgd only")
    fit.add_argument("--clipnorm", type=float, default=d.clipnorm,
                     help="gradient-norm clipping (the paper's 1); 0 turns it off")
    fit.add_argument("--patience", type=int, default=d.patience,
                     help="epochs without a better validation NLL before stopping")
    fit.add_argument("--lr-patience", type=int, default=d.lr_patience,
                     help="epochs without a better validation NLL before halving the "
                          "learning rate")
    fit.add_argument("--seed", type=int, default=d.seed,
                     help="seed of the weights, the batches, every dropout mask and the "
                          "sampled piece")
    files = train.add_argument_group("files and output")
    files.add_argument("--run-dir", default=None,
                       help="where checkpoints and results go (default "
                            "runs/ARCHITECTURE-DATASET); an existing run there resumes")
    files.add_argument("--cache-dir", default=None,
                       help="built piano rolls (default $KERAS_DEEPRNN_CACHE, else "
                            "~/.cache/keras_deeprnn)")
    files.add_argument("--generate-frames", type=int, default=64,
                       help="length of the piece (lm: tokens of text) sampled at the end; "
                            "0 for none")
    files.add_argument("--temperature", type=float, default=1.0,
                       help="sampling temperature of that piece")
    files.add_argument("--tensorboard", action="store_true",
                       help="also write Keras's TensorBoard logs to RUN_DIR/tensorboard "
                            "(needs tensorflow and tensorboard, whatever the backend)")
    files.add_argument("--quiet", action="store_true",
                       help="no progress output (otherwise: progress bars in a terminal, one "
                            "line per epoch in a log file)")
    train.set_defaults(run=_run_train)


def _add_model_flag(group, option, default):
    """`--name-with-dashes` for a model option (`keras_deeprnn.models.OPTIONS`)."""
    flag = "--" + option.name.replace("_", "-")
    help_text = option.help
    if default is None and option.name in presets.DEPTH_DEFAULTS:
        help_text += " (default: the architecture's)"
    elif default is None and "default" not in help_text:
        help_text += " (default: none)"
    if option.value_type is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                           help=help_text)
        return
    if option.per_level:
        help_text += ", e.g. " + ("200,100" if option.value_type is int else "0.1,0.2")
    group.add_argument(flag, type=_option_value(option), default=default, help=help_text)


def _option_value(option):
    def parse(text):
        if option.value_type is str:
            return text
        try:
            values = [option.value_type(part) for part in text.split(",")]
        except ValueError:
            values = None
        if values is None or (len(values) > 1 and not option.per_level):
            one, many = (("a width like 128", "200,100") if option.value_type is int
                         else ("a number like 0.1", "0.1,0.2"))
            if not option.per_level:
                one = "an integer" if option.value_type is int else "a number"
            per_level = f", or one per level like {many}" if option.per_level else ""
            raise argparse.ArgumentTypeError(f"expected {one}{per_level}; received {text!r}")
        return values[0] if len(values) == 1 else values
    parse.__name__ = option.value_type.__name__  # argparse names the type in its errors
    return parse


def _run_train(args):
    fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["clipnorm"] = args.clipnorm or None
    values["dataset"] = args.dataset or training.TASKS[args.task].default_dataset
    config = training.TrainConfig(**values, progress=not args.quiet)
    config.validate()
    if config.task != "lm" and config.seq_len != _DEFAULTS.seq_len:
        raise ValueError(f"`--seq-len` applies to --task lm only (music trains on whole "
                         f"pieces or --max-len windows). Received: --task {config.task} "
                         f"--seq-len {config.seq_len}")
    # Checked before training, not when the sample is drawn at its end.
    _non_negative("--generate-frames", args.generate_frames)
    if args.generate_frames:
        _positive_number("--temperature", args.temperature)
    if keras.backend.backend() == "torch" and config.progress:
        # Keras runs a custom RNN's time loop in Python on torch.
        print("Note: on the torch backend each epoch of a recurrent model takes many "
              "times longer than on jax or tensorflow (the time loop runs in Python); "
              "KERAS_BACKEND=jax is the fastest on a CPU.", flush=True)
    result = training.train(config)
    if config.task == "lm":
        return _finish_language_model(result, config, args)
    _print_result(result)
    if args.generate_frames:
        model, _ = training.load_trained_model(result["files"]["run_dir"])
        roll = music.sample_piece(model, args.generate_frames,
                                       temperature=args.temperature, seed=config.seed)
        paths = music.save_piece(
            roll, pathlib.Path(result["files"]["run_dir"]) / "generated",
            frame_quarter_length=music.frame_quarter_length_of(config.dataset),
            title=f"{config.architecture} on {config.dataset}, temperature {args.temperature}",
        )
        print(f"Generated piece ({args.generate_frames} frames, "
              f"{int(roll.sum())} note-frames):")
        for kind, path in paths.items():
            print(f"  {kind:14s} {path}")
    return 0


def _finish_language_model(result, config, args):
    test, paper = result["test"], result["paper"]
    unit = "bits per character" if config.tokenization == "char" else "bits per word"
    print(f"\nTest: {test['bits_per_token']:.3f} {unit}, perplexity {test['perplexity']:.2f} "
          f"({test['tokens']:,} tokens), best epoch {result['best_epoch']} of "
          f"{result['epochs_run']}{' (stopped early)' if result['stopped_early'] else ''}.")
    if paper:
        print(f"Paper, {paper['model']} on {paper['dataset']}: {paper['bits_per_token']:.3f} "
              f"{unit}, perplexity {paper['perplexity']:.2f}. {paper['note']}")
    else:
        print("The paper reports no figure for this architecture and level.")
    print(f"Training took {result['train_time_s']:.0f} s on {result['backend']} "
          f"({result['wall_time_s']:.0f} s in all this time). Wrote "
          f"{pathlib.Path(result['files']['run_dir']) / training.RESULT_FILE}")
    if args.generate_frames:
        model, _ = training.load_trained_model(result["files"]["run_dir"])
        vocabulary = training.saved_task_state(result["files"]["run_dir"])["vocabulary"]
        sample = language.sample_text(model, vocabulary, args.generate_frames,
                                      temperature=args.temperature, seed=config.seed)
        _print_text(f"Generated text ({args.generate_frames} tokens, temperature "
                    f"{args.temperature}):\n{sample}")
    return 0


def _print_result(result):
    test, paper = result["test"], result["paper"]
    print(f"\nTest {music.describe_scores(test)}, best epoch {result['best_epoch']} of {result['epochs_run']}"
          f"{' (stopped early)' if result['stopped_early'] else ''}.")
    if paper:
        print(f"Paper, {paper['model']} on {paper['dataset']}: {paper['nll']:.3f}. "
              f"{paper['note']}")
    else:
        print("The paper reports no figure for this architecture and data set.")
    files = result["files"]
    print(f"Training took {result['train_time_s']:.0f} s on {result['backend']} "
          f"({result['wall_time_s']:.0f} s in all, data and scoring included). Wrote:")
    for kind in ("model", "history", "learning_curve"):
        print(f"  {kind:14s} {files[kind]}")
    print(f"  {'result':14s} {pathlib.Path(files['run_dir']) / training.RESULT_FILE}")


# ---------------------------------------------------------------------------
# tune
# ---------------------------------------------------------------------------

# `train` flags that `tune` reads as they are; every model flag (MODEL_FIELDS)
# holds its setting fixed, and the other `train` flags are refused.
_TUNE_SHARED = ("task", "dataset", "limit", "epochs", "batch_size", "max_len", "bucket",
                "patience", "seed", "cache_dir", "quiet")
# Search dimensions with a `train` flag: searched unless the flag is given.
_TUNE_DIMENSION_FLAGS = ("learning_rate", "clipnorm")


def _add_tune(commands):
    # Every `train` flag, with its default, comes from `_add_train` itself, on
    # a parser of tune's own: `parents` shares the action objects it copies,
    # so tune's defaults must not be set on the real train parser's actions.
    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    _add_train(scratch)
    tune = commands.add_parser(
        "tune", parents=[scratch.choices["train"]], add_help=False,
        conflict_handler="resolve", formatter_class=_HelpFormatter,
        help="search architectures, depths and widths with KerasTuner, then report",
        description="Search the architectures (and each one's depth, width, regularisers "
                    "and learning rate) on a music data set with KerasTuner, scoring each "
                    "trial by its validation NLL, then write a report (a table of the "
                    "trials and plots of NLL against depth and size). The train flags that shape "
                    "the data and the fit work here with their train defaults; a model flag (--units 64, "
                    "--layer-norm, --learning-rate 1e-3) holds that setting fixed instead "
                    "of searching it. Re-running with the same --directory and "
                    "--project-name resumes the search. Needs keras-tuner "
                    "(pip install \"keras-deeprnn[tuning]\"). Same command: python -m "
                    "keras_deeprnn.tuning.",
        epilog=_BACKEND_NOTE,
    )
    train_defaults = vars(scratch.choices["train"].parse_args([]))
    fixed_by_flag = [name for name in training.MODEL_FIELDS if name != "architecture"]
    read = {"run", "architecture", *_TUNE_SHARED, *fixed_by_flag, *_TUNE_DIMENSION_FLAGS}
    train_only = {k: v for k, v in train_defaults.items() if k not in read}
    tune.set_defaults(
        architecture=None, **dict.fromkeys([*fixed_by_flag, *_TUNE_DIMENSION_FLAGS], None),
        # train-only flags and their defaults: given to tune, they are refused
        tune_train_only=train_only,
    )
    _tune_help(tune, train_only, fixed_by_flag)
    search = tune.add_argument_group("the search")
    search.add_argument("--tuner", default="random",
                        help="KerasTuner tuner: random, grid, bayesian (needs scikit-learn) "
                             "or hyperband")
    search.add_argument("--max-trials", type=int, default=10,
                        help="trials in all (hyperband: ignored, its brackets decide)")
    search.add_argument("--architectures", default=None,
                        help="comma-separated names to search over (default: all; "
                             "--architecture NAME searches one)")
    search.add_argument("--max-params", type=int, default=None,
                        help="parameter budget of every model (default: none)")
    search.add_argument("--budget-mode", default="skip",
                        help="skip: trials over --max-params fail; derive: every width is "
                             "the largest that meets it")
    search.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                        help="hold any search dimension or model argument fixed, e.g. "
                             "--fixed num_layers=3 (repeatable)")
    search.add_argument("--distribute", default=None,
                        help="data_parallel: each trial on every local device (jax, "
                             "tensorflow) (default: one device)")
    search.add_argument("--dtype-policy", default=None,
                        help="Keras dtype policy of every trial, e.g. mixed_bfloat16 "
                             "(default: float32)")
    where = tune.add_argument_group("where the search is kept")
    where.add_argument("--directory", default="tuning_runs",
                       help="folder of searches; the search is DIRECTORY/PROJECT_NAME")
    where.add_argument("--project-name", default=None,
                       help="default: DATASET_TUNER, e.g. jsb_chorales_random")
    where.add_argument("--overwrite", action="store_true",
                       help="start afresh instead of resuming")
    where.add_argument("--report-dir", default=None,
                       help="default: DIRECTORY/PROJECT_NAME/report")
    where.add_argument("--no-report", action="store_true", help="search only")
    where.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="0 silent, 1 progress bars, 2 one line per epoch and per trial "
                            "(default: 1 on a terminal, else 2; --quiet is 0)")
    tune.set_defaults(run=_run_tune)


def _tune_help(tune, train_only, fixed_by_flag):
    """`tune --help` lists what tune takes, each default as tune has it: the
    train-only flags are hidden (still refused with a reason when given), and a
    model flag not given is searched, or left at build_model's default."""
    for action in tune._actions:  # argparse has no public way to walk a parser's flags
        if action.dest in train_only or action.dest == "bidirectional":
            action.help = argparse.SUPPRESS
        elif action.dest == "architecture":
            action.help = ("search this architecture only (default: every one; see "
                           "--architectures)")
        elif action.dest in _TUNE_DIMENSION_FLAGS:
            action.help = f"{action.help}, held fixed (default: searched)"
        elif action.dest in fixed_by_flag:
            option = options.OPTIONS[action.dest]
            base = action.help.split(" (default")[0]
            if option.search is not None:
                default = "searched"
            elif option.default is None:
                default = "the architecture's"
            else:
                default = option.default
            action.help = f"{base}, held fixed (default: {default})"


def _run_tune(args):
    # KerasTuner is an optional dependency (and imports TensorFlow when it is
    # installed), so it is imported only when a search runs.
    from keras_deeprnn import tuning

    _tune_refuse_train_only(args)
    fixed = _tune_fixed(args)
    architectures = args.architectures
    if args.architecture is not None:
        if architectures is not None:
            raise ValueError("Give `--architecture NAME` (one) or `--architectures A,B` "
                             f"(several), not both. Received: --architecture "
                             f"{args.architecture} --architectures {architectures}")
        architectures = args.architecture
    dataset = args.dataset or _DEFAULTS.dataset
    project_name = args.project_name or tuning.search.default_project_name(dataset, args.tuner)
    verbose = 0 if args.quiet else args.verbose
    if verbose is None:
        verbose = tuning.search.default_verbosity()
    tuning.run_search(
        dataset=dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
        directory=args.directory, project_name=project_name, limit=args.limit,
        architectures=architectures, max_params=args.max_params,
        overwrite=args.overwrite, distribute=args.distribute, budget_mode=args.budget_mode,
        fixed=fixed, batch_size=args.batch_size, max_len=args.max_len, bucket=args.bucket,
        patience=args.patience, seed=args.seed, cache_dir=args.cache_dir,
        dtype_policy=args.dtype_policy, verbose=verbose,
    )
    if args.no_report or tuning.search.distributed_role() is not None:
        # In a distributed search the launcher reports once every worker is done.
        return 0
    written = tuning.report(args.directory, project_name, args.report_dir)
    print(f"Report: {written['markdown']}")
    return 0


def _tune_refuse_train_only(args):
    if args.task != "music":
        raise ValueError(f"`tune` searches music models (--task music). Received: --task "
                         f"{args.task}")
    given = [name for name, default in args.tune_train_only.items()
             if getattr(args, name, default) != default]
    if given:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ValueError(
            f"{flags}: train only, not used by tune (every trial trains with Adam, early "
            "stopping on the validation NLL, and keeps its checkpoints in the search "
            f"directory). Received: {', '.join(f'{n}={getattr(args, n)!r}' for n in given)}"
        )


def _tune_fixed(args):
    """The model flags given, and --fixed NAME=VALUE, as `run_search(fixed=...)`."""
    names = [n for n in training.MODEL_FIELDS if n != "architecture"]
    fixed = {n: getattr(args, n) for n in [*names, *_TUNE_DIMENSION_FLAGS]
             if getattr(args, n) is not None}
    if isinstance(fixed.get("units"), list):
        raise ValueError("`tune` holds --units to one width for every level. Received: "
                         f"--units {','.join(map(str, fixed['units']))}")
    if fixed.get("recurrent_initializer") == "sparse":
        fixed["recurrent_initializer"] = initializers.SparseInitializer()
    for item in args.fixed:
        name, value = _tune_setting(item)
        if name in fixed and fixed[name] != value:
            raise ValueError(f"`{name}` is fixed twice, to {fixed[name]!r} by its flag and "
                             f"to {value!r} by --fixed. Received: --fixed {item}")
        fixed[name] = value
    return fixed


def _tune_setting(item):
    name, sep, text = item.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"`--fixed` expects NAME=VALUE, e.g. num_layers=3. Received: {item!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word such as tanh
    return name.strip(), value


# ---------------------------------------------------------------------------
# evaluate, generate, datasets
# ---------------------------------------------------------------------------


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="score a trained model on a data set split",
        description="Score a run dir (its best model) or a .keras file: NLL per frame "
                    "and frame accuracy over every frame of the split.",
        formatter_class=_HelpFormatter,
    )
    evaluate.add_argument("model", help="a run dir or a .keras file")
    evaluate.add_argument("--task", choices=list(training.TASKS), default=None,
                          help="default: the run's own (music for a bare .keras)")
    evaluate.add_argument("--dataset", type=_dataset, default=None,
                          help="default: the run's own (jsb_chorales for a bare .keras)")
    evaluate.add_argument("--split", choices=music_data.SPLITS, default="test",
                          help="the split to score")
    evaluate.add_argument("--limit", type=int, default=None,
                          help="default: the run's own when --dataset is not given")
    evaluate.add_argument("--batch-size", type=int, default=16,
                          help="sequences per batch (the score does not depend on it)")
    evaluate.add_argument("--cache-dir", default=None,
                          help="built piano rolls (default $KERAS_DEEPRNN_CACHE, else "
                               "~/.cache/keras_deeprnn)")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    scores = training.evaluate(args.model, task=args.task, dataset=args.dataset,
                               split=args.split, limit=args.limit, batch_size=args.batch_size,
                               cache_dir=args.cache_dir, progress=not args.json)
    if args.json:
        print(json.dumps(scores, indent=2))
    elif "bits_per_token" in scores:
        print(f"{args.split}: {scores['bits_per_token']:.3f} bits per token, perplexity "
              f"{scores['perplexity']:.2f} ({scores['tokens']:,} tokens)")
    else:
        print(f"{args.split} {music.describe_scores(scores)}")
    return 0


def _add_generate(commands):
    generate = commands.add_parser(
        "generate", help="sample a piece from a trained model",
        description="Sample a piano roll frame by frame from a run dir, a .keras file or "
                    "a model that ships with the package (--pretrained jsb), and write it "
                    "as MIDI, MusicXML and a PNG piano roll.",
        formatter_class=_HelpFormatter,
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
    generate.add_argument("--prime-frames", type=int, default=8,
                          help="frames of that piece to open with")
    generate.add_argument("--dataset", type=_dataset, default=None,
                          help="data set of --prime-from and of the frame length "
                               "(default: the run's own)")
    generate.add_argument("--limit", type=int, default=None,
                          help="read only the first N files of that data set (default: the "
                               "run's own when --dataset is not given)")
    generate.add_argument("--cache-dir", default=None,
                          help="built piano rolls (default $KERAS_DEEPRNN_CACHE, else "
                               "~/.cache/keras_deeprnn)")
    generate.add_argument("--seed", type=int, default=None,
                          help="seed of the sampling (default: a different piece each time)")
    generate.add_argument("--out", default=None,
                          help="path prefix of the files (default RUN_DIR/sample; "
                               "NAME-sample in the current folder for --pretrained NAME)")
    generate.add_argument("--prime", default=None,
                          help="language models: text to continue (--frames counts the "
                               "new tokens; default: start from nothing)")
    generate.set_defaults(run=_run_generate)


def _run_generate(args):
    _positive("--frames", args.frames)
    _positive_number("--temperature", args.temperature)
    if (args.model is None) == (args.pretrained is None):
        raise ValueError(
            "Give either a run dir or .keras file, or --pretrained NAME. Received: "
            f"model={args.model!r}, --pretrained={args.pretrained!r}"
        )
    if args.pretrained is not None:
        model, record = pretrained.load(args.pretrained)
        saved = {"task": "music", "dataset": record["settings"]["dataset"]}
    else:
        model, saved = training.load_trained_model(args.model)
    if saved.get("task") == "lm":
        return _generate_text(model, saved, args)
    if args.prime is not None:
        raise ValueError(f"`--prime` is text for a language model; this model is a "
                         f"{saved.get('task', 'music')} model: open a piece with --prime-from "
                         f"instead. Received: --prime {args.prime!r}")
    dataset = args.dataset or saved.get("dataset", _DEFAULTS.dataset)
    prime = None
    if args.prime_from is not None:
        _positive("--prime-frames", args.prime_frames)
        split, index = _piece_reference(args.prime_from)
        limit = args.limit if args.limit is not None or args.dataset else saved.get("limit")
        pieces = music_data.load_music(dataset, cache_dir=args.cache_dir, limit=limit)[split]
        if not 0 <= index < len(pieces):
            raise ValueError(f"`--prime-from` names piece {index} of the {split} split, "
                             f"which has {len(pieces)} pieces (0..{len(pieces) - 1}).")
        prime = pieces[index][: args.prime_frames]
    roll = music.sample_piece(model, args.frames, temperature=args.temperature,
                                   prime=prime, seed=args.seed)
    if args.out is not None:
        prefix = pathlib.Path(args.out)
    elif args.pretrained is not None:
        prefix = pathlib.Path(f"{args.pretrained}-sample")
    elif pathlib.Path(args.model).is_dir():
        prefix = pathlib.Path(args.model) / "sample"
    else:
        prefix = pathlib.Path(args.model).with_suffix("").with_name(
            pathlib.Path(args.model).stem + "-sample")
    paths = music.save_piece(
        roll, prefix, frame_quarter_length=music.frame_quarter_length_of(dataset),
        title=f"sample, temperature {args.temperature}")
    opening = "" if prime is None else f", opening {len(prime)} from {dataset} {args.prime_from}"
    print(f"Sampled {args.frames} frames ({int(roll.sum())} note-frames{opening}). Wrote:")
    for kind, path in paths.items():
        print(f"  {kind:9s} {path}")
    return 0


def _generate_text(model, saved, args):
    # The run's own vocabulary: another data set's would give other tokens
    # the model's ids (--dataset only chooses music primes).
    task_state = training.saved_task_state(args.model)
    if task_state:
        vocabulary = task_state["vocabulary"]
    else:  # a run saved before runs kept their vocabulary
        tokenization = saved.get("tokenization", saved.get("level", _DEFAULTS.tokenization))
        dataset = saved.get("dataset", language.DEFAULT_DATASET)
        vocabulary = language.load_corpus(dataset, tokenization).vocabulary
    text = language.sample_text(model, vocabulary, args.frames, temperature=args.temperature,
                                prime=args.prime, seed=args.seed)
    prefix = pathlib.Path(args.out) if args.out else (
        pathlib.Path(args.model) / "sample" if pathlib.Path(args.model).is_dir()
        else pathlib.Path(args.model).with_suffix(""))
    path = prefix.with_name(prefix.name + ".txt")
    _files.write_text(path, (args.prime or "") + text)
    print(f"Sampled {args.frames} tokens (temperature {args.temperature}), wrote {path}:")
    _print_text((args.prime or "") + text)
    return 0


def _print_text(text):
    """Print sampled text on any terminal: characters it cannot show are
    replaced, not an error after the work is done (the file holds them all)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, errors="replace").decode(encoding, errors="replace"))


def _run_datasets(args):
    cache = music_data._cache_root(None)
    print(f"Built-in music data sets (built from the music21 corpus on first use, "
          f"cached in {cache}):\n")
    for name, description in music_data.MUSIC_DATASETS.items():
        column = PAPER_MUSIC_COLUMNS[name][0]
        print(f"{name}  (imitates {column}; one frame per "
              f"{music_data.FRAME_QUARTER_LENGTHS[name]} quarter notes)")
        print(f"    {description}\n")
    print("Also accepted as --dataset: a Boulanger-Lewandowski pickle "
          "(JSB_Chorales.pickle, Nottingham.pickle, MuseData.pickle) for the paper's own "
          "data, or a folder of MIDI, MusicXML, ABC or Humdrum files.")
    return 0


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


class _Refuse(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(
            f"{option_string} is not available for training: the models here predict "
            "the next frame from the frames before it, and a backward RNN would read "
            "the very frames it has to predict."
        )


def _dataset(value):
    if value in music_data.MUSIC_DATASETS or value in text_data.EMBEDDED_CORPORA \
            or pathlib.Path(value).expanduser().exists():
        return value
    raise argparse.ArgumentTypeError(
        f"expected a built-in data set ({', '.join(music_data.MUSIC_DATASETS)}, or "
        f"{', '.join(text_data.EMBEDDED_CORPORA)} for --task lm), a .pickle file, a text "
        f"file or a folder; received {value!r}, which is none of these"
    )


def _piece_reference(value):
    split, _, index = value.rpartition(":")
    split = split or "test"
    if split not in music_data.SPLITS or not index.isdigit():
        raise ValueError(f"`--prime-from` must be [SPLIT:]INDEX with SPLIT one of "
                         f"{', '.join(music_data.SPLITS)}. Received: {value!r}")
    return split, int(index)


def _positive_number(flag, value):
    try:
        _checks.positive_finite(flag, value)
    except ValueError:
        raise ValueError(f"`{flag}` must be a finite number > 0. Received: {value}") from None


def _os_error(err):
    """An `OSError` as one line: what failed, on which file."""
    what = err.strerror or str(err) or type(err).__name__
    where = f": '{err.filename}'" if err.filename else ""
    return f"{what}{where}"


def _positive(flag, value):
    if value < 1:
        raise ValueError(f"`{flag}` must be a positive integer. Received: {value}")


def _non_negative(flag, value):
    if value < 0:
        raise ValueError(f"`{flag}` must be 0 or more. Received: {value}")


if __name__ == "__main__":
    sys.exit(main())
