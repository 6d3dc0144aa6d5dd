"""A task defined here, registered from outside the package, through every command.

`ToyTask` predicts the next step of noisy sine waves with a linear output and
a mean squared error: nothing of music or text. If `train`, `evaluate`,
`generate` or `tune` asked which task they run instead of asking the task,
this file would fail.
"""

import dataclasses
import json

import keras
import numpy as np
import pytest

from keras_deeprnn import _files
from keras_deeprnn import cli
from keras_deeprnn import tasks
from keras_deeprnn import training

STEPS = 10
TINY = ["--architecture", "rnn", "--units", "4", "--dropout", "0", "--output-dropout", "0",
        "--batch-size", "2", "--seed", "3", "--quiet"]


@dataclasses.dataclass
class ToySettings:
    width: int = dataclasses.field(default=3, metadata={"help": "features per step"})


class ToyBatches(keras.utils.PyDataset):
    def __init__(self, waves, batch_size):
        super().__init__()
        self.waves, self.batch_size = waves, batch_size

    def __len__(self):
        return -(-len(self.waves) // self.batch_size)

    def __getitem__(self, index):
        chunk = self.waves[index * self.batch_size:(index + 1) * self.batch_size]
        return chunk[:, :-1], chunk[:, 1:], np.ones(chunk.shape[:2], np.float32)[:, 1:]


class ToyTask(tasks.Task):
    name = "toy"
    monitor = "val_toy_mse"
    measure = ("MSE", "per step")
    items = "waves"
    limit_items = "waves"
    default_dataset = "toy_waves"
    datasets = ("toy_waves",)
    settings = ToySettings

    def check_settings(self, settings):
        if settings.width < 1:
            raise ValueError(f"`width` must be >= 1. Received: width={settings.width}")

    def load_data(self, config, *, saved=None):
        width = self.settings_of(config).width
        rng = np.random.default_rng(0)
        phase = rng.uniform(0, 6, (16, 1, width))
        t = np.arange(STEPS + 1, dtype=np.float32)[None, :, None]
        waves = (np.sin(0.5 * t + phase) + 0.05 * rng.normal(size=phase.shape)).astype("float32")
        return {"train": waves[:8], "valid": waves[8:12], "test": waves[12:]}

    def batches(self, split, config, *, training, epoch=0):
        return ToyBatches(split, config.batch_size)

    def build_model_kwargs(self, config, data):
        width = self.settings_of(config).width
        return {"input_dim": width, "output_dim": width, "output_activation": "linear",
                "masking": False}

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.MeanSquaredError(name="toy_mse")]

    def evaluate(self, model, split, config):
        predicted = keras.ops.convert_to_numpy(model.predict_on_batch(split[:, :-1]))
        return {"mse": float(np.mean((predicted - split[:, 1:]) ** 2)), "waves": len(split)}

    def sample(self, model, length, *, temperature=1.0, prime=None, seed=None, saved=None,
               progress=False):
        width = model.get_config()["input_dim"]
        steps = np.zeros((1, 1, width), np.float32)
        for _ in range(length):
            nxt = keras.ops.convert_to_numpy(model.predict_on_batch(steps))[:, -1:]
            steps = np.concatenate([steps, nxt], axis=1)
        return steps[0, 1:]

    def save_sample(self, sample, prefix, *, args, config, prime=None):
        path = f"{prefix}.csv"
        _files.write_text(path, "\n".join(",".join(f"{v:.6f}" for v in row) for row in sample))
        return [f"Toy wave of {len(sample)} steps, {sample.shape[1]} wide: {path}"]


@pytest.fixture
def toy():
    task = tasks.register(ToyTask())
    yield task
    tasks.TASKS.pop("toy", None)


def test_the_toy_task_trains_scores_samples_and_is_searched_from_the_command_line(
        toy, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--task", "toy", "--width", "2", *TINY, "--epochs", "2",
                     "--run-dir", str(run), "--generate-frames", "5"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((run / training.RESULT_FILE).read_text())
    # The task's own setting reached the run and its model.
    assert result["config"]["task"] == "toy"
    assert result["config"]["task_settings"] == {"width": 2}
    model, _ = training.load_trained_model(run)
    assert model.get_config()["input_dim"] == 2
    assert set(result["test"]) == {"mse", "waves"} and result["test"]["waves"] == 4
    # Printed by the task's own lines: its score, and its sample.
    assert f"mse {result['test']['mse']:.4g}, waves 4 (MSE per step)" in printed
    sample = (run / "generated.csv").read_text().splitlines()
    assert len(sample) == 5 and all(len(row.split(",")) == 2 for row in sample)
    assert f"Toy wave of 5 steps, 2 wide: {run / 'generated'}.csv" in printed

    assert cli.main(["evaluate", str(run), "--split", "valid"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    scores = training.evaluate(str(run), split="valid", progress=False)
    assert line == f"valid: mse {scores['mse']:.4g}, waves 4 (MSE per step)"
    assert scores["mse"] != result["test"]["mse"]  # another split, another score

    out = tmp_path / "piece"
    assert cli.main(["generate", str(run), "--frames", "7", "--out", str(out)]) == 0
    assert f"Toy wave of 7 steps, 2 wide: {out}.csv" in capsys.readouterr().out
    assert len((tmp_path / "piece.csv").read_text().splitlines()) == 7

    search = tmp_path / "search"
    assert cli.main(["tune", "--task", "toy", "--width", "2", "--architectures", "rnn",
                     "--units", "4", "--max-trials", "1", "--epochs", "1", "--batch-size",
                     "2", "--directory", str(search), "--quiet"]) == 0
    report = capsys.readouterr().out
    project = search / "toy_waves_random"
    assert f"Report: {project / 'report' / 'trials.md'}" in report
    trials = [json.loads(path.read_text()) for path in project.glob("trial_*/trial.json")]
    assert len(trials) == 1 and trials[0]["status"] == "COMPLETED"
    # The objective is the task's monitor, not music's.
    best = trials[0]["metrics"]["metrics"]
    assert "val_toy_mse" in best and "val_frame_nll" not in best
    space = json.loads((project / "search_space.json").read_text())
    assert (space["task"], space["task_settings"]) == ("toy", {"width": 2})


def test_a_toy_flag_given_to_another_task_is_refused_by_name(toy, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--width", "2", "--run-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert ("`--width` applies to --task toy only. Received: --task music --width 2"
            in capsys.readouterr().err)
    with pytest.raises(ValueError, match="`width` must be >= 1. Received: width=0"):
        training.TrainConfig(task="toy", dataset="toy_waves",
                             task_settings={"width": 0}).validate()


def test_the_toy_task_is_gone_after_its_test():
    assert "toy" not in tasks.TASKS
    assert "--width" not in cli.build_parser()._subparsers._group_actions[0].choices[
        "train"].format_help()
