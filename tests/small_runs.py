"""Tiny data and settings for tests that train or search for real, shared by name.

`write_data` writes a Boulanger-Lewandowski pickle of six short pieces per
split (no music21); `config` is a `TrainConfig` of a 4-unit RNN on it;
`search_options` are `run_search`'s arguments for a two-trial search.
"""

import pickle

from keras_deeprnn import training

CHORDS = [(60, 64, 67), (62, 65, 69), (64, 67, 71), (65, 69, 72), (67, 71, 74), (60,)]


def write_data(path, shift=0):
    """A Boulanger-Lewandowski pickle of six short pieces per split (no music21)."""
    pieces = [[tuple(n + shift + k for n in chord) for chord in CHORDS * 2] for k in range(6)]
    path.write_bytes(pickle.dumps({"train": pieces, "valid": pieces[:2], "test": pieces[2:5]},
                                  protocol=2))
    return path


def config(run_dir, dataset, **changes):
    values = dict(architecture="rnn", units=4, epochs=2, batch_size=2, dataset=str(dataset),
                  run_dir=str(run_dir), progress=False, output_dropout=0.0, dropout=0.0)
    values.update(changes)
    return training.TrainConfig(**values)


def search_options(tmp_path, **changes):
    values = dict(dataset=str(write_data(tmp_path / "set.pickle")), tuner="random",
                  max_trials=2, epochs=2, directory=tmp_path / "searches", project_name="p",
                  architectures=["rnn", "srnn"], fixed={"units": 4}, seed=5, batch_size=2,
                  verbose=0)
    values.update(changes)
    return values
