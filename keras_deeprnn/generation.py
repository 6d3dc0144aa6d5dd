"""Sample new music from a trained next-frame model, and save it.

A music model (`build_model(..., input_dim=88, output_dim=88,
output_activation="sigmoid")`) gives, at every step, 88 independent note
probabilities for the next frame. `sample_piece` draws each note of a frame
from its Bernoulli distribution, feeds the frame back in, and repeats:

```python
state = zeros; frame = prime or a silent frame
for t in range(num_frames):
    logits, state = step(frame, state)              # one RNN step, one call
    frame = uniform(88) < sigmoid(logits / temperature)
```

The loop runs on a stateful copy of the model with a batch of one and a
linear output (so `logits` come straight from the last layer, with no
`log(p / (1 - p))` round trip), one direct `model(x)` call per frame: every
call does one step's work, and the RNN state stays in the layer between
calls on every backend. (`Model.predict` would not do: on JAX it does not
carry RNN state from one call to the next.)

`save_piece` writes a roll as MIDI, MusicXML and a PNG piano roll.
"""

import pathlib

import keras
import numpy as np

from keras_deeprnn.data import music as music_data


def sample_piece(model, num_frames, *, temperature=1.0, prime=None, seed=None):
    """Sample a piano roll from a next-frame music model.

    Args:
        model: a `DeepRNNModel` with `input_dim=88`, `output_dim=88` and
            `output_activation="sigmoid"` (as `keras_deeprnn.training`
            trains for the music task).
        num_frames: length of the returned roll, prime included.
        temperature: logits are divided by it before the sigmoid: below 1
            sharpens every note's probability towards 0 or 1, above 1
            flattens it towards 1/2.
        prime: an opening to continue, shape `(frames, 88)` with fewer than
            `num_frames` frames (values above 0.5 count as on). Without one,
            the model starts from a silent frame.
        seed: seed of the NumPy generator that draws the notes.

    Returns:
        A float32 array of shape `(num_frames, 88)` holding 0 and 1: the
        prime, then the sampled frames.

    Raises:
        ValueError: a model that does not predict 88 notes with sigmoids, or
            bad arguments.

    Example:

    ```python
    roll = sample_piece(model, 64, temperature=0.8, prime=data["test"][0][:8], seed=1)
    save_piece(roll, "runs/chorale", frame_quarter_length=1.0)
    ```
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) \
            or num_frames < 1:
        raise ValueError(
            f"`num_frames` must be a positive integer. Received: num_frames={num_frames!r}"
        )
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature > 0:
        raise ValueError(
            f"`temperature` must be a positive number. Received: temperature={temperature!r}"
        )
    if prime is not None:
        prime = music_data._as_roll(prime, "sample_piece: prime")
        if not 0 < len(prime) < num_frames:
            raise ValueError(
                f"`prime` must have between 1 and num_frames - 1 = {num_frames - 1} "
                f"frames. Received: a prime of {len(prime)} frames"
            )
        prime = (prime > 0.5).astype(np.float32)
    step = _stepping_twin(model)
    rng = np.random.default_rng(seed)

    roll = np.zeros((num_frames, music_data.NUM_NOTES), np.float32)
    start = 0
    feed = np.zeros((1, 1, music_data.NUM_NOTES), np.float32)
    if prime is not None:
        start = len(prime)
        roll[:start] = prime
        # The whole opening in one call: the state after it is what counts.
        feed = prime[None]
    for t in range(start, num_frames):
        logits = keras.ops.convert_to_numpy(step(feed, training=False))[0, -1]
        # sigmoid(z) = (1 + tanh(z / 2)) / 2 cannot overflow at low temperature.
        probabilities = 0.5 * (1.0 + np.tanh(logits.astype(np.float64) / (2.0 * temperature)))
        roll[t] = rng.random(music_data.NUM_NOTES) < probabilities
        feed = roll[None, t : t + 1]
    return roll


def save_piece(roll, prefix, *, frame_quarter_length=music_data.DEFAULT_FRAME_QUARTER_LENGTH,
               title=None):
    """Write a piano roll as `prefix.mid`, `prefix.musicxml` and `prefix.png`.

    Args:
        roll: array of shape `(frames, 88)`, on where above 0.5.
        prefix: path without suffix; its folder is created if needed.
        frame_quarter_length: quarter notes per frame (1.0 for the JSB
            imitation, 0.5 for the other built-in sets; see
            `keras_deeprnn.data.music.FRAME_QUARTER_LENGTHS`).
        title: title of the PNG.

    Returns:
        `{"midi": path, "musicxml": path, "png": path}`.

    Example:

    ```python
    paths = save_piece(roll, "out/piece", frame_quarter_length=1.0)
    ```
    """
    prefix = pathlib.Path(prefix).expanduser()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    stem = prefix.name
    return {
        "midi": music_data.write_midi(roll, prefix.with_name(stem + ".mid"),
                                      frame_quarter_length),
        "musicxml": music_data.write_musicxml(roll, prefix.with_name(stem + ".musicxml"),
                                              frame_quarter_length),
        "png": music_data.plot_piano_roll(roll, prefix.with_name(stem + ".png"),
                                          frame_quarter_length=frame_quarter_length,
                                          title=title),
    }


def frame_quarter_length_of(dataset):
    """Quarter notes per frame of a data set name or path (for `save_piece`).

    Example:

    >>> frame_quarter_length_of("jsb_chorales")
    1.0
    """
    if dataset in music_data.FRAME_QUARTER_LENGTHS:
        return music_data.FRAME_QUARTER_LENGTHS[dataset]
    # Boulanger-Lewandowski's JSB Chorales has one frame per quarter note.
    if pathlib.Path(str(dataset)).name.lower().startswith("jsb"):
        return 1.0
    return music_data.DEFAULT_FRAME_QUARTER_LENGTH


def _stepping_twin(model):
    """A stateful, batch-of-one copy of `model` that returns logits."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    expected = {"input_dim": music_data.NUM_NOTES, "output_dim": music_data.NUM_NOTES,
                "output_activation": "sigmoid", "vocab_size": None, "bidirectional": False}
    if "architecture" not in config or any(config.get(k) != v for k, v in expected.items()):
        found = {k: config.get(k) for k in expected}
        raise ValueError(
            "sample_piece needs a forward DeepRNNModel that predicts 88 notes with sigmoids "
            f"({expected}). Received: {type(model).__name__} with {found}"
        )
    # unroll: a step of one frame needs no loop construct, which JAX would
    # otherwise trace and compile anew at every eager call.
    return model.stateful_copy(masking=False, output_activation=None, unroll=True)
