"""The training loop's decisions, run long enough to fire: early stopping
after exactly `patience` epochs without improvement, the learning rate halved
every `lr_patience` such epochs, the test score taken with the best
validation epoch's weights, and a resumed run deciding as the whole one does.

The validation measure is scripted: a task whose validation targets hold the
value the script gives for the epoch, and whose metric reads the targets, so
the decisions are known in advance whatever the weights do.
"""

import keras
import numpy as np
import pytest

from keras_deeprnn import training
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import Task
from keras_deeprnn.tasks import register

# Best at epoch 2, never better after it.
SCRIPT = [0.5, 0.3, 0.6, 0.4, 0.6, 0.3, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
PATIENCE, LR_PATIENCE = 4, 2
# Epochs 3..6 do not improve on 0.3 (6 only equals it): 4 = PATIENCE of them.
STOP_EPOCH, BEST_EPOCH = 6, 2
# Halved after 2 epochs without improvement (4), and 2 more (6).
LEARNING_RATES = [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]


@keras.saving.register_keras_serializable(package="test_training_decisions")
def scripted(y_true, y_pred):
    return keras.ops.mean(y_true, axis=-1) + 0.0 * keras.ops.mean(y_pred, axis=-1)


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, y, epoch_of=None):
        super().__init__()
        self.x, self.y, self.epoch_of = x, y, epoch_of

    def __len__(self):
        return 2

    def __getitem__(self, index):
        rows = slice(2 * index, 2 * index + 2)
        y = self.y[rows]
        if self.epoch_of is not None:
            y = np.full_like(y, SCRIPT[self.epoch_of[0]])
        return self.x[rows], y, np.ones(y.shape[:2], np.float32)


class _Epoch(keras.callbacks.Callback):
    def __init__(self, epoch_of):
        super().__init__()
        self.epoch_of = epoch_of

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_of[0] = epoch


class ScriptedTask(Task):
    name = "scripted"
    monitor = "val_scripted"
    measure = ("scripted", "units")

    def __init__(self):
        self.epoch_of = [0]

    def load_data(self, config, *, saved=None):
        rng = np.random.default_rng(0)
        x = rng.random((4, 5, 3)).astype(np.float32)
        return {split: (x, (x > 0.5).astype(np.float32)) for split in ("train", "valid", "test")}

    def batches(self, split, config, *, training, epoch=0):
        return _Batches(*split, epoch_of=None if training else self.epoch_of)

    def build_model_kwargs(self, config, data):
        return {"input_dim": 3, "output_dim": 3, "output_activation": "sigmoid"}

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [keras.metrics.MeanMetricWrapper(scripted, name="scripted")]

    def callbacks(self):
        return [_Epoch(self.epoch_of)]

    def evaluate(self, model, split, config):
        return {"weights": weights_fingerprint(model)}


def weights_fingerprint(model):
    return float(sum(np.abs(keras.ops.convert_to_numpy(w)).astype(np.float64).sum()
                     for w in model.weights))


class Recorder(keras.callbacks.Callback):
    """Each finished epoch's learning rate and weights; Ctrl-C after `stop_after`."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.rates, self.weights, self.stop_after = [], [], stop_after

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.weights.append(weights_fingerprint(self.model))
        if self.stop_after == epoch + 1:
            raise KeyboardInterrupt


@pytest.fixture
def task():
    register(ScriptedTask())
    yield TASKS["scripted"]
    del TASKS["scripted"]


def config(run_dir, **changes):
    values = dict(task="scripted", dataset="scripted", architecture="rnn", units=4,
                  dropout=0.0, output_dropout=0.0, epochs=len(SCRIPT), patience=PATIENCE,
                  lr_patience=LR_PATIENCE, run_dir=str(run_dir), progress=False)
    values.update(changes)
    return training.TrainConfig(**values)


def test_stopping_halving_and_the_scored_weights_follow_the_validation_measure(tmp_path, task):
    recorder = Recorder()
    result = training.train(config(tmp_path / "run"), callbacks=[recorder])
    assert (result["epochs_run"], result["stopped_early"]) == (STOP_EPOCH, True)
    assert result["best_epoch"] == BEST_EPOCH
    assert result["best_valid"] == pytest.approx(SCRIPT[BEST_EPOCH - 1])
    np.testing.assert_allclose(recorder.rates, LEARNING_RATES, rtol=1e-6)
    # The test split is scored with epoch 2's weights, not the last epoch's.
    assert recorder.weights[-1] != recorder.weights[BEST_EPOCH - 1]
    assert result["test"]["weights"] == recorder.weights[BEST_EPOCH - 1]


@pytest.mark.parametrize("killed_after", [3, 5])
def test_a_resumed_run_stops_and_halves_at_the_same_epochs(tmp_path, task, killed_after):
    first = Recorder(stop_after=killed_after)
    with pytest.raises(KeyboardInterrupt):
        training.train(config(tmp_path / "run"), callbacks=[first])
    second = Recorder()
    result = training.train(config(tmp_path / "run"), callbacks=[second])
    assert (result["epochs_run"], result["stopped_early"]) == (STOP_EPOCH, True)
    assert result["best_epoch"] == BEST_EPOCH
    np.testing.assert_allclose(first.rates + second.rates, LEARNING_RATES, rtol=1e-6)
    assert result["test"]["weights"] == first.weights[BEST_EPOCH - 1]


def test_a_measure_that_never_improves_stops_after_exactly_patience_epochs(tmp_path, task,
                                                                          monkeypatch):
    monkeypatch.setattr(f"{__name__}.SCRIPT", [0.5] * 12)
    recorder = Recorder()
    result = training.train(config(tmp_path / "run", patience=3, lr_patience=1),
                            callbacks=[recorder])
    assert (result["epochs_run"], result["best_epoch"]) == (4, 1)
    np.testing.assert_allclose(recorder.rates, [1e-3, 5e-4, 2.5e-4, 1.25e-4], rtol=1e-6)
