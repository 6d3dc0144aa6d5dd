"""Depth versus width at a fixed parameter budget.

A grid over the architecture and its depth, everything else held fixed: at
each budget every depth gets the widest `units` that fits, so a deeper model
is a narrower one. Does the depth pay for the lost width? The grid, for each
budget:

    rnn                      (depth 2)
    dts_rnn  num_transition_layers 2, 3, 4
    srnn     num_layers            2, 3, 4
    dots_rnn num_transition_layers 2..4 x num_output_layers 1..3

    python tuning/depth_vs_width_budget.py
    python tuning/depth_vs_width_budget.py --quick
    python tuning/depth_vs_width_budget.py --budgets 20000 80000 320000

One project per budget, `<directory>/depth_vs_width_<budget>/report/`.
"""

import argparse

from keras_deeprnn.tuning import report
from keras_deeprnn.tuning import run_search

ARCHITECTURES = ["rnn", "dts_rnn", "srnn", "dots_rnn"]
# Held fixed so the grid runs over depth alone; the paper's settings.
FIXED = dict(
    learning_rate=1e-3, clipnorm=1.0, dropout=0.0, output_dropout=0.0, weight_noise=0.0,
    skip_connections=False, residual_connections=False, transition_activation="tanh",
    output_hidden_activation="tanh", recurrent_weight_dropout=0.0, zoneout=0.0,
    layer_norm=False, trainable_initial_state=False,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a tiny grid to check the set-up")
parser.add_argument("--budgets", type=int, nargs="+", default=[25_000, 100_000])
parser.add_argument("--dataset", default="jsb_chorales")
parser.add_argument("--directory", default="tuning_runs")
parser.add_argument("--overwrite", action="store_true")
args = parser.parse_args()

settings = dict(epochs=50, patience=5, limit=None, max_trials=None)  # None: the whole grid
architectures = ARCHITECTURES
if args.quick:
    args.budgets = [3_000]
    settings.update(epochs=1, patience=1, limit=6, max_trials=3)
    architectures = ["rnn", "dts_rnn", "srnn"]

for budget in args.budgets:
    project = f"depth_vs_width_{budget}"
    run_search(
        args.dataset, "grid", directory=args.directory, project_name=project,
        architectures=architectures, max_params=budget, budget_mode="derive", fixed=FIXED,
        overwrite=args.overwrite, verbose=0 if args.quick else 1, **settings,
    )
    written = report(args.directory, project)
    print(written["markdown"].read_text())
