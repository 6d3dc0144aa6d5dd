"""Polyphonic music, the paper's first task: the next frame of a piano roll.

`MusicTask` reads 88-key piano rolls (`keras_deeprnn.data.music`), trains
with `FrameNLLLoss` and scores the NLL per frame. Sampling lives here too:
a music model (`build_model(..., input_dim=88, output_dim=88,
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

import dataclasses
import pathlib

import keras
import numpy as np
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.data import batching
from keras_deeprnn.data import catalogue
from keras_deeprnn.data import music as music_data
from keras_deeprnn.data import rolls
from keras_deeprnn.data import splits
from keras_deeprnn.data import writers
from keras_deeprnn.metrics import music as music_metrics
from keras_deeprnn.tasks import base
from keras_deeprnn.tasks import paper


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class FrameNLLLoss(keras.losses.Loss):
    """The paper's music measure as a loss: NLL summed over notes, mean over frames.

    ```python
    p = clip(y_pred, epsilon, 1 - epsilon)
    nll[b, t] = -sum_k(y_true * log(p) + (1 - y_true) * log(1 - p))
    loss = sum(nll * sample_weight) / sum(sample_weight)
    ```

    Keras's `binary_crossentropy` averages over the 88 notes instead, which
    makes the gradient 88 times smaller than the paper's: gradient clipping
    at norm 1 and an SGD learning rate would then mean something else.
    Dividing by the weights, not the batch size, makes the loss of a batch
    the NLL per real frame whatever its padding.

    Example:

    ```python
    model.compile(loss=FrameNLLLoss(), weighted_metrics=[FrameNLL()])
    ```
    """

    def __init__(self, epsilon=1e-7, name="frame_nll_loss",
                 reduction="mean_with_sample_weight", dtype=None):
        if not isinstance(epsilon, float) or not 0 < epsilon < 0.5:
            raise ValueError(
                f"`epsilon` must be a float in (0, 0.5). Received: epsilon={epsilon!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
        return -ops.sum(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p), axis=-1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@dataclasses.dataclass
class MusicSettings:
    """The music task's own settings (`TrainConfig` fields of the same names)."""

    max_len: int | None = dataclasses.field(default=None, metadata={
        "type": int,
        "help": "train on windows of this many steps (default: whole pieces)"})
    bucket: bool = dataclasses.field(default=False, metadata={
        "help": "batch pieces of similar length together, so wide batches "
                "(--batch-size 32 on a GPU) waste little padding"})


class MusicTask(base.Task):
    """Next-frame prediction of 88-key piano rolls (section 5 of the paper).

    The model predicts every frame of a piece with 88 sigmoids, the first
    from its initial state (its input at step 0 is a silent frame), the
    others from the frames before (`keras_deeprnn.data.pad_batch`). The
    measure, `nll`, is the NLL per frame in nats averaged over every time
    step of the test pieces, as the data sets' authors ask and as the
    paper's figures are taken. `nll_without_first_frame` leaves the first
    frame of each piece out: the `T - 1` convention of the TCN benchmark
    (Bai, Kolter and Koltun 2018), which is not comparable with the paper.

    Example:

    ```python
    result = train(TrainConfig(task="music", dataset="folk_tunes"))
    ```
    """

    name = "music"
    monitor = "val_frame_nll"
    measure = ("NLL", "nats per frame")
    default_dataset = "jsb_chorales"
    datasets = tuple(catalogue.MUSIC_DATASETS)
    settings = MusicSettings
    # Language models have always accepted these (and trained on their own
    # windows, `seq_len`); `tune` reads them for every searched task.
    tolerated_elsewhere = ("max_len", "bucket")
    # Padded lengths from a geometric ladder (16, 24, 32, 48, ...): about a
    # dozen shapes to compile however long the pieces, at most half padding.
    ladder = True

    def load_data(self, config, *, saved=None):
        data = music_data.load_music(
            config.dataset, cache_dir=config.cache_dir, progress=config.progress,
            limit=config.limit,
        )
        for split in splits.SPLITS:
            if not any(len(piece) > 0 for piece in data[split]):
                raise ValueError(
                    f"The {split} split of dataset={config.dataset!r} (limit="
                    f"{config.limit!r}) holds no piece with a frame; expected "
                    "pieces in every split. Raise `limit` (at least 4 files give "
                    "every split a piece)."
                )
        return data

    def batches(self, split, config, *, training, epoch=0):
        batches = batching.piano_roll_batches(
            split, config.batch_size, shuffle=training, seed=config.seed,
            max_len=config.max_len if training else None,
            ladder=self.ladder,
            bucket=bool(getattr(config, "bucket", False)) and training,
        )
        # A run resumed at `epoch` reads the pieces in the order the
        # uninterrupted run would: the shuffles it would have drawn so far.
        for _ in range(epoch if training else 0):
            batches.on_epoch_end()
        return batches

    def build_model_kwargs(self, config, data):
        # Padding only ever follows the real frames and the RNN is causal, so
        # padded steps cannot change a real frame's output; `sample_weight`
        # drops them from loss and metrics, and no Masking keeps the loop lean.
        return dict(input_dim=rolls.NUM_NOTES, output_dim=rolls.NUM_NOTES,
                    output_activation="sigmoid", masking=False)

    def loss(self):
        return FrameNLLLoss()

    def metrics(self):
        return [music_metrics.FrameNLL(), music_metrics.FrameAccuracy()]

    def evaluate(self, model, split, config):
        """`nll` over every time step, and the same without each first frame.

        Returns `nll`, `frame_accuracy`, `frames` (every frame of the split),
        `nll_without_first_frame` and `frame_accuracy_without_first_frame`
        (the `T - 1` convention), and `pieces`.
        """
        probabilities, targets, steps = music_metrics.predict_frames(
            model, self.batches(split, config, training=False))
        # Step 0 of every piece predicts its first frame (no windows here).
        later = steps > 0
        if not later.any():  # every piece a single frame
            later = None
        return {
            "nll": music_metrics.frame_nll(probabilities, targets),
            "frame_accuracy": music_metrics.frame_accuracy(probabilities, targets),
            "frames": int(len(targets)),
            "nll_without_first_frame": None if later is None else
            music_metrics.frame_nll(probabilities[later], targets[later]),
            "frame_accuracy_without_first_frame": None if later is None else
            music_metrics.frame_accuracy(probabilities[later], targets[later]),
            "pieces": int(sum(len(piece) > 0 for piece in split)),
        }

    def paper_figure(self, config):
        key = str(config.dataset)
        if key not in paper.PAPER_MUSIC_COLUMNS:
            key = pathlib.Path(key).name.lower()
        if key not in paper.PAPER_MUSIC_COLUMNS:
            return None
        column, imitation = paper.PAPER_MUSIC_COLUMNS[key]
        row = paper.paper_row(config)
        if row is None:
            return None
        if imitation:
            note = (f"The paper's figure is on the original {column} data; "
                    f"{config.dataset!r} imitates it from the music21 corpus, so the "
                    "numbers are not directly comparable.")
        else:
            note = f"Same data set as the paper ({column})."
        return {"model": row, "dataset": column, "nll": paper.PAPER_MUSIC_NLL[row][column],
                "imitation": imitation, "note": note}

    def check_settings(self, settings):
        _checks.optional_positive_int("max_len", settings.max_len)
        _checks.boolean("bucket", settings.bucket)

    def score_line(self, scores, split):
        return f"{split} {describe_scores(scores)}"

    def result_lines(self, result, config):
        test, paper_figure = result["test"], result["paper"]
        lines = [f"\nTest {describe_scores(test)}, best epoch {result['best_epoch']} of "
                 f"{result['epochs_run']}{' (stopped early)' if result['stopped_early'] else ''}."]
        if paper_figure:
            lines.append(f"Paper, {paper_figure['model']} on {paper_figure['dataset']}: "
                         f"{paper_figure['nll']:.3f}. {paper_figure['note']}")
        else:
            lines.append("The paper reports no figure for this architecture and data set.")
        files = result["files"]
        lines.append(f"Training took {result['train_time_s']:.0f} s on {result['backend']} "
                     f"({result['wall_time_s']:.0f} s in all, data and scoring included). "
                     "Wrote:")
        lines += [f"  {kind:14s} {files[kind]}" for kind in ("model", "history", "learning_curve")]
        lines.append(f"  {'result':14s} {pathlib.Path(files['run_dir']) / 'result.json'}")
        return lines

    def sample(self, model, length, *, temperature=1.0, prime=None, seed=None, saved=None,
               progress=False):
        """A piano roll of `length` frames: `sample_piece`."""
        return sample_piece(model, length, temperature=temperature, prime=prime, seed=seed,
                            progress=progress)

    def sample_prime(self, args, config):
        """The first `--prime-frames` frames of the piece `--prime-from` names."""
        if args.prime is not None:
            raise ValueError(f"`--prime` is text for a language model; this model is a "
                             f"{self.name} model: open a piece with --prime-from "
                             f"instead. Received: --prime {args.prime!r}")
        if args.prime_from is None:
            return None
        split, index = _piece_reference(args.prime_from)
        limit = args.limit if args.limit is not None or args.dataset else config.get("limit")
        dataset = args.dataset or config.get("dataset", self.default_dataset)
        pieces = music_data.load_music(dataset, cache_dir=args.cache_dir, limit=limit)[split]
        if not 0 <= index < len(pieces):
            raise ValueError(f"`--prime-from` names piece {index} of the {split} split, "
                             f"which has {len(pieces)} pieces (0..{len(pieces) - 1}).")
        return pieces[index][: args.prime_frames]

    def save_sample(self, sample, prefix, *, args, config, prime=None):
        dataset = (args.dataset if args is not None else None) or config.get(
            "dataset", self.default_dataset)
        temperature = args.temperature if args is not None else 1.0
        paths = save_piece(sample, prefix, frame_quarter_length=frame_quarter_length_of(dataset),
                           title=f"sample, temperature {temperature}")
        opening = ("" if prime is None else
                   f", opening {len(prime)} from {dataset} {args.prime_from}")
        return [f"Sampled {len(sample)} frames ({int(sample.sum())} note-frames{opening}). "
                "Wrote:", *(f"  {kind:9s} {path}" for kind, path in paths.items())]

    def training_sample_lines(self, sample, run_dir, config, *, length, temperature):
        paths = save_piece(
            sample, pathlib.Path(run_dir) / "generated",
            frame_quarter_length=frame_quarter_length_of(config.dataset),
            title=f"{config.architecture} on {config.dataset}, temperature {temperature}")
        return [f"Generated piece ({len(sample)} frames, {int(sample.sum())} note-frames):",
                *(f"  {kind:14s} {path}" for kind, path in paths.items())]


def _piece_reference(value):
    split, _, index = value.rpartition(":")
    split = split or "test"
    if split not in splits.SPLITS or not index.isdigit():
        raise ValueError(f"`--prime-from` must be [SPLIT:]INDEX with SPLIT one of "
                         f"{', '.join(splits.SPLITS)}. Received: {value!r}")
    return split, int(index)


def describe_scores(scores):
    """One line of `MusicTask.evaluate`'s scores, for people.

    Example:

    >>> describe_scores({"nll": 8.5, "frame_accuracy": 0.3, "pieces": 2, "frames": 40,
    ...                  "nll_without_first_frame": 8.4})
    'NLL 8.500 nats per frame over every time step, frame accuracy 0.300 (2 pieces, 40 frames); 8.400 without each first frame (the T - 1 convention)'
    """
    line = (f"NLL {scores['nll']:.3f} nats per frame over every time step, frame accuracy "
            f"{scores['frame_accuracy']:.3f} ({scores['pieces']} pieces, "
            f"{scores['frames']} frames)")
    if scores.get("nll_without_first_frame") is not None:
        line += (f"; {scores['nll_without_first_frame']:.3f} without each first frame "
                 "(the T - 1 convention)")
    return line


def sample_piece(model, num_frames, *, temperature=1.0, prime=None, seed=None,
                 progress=False):
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
        progress: show a Keras progress bar of the frames drawn.

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
    _checks.positive_finite("temperature", temperature)
    if prime is not None:
        prime = rolls._as_roll(prime, "sample_piece: prime")
        if not 0 < len(prime) < num_frames:
            raise ValueError(
                f"`prime` must have between 1 and num_frames - 1 = {num_frames - 1} "
                f"frames. Received: a prime of {len(prime)} frames"
            )
        prime = (prime > 0.5).astype(np.float32)
    step = _stepping_twin(model)
    rng = np.random.default_rng(_checks.seed("seed", seed))

    roll = np.zeros((num_frames, rolls.NUM_NOTES), np.float32)
    start = 0
    feed = np.zeros((1, 1, rolls.NUM_NOTES), np.float32)
    if prime is not None:
        start = len(prime)
        roll[:start] = prime
        # The whole opening in one call, after the silent frame that a piece
        # starts from in training: the state after it is what counts.
        feed = batching.with_start_frame(prime)[None]
    bar = base.progress_bar(num_frames - start, "frame", progress)
    for t in range(start, num_frames):
        logits = keras.ops.convert_to_numpy(step(feed, training=False))[0, -1]
        # sigmoid(z) = (1 + tanh(z / 2)) / 2 cannot overflow at low temperature.
        probabilities = 0.5 * (1.0 + np.tanh(logits.astype(np.float64) / (2.0 * temperature)))
        roll[t] = rng.random(rolls.NUM_NOTES) < probabilities
        feed = roll[None, t : t + 1]
        if bar is not None:
            bar.update(t + 1 - start)
    return roll


def save_piece(roll, prefix, *, frame_quarter_length=rolls.DEFAULT_FRAME_QUARTER_LENGTH,
               title=None):
    """Write a piano roll as `prefix.mid`, `prefix.musicxml` and `prefix.png`.

    Args:
        roll: array of shape `(frames, 88)`, on where above 0.5.
        prefix: path without suffix; its folder is created if needed.
        frame_quarter_length: quarter notes per frame (1.0 for the JSB
            imitation, 0.5 for the other built-in sets; see
            `keras_deeprnn.data.catalogue.FRAME_QUARTER_LENGTHS`).
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
        "midi": writers.write_midi(roll, prefix.with_name(stem + ".mid"),
                                      frame_quarter_length),
        "musicxml": writers.write_musicxml(roll, prefix.with_name(stem + ".musicxml"),
                                              frame_quarter_length),
        "png": writers.plot_piano_roll(roll, prefix.with_name(stem + ".png"),
                                          frame_quarter_length=frame_quarter_length,
                                          title=title),
    }


def frame_quarter_length_of(dataset):
    """Quarter notes per frame of a data set name or path (for `save_piece`).

    Example:

    >>> frame_quarter_length_of("jsb_chorales")
    1.0
    """
    if dataset in catalogue.FRAME_QUARTER_LENGTHS:
        return catalogue.FRAME_QUARTER_LENGTHS[dataset]
    # Boulanger-Lewandowski's JSB Chorales has one frame per quarter note.
    if pathlib.Path(str(dataset)).name.lower().startswith("jsb"):
        return 1.0
    return rolls.DEFAULT_FRAME_QUARTER_LENGTH


def _stepping_twin(model):
    """A stateful, batch-of-one copy of `model` that returns logits."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    expected = {"input_dim": rolls.NUM_NOTES, "output_dim": rolls.NUM_NOTES,
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
