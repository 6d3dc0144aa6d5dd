"""Language-modelling data: PTB and plain-text loaders, batching, state carry."""

import importlib.util
import pathlib
import random
import shutil
import sys
import warnings

import keras
import numpy as np
import pytest

from keras_deeprnn.cells import DeepTransitionCell
from keras_deeprnn.data import text as text_module
from keras_deeprnn.data.text import ResetStatesAtEpochStart
from keras_deeprnn.data.text import abc_folk_tunes
from keras_deeprnn.data.text import lm_batches
from keras_deeprnn.data.text import load_ptb
from keras_deeprnn.data.text import load_text
from keras_deeprnn.data.text import reset_stateful_layers
from keras_deeprnn.layers import DeepRNN

PTB = pathlib.Path(__file__).parent / "fixtures" / "ptb"


def _lines(name):
    return (PTB / name).read_text(encoding="utf-8").splitlines()


def _copy_ptb(tmp_path):
    target = tmp_path / "ptb"
    shutil.copytree(PTB, target)
    return target


# --- load_ptb ---------------------------------------------------------------


def test_ptb_word_level_streams_follow_the_files():
    ptb = load_ptb(PTB, level="word")
    train_words = [w for line in _lines("ptb.train.txt") for w in line.split() + ["<eos>"]]
    assert ptb.vocabulary == sorted(set(train_words))
    assert ptb.level == "word"
    for split in ("train", "valid", "test"):
        assert ptb[split].dtype == np.int32 and ptb[split].ndim == 1
    assert [ptb.vocabulary[i] for i in ptb.train] == train_words
    # The first sentence ends with <eos> before the second begins.
    first = _lines("ptb.train.txt")[0].split()
    assert ptb.vocabulary[ptb.train[len(first)]] == "<eos>"
    assert ptb.vocabulary[ptb.train[len(first) + 1]] == "pierre"


def test_ptb_word_vocabulary_is_from_train_only_and_unknown_words_become_unk():
    ptb = load_ptb(PTB, level="word")
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
    ptb = load_ptb(directory, level="word")
    assert ptb.vocabulary == ["<eos>", "<unk>", "board", "set", "the", "tv"]
    assert ptb.decode(ptb.test[:6]) == "<unk> <unk> <unk> <unk> <unk> <unk>"


def test_ptb_char_level_streams_follow_the_files():
    ptb = load_ptb(PTB, level="char")
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
        load_ptb(directory, level="char")


def test_ptb_missing_files_are_listed_with_the_directory(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(FileNotFoundError) as info:
        load_ptb(tmp_path, level="word")
    message = str(info.value)
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", str(tmp_path)):
        assert name in message
    assert "ptb.valid.txt, ptb.test.txt are missing" in message
    with pytest.raises(FileNotFoundError, match="ptb.char.train.txt"):
        load_ptb(tmp_path, level="char")


def test_ptb_rejects_unknown_level():
    with pytest.raises(ValueError, match=r"level.*'subword'"):
        load_ptb(PTB, level="subword")


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
    corpus = load_text(tmp_path, level="word", split=(0.5, 0.25, 0.25))
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
    assert "level 'word' is complete" in message
    # One file alone is enough to be taken for PTB.
    (tmp_path / "partial").mkdir()
    shutil.copy(PTB / "ptb.char.train.txt", tmp_path / "partial" / "ptb.char.train.txt")
    with pytest.raises(ValueError, match="lacks ptb.char.valid.txt, ptb.char.test.txt"):
        load_text(tmp_path / "partial", level="word")
    assert load_ptb(words, level="word").vocabulary_size > 10


def test_splits_and_ptb_files_have_one_home():
    import keras_deeprnn.data as data
    from keras_deeprnn.data import music

    assert data.SPLITS == ("train", "valid", "test")
    assert music.SPLITS is data.SPLITS is text_module.SPLITS
    assert data.PTB_FILES is text_module.PTB_FILES
    assert data.PTB_FILES["char"][0] == "ptb.char.train.txt"


def test_abc_folk_without_music21_says_what_to_install(monkeypatch):
    # A None entry in sys.modules makes find_spec report the package absent.
    monkeypatch.setitem(sys.modules, "music21", None)
    with pytest.raises(ImportError, match=r'pip install "keras-deeprnn\[music\]"'):
        load_text("abc_folk")


# --- lm_batches -------------------------------------------------------------


def test_lm_batches_first_two_windows_exactly():
    ds = lm_batches(np.arange(103), batch_size=4, seq_len=5)
    assert isinstance(ds, keras.utils.PyDataset)
    # L = 103 // 4 = 25 tokens per stream; (25 - 1) // 5 = 4 windows.
    assert len(ds) == ds.num_batches == 4
    x0, y0 = ds[0]
    x1, y1 = ds[1]
    assert x0.dtype == y0.dtype == np.int32 and x0.shape == (4, 5)
    np.testing.assert_array_equal(x0[:, 0], [0, 25, 50, 75])
    np.testing.assert_array_equal(
        x0, [[0, 1, 2, 3, 4], [25, 26, 27, 28, 29], [50, 51, 52, 53, 54], [75, 76, 77, 78, 79]]
    )
    np.testing.assert_array_equal(y0, x0 + 1)
    np.testing.assert_array_equal(x1, x0 + 5)
    np.testing.assert_array_equal(y1, x1 + 1)
    # Stream b of window 1 continues where stream b of window 0 stopped.
    np.testing.assert_array_equal(x1[:, 0], x0[:, -1] + 1)
    np.testing.assert_array_equal(x1[:, 0], y0[:, -1])


def test_lm_batches_drops_only_the_tail_and_stays_in_its_stream():
    tokens = np.arange(103)
    ds = lm_batches(tokens, batch_size=4, seq_len=5)
    xs, ys = zip(*ds)
    assert len(xs) == 4
    x_all = np.concatenate(xs, axis=1)
    y_all = np.concatenate(ys, axis=1)
    np.testing.assert_array_equal(x_all, tokens[:100].reshape(4, 25)[:, :20])
    np.testing.assert_array_equal(y_all, tokens[:100].reshape(4, 25)[:, 1:21])
    with pytest.raises(IndexError):
        ds.window(4)


def test_lm_batches_accepts_the_minimum_and_rejects_less():
    assert len(lm_batches(np.arange(8), batch_size=2, seq_len=3)) == 1
    with pytest.raises(ValueError, match=r"2 \* \(3 \+ 1\) = 8 tokens.*received 7"):
        lm_batches(np.arange(7), batch_size=2, seq_len=3)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"batch_size": 0}, r"`batch_size`.*Received: batch_size=0"),
        ({"batch_size": 2.5}, r"`batch_size`.*Received: batch_size=2.5"),
        ({"batch_size": True}, r"`batch_size`.*Received: batch_size=True"),
        ({"seq_len": -3}, r"`seq_len`.*Received: seq_len=-3"),
        ({"tokens": np.zeros((4, 10), int)}, r"1-D.*shape \(4, 10\)"),
        ({"tokens": np.linspace(0, 1, 40)}, r"integer.*float64"),
        ({"tokens": np.arange(-1, 39)}, r"non-negative.*from -1"),
    ],
)
def test_lm_batches_bad_arguments(kwargs, pattern):
    arguments = {"tokens": np.arange(40), "batch_size": 2, "seq_len": 4, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        lm_batches(**arguments)


def test_lm_batches_refuses_shuffled_access_but_window_allows_any():
    ds = lm_batches(np.arange(200), batch_size=2, seq_len=4)
    ds[0], ds[1], ds[1], ds[2], ds[0], ds[1]
    with pytest.raises(ValueError, match="shuffle=False"):
        ds[5]
    np.testing.assert_array_equal(ds.window(7)[0][0], np.arange(28, 32))


def _stateful_model(batch_size, seq_len, vocabulary_size):
    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch_size, seq_len)),
            keras.layers.Embedding(vocabulary_size, 8),
            DeepRNN(DeepTransitionCell(8, num_transition_layers=2), stateful=True,
                    return_sequences=True),
            keras.layers.Dense(vocabulary_size),
        ]
    )


def _windows_and_model():
    keras.utils.set_random_seed(0)
    batch_size, seq_len, vocabulary_size = 2, 4, 7
    ds = lm_batches(np.arange(60) % vocabulary_size, batch_size, seq_len)
    (x0, _), (x1, _) = ds[0], ds[1]
    return x0, x1, _stateful_model(batch_size, seq_len, vocabulary_size)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_state_carries_across_windows_and_the_callback_resets_it():
    x0, x1, model = _windows_and_model()
    model(x0)
    carried = _numpy(model(x1))
    model.layers[1].reset_state()
    fresh = _numpy(model(x1))
    # Window 1 read after window 0 is not window 1 read from a zero state.
    assert np.abs(carried - fresh).max() > 1e-3

    callback = ResetStatesAtEpochStart()
    callback.set_model(model)
    for hook in (lambda: callback.on_epoch_begin(1), callback.on_test_begin):
        model(x0)
        hook()
        np.testing.assert_allclose(_numpy(model(x1)), fresh, rtol=1e-5, atol=1e-6)


def test_predict_on_batch_carries_state_across_windows():
    x0, x1, model = _windows_and_model()
    model.predict_on_batch(x0)
    carried = model.predict_on_batch(x1)
    reset_stateful_layers(model)
    fresh = model.predict_on_batch(x1)
    assert np.abs(carried - fresh).max() > 1e-3
    model.predict_on_batch(x0)
    reset_stateful_layers(model)
    np.testing.assert_allclose(model.predict_on_batch(x1), fresh, rtol=1e-5, atol=1e-6)


def test_reset_reaches_nested_layers_and_only_stateful_ones():
    class RecordsReset(keras.layers.Layer):
        resets = 0

        def call(self, x):
            return x

        def reset_state(self):
            RecordsReset.resets += 1

    inner = keras.Sequential(
        [keras.Input(batch_shape=(2, 3, 4)), keras.layers.GRU(5, stateful=True, return_sequences=True, unroll=True)]
    )
    outer = keras.Sequential([keras.Input(batch_shape=(2, 3, 4)), RecordsReset(), inner])
    outer(np.ones((2, 3, 4), "float32"))
    gru = inner.layers[0]
    assert np.abs(keras.ops.convert_to_numpy(gru.states[0])).max() > 0
    assert reset_stateful_layers(outer) == 1
    assert np.abs(keras.ops.convert_to_numpy(gru.states[0])).max() == 0
    assert RecordsReset.resets == 0


def test_fit_runs_in_order_and_refuses_shuffle():
    keras.utils.set_random_seed(0)
    random.seed(0)
    batch_size, seq_len, vocabulary_size = 2, 4, 5
    tokens = np.arange(400) % vocabulary_size
    model = _stateful_model(batch_size, seq_len, vocabulary_size)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # DeepRNN carries state on every backend
        history = model.fit(
            lm_batches(tokens, batch_size, seq_len),
            validation_data=lm_batches(tokens[:80], batch_size, seq_len),
            shuffle=False,
            epochs=2,
            callbacks=[ResetStatesAtEpochStart()],
            verbose=0,
        )
    assert np.isfinite(history.history["val_loss"]).all()
    # evaluation ran last and reset at its start; its windows left a state
    assert np.abs(_numpy(model.layers[1].states[0])).max() > 0
    with pytest.raises(Exception, match="shuffle=False"):
        model.fit(lm_batches(tokens, batch_size, seq_len), shuffle=True, verbose=0)


def test_callback_warns_about_keras_rnn_state_on_jax():
    model = keras.Sequential([
        keras.Input(batch_shape=(2, 4)),
        keras.layers.Embedding(5, 3),
        keras.layers.SimpleRNN(3, stateful=True),
    ])
    callback = ResetStatesAtEpochStart()
    callback.set_model(model)
    if keras.backend.backend() == "jax":
        with pytest.warns(UserWarning, match="simple_rnn"):
            callback.on_train_begin()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            callback.on_train_begin()
