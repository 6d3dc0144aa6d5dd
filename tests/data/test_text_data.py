"""Language-modelling corpora: the PTB and plain-text loaders and the embedded folk tunes."""

import importlib.util
import pathlib
import shutil
import sys

import keras
import numpy as np
import pytest

from keras_deeprnn.data import text as text_module
from keras_deeprnn.data.text import abc_folk_tunes
from keras_deeprnn.data.text import load_ptb
from keras_deeprnn.data.text import load_text

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

PTB = pathlib.Path(__file__).parents[1] / "fixtures" / "ptb"


def _lines(name):
    return (PTB / name).read_text(encoding="utf-8").splitlines()


def _copy_ptb(tmp_path):
    target = tmp_path / "ptb"
    shutil.copytree(PTB, target)
    return target


# --- load_ptb ---------------------------------------------------------------


def test_ptb_word_level_streams_follow_the_files():
    ptb = load_ptb(PTB, tokenization="word")
    train_words = [w for line in _lines("ptb.train.txt") for w in line.split() + ["<eos>"]]
    assert ptb.vocabulary == sorted(set(train_words))
    assert ptb.tokenization == "word"
    for split in ("train", "valid", "test"):
        assert ptb[split].dtype == np.int32 and ptb[split].ndim == 1
    assert [ptb.vocabulary[i] for i in ptb.train] == train_words
    # The first sentence ends with <eos> before the second begins.
    first = _lines("ptb.train.txt")[0].split()
    assert ptb.vocabulary[ptb.train[len(first)]] == "<eos>"
    assert ptb.vocabulary[ptb.train[len(first) + 1]] == "pierre"


def test_ptb_word_vocabulary_is_from_train_only_and_unknown_words_become_unk():
    ptb = load_ptb(PTB, tokenization="word")
    unk = ptb.vocabulary.index("<unk>")
    known = set(ptb.vocabulary)
    assert "consumers" not in known and "the" in known
    for split, name in (("valid", "ptb.valid.txt"), ("test", "ptb.test.txt")):
        expected = [
            w if w in known else "<unk>"
            for line in _lines(name)
            for w in line.split() + ["<eos>"]
        ]
        assert [ptb.vocabulary[i] for i in ptb[split]] == expected
    assert ptb.valid[0] == unk  # "consumers"
    assert ptb.test[0] == unk  # "no"
    assert ptb.vocabulary.index("the") in ptb.test
    assert "telephones" not in ptb.vocabulary  # only in valid


def test_ptb_word_vocabulary_has_unk_even_if_training_text_lacks_it(tmp_path):
    directory = _copy_ptb(tmp_path)
    (directory / "ptb.train.txt").write_text(" the board \n the tv set \n")
    ptb = load_ptb(directory, tokenization="word")
    assert ptb.vocabulary == ["<eos>", "<unk>", "board", "set", "the", "tv"]
    assert ptb.decode(ptb.test[:6]) == "<unk> <unk> <unk> <unk> <unk> <unk>"


def test_ptb_char_level_streams_follow_the_files():
    ptb = load_ptb(PTB, tokenization="char")
    lines = _lines("ptb.char.train.txt")
    assert ptb.vocabulary == sorted(set("".join(lines).replace(" ", "")) | {"\n"})
    assert "_" in ptb.vocabulary and "<unk>" not in ptb.vocabulary
    expected = "".join("".join(line.split()) + "\n" for line in lines)
    assert ptb.decode(ptb.train) == expected
    assert ptb.decode(ptb.valid) == "no_it_was_n't_black_monday\n"
    assert len(ptb.test) == len(_lines("ptb.char.test.txt")[0].split()) + 1


def test_ptb_char_level_unknown_symbol_names_file_symbol_and_line(tmp_path):
    directory = _copy_ptb(tmp_path)
    with open(directory / "ptb.char.valid.txt", "a") as f:
        f.write("a _ @ b \n")
    with pytest.raises(ValueError, match=r"'@'.*line 2.*ptb\.char\.valid\.txt"):
        load_ptb(directory, tokenization="char")


def test_ptb_missing_files_are_listed_with_the_directory(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(FileNotFoundError) as info:
        load_ptb(tmp_path, tokenization="word")
    message = str(info.value)
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", str(tmp_path)):
        assert name in message
    assert "ptb.valid.txt, ptb.test.txt are missing" in message
    with pytest.raises(FileNotFoundError, match="ptb.char.train.txt"):
        load_ptb(tmp_path, tokenization="char")


@pytest.mark.parametrize("load", [load_ptb, load_text])
def test_an_unknown_tokenization_is_named_as_the_argument_it_is(load):
    source = PTB if load is load_ptb else "abc_folk"
    with pytest.raises(ValueError, match=r"^`tokenization` must be one of \['char', 'word'\]\. "
                                         r"Received: tokenization='subword'$"):
        load(source, tokenization="subword")


# --- load_text --------------------------------------------------------------


def test_load_text_char_level_file_split_and_unknown(tmp_path):
    text = "the quick brown fox jumps over the lazy dog\n" * 20 + "QQ"
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    corpus = load_text(path)
    n = len(text)
    assert (len(corpus.train), len(corpus.valid)) == (int(0.9 * n), int(0.05 * n))
    assert len(corpus.train) + len(corpus.valid) + len(corpus.test) == n
    assert corpus.vocabulary == sorted(set(text[: int(0.9 * n)]) | {"<unk>"})
    # "Q" appears only at the very end, so the test part maps it to <unk>.
    assert corpus.decode(corpus.test).endswith("<unk><unk>")
    assert corpus.decode(np.concatenate([corpus.train, corpus.valid])) == text[: len(corpus.train) + len(corpus.valid)]
    again = load_text(str(path))
    assert again.vocabulary == corpus.vocabulary
    np.testing.assert_array_equal(again.test, corpus.test)


def test_load_text_word_level_and_directory_of_files(tmp_path):
    (tmp_path / "b.txt").write_text("c d\n")
    (tmp_path / "a.txt").write_text("a b\nb a")  # no final newline
    (tmp_path / "skip.md").write_text("never read\n")
    corpus = load_text(tmp_path, tokenization="word", split=(0.5, 0.25, 0.25))
    # a.txt before b.txt, a newline added between them.
    tokens = ["a", "b", "<eos>", "b", "a", "<eos>", "c", "d", "<eos>"]
    assert corpus.vocabulary == ["<eos>", "<unk>", "a", "b"]
    all_ids = np.concatenate([corpus.train, corpus.valid, corpus.test])
    assert [corpus.vocabulary[i] for i in all_ids] == tokens[:6] + ["<unk>", "<unk>", "<eos>"]
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (4, 2, 3)


def test_load_text_bad_arguments(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abc\n")
    with pytest.raises(ValueError, match=r"split.*sum to 1"):
        load_text(path, split=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="split"):
        load_text(path, split=(0.9, 0.1))
    with pytest.raises(ValueError, match="no training tokens"):
        load_text(path, split=(0.1, 0.0, 0.9))
    with pytest.raises(FileNotFoundError, match=r"abc_folk.*nope"):
        load_text(tmp_path / "nope")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .txt file"):
        load_text(empty)
    with pytest.raises(TypeError, match="path_or_name"):
        load_text(42)
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin\.txt.*UTF-8"):
        load_text(tmp_path / "latin.txt")


needs_music21 = pytest.mark.skipif(
    importlib.util.find_spec("music21") is None, reason="music21 not installed"
)


@needs_music21
def test_abc_folk_is_the_music21_abc_files_without_importing_music21(monkeypatch):
    for name in [m for m in sys.modules if m == "music21" or m.startswith("music21.")]:
        monkeypatch.delitem(sys.modules, name)
    corpus = load_text("abc_folk")
    assert "music21" not in sys.modules

    n = len(corpus.train) + len(corpus.valid) + len(corpus.test)
    assert 3_000_000 < n < 10_000_000
    assert 60 < corpus.vocabulary_size < 200
    assert corpus.vocabulary == sorted(corpus.vocabulary)
    for symbol in ("X", ":", "|", "\n", "<unk>"):
        assert symbol in corpus.vocabulary

    root = pathlib.Path(importlib.util.find_spec("music21").submodule_search_locations[0])
    files = sorted((root / "corpus").rglob("*.abc"), key=lambda p: p.relative_to(root).as_posix())
    texts = [p.read_text(encoding="utf-8") for p in files]
    whole = "".join(t if t.endswith("\n") else t + "\n" for t in texts)
    # Every character of the corpus is in exactly one part.
    assert n == len(whole)
    parts = [corpus.decode(corpus[split]) for split in ("train", "valid", "test")]
    assert sorted("".join(parts)) == sorted(whole)

    again = load_text("abc_folk")
    np.testing.assert_array_equal(again.valid, corpus.valid)
    assert again.vocabulary == corpus.vocabulary


@needs_music21
def test_abc_folk_is_split_by_whole_tunes():
    tunes = abc_folk_tunes()
    names = [name for name, _ in tunes]
    assert len(names) == len(set(names)) > 10_000
    assert all(text.startswith("X:") or name.endswith("#0") for name, text in tunes)
    corpus = load_text("abc_folk")
    assigned = text_module._assign_tunes(names, (0.9, 0.05, 0.05))
    # Each part is exactly its tunes, whole and in corpus order, so no tune
    # is in two parts.
    for split in ("train", "valid", "test"):
        expected = "".join(t for name, t in tunes if assigned[name] == split)
        assert corpus.decode(corpus[split]) == expected
    counts = {split: sum(v == split for v in assigned.values()) for split in ("train", "valid", "test")}
    assert counts["valid"] == counts["test"] == round(0.05 * len(names))
    # Held-out tunes come from the collections the model trains on, not
    # from the last files in path order as a cut by position gave.
    for split in ("valid", "test"):
        collections = {name.split("/")[0] for name in names if assigned[name] == split}
        assert {"essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs"} <= collections


def test_tune_split_is_a_fixed_order_of_the_names():
    names = [f"tune{i}" for i in range(20)]
    assigned = text_module._assign_tunes(names, (0.8, 0.1, 0.1))
    # Pinned: SHA-1 of the names, the same on every machine and version.
    held_out = {name: split for name, split in assigned.items() if split != "train"}
    assert held_out == {"tune14": "test", "tune13": "test", "tune16": "valid", "tune10": "valid"}
    assert text_module._assign_tunes(names[::-1], (0.8, 0.1, 0.1)) == assigned
    # Adding tunes moves none of the others between held-out parts and
    # train beyond the counts that change.
    grown = text_module._assign_tunes(names + ["tune20"], (0.8, 0.1, 0.1))
    assert sum(grown[name] != assigned[name] for name in names) <= 2


def test_tunes_are_cut_at_x_headers_and_keep_the_preamble(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    (corpus / "book").mkdir(parents=True)
    (corpus / "book" / "a.abc").write_text(
        "%preamble\n\nX:1\nT:One\nK:C\nCDE|\n\nX:2\nT:Two\nK:G\nGAB|"
    )
    (corpus / "b.abc").write_text("T:No number\nK:D\nDEF|\n")
    files = sorted(corpus.rglob("*.abc"), key=lambda p: p.relative_to(corpus).as_posix())
    monkeypatch.setattr(text_module, "_abc_folk_files", lambda: (corpus, files))
    assert abc_folk_tunes() == [
        ("b.abc#0", "T:No number\nK:D\nDEF|\n"),
        ("book/a.abc#0", "%preamble\n\nX:1\nT:One\nK:C\nCDE|\n\n"),
        ("book/a.abc#1", "X:2\nT:Two\nK:G\nGAB|\n"),
    ]
    thirds = (1 / 3, 1 / 3, 1 / 3)
    parts = text_module._split_tunes(abc_folk_tunes(), thirds)
    assert sorted(parts.values()) == sorted(text for _, text in abc_folk_tunes())
    corpus = load_text("abc_folk", split=thirds)
    assert corpus.decode(corpus.train) == parts["train"]
    for split in ("valid", "test"):
        assert len(corpus[split]) == len(parts[split])


def test_a_ptb_folder_is_never_read_as_plain_text(tmp_path):
    # Most copies of PTB hold the word files only.
    words = tmp_path / "ptb_words"
    words.mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        shutil.copy(PTB / name, words / name)
    with pytest.raises(ValueError) as info:
        load_text(words)
    message = str(info.value)
    assert "Penn Treebank" in message and "load_ptb" in message and str(words) in message
    assert "lacks ptb.char.train.txt, ptb.char.valid.txt, ptb.char.test.txt" in message
    assert "tokenization 'word' is complete" in message
    # One file alone is enough to be taken for PTB.
    (tmp_path / "partial").mkdir()
    shutil.copy(PTB / "ptb.char.train.txt", tmp_path / "partial" / "ptb.char.train.txt")
    with pytest.raises(ValueError, match="lacks ptb.char.valid.txt, ptb.char.test.txt"):
        load_text(tmp_path / "partial", tokenization="word")
    assert load_ptb(words, tokenization="word").vocabulary_size > 10


def test_splits_and_ptb_files_have_one_home():
    import keras_deeprnn.data as data
    from keras_deeprnn.data import splits

    assert data.SPLITS == ("train", "valid", "test")
    assert splits.SPLITS is data.SPLITS is text_module.SPLITS
    assert data.PTB_FILES is text_module.PTB_FILES
    assert data.PTB_FILES["char"][0] == "ptb.char.train.txt"


def test_abc_folk_without_music21_says_what_to_install(monkeypatch):
    # A None entry in sys.modules makes find_spec report the package absent.
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(ImportError, match=r'pip install "keras-deeprnn\[music\]"'):
        load_text("abc_folk")
