"""Trained models that ship with the package, to sample from without training.

| name | model | trained on | test NLL |
| --- | --- | --- | --- |
| `"jsb"` | DOT(S)-RNN, 64 units | the built-in `jsb_chorales` (music21's Bach chorales) | in `jsb.json` |

```python
model, info = keras_deeprnn.pretrained.load("jsb")
roll = keras_deeprnn.tasks.music.sample_piece(model, 64, seed=0)
```

Each model comes with a JSON record (how it was trained, with which Keras
and backend, its test NLL) and the test split it was scored on as packed
piano rolls, so `score(name)` re-measures that NLL on any backend without
music21. `scripts/make_pretrained.py` made them.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.metrics import music as music_metrics

HERE = pathlib.Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Where a shipped model's files are, next to this module."""

    name: str
    description: str

    @property
    def model_file(self):
        return HERE / f"{self.name}.keras"

    @property
    def record_file(self):
        return HERE / f"{self.name}.json"

    @property
    def test_file(self):
        return HERE / f"{self.name}_test.npz"


PRETRAINED = {
    "jsb": Pretrained(
        "jsb", "DOT(S)-RNN trained on the built-in jsb_chorales (Bach chorales from music21)"
    ),
}


def get(name):
    """The `Pretrained` entry called `name`."""
    return PRETRAINED[_checks.one_of("name", name, tuple(PRETRAINED))]


def load(name):
    """`(model, record)`: the shipped Keras model and what is known about it."""
    entry = get(name)
    record = json.loads(entry.record_file.read_text())
    return keras.models.load_model(entry.model_file, compile=False), record


def test_rolls(name):
    """The test split the model was scored on, as a list of `(frames, 88)` rolls."""
    entry = get(name)
    with np.load(entry.test_file) as stored:
        return unpack_rolls({"bits": stored["bits"], "lengths": stored["lengths"]})


def score(model, rolls):
    """Frame NLL (nats) of next-frame prediction over whole pieces, one at a time."""
    probabilities, targets = [], []
    for roll in rolls:
        if len(roll) < 2:
            continue
        p = keras.ops.convert_to_numpy(model.predict_on_batch(roll[None, :-1]))[0]
        probabilities.append(p)
        targets.append(roll[1:])
    return music_metrics.frame_nll(np.concatenate(probabilities), np.concatenate(targets))


def pack_rolls(rolls):
    """The arrays `test_rolls` reads back: one bit per note, and each piece's length."""
    stacked = np.concatenate([np.asarray(r, dtype=bool) for r in rolls])
    return {"bits": np.packbits(stacked, axis=-1),
            "lengths": np.array([len(r) for r in rolls], dtype=np.int32)}


def unpack_rolls(packed):
    """The rolls `pack_rolls` stored, as float32 `(frames, 88)` arrays."""
    rolls = np.unpackbits(packed["bits"], axis=-1)[:, :88].astype("float32")
    return np.split(rolls, np.cumsum(packed["lengths"])[:-1])
