"""`keras-deeprnn tune`: a KerasTuner search of architectures, depths and widths."""

import argparse
import ast

from keras_deeprnn import initializers
from keras_deeprnn import training
from keras_deeprnn.cli import checks
from keras_deeprnn.cli import train as train_command
from keras_deeprnn.models import options
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import get_task

# `train` flags that `tune` reads as they are; every model flag (MODEL_FIELDS)
# holds its setting fixed, the settings of a task tune can search are read by
# that task, and the other `train` flags are refused.
_TUNE_SHARED = ("task", "dataset", "limit", "epochs", "batch_size", "patience", "seed",
                "cache_dir", "quiet", "task_flag_defaults")
# Search dimensions with a `train` flag: searched unless the flag is given.
_TUNE_DIMENSION_FLAGS = ("learning_rate", "clipnorm")


def add_parser(commands):
    # Every `train` flag, with its default, comes from `train.add_parser`
    # itself, on a parser of tune's own: `parents` shares the action objects
    # it copies, so tune's defaults must not be set on the real train parser's.
    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    train_command.add_parser(scratch)
    tune = commands.add_parser(
        "tune", parents=[scratch.choices["train"]], add_help=False,
        conflict_handler="resolve", formatter_class=checks.HelpFormatter,
        help="search architectures, depths and widths with KerasTuner, then report",
        description="Search the architectures (and each one's depth, width, regularisers "
                    "and learning rate) on a task's data set (music by default) with "
                    "KerasTuner, scoring each trial by the task's validation measure, then "
                    "write a report (a table of the trials and plots of the measure against "
                    "depth and size). The train flags that shape "
                    "the data and the fit work here with their train defaults; a model flag (--units 64, "
                    "--layer-norm, --learning-rate 1e-3) holds that setting fixed instead "
                    "of searching it. Re-running with the same --directory and "
                    "--project-name resumes the search. Needs keras-tuner "
                    "(pip install \"keras-deeprnn[tuning]\"). Same command: python -m "
                    "keras_deeprnn.tuning.",
        epilog=checks.BACKEND_NOTE,
    )
    train_defaults = vars(scratch.choices["train"].parse_args([]))
    fixed_by_flag = [name for name in training.MODEL_FIELDS if name != "architecture"]
    searched_settings = [name for task in TASKS.values() if task.tunable
                         for name in task.setting_names()]
    read = {"run", "architecture", *_TUNE_SHARED, *fixed_by_flag, *_TUNE_DIMENSION_FLAGS,
            *searched_settings}
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
    tune.set_defaults(run=run)


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


def run(args):
    # KerasTuner is an optional dependency (and imports TensorFlow when it is
    # installed), so it is imported only when a search runs.
    from keras_deeprnn import tuning

    task = get_task(args.task)
    task.check_tunable()
    _refuse_train_only(args)
    checks.refuse_other_tasks_flags(args, task)
    fixed = _fixed(args)
    architectures = args.architectures
    if args.architecture is not None:
        if architectures is not None:
            raise ValueError("Give `--architecture NAME` (one) or `--architectures A,B` "
                             f"(several), not both. Received: --architecture "
                             f"{args.architecture} --architectures {architectures}")
        architectures = args.architecture
    dataset = args.dataset or task.default_dataset
    project_name = args.project_name or tuning.search.default_project_name(dataset, args.tuner)
    verbose = 0 if args.quiet else args.verbose
    if verbose is None:
        verbose = tuning.search.default_verbosity()
    # As for `train`: the settings TrainConfig holds as fields (music's
    # max_len and bucket) are run_search's arguments of the same names.
    settings = train_command.config_values(task, task.read_arguments(args))
    tuning.run_search(
        dataset=dataset, tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs,
        directory=args.directory, project_name=project_name, limit=args.limit,
        architectures=architectures, max_params=args.max_params,
        overwrite=args.overwrite, distribute=args.distribute, budget_mode=args.budget_mode,
        fixed=fixed, batch_size=args.batch_size, task=task.name, **settings,
        patience=args.patience, seed=args.seed, cache_dir=args.cache_dir,
        dtype_policy=args.dtype_policy, verbose=verbose,
    )
    if args.no_report or tuning.search.distributed_role() is not None:
        # In a distributed search the launcher reports once every worker is done.
        return 0
    written = tuning.report(args.directory, project_name, args.report_dir)
    print(f"Report: {written['markdown']}")
    return 0


def _refuse_train_only(args):
    given = [name for name, default in args.tune_train_only.items()
             if getattr(args, name, default) != default]
    if given:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ValueError(
            f"{flags}: train only, not used by tune (every trial trains with Adam, early "
            "stopping on the validation measure, and keeps its checkpoints in the search "
            f"directory). Received: {', '.join(f'{n}={getattr(args, n)!r}' for n in given)}"
        )


def _fixed(args):
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
        name, value = _setting(item)
        if name in fixed and fixed[name] != value:
            raise ValueError(f"`{name}` is fixed twice, to {fixed[name]!r} by its flag and "
                             f"to {value!r} by --fixed. Received: --fixed {item}")
        fixed[name] = value
    return fixed


def _setting(item):
    name, sep, text = item.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"`--fixed` expects NAME=VALUE, e.g. num_layers=3. Received: {item!r}")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word such as tanh
    return name.strip(), value
