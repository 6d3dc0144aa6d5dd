"""`keras-deeprnn train`: train (or resume) a model, print its score, sample from it."""

import argparse
import dataclasses

import keras

from keras_deeprnn import training
from keras_deeprnn.cli import checks
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import options
from keras_deeprnn.models import presets
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import get_task

DEFAULTS = training.TrainConfig()
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(training.TrainConfig)}


def add_parser(commands):
    d = DEFAULTS
    train = commands.add_parser(
        "train", help="train (or resume) a model on a data set",
        description="Train a deep RNN on a task's data (music: the next frame of piano "
                    "rolls; lm: the next character or word), with early stopping and the "
                    "learning rate halved on plateaus, checkpointing every epoch. With no "
                    "arguments: the main job (DOT(S)-RNN on jsb_chorales, a few minutes on "
                    "a CPU). Re-running with the same --run-dir resumes.",
        epilog=checks.BACKEND_NOTE, formatter_class=checks.HelpFormatter,
    )
    what = train.add_argument_group("what to train")
    what.add_argument("--task", choices=list(TASKS), default=d.task,
                      help="; ".join(f"{task.name}: {' '.join(task.measure)}"
                                     for task in TASKS.values() if task.measure))
    what.add_argument("--architecture", choices=list(ARCHITECTURES), default=d.architecture,
                      metavar="NAME",
                      help=f"the deep RNN to build: {', '.join(ARCHITECTURES)}")
    what.add_argument("--dataset", type=checks.dataset, default=None,
                      help="a built-in name (" + "; ".join(
                          f"{task.name}: {', '.join(task.datasets)}" for task in TASKS.values()
                          if task.datasets) + "), or a file or folder the task reads "
                      "(music: a Boulanger-Lewandowski .pickle or a folder of scores; lm: a "
                      "text file, or a folder of Penn Treebank or .txt files) (default: "
                      + ", ".join(f"{task.default_dataset} for {task.name}"
                                  for task in TASKS.values() if task.default_dataset) + ")")
    what.add_argument("--limit", type=int, default=d.limit,
                      help="read only the first N files of the data set (lm: the first N "
                           "tokens of each split) for quick runs (default: all)")
    added = set()
    for task in TASKS.values():
        if set(task.setting_names()) - added:
            task.add_arguments(train.add_argument_group(
                f"--task {task.name}", f"settings of the {task.name} task"), skip=added)
            added |= set(task.setting_names())
    train.set_defaults(task_flag_defaults={
        name: train.get_default(name) for names in checks.task_flags().values()
        for name in names})
    shape = train.add_argument_group("the model")
    for name in options.TRAIN_FIELDS:
        _add_model_flag(shape, options.OPTIONS[name], getattr(d, name))
    shape.add_argument("--bidirectional", action=checks.Refuse, nargs=0,
                       help="refused: a backward RNN reads the frames it should predict")
    fit = train.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=int, default=d.epochs,
                     help="most epochs (early stopping may end the run sooner)")
    fit.add_argument("--batch-size", type=int, default=d.batch_size,
                     help="sequences per batch (music: pieces; lm: parallel streams)")
    fit.add_argument("--optimizer", choices=training.OPTIMIZERS, default=d.optimizer,
                     help="the paper used sgd (try --learning-rate 0.05 --momentum 0.9)")
    fit.add_argument("--learning-rate", type=float, default=d.learning_rate,
                     help="the optimizer's starting learning rate")
    fit.add_argument("--momentum", type=float, default=d.momentum, help="sgd only")
    fit.add_argument("--clipnorm", type=float, default=d.clipnorm,
                     help="gradient-norm clipping (the paper's 1); 0 turns it off")
    fit.add_argument("--patience", type=int, default=d.patience,
                     help="epochs without a better validation score before stopping")
    fit.add_argument("--lr-patience", type=int, default=d.lr_patience,
                     help="epochs without a better validation score before halving the "
                          "learning rate")
    fit.add_argument("--seed", type=int, default=d.seed,
                     help="seed of the weights, the batches, every dropout mask and the "
                          "sample")
    files = train.add_argument_group("files and output")
    files.add_argument("--run-dir", default=None,
                       help="where checkpoints and results go (default "
                            "runs/ARCHITECTURE-DATASET); an existing run there resumes")
    checks.add_cache_dir(files)
    files.add_argument("--generate-frames", type=int, default=64,
                       help="length of the piece (lm: tokens of text) sampled at the end; "
                            "0 for none")
    files.add_argument("--temperature", type=float, default=1.0,
                       help="sampling temperature of that sample")
    files.add_argument("--tensorboard", action="store_true",
                       help="also write Keras's TensorBoard logs to RUN_DIR/tensorboard "
                            "(needs tensorflow and tensorboard, whatever the backend)")
    files.add_argument("--quiet", action="store_true",
                       help="no progress output (otherwise: progress bars in a terminal, one "
                            "line per epoch in a log file)")
    train.set_defaults(run=run)
    return train


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


def config_values(task, settings):
    """A task's settings as `TrainConfig` arguments: its fields of the same
    names, `task_settings` for the rest."""
    values = {k: v for k, v in settings.items() if k in _CONFIG_FIELDS}
    rest = {k: v for k, v in settings.items() if k not in _CONFIG_FIELDS}
    if rest:
        values["task_settings"] = rest
    return values


def run(args):
    task = get_task(args.task)
    checks.refuse_other_tasks_flags(args, task)
    values = {k: v for k, v in vars(args).items()
              if k in _CONFIG_FIELDS and k not in _all_settings()}
    values.update(config_values(task, task.read_arguments(args)))
    values["clipnorm"] = args.clipnorm or None
    values["dataset"] = args.dataset or task.default_dataset
    config = training.TrainConfig(**values, progress=not args.quiet)
    config.validate()
    # Checked before training, not when the sample is drawn at its end.
    checks.non_negative("--generate-frames", args.generate_frames)
    if args.generate_frames:
        checks.positive_number("--temperature", args.temperature)
        checks.sample_length("--generate-frames", args.generate_frames,
                             task.max_sample_length)
    if keras.backend.backend() == "torch" and config.progress:
        # Keras runs a custom RNN's time loop in Python on torch.
        print("Note: on the torch backend each epoch of a recurrent model takes many "
              "times longer than on jax or tensorflow (the time loop runs in Python); "
              "KERAS_BACKEND=jax is the fastest on a CPU.", flush=True)
    result = training.train(config)
    for line in task.result_lines(result, config):
        print(line)
    if args.generate_frames:
        run_dir = result["files"]["run_dir"]
        model, _ = training.load_trained_model(run_dir)
        sample = task.sample(model, args.generate_frames, temperature=args.temperature,
                             seed=config.seed, saved=training.saved_task_state(run_dir),
                             progress=config.progress)
        for line in task.training_sample_lines(sample, run_dir, config,
                                               length=args.generate_frames,
                                               temperature=args.temperature):
            checks.print_text(line)
    return 0


def _all_settings():
    """Every registered task's setting names (read through the task, not as-is)."""
    return {name for names in checks.task_flags().values() for name in names}
