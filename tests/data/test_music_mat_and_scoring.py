"""The MATLAB form of the piano-roll sets, and the score over every time step.

The `.mat` fixtures are written here with `scipy.io.savemat`, in the layout
of Boulanger-Lewandowski's files: `traindata`, `validdata` and `testdata`,
each a 1 x N cell array of `(frames, 88)` uint8 rolls. The score is checked
against NumPy: the paper-comparable `nll` averages over every frame of every
test piece, the first predicted from the model's initial state (a silent
input frame); `nll_without_first_frame` leaves each first frame out.
"""

import json

import keras
import numpy as np
import pytest

scipy_io = pytest.importorskip("scipy.io")

from keras_deeprnn import training  # noqa: E402
from keras_deeprnn.data import matlab  # noqa: E402
from keras_deeprnn.data import batching  # noqa: E402
from keras_deeprnn.data import music  # noqa: E402
from keras_deeprnn.metrics import music as music_metrics  # noqa: E402
from keras_deeprnn.models import build_model  # noqa: E402
from keras_deeprnn.tasks import music as music_task  # noqa: E402


def random_rolls(rng, lengths):
    return [(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in lengths]


def cells(rolls):
    array = np.empty((1, len(rolls)), dtype=object)
    for i, roll in enumerate(rolls):
        array[0, i] = roll
    return array


def write_mat(path, train, valid, test, **extra):
    scipy_io.savemat(str(path), {"traindata": cells(train), "validdata": cells(valid),
                                 "testdata": cells(test), **extra})
    return path


@pytest.fixture
def splits():
    rng = np.random.default_rng(0)
    return {"train": random_rolls(rng, (5, 9, 3)), "valid": random_rolls(rng, (4, 7)),
            "test": random_rolls(rng, (6, 1, 8))}


def test_a_mat_file_loads_as_float_rolls_of_each_split(tmp_path, splits):
    path = write_mat(tmp_path / "Set.mat", splits["train"], splits["valid"], splits["test"],
                     other=np.arange(3))
    data = music.load_music(path)
    assert sorted(data) == ["test", "train", "valid"]
    for split, rolls in splits.items():
        assert len(data[split]) == len(rolls)
        for loaded, roll in zip(data[split], rolls):
            assert loaded.dtype == np.float32 and loaded.shape == roll.shape
            np.testing.assert_array_equal(loaded, roll)
    limited = music.load_music(path, limit=2)
    assert [len(limited[s]) for s in ("train", "valid", "test")] == [2, 2, 2]
    np.testing.assert_array_equal(limited["test"][1], splits["test"][1])
    with pytest.raises(ValueError, match="frame_quarter_length must be None for a .mat"):
        music.load_music(path, frame_quarter_length=1.0)


def test_a_mat_file_of_another_layout_is_refused_naming_the_file(tmp_path, splits):
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    scipy_io.savemat(str(tmp_path / "nosplit.mat"), {"traindata": cells(train),
                                                      "testdata": cells(test)})
    with pytest.raises(ValueError, match=r"nosplit\.mat has no variable 'validdata'"):
        music.load_music(tmp_path / "nosplit.mat")
    scipy_io.savemat(str(tmp_path / "plain.mat"), {"traindata": np.zeros((3, 88)),
                                                    "validdata": cells(valid),
                                                    "testdata": cells(test)})
    with pytest.raises(ValueError, match=r"plain\.mat: 'traindata' is a double array.*"
                                         "expected a 1 x N cell array"):
        music.load_music(tmp_path / "plain.mat")
    wide = [np.zeros((4, 89), np.uint8)]
    write_mat(tmp_path / "wide.mat", wide, valid, test)
    with pytest.raises(ValueError, match=r"wide\.mat: traindata\{1\} has shape \(4, 89\); "
                                         r"expected \(frames, 88\)"):
        music.load_music(tmp_path / "wide.mat")
    counts = [np.full((3, 88), 2, np.uint8)]
    write_mat(tmp_path / "counts.mat", train, valid, counts)
    with pytest.raises(ValueError, match=r"testdata\{1\} holds the values \[2\]; expected "
                                         "only 0 and 1"):
        music.load_music(tmp_path / "counts.mat")
    text = np.empty((1, 1), dtype=object)
    text[0, 0] = "C major"
    scipy_io.savemat(str(tmp_path / "text.mat"), {"traindata": text, "validdata": cells(valid),
                                                   "testdata": cells(test)})
    with pytest.raises(ValueError, match=r"traindata\{1\} is an array of dtype <U7; expected "
                                         "a numeric"):
        music.load_music(tmp_path / "text.mat")
    struct = np.empty((1, 1), dtype=object)
    struct[0, 0] = {"notes": np.zeros((2, 88))}
    scipy_io.savemat(str(tmp_path / "struct.mat"), {"traindata": struct,
                                                     "validdata": cells(valid),
                                                     "testdata": cells(test)})
    with pytest.raises(ValueError, match=r"traindata\{1\} is an? .*expected a numeric"):
        music.load_music(tmp_path / "struct.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match=r"could not read .*junk\.mat as a MATLAB file"):
        music.load_music(tmp_path / "junk.mat")
    (tmp_path / "notes.txt").write_text("60 64 67")
    with pytest.raises(ValueError, match="neither a pickle nor a MATLAB file"):
        music.load_music(tmp_path / "notes.txt")


def test_a_mat_file_describing_too_much_is_refused(tmp_path, splits, monkeypatch):
    path = write_mat(tmp_path / "big.mat", splits["train"], splits["valid"], splits["test"])
    monkeypatch.setattr(matlab, "MAX_FRAMES", 20)
    with pytest.raises(ValueError, match=r"big\.mat holds more than 20 frames"):
        music.load_music(path)
    monkeypatch.setattr(matlab, "MAX_FRAMES", 10_000)
    monkeypatch.setattr(matlab, "MAX_PIECES", 2)
    with pytest.raises(ValueError, match="expected a 1 x N cell array of at most 2 pieces"):
        music.load_music(path)


def test_an_oversize_mat_file_is_refused_before_any_piece_is_checked(tmp_path, monkeypatch):
    # One long piece, compressed to a small file: refused from its shape,
    # before its values are scanned or copied to float32.
    (short,) = random_rolls(np.random.default_rng(1), (3,))
    long = np.zeros((5000, 88), np.uint8)  # silence: compresses to almost nothing
    path = tmp_path / "huge.mat"
    scipy_io.savemat(str(path), {"traindata": cells([short, long]),
                                 "validdata": cells([short]), "testdata": cells([short])},
                     do_compression=True)
    assert path.stat().st_size < long.nbytes // 50
    checked = []
    check_roll = matlab._check_roll

    def recording(piece, where):
        checked.append(len(piece))
        return check_roll(piece, where)

    monkeypatch.setattr(matlab, "_check_roll", recording)
    monkeypatch.setattr(matlab, "MAX_FRAMES", 1000)
    with pytest.raises(ValueError, match=r"huge\.mat holds more than 1,000 frames "
                                         r"\(5,009 in its pieces\)"):
        music.load_music(path)
    assert checked == []
    # The bound counts only the pieces kept: the first of each split here.
    data = music.load_music(path, limit=1)
    assert checked == [3, 3, 3]
    assert [len(data[s][0]) for s in ("train", "valid", "test")] == [3, 3, 3]


def test_the_papers_data_is_recognised_by_its_mat_name():
    task = music_task.MusicTask()
    config = training.TrainConfig(dataset="/data/Nottingham.mat", architecture="rnn")
    figure = task.paper_figure(config)
    assert figure["dataset"] == "Nottingham" and figure["nll"] == 3.225
    assert not figure["imitation"]
    config = training.TrainConfig(dataset="MuseData.mat", architecture="dots_rnn",
                                  output_hidden_activation="lp", output_dropout=0.5)
    assert task.paper_figure(config)["nll"] == 6.59
    assert task.paper_figure(training.TrainConfig(dataset="Piano_midi.mat")) is None


class StepProbabilities:
    """A stand-in model: probability 0.9 for every note at step 0, 0.5 after."""

    def predict_on_batch(self, x):
        p = np.full(x.shape, 0.5, np.float32)
        p[:, 0] = 0.9
        return p


def test_the_score_counts_every_frame_and_the_t_minus_1_figure_leaves_first_frames_out():
    rolls = [np.zeros((n, 88), np.float32) for n in (3, 5, 1)]
    for roll in rolls:
        roll[:, :4] = 1  # four notes on in every frame
    config = training.TrainConfig(batch_size=2)
    scores = music_task.MusicTask().evaluate(StepProbabilities(), rolls, config)
    first = -(4 * np.log(0.9) + 84 * np.log(0.1))
    later = 88 * np.log(2.0)
    assert scores["frames"] == 9 and scores["pieces"] == 3
    np.testing.assert_allclose(scores["nll"], (3 * first + 6 * later) / 9, rtol=1e-6)
    np.testing.assert_allclose(scores["nll_without_first_frame"], later, rtol=1e-6)
    only_single = music_task.MusicTask().evaluate(StepProbabilities(), rolls[2:], config)
    assert only_single["nll_without_first_frame"] is None
    np.testing.assert_allclose(only_single["nll"], first, rtol=1e-6)


def test_the_score_of_a_real_model_matches_numpy_piece_by_piece():
    rng = np.random.default_rng(1)
    rolls = [r.astype(np.float32) for r in random_rolls(rng, (7, 2, 12, 5))]
    model = build_model("dots_rnn", units=6, input_dim=88, output_dim=88,
                        output_activation="sigmoid", seed=3)
    config = training.TrainConfig(batch_size=3)
    scores = music_task.MusicTask().evaluate(model, rolls, config)
    probabilities, targets, without_first = [], [], []
    for roll in rolls:
        inputs = batching.with_start_frame(roll)[None, :-1]
        p = keras.ops.convert_to_numpy(model(inputs))[0].astype(np.float64)
        probabilities.append(p)
        targets.append(roll)
        without_first.append((p[1:], roll[1:]))
    expected = music_metrics.frame_nll(np.concatenate(probabilities), np.concatenate(targets))
    expected_later = music_metrics.frame_nll(np.concatenate([p for p, _ in without_first]),
                                             np.concatenate([t for _, t in without_first]))
    assert scores["frames"] == sum(len(r) for r in rolls)
    np.testing.assert_allclose(scores["nll"], expected, rtol=1e-4)
    np.testing.assert_allclose(scores["nll_without_first_frame"], expected_later, rtol=1e-4)
    assert scores["nll"] != scores["nll_without_first_frame"]


def test_training_on_a_mat_file_reports_both_figures(tmp_path, splits):
    path = write_mat(tmp_path / "JSB_Chorales.mat", splits["train"], splits["valid"],
                     splits["test"])
    config = training.TrainConfig(dataset=str(path), architecture="rnn", units=4, epochs=1,
                                  batch_size=2, progress=False, run_dir=str(tmp_path / "run"))
    result = training.train(config)
    test = result["test"]
    assert test["frames"] == sum(len(r) for r in splits["test"]) == 15
    assert test["pieces"] == 3
    assert np.isfinite(test["nll"]) and np.isfinite(test["nll_without_first_frame"])
    assert result["paper"]["dataset"] == "JSB Chorales" and result["paper"]["nll"] == 8.338
    saved = json.loads((tmp_path / "run" / training.RESULT_FILE).read_text())
    assert saved["test"]["nll_without_first_frame"] == test["nll_without_first_frame"]
