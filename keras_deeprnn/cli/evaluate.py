"""`keras-deeprnn evaluate`: score a trained model on one split of a data set."""

import json

from keras_deeprnn import training
from keras_deeprnn.cli import checks
from keras_deeprnn.data import SPLITS
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import get_task


def add_parser(commands):
    evaluate = commands.add_parser(
        "evaluate", help="score a trained model on a data set split",
        description="Score a run dir (its best model) or a .keras file on a split of a "
                    "data set, by its task's test measure (music: NLL per frame and frame "
                    "accuracy over every frame; lm: bits per token and perplexity).",
        formatter_class=checks.HelpFormatter,
    )
    evaluate.add_argument("model", help="a run dir or a .keras file")
    evaluate.add_argument("--task", choices=list(TASKS), default=None,
                          help=f"default: the run's own ({training.TrainConfig.task} for a "
                               "bare .keras)")
    evaluate.add_argument("--dataset", type=checks.dataset, default=None,
                          help="default: the run's own (for a bare .keras, the task's usual data set)")
    evaluate.add_argument("--split", choices=SPLITS, default="test",
                          help="the split to score")
    evaluate.add_argument("--limit", type=int, default=None,
                          help="default: the run's own when --dataset is not given")
    evaluate.add_argument("--batch-size", type=int, default=16,
                          help="sequences per batch (the score does not depend on it)")
    checks.add_cache_dir(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.set_defaults(run=run)


def run(args):
    scores = training.evaluate(args.model, task=args.task, dataset=args.dataset,
                               split=args.split, limit=args.limit, batch_size=args.batch_size,
                               cache_dir=args.cache_dir, progress=not args.json)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    task = args.task
    if task is None:
        _, saved = training.load_trained_model(args.model)
        task = saved.get("task", training.TrainConfig.task)
    print(get_task(task).score_line(scores, args.split))
    return 0
