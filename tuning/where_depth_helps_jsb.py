"""Where does depth help on JSB chorales? The paper's architectures at one size.

Every trial picks one of the architectures of Pascanu et al. (2014) (RNN,
deep input, DT, DT(S), DO, DOT, DOT(S), sRNN) and its depth; `units` is then
the largest width whose model fits the parameter budget, so deep and shallow
models are compared at equal size, as in the paper. Learning rate, dropout,
weight noise and the intermediate units are searched as well.

    python tuning/where_depth_helps_jsb.py             # hours on a CPU
    python tuning/where_depth_helps_jsb.py --quick     # a minute or two
    python tuning/where_depth_helps_jsb.py --tuner bayesian --max-trials 100

The report (table, NLL against depth and against parameters) lands in
`<directory>/where_depth_helps_jsb/report/`. A search that is stopped
resumes where it was when run again.
"""

import argparse

from keras_deeprnn.tuning import report
from keras_deeprnn.tuning import run_search

ARCHITECTURES = ["rnn", "di_rnn", "dt_rnn", "dts_rnn", "do_rnn", "dot_rnn", "dots_rnn", "srnn"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a tiny search to check the set-up")
parser.add_argument("--tuner", default="random", choices=["random", "bayesian", "hyperband"])
parser.add_argument("--max-trials", type=int, default=80)
parser.add_argument("--directory", default="tuning_runs")
parser.add_argument("--overwrite", action="store_true")
args = parser.parse_args()

settings = dict(
    max_params=100_000,  # an RNN of about 235 units on 88 notes
    epochs=50,           # early stopping (patience 5) usually ends a trial sooner
    patience=5,
    limit=None,          # all 350 chorales
    max_trials=args.max_trials,
    batch_size=16,
)
if args.quick:
    settings.update(max_params=3_000, epochs=1, patience=1, limit=6, max_trials=3)

run_search(
    "jsb_chorales", args.tuner, directory=args.directory, project_name="where_depth_helps_jsb",
    architectures=ARCHITECTURES, budget_mode="derive", overwrite=args.overwrite,
    # The paper's own aids only; the later regularisers are another study.
    fixed=dict(zoneout=0.0, recurrent_weight_dropout=0.0, layer_norm=False,
               trainable_initial_state=False),
    verbose=0 if args.quick else 1, **settings,
)
written = report(args.directory, "where_depth_helps_jsb")
print(written["markdown"].read_text())
print("Plots:", *map(str, written["plots"]))
