"""Trained models that ship with the package, to sample from without training.

| name | model | trained on | test NLL |
| --- | --- | --- | --- |
| `"jsb"` | the music table's best on JSB Chorales (an LSTM, 200 units) | the paper's `JSB_Chorales.mat` | in `jsb/record.json` |
| `"nottingham"` | the music table's best on Nottingham (a DOT(S)-RNN, 200 units) | the paper's `Nottingham.mat` | in `nottingham/record.json` |
| `"musedata"` | the music table's best on MuseData (a DOT(S)-RNN, 200 units) | the paper's `MuseData.mat` | in `musedata/record.json` |
| `"piano_midi"` | the music table's best on Piano-midi.de (a DOT(S)-RNN, 200 units) | the data set's `Piano_midi.mat` | in `piano_midi/record.json` |
| `"bach"` | DOT(S)-RNN, 64 units | the built-in `jsb_chorales` (music21's Bach chorales) | in `bach/record.json` |

```python
model, record = keras_deeprnn.pretrained.load("jsb")   # the short form of:
model = keras_deeprnn.DeepRNNModel.from_preset("jsb")
roll = keras_deeprnn.tasks.music.sample_piece(model, 64, seed=0)
```

Each is a preset folder (`keras_deeprnn.models.hub`): `config.json`,
`model.weights.h5` and `record.json` (how it was trained, with which Keras
and backend, what it scored on what data, with the data's SHA-256), plus
the test split it was scored on as packed piano rolls (`test.npz`), so
`score(model, test_rolls(name))` re-measures that NLL on any backend
without music21. `scripts/make_pretrained.py` made them.

To add one, drop its folder here: `model.save_to_preset(
"keras_deeprnn/pretrained/NAME", description=..., scores=..., data=...)`
(a `test.npz` from `pack_rolls` beside it, through `assets=`, lets the tests
score it). It is then in `DeepRNNModel.presets`, `load(NAME)` and
`keras-deeprnn generate --pretrained NAME`.
"""

import dataclasses

import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.data import batching
from keras_deeprnn.metrics import music as music_metrics
from keras_deeprnn.models import DeepRNNModel
from keras_deeprnn.models import hub

HERE = hub.BUILT_IN


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Where a shipped model's files are: its folder next to this module."""

    name: str
    description: str

    @property
    def directory(self):
        return HERE / self.name

    @property
    def config_file(self):
        return self.directory / hub.CONFIG_FILE

    @property
    def weights_file(self):
        return self.directory / hub.WEIGHTS_FILE

    @property
    def record_file(self):
        return self.directory / hub.RECORD_FILE

    @property
    def test_file(self):
        return self.directory / "test.npz"


PRETRAINED = {name: Pretrained(name, description)
              for name, description in hub.describe_presets().items()}


def list_presets():
    """The names of the shipped presets (as `DeepRNNModel.presets` lists them)."""
    return list(PRETRAINED)


def get(name):
    """The `Pretrained` entry called `name`."""
    return PRETRAINED[_checks.one_of("name", name, tuple(PRETRAINED))]


def load(name):
    """`(model, record)`: the shipped Keras model and what is known about it.

    The short form of `DeepRNNModel.from_preset(name)` and
    `keras_deeprnn.models.hub.read_record(name)`.
    """
    entry = get(name)
    return DeepRNNModel.from_preset(entry.name), hub.read_record(entry.name)


def test_rolls(name):
    """The test split the model was scored on, as a list of `(frames, 88)` rolls."""
    entry = get(name)
    with np.load(entry.test_file) as stored:
        return unpack_rolls({"bits": stored["bits"], "lengths": stored["lengths"]})


def score(model, rolls, *, first_frame=True, batch_size=8):
    """Frame NLL (nats) of next-frame prediction over whole pieces.

    Every piece is run as in training, its first frame predicted from a
    silent start frame. With `first_frame=True` (the paper's measure) every
    time step counts; with `False` each piece's first prediction is left
    out of the mean (the `T - 1` figure), the other predictions unchanged,
    exactly as the training task's `nll_without_first_frame`. Pieces are
    scored `batch_size` at a time, padded to the few lengths of
    `padded_length`, so a long test split compiles a handful of programs
    rather than one per piece.
    """
    _checks.boolean("first_frame", first_frame)
    _checks.positive_int("batch_size", batch_size)
    rolls = sorted(rolls, key=len)
    # A piece of T frames has T steps to predict with the start frame, T - 1 without.
    if not any(len(r) > (0 if first_frame else 1) for r in rolls):
        raise ValueError("score: `rolls` holds no frame to predict. Received: "
                         f"{len(rolls)} pieces of {[len(r) for r in rolls][:5]} frames")
    batches = (batching.pad_batch(rolls[start:start + batch_size], start_frame=True, ladder=True)
               for start in range(0, len(rolls), batch_size))
    probabilities, targets, steps = music_metrics.predict_frames(model, batches)
    if not first_frame:
        probabilities, targets = probabilities[steps > 0], targets[steps > 0]
    return music_metrics.frame_nll(probabilities, targets)


def pack_rolls(rolls):
    """The arrays `test_rolls` reads back: one bit per note, and each piece's length."""
    stacked = np.concatenate([np.asarray(r, dtype=bool) for r in rolls])
    return {"bits": np.packbits(stacked, axis=-1),
            "lengths": np.array([len(r) for r in rolls], dtype=np.int32)}


def unpack_rolls(packed):
    """The rolls `pack_rolls` stored, as float32 `(frames, 88)` arrays."""
    rolls = np.unpackbits(packed["bits"], axis=-1)[:, :88].astype("float32")
    return np.split(rolls, np.cumsum(packed["lengths"])[:-1])
