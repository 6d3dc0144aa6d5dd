"""Token streams for language modelling: Penn Treebank, any text, an embedded corpus.

A language model here reads one long stream of token ids and predicts each
next token. The loaders turn text into such streams (train, valid, test, and
the vocabulary that maps ids back to symbols); `lm_batches` cuts a stream into
the contiguous windows that a stateful recurrent model is trained on.

Vocabularies are always built from the training split alone and sorted by
Python string order (Unicode code points), so the id of a symbol depends only
on the training text: `vocabulary[i]` is the symbol with id `i`.

The end of each line is a token of its own: `"<eos>"` at word level, the
newline character `"\\n"` at character level.
"""

import dataclasses
import importlib.util
import math
import os
import pathlib
import re
import warnings

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.splits import held_out_count
from keras_deeprnn.data.splits import stable_order

UNKNOWN = "<unk>"
WORD_EOS = "<eos>"
CHAR_EOS = "\n"
LEVELS = ("char", "word")

PTB_FILES = {
    "word": ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"),
    "char": ("ptb.char.train.txt", "ptb.char.valid.txt", "ptb.char.test.txt"),
}
EMBEDDED_CORPORA = ("abc_folk",)


@dataclasses.dataclass(frozen=True, eq=False)
class TextCorpus:
    """Three token-id streams and the vocabulary they index.

    Attributes:
        train, valid, test: 1-D int32 NumPy arrays of token ids.
        vocabulary: list of symbols; the symbol with id `i` is
            `vocabulary[i]`.
        level: `"char"` or `"word"`.
        name: where the text came from (a path or an embedded name).

    Also readable as a mapping: `corpus["train"]` is `corpus.train`.

    Example:

    >>> corpus = load_text(path_to_text_file)  # doctest: +SKIP
    >>> corpus.decode(corpus.train[:40])  # doctest: +SKIP
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocabulary: list
    level: str
    name: str

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def decode(self, ids):
        """Symbols of `ids`, joined by nothing (characters) or spaces (words)."""
        separator = "" if self.level == "char" else " "
        return separator.join(self.vocabulary[int(i)] for i in np.ravel(ids))

    def __getitem__(self, key):
        fields = ("train", "valid", "test", "vocabulary", "level", "name")
        if key not in fields:
            raise KeyError(f"TextCorpus has keys {fields}; received {key!r}.")
        return getattr(self, key)


def load_ptb(directory, level="char"):
    """Load the Penn Treebank language-modelling data (Mikolov's split).

    The files are the ones most copies of the data set have (e.g. the `data/`
    folder of Mikolov's `simple-examples`):

    | level | files | line format |
    | --- | --- | --- |
    | `"word"` | `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` | space-separated words, rare words already `<unk>` |
    | `"char"` | `ptb.char.train.txt`, `ptb.char.valid.txt`, `ptb.char.test.txt` | space-separated characters, `_` between words |

    Every line is one sentence; its tokens are followed by an end-of-line
    token (`"<eos>"` for words, `"\\n"` for characters), so the streams are

        tokens = [t for line in lines for t in line.split() + [eos]]

    The vocabulary is `sorted(set(training tokens) | {"<unk>"})` at word
    level (10,000 symbols on the real data, `<unk>` and `<eos>` included) and
    `sorted(set(training tokens))` at character level (about 50 symbols on
    the real data; the paper counts 50 characters). A word of the valid or test file outside the vocabulary becomes
    `<unk>`; a character outside it is an error, because the character files
    share one closed alphabet and a stray symbol means a wrong file.

    Args:
        directory: folder that holds the three files of `level`.
        level: `"char"` (measured in bits per character) or `"word"`
            (measured in perplexity).

    Returns:
        A `TextCorpus` with `train`, `valid`, `test` (int32 ids) and
        `vocabulary`.

    Example:

    >>> ptb = load_ptb("simple-examples/data", level="char")  # doctest: +SKIP
    >>> ptb.decode(ptb.valid[:20])  # doctest: +SKIP
    >>> train_windows = lm_batches(ptb.train, batch_size=32, seq_len=100)  # doctest: +SKIP

    Reference: Mikolov et al., "Empirical Evaluation and Combination of
    Advanced Language Modeling Techniques", Interspeech 2011; the split used
    by Pascanu et al. 2013, section 5.
    """
    level = _check_level(level)
    directory = pathlib.Path(directory)
    names = PTB_FILES[level]
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"load_ptb(level={level!r}) expects the files "
            f"{', '.join(names)} in the directory '{directory}', but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "missing there. They are the Penn Treebank files of Mikolov's "
            "split (the data/ folder of his simple-examples archive)."
        )
    eos = WORD_EOS if level == "word" else CHAR_EOS
    lines = {
        name: _read_utf8(directory / name).splitlines() for name in names
    }
    train_tokens = [t for line in lines[names[0]] for t in line.split() + [eos]]
    symbols = set(train_tokens)
    if level == "word":
        symbols.add(UNKNOWN)
    vocabulary = sorted(symbols)
    ids = {symbol: i for i, symbol in enumerate(vocabulary)}

    streams = []
    for name in names:
        if level == "word":
            unknown_id = ids[UNKNOWN]
            stream = [
                ids.get(t, unknown_id)
                for line in lines[name]
                for t in line.split() + [eos]
            ]
        else:
            stream = _char_ids_or_raise(lines[name], ids, directory / name)
        streams.append(np.asarray(stream, dtype=np.int32))
    return TextCorpus(*streams, vocabulary, level, str(directory))


def _char_ids_or_raise(lines, ids, path):
    stream = []
    for number, line in enumerate(lines, start=1):
        for symbol in line.split() + [CHAR_EOS]:
            token_id = ids.get(symbol)
            if token_id is None:
                raise ValueError(
                    f"The symbol {symbol!r} on line {number} of '{path}' "
                    "does not occur in the training file, so it has no id. "
                    "The Penn Treebank character files share one alphabet; "
                    "check that the three files belong together."
                )
            stream.append(token_id)
    return stream


def load_text(path_or_name, level="char", split=(0.9, 0.05, 0.05)):
    """Load any plain-text corpus, or an embedded one, as token-id streams.

    The text is read as UTF-8 (a directory: every `*.txt` file below it,
    concatenated in sorted path order, each ending with a newline), turned
    into one token stream, and cut into contiguous train / valid / test parts
    by position:

        n_train = floor(split[0] * n);  n_valid = floor(split[1] * n)
        train, valid, test = tokens[:n_train], tokens[n_train:n_train + n_valid], rest

    At character level every character is a token (newlines included); at
    word level a line's tokens are `line.split() + ["<eos>"]`. The
    vocabulary is `sorted(set(train tokens) | {"<unk>"})`; a symbol of the
    valid or test part that the training part never shows becomes `<unk>`.

    A directory holding any Penn Treebank file (`PTB_FILES`) is refused:
    read as plain text, its test file would be trained on and its character
    and word files mixed. `load_ptb` reads it with its own split.

    Embedded corpus, needing no download:

    - `"abc_folk"`: the ABC-notation folk tunes that music21 ships in its
      corpus (`music21/corpus/**/*.abc`: Ryan's Mammoth Collection,
      O'Neill's 1850, Aird's Airs, Essen folksongs and a few others; 1,146
      files and 12,978 tunes in music21 10.5). Read without importing
      music21. It is split by tune, not by position, so that the three
      parts hold tunes of the same collections and no tune is in two parts
      (`abc_folk_tunes`): each file is cut before every line that starts
      with `X:` (an ABC tune's first header; a file's preamble stays with
      its first tune), a tune is named `"<path in the corpus>#<index in its
      file>"`, and the tunes are ordered by the SHA-1 of that name. The
      first `round(split[2] * tunes)` of that order are the test part, the
      next `round(split[1] * tunes)` the valid part, the rest train; each
      part is its tunes concatenated in corpus order (sorted path, then
      position in the file). The order depends on nothing but the names,
      so the split is the same on every machine and Python or NumPy
      version. With music21 10.5 it is 4,368,463 characters: 3,932,697 /
      219,316 / 216,450 at character level, with 122 symbols (the 121
      characters of the training part, which cover the other two parts,
      and `<unk>`).

    Args:
        path_or_name: a text file, a directory of `.txt` files, or the name
            of an embedded corpus (`"abc_folk"`; a file of that name is
            reached as `"./abc_folk"`).
        level: `"char"` or `"word"`.
        split: fractions `(train, valid, test)`, non-negative, summing to 1,
            with a training part that is not empty (of the tokens, or of
            the tunes of `"abc_folk"`).

    Returns:
        A `TextCorpus`, as `load_ptb` returns.

    Example:

    >>> corpus = load_text("abc_folk")  # doctest: +SKIP
    >>> corpus.vocabulary_size, corpus.train.shape  # doctest: +SKIP
    (122, (3932697,))
    """
    level = _check_level(level)
    split = _check_split(split)
    if isinstance(path_or_name, str) and path_or_name in EMBEDDED_CORPORA:
        parts = _split_tunes(abc_folk_tunes(), split)
        name = path_or_name
        token_parts = [_tokens(parts[part], level) for part in SPLITS]
        tokens = np.concatenate(token_parts)
        n, n_train, n_valid = len(tokens), len(token_parts[0]), len(token_parts[1])
    else:
        text, name = _read_corpus(path_or_name)
        tokens = _tokens(text, level)
        n = len(tokens)
        n_train = math.floor(split[0] * n)
        n_valid = math.floor(split[1] * n)
    if n_train == 0:
        raise ValueError(
            f"load_text({name!r}, split={split}) leaves no training "
            f"tokens: the text has {n} {level} tokens."
        )

    distinct, inverse = np.unique(tokens, return_inverse=True)
    distinct_symbols = (
        [chr(c) for c in distinct] if level == "char" else list(distinct)
    )
    in_train = np.zeros(len(distinct), dtype=bool)
    in_train[np.unique(inverse[:n_train])] = True
    vocabulary = sorted(
        {s for s, seen in zip(distinct_symbols, in_train) if seen} | {UNKNOWN}
    )
    ids = {symbol: i for i, symbol in enumerate(vocabulary)}
    lookup = np.asarray(
        [ids.get(s, ids[UNKNOWN]) for s in distinct_symbols], dtype=np.int32
    )
    stream = lookup[inverse.reshape(-1)]
    return TextCorpus(
        stream[:n_train],
        stream[n_train : n_train + n_valid],
        stream[n_train + n_valid :],
        vocabulary,
        level,
        name,
    )


def _tokens(text, level):
    if level == "char":
        # Code points as one array: a Python loop over millions of
        # characters is what would make loading slow.
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.asarray(
        [t for line in text.splitlines() for t in line.split() + [WORD_EOS]],
        dtype=object,
    )


def _read_corpus(path_or_name):
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise TypeError(
            "load_text expects `path_or_name` to be a path or one of "
            f"{EMBEDDED_CORPORA}; received {path_or_name!r} of type "
            f"{type(path_or_name).__name__}."
        )
    path = pathlib.Path(path_or_name)
    if path.is_file():
        return _read_utf8(path), str(path)
    if path.is_dir():
        _refuse_ptb_directory(path)
        files = sorted(path.rglob("*.txt"), key=lambda p: p.as_posix())
        if not files:
            raise FileNotFoundError(
                f"load_text found no .txt file under the directory '{path}'."
            )
        return _join_files(files), str(path)
    raise FileNotFoundError(
        f"load_text expects `path_or_name` to be an existing file, a "
        f"directory of .txt files, or one of {EMBEDDED_CORPORA}; received "
        f"{str(path_or_name)!r}, which is none of these."
    )


def _refuse_ptb_directory(path):
    held = [name for names in PTB_FILES.values() for name in names if (path / name).is_file()]
    if not held:
        return
    lacking = {
        level: [name for name in names if not (path / name).is_file()]
        for level, names in PTB_FILES.items()
    }
    missing = "; ".join(
        f"level {level!r} lacks {', '.join(names)}" if names else f"level {level!r} is complete"
        for level, names in lacking.items()
    )
    raise ValueError(
        f"load_text: the directory '{path}' holds Penn Treebank files "
        f"({', '.join(held)}), so it is not read as plain text, which would "
        "train on its test file and mix characters with words. Read it with "
        f"load_ptb(directory, level), which needs the level's three files "
        f"({missing})."
    )


def abc_folk_tunes():
    """`(name, text)` of every tune of the embedded `"abc_folk"` corpus.

    In corpus order: files by their path in music21's corpus, tunes by
    position in their file. A file is cut before every line that starts
    with `X:`; its preamble stays with its first tune, so the texts joined
    are the files' texts, each ending with a newline. The name is
    `"<path in the corpus>#<index in its file>"`.

    Example:

    >>> tunes = abc_folk_tunes()  # doctest: +SKIP
    >>> tunes[0][0], tunes[0][1].splitlines()[0]  # doctest: +SKIP
    ('airdsAirs/book1.abc#0', '%abc-2.1')
    """
    root, files = _abc_folk_files()
    tunes = []
    for path in files:
        text = _read_utf8(path)
        text = text if text.endswith("\n") else text + "\n"
        # The first tune starts at 0 whether or not a preamble precedes it.
        starts = [0] + [m.start() for m in _TUNE_START.finditer(text)][1:]
        relative = path.relative_to(root).as_posix()
        for index, (begin, end) in enumerate(zip(starts, starts[1:] + [len(text)])):
            tunes.append((f"{relative}#{index}", text[begin:end]))
    return tunes


_TUNE_START = re.compile(r"^X:", flags=re.MULTILINE)


def _assign_tunes(names, split):
    """`{name: part}`: test, then valid, first in the SHA-1 order of the names."""
    order = stable_order(names)
    n_test = held_out_count(len(order), split[2])
    n_valid = held_out_count(len(order), split[1])
    parts = ["test"] * n_test + ["valid"] * n_valid
    parts += ["train"] * (len(order) - len(parts))
    return dict(zip(order, parts))


def _split_tunes(tunes, split):
    """`{part: text}`: each part its tunes, whole, joined in corpus order."""
    chosen = _assign_tunes([name for name, _ in tunes], split)
    parts = {part: [] for part in SPLITS}
    for name, text in tunes:
        parts[chosen[name]].append(text)
    return {part: "".join(texts) for part, texts in parts.items()}


def _abc_folk_files():
    # find_spec locates a top-level package without executing it: the
    # corpus is plain text, and importing music21 costs seconds.
    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            'load_text("abc_folk") reads the ABC folk tunes shipped with '
            'music21, which is not installed. Install it with: '
            'pip install "keras-deeprnn[music]"'
        )
    root = pathlib.Path(list(spec.submodule_search_locations)[0]) / "corpus"
    files = sorted(
        root.rglob("*.abc"), key=lambda p: p.relative_to(root).as_posix()
    )
    if not files:
        raise FileNotFoundError(
            f"load_text('abc_folk') found no .abc file under '{root}'; the "
            "music21 installation seems to lack its corpus."
        )
    return root, files


def _join_files(files):
    texts = [_read_utf8(p) for p in files]
    # A newline between files keeps the last line of one file from running
    # into the first line of the next.
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts)


def _read_utf8(path):
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"'{path}' is not valid UTF-8 text ({error})."
        ) from error


def _check_level(level):
    return _checks.one_of("level", level, LEVELS)


def _check_split(split):
    try:
        split = tuple(float(s) for s in split)
    except (TypeError, ValueError):
        split = None
    if (
        split is None
        or len(split) != 3
        or any(not math.isfinite(s) or s < 0 for s in split)
        or not math.isclose(sum(split), 1.0, abs_tol=1e-6)
        or split[0] == 0
    ):
        raise ValueError(
            "`split` must be three non-negative fractions (train, valid, "
            "test) that sum to 1, with train > 0; received "
            f"{split if split is not None else 'a non-numeric value'}."
        )
    return split


class LanguageModelBatches(keras.utils.PyDataset):
    """Contiguous windows of a token stream, in order, for a stateful model.

    The stream is cut into `batch_size` parallel streams, row `b` of which
    continues where the same row of the previous window stopped:

        L = len(tokens) // batch_size
        streams = tokens[:batch_size * L].reshape(batch_size, L)   # stream b = tokens[b*L:(b+1)*L]
        x_k = streams[:, k*seq_len     : (k+1)*seq_len]
        y_k = streams[:, k*seq_len + 1 : (k+1)*seq_len + 1]       # next tokens
        num_batches = (L - 1) // seq_len                           # the tail is dropped

    Because row `b` of window `k + 1` is the text right after row `b` of
    window `k`, a recurrent layer built with `stateful=True` and a fixed
    batch size (`keras.Input(batch_shape=(batch_size, seq_len))`) carries its
    state from one window to the next, as in truncated backpropagation
    through time. Reset the state at each epoch with
    `ResetStatesAtEpochStart`.

    Windows must be read in order. `model.fit` shuffles the batches of a
    `PyDataset` unless told otherwise, so call it with `shuffle=False`;
    indexing out of order (`ds[k]` not following `ds[k - 1]` or
    `ds[0]`) raises an error rather than train on broken state. Use
    `window(k)` to look at any window.

    Example:

    >>> ds = lm_batches(np.arange(20), batch_size=2, seq_len=3)
    >>> x, y = ds[0]
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [10, 11, 12]], [[1, 2, 3], [11, 12, 13]])
    >>> len(ds)
    3
    """

    def __init__(self, tokens, batch_size, seq_len):
        tokens = _check_tokens(tokens)
        batch_size = _checks.positive_int("batch_size", batch_size)
        seq_len = _checks.positive_int("seq_len", seq_len)
        needed = batch_size * (seq_len + 1)
        if len(tokens) < needed:
            raise ValueError(
                f"lm_batches needs at least batch_size * (seq_len + 1) = "
                f"{batch_size} * ({seq_len} + 1) = {needed} tokens for one "
                f"batch (each window's targets reach one token further); "
                f"received {len(tokens)} tokens with batch_size={batch_size}, "
                f"seq_len={seq_len}."
            )
        super().__init__()
        self.batch_size = batch_size
        self.seq_len = seq_len
        length = len(tokens) // batch_size
        self.streams = tokens[: batch_size * length].reshape(batch_size, length)
        self._num_batches = (length - 1) // seq_len
        self._last_index = None

    @property
    def num_batches(self):
        return self._num_batches

    def __len__(self):
        return self._num_batches

    def window(self, index):
        """Window `index` as `(x, y)`, in any order."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"A window index must be an int; received {index!r}."
            )
        if not 0 <= index < self._num_batches:
            raise IndexError(
                f"Window index {index} is out of range: there are "
                f"{self._num_batches} windows."
            )
        start = int(index) * self.seq_len
        x = self.streams[:, start : start + self.seq_len]
        y = self.streams[:, start + 1 : start + self.seq_len + 1]
        return x.copy(), y.copy()

    def __getitem__(self, index):
        x, y = self.window(index)
        last = self._last_index
        if last is not None and index not in (0, last, last + 1):
            raise ValueError(
                f"lm_batches serves windows in order so that a stateful "
                f"model's state carries from one to the next, but window "
                f"{index} was requested right after window {last}: the "
                "batches are being shuffled. Pass shuffle=False to "
                "model.fit(), or use .window(k) to look at one window."
            )
        self._last_index = int(index)
        return x, y


def lm_batches(tokens, batch_size, seq_len):
    """The standard batching for language models: contiguous windows, in order.

    See `LanguageModelBatches` for the layout. Train a model built with
    `stateful=True` and `keras.Input(batch_shape=(batch_size, seq_len))` on
    it with `model.fit(ds, shuffle=False, callbacks=[ResetStatesAtEpochStart()])`;
    a validation set needs the same `batch_size`. (With the JAX backend,
    only `keras_deeprnn.layers.DeepRNN` carries RNN state inside `fit`; see
    `ResetStatesAtEpochStart`.)

    Args:
        tokens: 1-D sequence of non-negative integer token ids.
        batch_size: number of parallel streams (rows of a batch).
        seq_len: time steps per window.

    Returns:
        A `keras.utils.PyDataset` of `(x, y)` int32 pairs of shape
        `(batch_size, seq_len)`, `y` being `x` moved one token on.

    Example:

    >>> ds = lm_batches(np.arange(20), batch_size=2, seq_len=3)
    >>> [x[:, 0].tolist() for x, _ in ds]
    [[0, 10], [3, 13], [6, 16]]
    """
    return LanguageModelBatches(tokens, batch_size, seq_len)


def _check_tokens(tokens):
    array = np.asarray(tokens)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.integer) or array.size == 0
    ):
        raise ValueError(
            "`tokens` must be a 1-D sequence of integer token ids; received "
            f"an array of shape {array.shape} and dtype {array.dtype}."
        )
    if array.size and (
        array.min() < 0 or array.max() > np.iinfo(np.int32).max
    ):
        raise ValueError(
            "`tokens` must be non-negative ids that fit in int32; received "
            f"values from {array.min()} to {array.max()}."
        )
    return array.astype(np.int32)


class ResetStatesAtEpochStart(keras.callbacks.Callback):
    """Zero the state of every stateful recurrent layer when a pass begins.

    With `lm_batches` the state of a `stateful=True` layer carries across
    the windows of one pass over the stream; at the start of the next pass
    (`on_epoch_begin`) and of an evaluation (`on_test_begin`) the text starts
    again from its beginning, so the carried state must start from zero.
    Layers nested in sub-models or inside other layers are reached too; only
    layers whose `stateful` attribute is true are reset, so preprocessing
    layers (which also have a `reset_state`, meaning "forget the adapted
    vocabulary") are left alone.

    Backends: the state carries inside `fit`, `evaluate` and `predict` on
    every backend for `keras_deeprnn.layers.DeepRNN` (every model of
    `build_model`). Keras 3.15's own RNN layers keep their state variables
    out of the model variables that JAX's compiled steps return, so with JAX
    each of their batches starts from a zero state (eager calls, `model(x)`,
    do carry it); this callback warns when training starts on JAX with such
    a layer in the model.

    Example:

    >>> model.fit(  # doctest: +SKIP
    ...     lm_batches(corpus.train, 32, 100),
    ...     validation_data=lm_batches(corpus.valid, 32, 100),
    ...     shuffle=False,
    ...     callbacks=[ResetStatesAtEpochStart()],
    ... )
    """

    def on_train_begin(self, logs=None):
        from keras_deeprnn.layers import DeepRNN

        losing = [l for l in _stateful_layers(self.model) if not isinstance(l, DeepRNN)]
        if keras.backend.backend() == "jax" and losing:
            warnings.warn(
                f"With the JAX backend, Keras {keras.version()} does not "
                "carry the state of stateful RNN layers from one batch to "
                "the next inside fit(), evaluate() or predict(): their state "
                "variables are not among the model variables that the "
                "compiled JAX steps update, so every window starts from a "
                "zero state. Use keras_deeprnn.layers.DeepRNN (as every "
                "build_model model does), or the TensorFlow or PyTorch backend. "
                f"Affected layers: {[l.name for l in losing]}",
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        reset_stateful_layers(self.model)

    def on_test_begin(self, logs=None):
        reset_stateful_layers(self.model)


def reset_stateful_layers(model):
    """Call `reset_state()` on every layer of `model` built with `stateful=True`.

    Returns the number of layers reset.
    """
    layers = _stateful_layers(model)
    for layer in layers:
        layer.reset_state()
    return len(layers)


def _stateful_layers(model):
    # `_flatten_layers` is how Keras itself walks nested layers (sub-models
    # and layers held as attributes); `model.layers` stops at the top level.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if getattr(layer, "stateful", False)
        and callable(getattr(layer, "reset_state", None))
    ]
