"""The tuner with KerasTuner's own knobs: `hyperparameters=`,
`tune_new_entries`, `max_model_size`, a default objective, sizes from the
data, and a report that counts epochs as `train` does and shows every
searched dimension."""

import csv

import numpy as np
import pytest

kt = pytest.importorskip("keras_tuner", reason="the tuner needs keras-tuner")

from keras_deeprnn.data.batching import piano_roll_batches  # noqa: E402
from keras_deeprnn.tuning import TUNERS  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402
from keras_deeprnn.tuning import report  # noqa: E402
from keras_deeprnn.tuning import run_search  # noqa: E402


def _data(seed=0, time=6, inputs=5, outputs=3):
    rng = np.random.default_rng(seed)
    x = rng.random((4, time, inputs)).astype("float32")
    y = (rng.random((4, time, outputs)) < 0.3).astype("float32")
    return x, y


def _search(tmp_path, hypermodel, name, **tuner_options):
    tuner = TUNERS["random"](hypermodel, max_trials=2, directory=str(tmp_path),
                             project_name=name, seed=1, **tuner_options)
    x, y = _data()
    tuner.search(x, y, validation_data=_data(1), epochs=3, batch_size=2, verbose=0)
    return tuner


def test_sizes_from_the_data_and_the_task_measure_as_default_objective(tmp_path):
    hypermodel = DeepRNNHyperModel(["rnn"], fixed={"units": 4})
    assert (hypermodel.input_dim, hypermodel.output_dim) == (None, None)
    tuner = _search(tmp_path, hypermodel, "defaults")  # no objective=
    assert (hypermodel.input_dim, hypermodel.output_dim) == (5, 3)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert trials
    for trial in trials:
        # the score is the lowest validation frame NLL of the trial's epochs
        assert trial.score == pytest.approx(trial.metrics.get_best_value("val_frame_nll"))
    model = hypermodel.build(trials[0].hyperparameters)
    assert model.input_shape[-1] == 5 and model.output_shape[-1] == 3


def test_hyperparameters_fix_dimensions_and_pass_model_arguments(tmp_path):
    hp = kt.HyperParameters()
    hp.Fixed("units", 6)
    hp.Fixed("recurrent_dropout", 0.25)  # a build_model argument, not a dimension
    hypermodel = DeepRNNHyperModel(["rnn", "srnn"], input_dim=5, output_dim=3)
    tuner = _search(tmp_path, hypermodel, "fixed", hyperparameters=hp, tune_new_entries=False)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    for trial in trials:
        values = trial.hyperparameters.values
        # tune_new_entries=False: the others stay at their defaults
        assert values["units"] == 6 and values["architecture"] == "rnn"
        assert values["dropout"] == 0.0 and values["learning_rate"] == 1e-3
        config = hypermodel.declare(trial.hyperparameters)
        assert config["recurrent_dropout"] == 0.25
        model = hypermodel.build(trial.hyperparameters)
        assert model.get_config()["recurrent_dropout"] == 0.25
        assert model.get_config()["units"] == 6


def test_run_search_hands_kerastuners_knobs_to_the_tuner(tmp_path, recorded_tuner):
    made = recorded_tuner.options
    hp = kt.HyperParameters()
    hp.Fixed("units", 8)
    with pytest.raises(recorded_tuner.Stop):
        run_search(directory=tmp_path, max_trials=2, hyperparameters=hp, tune_new_entries=False,
                   allow_new_entries=False, max_model_size=1234)
    assert made["hyperparameters"] is hp and made["tune_new_entries"] is False
    assert made["allow_new_entries"] is False and made["max_model_size"] == 1234


def test_adapt_reads_arrays_and_batches_and_refuses_a_one_shot_iterator():
    rolls = [np.zeros((7, 88), "float32"), np.zeros((9, 88), "float32")]
    hypermodel = DeepRNNHyperModel(["rnn"])
    hypermodel.adapt(piano_roll_batches(rolls, 2, shuffle=False))
    assert (hypermodel.input_dim, hypermodel.output_dim) == (88, 88)
    given = DeepRNNHyperModel(["rnn"], input_dim=4)
    given.adapt(*_data(inputs=5, outputs=3))
    assert (given.input_dim, given.output_dim) == (4, 3)  # a given size is kept
    with pytest.raises(ValueError, match="one-shot iterator"):
        DeepRNNHyperModel(["rnn"]).adapt(iter([_data()]))
    with pytest.raises(ValueError, match=r"input and output sizes.*input_dim=None"):
        DeepRNNHyperModel(["rnn"]).build(kt.HyperParameters())


def test_the_report_counts_epochs_from_one_and_shows_every_searched_dimension(tmp_path):
    hypermodel = DeepRNNHyperModel(["rnn"], input_dim=5, output_dim=3,
                                   fixed={"units": 4, "layer_norm": False})
    tuner = _search(tmp_path, hypermodel, "report", objective=kt.Objective("val_frame_nll", "min"))
    written = report(tmp_path, "report")
    trials = {t.trial_id: t for t in tuner.oracle.trials.values()}
    for row in written["rows"]:
        assert row["best_epoch"] == trials[row["trial_id"]].best_step + 1
    with open(written["csv"]) as stream:
        table = list(csv.DictReader(stream))
    assert {int(r["best_epoch"]) for r in table} <= {1, 2, 3}
    header = written["markdown"].read_text().splitlines()[4]
    columns = [c.strip() for c in header.strip("|").split("|")]
    for name in ("learning_rate", "clipnorm", "dropout", "zoneout", "weight_noise",
                 "recurrent_weight_dropout", "trainable_initial_state"):
        assert name in columns, name
    assert "layer_norm" not in columns  # held fixed: not a searched dimension
    row = written["markdown"].read_text().splitlines()[6]
    cells = [c.strip() for c in row.strip("|").split("|")]
    rate = trials[written["rows"][0]["trial_id"]].hyperparameters.values["learning_rate"]
    assert float(cells[columns.index("learning_rate")]) == pytest.approx(rate, rel=1e-5)
