"""Token streams for language modelling: Penn Treebank, any text, an embedded corpus.

A language model here reads one long stream of token ids and predicts each
next token. The loaders turn text into such streams (train, valid, test, and
the vocabulary that maps ids back to symbols); `text_batches.lm_batches` cuts a
stream into the contiguous windows that a stateful recurrent model is trained on.

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
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.data.splits import held_out_count
from keras_deeprnn.data.splits import stable_order

UNKNOWN = "<unk>"
WORD_EOS = "<eos>"
CHAR_EOS = "\n"
TOKENIZATIONS = ("char", "word")

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
        tokenization: `"char"` or `"word"`.
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
    tokenization: str
    name: str

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def decode(self, ids):
        """Symbols of `ids`, joined by nothing (characters) or spaces (words)."""
        separator = "" if self.tokenization == "char" else " "
        return separator.join(self.vocabulary[int(i)] for i in np.ravel(ids))

    def __getitem__(self, key):
        fields = ("train", "valid", "test", "vocabulary", "tokenization", "name")
        if key not in fields:
            raise KeyError(f"TextCorpus has keys {fields}; received {key!r}.")
        return getattr(self, key)


def load_ptb(directory, tokenization="char"):
    """Load the Penn Treebank language-modelling data (Mikolov's split).

    The files are the ones most copies of the data set have (e.g. the `data/`
    folder of Mikolov's `simple-examples`):

    | tokenization | files | line format |
    | --- | --- | --- |
    | `"word"` | `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` | space-separated words, rare words already `<unk>` |
    | `"char"` | `ptb.char.train.txt`, `ptb.char.valid.txt`, `ptb.char.test.txt` | space-separated characters, `_` between words |

    Every line is one sentence; its tokens are followed by an end-of-line
    token (`"<eos>"` for words, `"\\n"` for characters), so the streams are

        tokens = [t for line in lines for t in line.split() + [eos]]

    The vocabulary is `sorted(set(training tokens) | {"<unk>"})` for words
    (10,000 symbols on the real data, `<unk>` and `<eos>` included) and
    `sorted(set(training tokens))` at character level (about 50 symbols on
    the real data; the paper counts 50 characters). A word of the valid or test file outside the vocabulary becomes
    `<unk>`; a character outside it is an error, because the character files
    share one closed alphabet and a stray symbol means a wrong file.

    Args:
        directory: folder that holds the three files of `tokenization`.
        tokenization: `"char"` (measured in bits per character) or `"word"`
            (measured in perplexity).

    Returns:
        A `TextCorpus` with `train`, `valid`, `test` (int32 ids) and
        `vocabulary`.

    Example:

    >>> ptb = load_ptb("simple-examples/data", tokenization="char")  # doctest: +SKIP
    >>> ptb.decode(ptb.valid[:20])  # doctest: +SKIP
    >>> train_windows = lm_batches(ptb.train, batch_size=32, seq_len=100)  # doctest: +SKIP

    Reference: Mikolov et al., "Empirical Evaluation and Combination of
    Advanced Language Modeling Techniques", Interspeech 2011; the split used
    by Pascanu et al. 2013, section 5.
    """
    tokenization = _check_tokenization(tokenization)
    directory = pathlib.Path(directory)
    names = PTB_FILES[tokenization]
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"load_ptb(tokenization={tokenization!r}) expects the files "
            f"{', '.join(names)} in the directory '{directory}', but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "missing there. They are the Penn Treebank files of Mikolov's "
            "split (the data/ folder of his simple-examples archive)."
        )
    eos = WORD_EOS if tokenization == "word" else CHAR_EOS
    lines = {
        name: _read_utf8(directory / name).splitlines() for name in names
    }
    train_tokens = [t for line in lines[names[0]] for t in line.split() + [eos]]
    symbols = set(train_tokens)
    if tokenization == "word":
        symbols.add(UNKNOWN)
    vocabulary = sorted(symbols)
    ids = {symbol: i for i, symbol in enumerate(vocabulary)}

    streams = []
    for name in names:
        if tokenization == "word":
            unknown_id = ids[UNKNOWN]
            stream = [
                ids.get(t, unknown_id)
                for line in lines[name]
                for t in line.split() + [eos]
            ]
        else:
            stream = _char_ids_or_raise(lines[name], ids, directory / name)
        streams.append(np.asarray(stream, dtype=np.int32))
    return TextCorpus(*streams, vocabulary, tokenization, str(directory))


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


def load_text(path_or_name, tokenization="char", split=(0.9, 0.05, 0.05)):
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
        tokenization: `"char"` or `"word"`.
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
    tokenization = _check_tokenization(tokenization)
    split = _check_split(split)
    if isinstance(path_or_name, str) and path_or_name in EMBEDDED_CORPORA:
        parts = _split_tunes(abc_folk_tunes(), split)
        name = path_or_name
        token_parts = [_tokens(parts[part], tokenization) for part in SPLITS]
        tokens = np.concatenate(token_parts)
        n, n_train, n_valid = len(tokens), len(token_parts[0]), len(token_parts[1])
    else:
        text, name = _read_corpus(path_or_name)
        tokens = _tokens(text, tokenization)
        n = len(tokens)
        n_train = math.floor(split[0] * n)
        n_valid = math.floor(split[1] * n)
    if n_train == 0:
        raise ValueError(
            f"load_text({name!r}, split={split}) leaves no training "
            f"tokens: the text has {n} {tokenization} tokens."
        )

    distinct, inverse = np.unique(tokens, return_inverse=True)
    distinct_symbols = (
        [chr(c) for c in distinct] if tokenization == "char" else list(distinct)
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
        tokenization,
        name,
    )


def _tokens(text, tokenization):
    if tokenization == "char":
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
        tokenization: [name for name in names if not (path / name).is_file()]
        for tokenization, names in PTB_FILES.items()
    }
    missing = "; ".join(
        f"tokenization {tokenization!r} lacks {', '.join(names)}" if names
        else f"tokenization {tokenization!r} is complete"
        for tokenization, names in lacking.items()
    )
    raise ValueError(
        f"load_text: the directory '{path}' holds Penn Treebank files "
        f"({', '.join(held)}), so it is not read as plain text, which would "
        "train on its test file and mix characters with words. Read it with "
        f"load_ptb(directory, tokenization), which needs the tokenization's three files "
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


def _check_tokenization(tokenization):
    return _checks.one_of("tokenization", tokenization, TOKENIZATIONS)


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
