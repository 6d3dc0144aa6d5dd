"""The shipped models load, score what their records say, and sample."""

import json

import numpy as np
import pytest

from keras_deeprnn import pretrained
from keras_deeprnn.tasks.music import sample_piece


PRESETS = pretrained.list_presets()


@pytest.mark.parametrize("name", PRESETS)
def test_shipped_files_are_small_and_recorded(name):
    entry = pretrained.get(name)
    assert entry.weights_file.stat().st_size < 600_000
    record = json.loads(entry.record_file.read_text())
    assert record["settings"]["architecture"] == record["architecture"]
    rolls = pretrained.test_rolls(name)
    assert len(rolls) == record["data"]["pieces"]
    assert sum(len(r) for r in rolls) == record["data"]["frames"]
    assert all(r.shape[1] == 88 and set(np.unique(r)) <= {0.0, 1.0} for r in rolls)


@pytest.mark.parametrize("name", PRESETS)
def test_pretrained_model_scores_its_recorded_test_nll_on_this_backend(name):
    model, record = pretrained.load(name)
    rolls = pretrained.test_rolls(name)
    # Recorded on one backend; float32 sums differ across backends in the 6th digit.
    scores = record["scores"]
    assert pretrained.score(model, rolls) == pytest.approx(scores["test_nll"], rel=1e-4)
    assert pretrained.score(model, rolls, first_frame=False) == pytest.approx(
        scores["test_nll_without_first_frame"], rel=1e-4)
    # and it learned something: far below the 88 coin flips of an untrained model
    assert scores["test_nll"] < 0.2 * 88 * np.log(2)


def test_score_counts_every_frame_or_all_but_the_first_as_asked():
    """`score` against NumPy: a model whose every output is one fixed
    probability gives the Bernoulli NLL of the frames counted."""
    import keras

    p = 0.2
    inputs = keras.Input((None, 88))
    outputs = keras.layers.Lambda(lambda x: x * 0.0 + p)(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    rolls = [(rng.random((n, 88)) < 0.1).astype("float32") for n in (5, 1, 9, 17)]

    def bernoulli(frames):
        frames = np.concatenate(frames)
        return float(-(frames * np.log(p) + (1 - frames) * np.log(1 - p)).sum(-1).mean())

    every = pretrained.score(model, rolls, batch_size=3)
    assert every == pytest.approx(bernoulli(rolls), rel=1e-5)
    later = pretrained.score(model, rolls, first_frame=False)
    assert later == pytest.approx(bernoulli([r[1:] for r in rolls]), rel=1e-5)
    with pytest.raises(ValueError, match="no frame to predict"):
        pretrained.score(model, [rolls[1]], first_frame=False)


def test_score_without_first_frames_drops_the_first_predictions_of_the_same_run():
    """The `T - 1` figure leaves out each piece's first prediction and keeps
    the others as the model made them after its start frame (as the training
    task's `nll_without_first_frame`), not those of a run that starts on the
    first frame. The model's output depends on how many steps it has read, so
    the two differ."""
    import keras
    from keras import ops

    inputs = keras.Input((None, 88))
    outputs = keras.layers.Lambda(
        lambda x: ops.sigmoid(0.3 * ops.cumsum(x + 1.0, axis=1) - 2.0))(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(5)
    rolls = [(rng.random((n, 88)) < 0.2).astype("float32") for n in (4, 2, 7)]

    def numpy_nll(first_frame):
        nll = []
        for roll in rolls:
            x = np.concatenate([np.zeros((1, 88)), roll[:-1]])  # the silent start frame
            p = 1 / (1 + np.exp(-(0.3 * np.cumsum(x + 1.0, axis=0) - 2.0)))
            step_nll = -(roll * np.log(p) + (1 - roll) * np.log(1 - p)).sum(-1)
            nll.extend(step_nll if first_frame else step_nll[1:])
        return float(np.mean(nll))

    assert pretrained.score(model, rolls) == pytest.approx(numpy_nll(True), rel=1e-5)
    assert pretrained.score(model, rolls, first_frame=False) == pytest.approx(
        numpy_nll(False), rel=1e-5)


def test_pretrained_model_samples_a_piece():
    model, _ = pretrained.load("bach")
    opening = pretrained.test_rolls("bach")[0][:4]
    roll = sample_piece(model, 12, prime=opening, seed=0)
    assert roll.shape == (12, 88)
    np.testing.assert_array_equal(roll[:4], opening)
    assert set(np.unique(roll)) <= {0.0, 1.0}
    assert roll[4:].sum() > 0


def test_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="name.*bach.*jsb"):
        pretrained.load("mozart")


def test_packing_round_trips():
    rng = np.random.default_rng(0)
    rolls = [(rng.random((n, 88)) < 0.05).astype("float32") for n in (3, 1, 7)]
    back = pretrained.unpack_rolls(pretrained.pack_rolls(rolls))
    assert len(back) == 3
    for a, b in zip(rolls, back):
        np.testing.assert_array_equal(a, b)


def test_generate_from_the_command_line_needs_no_training(tmp_path, capsys):
    pytest.importorskip("music21")
    from keras_deeprnn import cli

    prefix = tmp_path / "chorale"
    assert cli.main(["generate", "--pretrained", "jsb", "--frames", "8", "--seed", "0",
                     "--out", str(prefix)]) == 0
    written = capsys.readouterr().out
    for suffix in (".mid", ".png"):
        assert (tmp_path / f"chorale{suffix}").stat().st_size > 0
        assert f"chorale{suffix}" in written


@pytest.mark.parametrize("argv", [["generate"], ["generate", "runs/x", "--pretrained", "jsb"]])
def test_generate_wants_exactly_one_model(argv, capsys):
    from keras_deeprnn import cli

    with pytest.raises(SystemExit) as exit_info:  # the CLI's one-line error, status 2
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "--pretrained" in capsys.readouterr().err
