"""A distributed search on this machine: one chief and N workers on 127.0.0.1.

KerasTuner's chief/worker mode (see `keras_deeprnn.tuning` for the recipe
across machines): the chief serves trials over gRPC on a free loopback port,
each worker runs `keras-deeprnn tune` with the same flags and asks it for
trials. Flags after `--` go to every process.

    python tuning/launch_distributed.py --workers 2 --quick
    python tuning/launch_distributed.py --workers 4 -- --tuner random \\
        --max-trials 40 --epochs 30 --architectures rnn,dts_rnn,dots_rnn,srnn \\
        --max-params 100000 --budget-mode derive --directory tuning_runs

Logs of every process go to `--log-dir` (default: a new temporary folder,
printed). The report is written once all workers are done.
"""

import argparse
import pathlib
import sys

from keras_deeprnn.tuning import launch_local
from keras_deeprnn.tuning import report

QUICK = ["--max-trials", "4", "--epochs", "1", "--limit", "6", "--architectures", "rnn,srnn",
         "--units", "8", "--verbose", "0", "--project-name", "distributed_quick",
         "--overwrite"]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--quick", action="store_true", help="a tiny search to check the set-up")
parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds for the whole search")
parser.add_argument("--log-dir", default=None, help="where each process's log goes")
args, flags = parser.parse_known_args()
flags = [f for f in flags if f != "--"]
if args.quick:
    flags = QUICK + flags

result = launch_local(args.workers, flags, timeout=args.timeout, log_dir=args.log_dir)
print("Return codes:", result["returncodes"], "logs in", result["log_dir"])
failed = result["timed_out"] or any(rc != 0 for name, rc in result["returncodes"].items()
                                    if name != "chief")
if result["project"] is None:
    print("The chief never started its search; see", pathlib.Path(result["log_dir"]) / "chief.log")
    sys.exit(1)
project = pathlib.Path(result["project"])
written = report(project.parent, project.name)
print(written["markdown"].read_text())
sys.exit(1 if failed else 0)
