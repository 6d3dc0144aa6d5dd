"""Text read as mostly `<unk>` is warned about, naming the split and the
share: a score on it would look good and measure little."""

import types
import warnings

import numpy as np
import pytest

from keras_deeprnn.tasks import language
from keras_deeprnn.tasks.language import LanguageModelTask


def config(path):
    return types.SimpleNamespace(dataset=str(path), tokenization="word", limit=None)


def write_text(path, words, lines=40):
    path.write_text("".join(" ".join(words) + "\n" for _ in range(lines)), encoding="utf-8")
    return path


@pytest.fixture
def trained_vocabulary(tmp_path):
    path = write_text(tmp_path / "english.txt", ["the", "cat", "sat", "down"])
    return LanguageModelTask().load_data(config(path))["vocabulary"]


def test_other_text_read_in_a_runs_vocabulary_is_named_with_its_unknown_share(
        tmp_path, trained_vocabulary):
    # Four unknown words and a known <eos> per line: 80% of every split.
    other = write_text(tmp_path / "german.txt", ["der", "hund", "lief", "weg"])
    with pytest.warns(UserWarning) as warned:
        data = LanguageModelTask().load_data(config(other),
                                             saved={"vocabulary": trained_vocabulary})
    messages = [str(w.message) for w in warned]
    for split in ("train", "valid", "test"):
        assert any(m.startswith(f"80% of the {split} split's {len(data[split])} tokens of "
                                f"dataset='{other}' are '<unk>'") for m in messages), messages
    assert language.unknown_share(data["test"], data["vocabulary"]) == pytest.approx(0.8)


def test_text_like_the_training_text_is_not_warned_about(tmp_path, trained_vocabulary):
    same = write_text(tmp_path / "more.txt", ["the", "cat", "sat", "down", "the", "dog"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = LanguageModelTask().load_data(config(same),
                                             saved={"vocabulary": trained_vocabulary})
    # "dog" alone is unknown: 1 of 7 tokens, under the threshold.
    assert language.unknown_share(data["valid"], data["vocabulary"]) == pytest.approx(1 / 7)


@pytest.mark.parametrize("unknown, warned", [(5, False), (6, True)])
def test_the_threshold_is_more_than_half(unknown, warned):
    vocabulary = ["<eos>", "<unk>", "a"]
    split = np.array([1] * unknown + [2] * (10 - unknown))
    data = {"vocabulary": vocabulary, "train": np.array([2, 2]), "valid": split,
            "test": np.array([0, 2])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        language.warn_unknown_tokens(data, "d.txt")
    assert [str(w.message)[:27] for w in caught] == (
        [f"{unknown * 10}% of the valid split's 10"] if warned else [])


def test_a_vocabulary_without_unk_has_no_unknown_share():
    assert language.unknown_share(np.array([0, 1, 1]), ["a", "b"]) == 0.0
