"""The training pipeline and sampling: results, resuming, scores, generated files."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from keras_deeprnn import build_model
from keras_deeprnn import training
from keras_deeprnn.tasks import music as music_task
from keras_deeprnn.data import music
from keras_deeprnn.metrics import frame_nll

pytest.importorskip("music21")

# Four chorales: two to train on, one to validate, one to test.
LIMIT = 4


@pytest.fixture(scope="session")
def music_cache(tmp_path_factory):
    # One folder for the whole session, so the chorales are parsed once.
    return str(tmp_path_factory.getbasetemp() / "music-cache")


def tiny_config(run_dir, cache, **changes):
    values = dict(units=8, epochs=2, batch_size=2, limit=LIMIT, max_len=16,
                  run_dir=str(run_dir), cache_dir=cache, progress=False)
    values.update(changes)
    return training.TrainConfig(**values)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, music_cache):
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_config(run_dir, music_cache)
    return config, training.train(config)


class InterruptAfter(keras.callbacks.Callback):
    """Stands in for Ctrl-C at the end of an epoch; records the epochs it sees."""

    def __init__(self, epochs=None):
        super().__init__()
        self.stop_after = epochs
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(epoch)
        if self.stop_after is not None and len(self.seen) == self.stop_after:
            raise KeyboardInterrupt


def read_csv_epochs(path):
    with open(path, newline="") as stream:
        return [int(row["epoch"]) for row in csv.DictReader(stream)]


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------


def test_train_writes_a_complete_result(finished_run):
    config, result = finished_run
    run_dir = config.resolved_run_dir()
    assert json.loads((run_dir / "result.json").read_text()) == result
    assert math.isfinite(result["test"]["nll"]) and result["test"]["nll"] > 0
    assert 0 <= result["test"]["frame_accuracy"] <= 1
    assert result["test"]["pieces"] == 1 and result["test"]["frames"] > 0
    assert result["epochs_run"] == 2 and result["best_epoch"] in (1, 2)
    assert result["parameters"] == build_model(
        "dots_rnn", input_dim=88, output_dim=88, units=8, output_activation="sigmoid"
    ).count_params()
    assert result["backend"] == keras.backend.backend()
    assert result["config"]["units"] == 8
    assert result["paper"]["nll"] == 8.437 and result["paper"]["imitation"]
    assert result["paper"]["model"] == "DOT(S)-RNN"
    assert result["wall_time_s"] > 0
    for name in ("model.keras", "history.csv", "learning_curve.png", "state.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_csv_epochs(run_dir / "history.csv") == [0, 1]
    # The newest checkpoint and the one before it (a fallback) are kept, and
    # no temporary.
    assert sorted(path.name for path in run_dir.glob("checkpoint-*.keras")) == [
        "checkpoint-epoch001.keras", "checkpoint-epoch002.keras"]
    assert not list(run_dir.glob(".*.tmp*"))


def test_test_nll_is_frame_nll_over_every_test_frame(finished_run):
    config, result = finished_run
    model, saved = training.load_trained_model(config.resolved_run_dir())
    assert saved["units"] == 8
    test = music.load_music("jsb_chorales", limit=LIMIT, cache_dir=config.cache_dir,
                            progress=False)["test"]
    probabilities, targets = [], []
    for piece in test:  # one unpadded piece at a time, after a silent start frame
        inputs = np.concatenate([np.zeros((1, 88), np.float32), piece[:-1]])[None]
        probabilities.append(keras.ops.convert_to_numpy(model(inputs))[0])
        targets.append(piece)
    expected = frame_nll(np.concatenate(probabilities), np.concatenate(targets))
    later = frame_nll(np.concatenate([p[1:] for p in probabilities]),
                      np.concatenate([t[1:] for t in targets]))
    assert result["test"]["frames"] == sum(len(piece) for piece in test)
    np.testing.assert_allclose(result["test"]["nll"], expected, rtol=1e-5)
    np.testing.assert_allclose(result["test"]["nll_without_first_frame"], later, rtol=1e-5)
    scores = training.evaluate(config.resolved_run_dir(), cache_dir=config.cache_dir,
                               progress=False)
    np.testing.assert_allclose(scores["nll"], expected, rtol=1e-5)


def test_a_finished_run_is_not_trained_again(finished_run):
    config, result = finished_run
    spy = InterruptAfter()
    assert training.train(config, callbacks=[spy]) == result
    assert spy.seen == []


def test_a_changed_model_is_refused_in_the_same_run_dir(finished_run):
    config, _ = finished_run
    for change in ({"units": 16}, {"architecture": "rnn"}, {"num_output_layers": 2},
                   {"limit": LIMIT + 1}):
        other = tiny_config(config.run_dir, config.cache_dir, **change)
        key = next(iter(change))
        with pytest.raises(ValueError, match=f"another configuration.*{key}: saved"):
            training.train(other)


def test_an_interrupted_run_resumes_after_its_last_epoch(tmp_path, music_cache):
    config = tiny_config(tmp_path / "run", music_cache, architecture="rnn", epochs=3)
    first = InterruptAfter(epochs=1)
    with pytest.raises(KeyboardInterrupt):
        training.train(config, callbacks=[first])
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["epoch"] == 1 and not (tmp_path / "run" / "result.json").exists()

    second = InterruptAfter()
    result = training.train(config, callbacks=[second])
    assert first.seen == [0] and second.seen == [1, 2]
    assert result["epochs_run"] == 3
    assert read_csv_epochs(tmp_path / "run" / "history.csv") == [0, 1, 2]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert len(state["history"]["val_frame_nll"]) == 3

    # More epochs carry a finished run on; patience may change, the model not.
    config.epochs, config.patience = 4, 3
    third = InterruptAfter()
    assert training.train(config, callbacks=[third])["epochs_run"] == 4
    assert third.seen == [3]
    assert read_csv_epochs(tmp_path / "run" / "history.csv") == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"architecture": "nope"}, "Unknown `architecture`"),
        ({"architecture": "rnn", "num_output_layers": 1}, "fixes `num_output_layers`"),
        ({"units": 0}, "`units` must be a positive integer"),
        ({"momentum": 0.9}, "`momentum` applies to `optimizer='sgd'`"),
        ({"optimizer": "rmsprop"}, "`optimizer` must be one of"),
        ({"output_hidden_activation": "wobbly"}, "`output_hidden_activation` must be"),
        ({"learning_rate": -1.0}, "`learning_rate` must be a finite number > 0"),
    ],
)
def test_bad_configs_fail_before_any_work(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        training.train(tiny_config(tmp_path, str(tmp_path), **change))
    assert not (tmp_path / "state.json").exists()


def test_the_loss_is_the_papers_measure():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, (3, 5, 88)).astype("float32")
    y = (rng.random((3, 5, 88)) < 0.1).astype("float32")
    mask = np.ones((3, 5), "float32")
    mask[0, 3:] = 0
    loss = music_task.FrameNLLLoss()(y, p, sample_weight=mask)
    np.testing.assert_allclose(float(loss), frame_nll(p, y, mask), rtol=1e-5)


@pytest.mark.parametrize(
    "dataset, architecture, changes, figure",
    [
        ("jsb_chorales", "rnn", {}, 8.338),
        ("folk_tunes", "dts_rnn", {}, 3.206),
        ("classical_polyphony", "srnn", {}, 6.954),
        ("jsb_chorales", "dots_rnn", {"output_hidden_activation": "lp",
                                      "output_dropout": 0.5}, 7.92),
        ("jsb_chorales", "srnn", {"num_layers": 3}, None),
        ("jsb_chorales", "deep_gru", {}, None),
        ("/data/Nottingham.pickle", "dots_rnn", {}, 3.215),
    ],
)
def test_paper_figures(dataset, architecture, changes, figure):
    config = training.TrainConfig(dataset=dataset, architecture=architecture, **changes)
    found = music_task.MusicTask().paper_figure(config)
    assert (found and found["nll"]) == figure
    if found:
        assert found["imitation"] == (not dataset.endswith(".pickle"))


# ---------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------


def tiny_music_model(architecture="dots_rnn", **kwargs):
    return build_model(architecture, input_dim=88, output_dim=88, units=8,
                       output_activation="sigmoid", **kwargs)


@pytest.mark.parametrize("architecture", ["dots_rnn", "srnn"])
def test_stepping_one_frame_per_call_gives_the_models_outputs(architecture):
    model = tiny_music_model(architecture, **({"skip_connections": True}
                                              if architecture == "srnn" else {}))
    x = (np.random.default_rng(1).random((1, 9, 88)) < 0.1).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))[0]
    twin = music_task._stepping_twin(model)
    logits = [keras.ops.convert_to_numpy(twin(x[:, :4]))[0]]
    logits += [keras.ops.convert_to_numpy(twin(x[:, t : t + 1]))[0] for t in range(4, 9)]
    np.testing.assert_allclose(1 / (1 + np.exp(-np.concatenate(logits))), expected,
                               atol=1e-5)


def test_sample_piece_keeps_the_prime_and_draws_binary_frames():
    model = tiny_music_model()
    prime = np.zeros((3, 88), "float32")
    prime[:, [39, 43, 46]] = 1
    roll = music_task.sample_piece(model, 10, prime=prime, seed=3)
    assert roll.shape == (10, 88) and roll.dtype == np.float32
    assert set(np.unique(roll)) <= {0.0, 1.0}
    np.testing.assert_array_equal(roll[:3], prime)
    np.testing.assert_array_equal(roll, music_task.sample_piece(model, 10, prime=prime, seed=3))
    # Near zero temperature every note follows its more likely side.
    cold = music_task.sample_piece(model, 6, temperature=1e-6, prime=prime, seed=0)
    np.testing.assert_array_equal(
        cold, music_task.sample_piece(model, 6, temperature=1e-6, prime=prime, seed=99))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_frames": 0}, "`num_frames` must be a positive integer"),
        ({"num_frames": 4, "temperature": 0}, "`temperature` must be a finite number > 0"),
        ({"num_frames": 4, "prime": np.zeros((4, 88))}, "`prime` must have between 1"),
        ({"num_frames": 4, "prime": np.zeros((2, 12))}, r"shape \(frames, 88\)"),
    ],
)
def test_sample_piece_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        music_task.sample_piece(tiny_music_model(), **kwargs)


def test_sample_piece_needs_a_sigmoid_music_model():
    model = build_model("rnn", input_dim=88, output_dim=10, units=4, output_activation="softmax")
    with pytest.raises(ValueError, match="88 notes with sigmoids"):
        music_task.sample_piece(model, 4)


def midi_roll(path, frame_quarter_length):
    """The roll in a MIDI file, from its note events as music21 reads them.

    music21's score parser regroups the notes of a dense polyphonic track
    into voices and can shift some of them, so the events are read directly.
    """
    from music21 import midi

    stream = midi.MidiFile()
    stream.open(str(path))
    stream.read()
    stream.close()
    ticks = stream.ticksPerQuarterNote * frame_quarter_length
    notes, sounding = [], {}
    for track in stream.tracks:
        now = 0
        for event in track.events:
            if event.isDeltaTime():
                now += event.time
            elif event.isNoteOn():
                sounding[event.pitch] = now
            elif event.isNoteOff():
                notes.append((sounding.pop(event.pitch), now, event.pitch))
    roll = np.zeros((round(max(end for _, end, _ in notes) / ticks), 88), np.float32)
    for start, end, pitch in notes:
        assert 21 <= pitch <= 108
        roll[round(start / ticks) : round(end / ticks), pitch - 21] = 1
    return roll


def test_saved_piece_reads_back_as_the_same_roll(tmp_path):
    music21 = pytest.importorskip("music21")
    roll = music_task.sample_piece(tiny_music_model(), 24, seed=5)
    roll[-1, 40] = 1  # a sounding last frame, so the length survives the MIDI file
    paths = music_task.save_piece(roll, tmp_path / "out" / "piece", frame_quarter_length=0.5)
    assert sorted(p.name for p in paths.values()) == ["piece.mid", "piece.musicxml", "piece.png"]
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(midi_roll(paths["midi"], 0.5), roll)
    for path in (paths["midi"], paths["musicxml"]):
        pitches = [p.midi for n in music21.converter.parse(str(path)).flatten().notes
                   for p in n.pitches]
        assert pitches and all(21 <= p <= 108 for p in pitches)


def test_bucketed_batches_resume_in_the_uninterrupted_order(music_cache):
    config = tiny_config("unused", music_cache, limit=8, max_len=None, bucket=True)
    task = training.get_task("music")
    pieces = task.load_data(config)["train"]
    whole = task.batches(pieces, config, training=True)
    assert whole.bucket and not task.batches(pieces, config, training=False).bucket
    whole.on_epoch_end()
    resumed = task.batches(pieces, config, training=True, epoch=1)
    for index in range(len(whole)):
        for expected, got in zip(whole[index], resumed[index]):
            np.testing.assert_array_equal(expected, got)
    # Pieces of similar length share a batch: no more padding than unsorted.
    plain = task.batches(pieces, tiny_config("unused", music_cache, limit=8, max_len=None),
                         training=True)

    def padding(batches):
        return sum(float((1 - batches[i][2]).sum()) for i in range(len(batches)))

    assert padding(task.batches(pieces, config, training=True)) <= padding(plain)
    with pytest.raises(ValueError, match="`bucket` must be True or False"):
        tiny_config("unused", music_cache, bucket="yes").validate()
