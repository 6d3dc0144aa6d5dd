"""Train, checkpoint, resume and score one experiment of the paper.

`train(TrainConfig(...))` runs the whole job: it loads the data, builds the
model with `build_model`, fits it with early stopping on the validation
measure and the learning rate halved on plateaus (as the paper did), keeps a
checkpoint of every epoch, scores the best weights on the test split and
writes everything into `config.run_dir`:

| file | what |
| --- | --- |
| `state.json` | finished epochs, best validation value, history, config, backend, random state |
| `state.previous.json` | the same for the epoch before (a fallback) |
| `checkpoint-epochNNN.keras` | the model after the last (and the one before) finished epoch |
| `best-epochNNN.weights.h5` | the weights of the best validation epoch |
| `history.csv` | one row per epoch (`keras.callbacks.CSVLogger`) |
| `model.keras` | the best model, once training is over |
| `result.json` | test scores, the paper's figure, settings, timings |
| `learning_curve.png` | train and validation measure per epoch |
| `tensorboard/` | Keras's TensorBoard logs, with `tensorboard=True` |
| `.lock` | held by the `train` running there, so only one does |

Every file is written to a temporary name and moved into place with
`os.replace`, and `state.json` names the checkpoint it belongs to, so an
interrupted run (Ctrl-C, a killed job) leaves a consistent last epoch behind.
Running `train` again with the same `run_dir` continues from there, with the
random state (shuffling, dropout draws) where the interrupted run left it, so
the result is the one an uninterrupted run gives. A damaged newest state or
checkpoint falls back to the epoch before.

What differs between the paper's tasks lives in a `keras_deeprnn.tasks.Task`:
how to load the data and make batches, the arguments that fit the model to
the data, the loss, the metrics, the test measure, the published figures and
sampling. `TrainConfig.task` names a registered one (`"music"`, `"lm"`).

Checkpoints hold the classes registered by `keras_deeprnn.metrics` and
`keras_deeprnn.tasks`. `load_trained_model` imports both; with plain
`keras.models.load_model`, `import keras_deeprnn` first.

The package's modules, by job: `config` (`TrainConfig`), `loop` (`train`),
`callbacks` (the epoch's checkpoint and state), `resume` (the last good epoch
of a run dir), `random_state`, `lock` (one `train` per run dir), `records`
(the files' names, JSON and CSV), `scoring` (`evaluate`, `load_trained_model`),
`inputs` (`fit_input`) and `plots` (the learning curve).
"""

from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import get_task
from keras_deeprnn.training.callbacks import TrainingDiverged
from keras_deeprnn.training.config import MODEL_FIELDS
from keras_deeprnn.training.config import OPTIMIZERS
from keras_deeprnn.training.config import TrainConfig
from keras_deeprnn.training.inputs import fit_input
from keras_deeprnn.training.lock import RunDirBusy
from keras_deeprnn.training.loop import train
from keras_deeprnn.training.records import CURVE_FILE
from keras_deeprnn.training.records import RESULT_FILE
from keras_deeprnn.training.records import STATE_FILE
from keras_deeprnn.training.scoring import evaluate
from keras_deeprnn.training.scoring import load_trained_model
from keras_deeprnn.training.scoring import saved_task_state

__all__ = [
    "TrainConfig", "train", "evaluate", "load_trained_model", "saved_task_state",
    "TrainingDiverged", "RunDirBusy", "fit_input",
    "MODEL_FIELDS", "OPTIMIZERS", "RESULT_FILE", "STATE_FILE", "CURVE_FILE",
    "TASKS", "get_task",
]
