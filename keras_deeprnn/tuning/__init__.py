"""Searching over depth and width with KerasTuner.

A named architecture is a row of configuration, so a search over deep RNNs is
a search over that row: `DeepRNNHyperModel` declares the architecture and,
per architecture, only the depth and width arguments it leaves free.

* `DeepRNNHyperModel`: the search space, for any KerasTuner tuner, with an
  optional parameter budget (skip larger models, or derive `units` from it).
* `run_search(...)`: load a music data set, search, keep the state in a
  directory that an interrupted search resumes from.
* `report(directory, project_name, out_dir)`: the trials as Markdown, CSV
  and plots of validation NLL against depth and parameter count.
* `distribution_scope("data_parallel")`: one trial on every local device.
* `launch_local(N, argv)`: a chief and N workers on 127.0.0.1.

The command line is `keras-deeprnn tune` (`python -m keras_deeprnn tune`
is the same command). It takes the flags of `keras-deeprnn train` that shape
the data and the fit, with the same defaults, and every model flag: a model
flag (`--units 64`, `--layer-norm`) holds that setting fixed instead of
searching it (`tune --help` lists only these; the other `train` flags are
refused, with the reason). Small search and its report:

```
keras-deeprnn tune --dataset jsb_chorales --tuner random \\
    --max-trials 4 --epochs 2 --limit 20 --architectures rnn,dts_rnn,srnn \\
    --max-params 20000 --budget-mode derive --directory runs --overwrite
# -> runs/jsb_chorales_random/report/trials.md, trials.csv, *.png
```

Distributed search (KerasTuner's chief/worker mode). One chief process
holds the oracle and hands trials to workers over gRPC (grpcio and protobuf
come with keras-tuner and work under every Keras backend). Every process
runs the same command; three environment variables say who is who:

```
# the chief (its machine's address, a free port)
KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
    keras-deeprnn tune --directory /shared/runs --max-trials 60 ...
# each worker: a unique id without "chief", same flags, never --overwrite
KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
    keras-deeprnn tune --directory /shared/runs --max-trials 60 ...
```

`KERASTUNER_ORACLE_IP` is where the chief listens, and it listens without
authentication or encryption (KerasTuner's gRPC server has neither): anyone
who can reach the port can read the search space, take trials and report
scores that the chief saves as results. Use `127.0.0.1` on one machine;
across machines, only an address on a private network behind a firewall
(never `0.0.0.0` on a machine others can reach). The chief warns when the
address is not loopback (`check_chief_address`).

A worker waits a minute for its chief to start listening, then up to
`KERAS_DEEPRNN_CHIEF_TIMEOUT` seconds (default 300; KerasTuner alone waits
an hour) for each answer: a chief that stops mid-search ends each worker's
search with a one-line `ConnectionError` naming the chief's address and
the call it did not answer (`keras_deeprnn.tuning.chief_calls`). Restart
the chief, then the workers: the search resumes from its directory.

The chief loads no data and writes the oracle and every `trial.json`;
workers write checkpoints and `tuner_logs/<id>.jsonl` (which trial each ran).
A shared `--directory` keeps it all in one place; `report` needs only the
chief's files. On one machine,
`python tuning/launch_distributed.py --workers 2 -- <flags>` does all of it
on 127.0.0.1 (`launch_local`). With several GPUs per machine, run one worker
per GPU (`CUDA_VISIBLE_DEVICES=i`); that is also the way for the torch
backend, which has no in-process data parallelism for `fit` (a single model
on several GPUs under torch needs DistributedDataParallel launched with
`torchrun`).

Data-parallel trials (`--distribute data_parallel`): on JAX,
`keras.distribution.DataParallel` over `keras.distribution.list_devices()`;
on TensorFlow, `tf.distribute.MirroredStrategy` over the same devices. Both
are set inside `build` and `fit`, since KerasTuner clears the Keras session
between trials.
"""

try:
    import keras_tuner  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        'keras_deeprnn.tuning needs KerasTuner: pip install "keras-deeprnn[tuning]"'
    ) from error

from keras_deeprnn.tuning.distribute import DISTRIBUTIONS
from keras_deeprnn.tuning.distribute import check_chief_address
from keras_deeprnn.tuning.distribute import distribution_scope
from keras_deeprnn.tuning.distribute import even_batches
from keras_deeprnn.tuning.distribute import launch_local
from keras_deeprnn.tuning.distribute import num_replicas
from keras_deeprnn.tuning.hypermodel import BUDGET_MODES
from keras_deeprnn.tuning.hypermodel import DeepRNNHyperModel
from keras_deeprnn.tuning.report import report
from keras_deeprnn.tuning.search import run_search
from keras_deeprnn.tuning.space import SEARCH_SPACE
from keras_deeprnn.tuning.tuners import TUNERS

__all__ = [
    "BUDGET_MODES", "DISTRIBUTIONS", "SEARCH_SPACE", "TUNERS", "DeepRNNHyperModel",
    "check_chief_address", "distribution_scope", "even_batches", "launch_local",
    "num_replicas", "report", "run_search",
]
