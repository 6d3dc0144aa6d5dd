"""The language-modelling task end to end: train, resume, score, sample, CLI, notebook."""

import json
import math
import pathlib
import re

import numpy as np
import pytest

from keras_deeprnn import cli
from keras_deeprnn.tasks import language
from keras_deeprnn import training

ROOT = pathlib.Path(__file__).parents[2]
PTB = ROOT / "tests" / "fixtures" / "ptb"

# A small text with some structure to learn, long enough that its 5 % valid
# and test splits hold a batch of 2 windows of 16 characters.
TEXT = "".join(f"the cat sat on mat {i % 7}.\nthe dog ran to log {i % 5}!\n" for i in range(60))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny_config(run_dir, dataset, **changes):
    values = dict(task="lm", dataset=str(dataset), architecture="dots_rnn", units=8,
                  epochs=2, batch_size=2, seq_len=16, run_dir=str(run_dir), progress=False)
    values.update(changes)
    return training.TrainConfig(**values)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory, text_file):
    # One epoch, then the same run dir asked for two: the second call resumes.
    run_dir = tmp_path_factory.mktemp("lm-run")
    first = training.train(tiny_config(run_dir, text_file, epochs=1))
    config = tiny_config(run_dir, text_file, epochs=2)
    return config, first, training.train(config)


def test_result_has_finite_consistent_scores(resumed_run):
    config, _, result = resumed_run
    test = result["test"]
    assert result["task"] == "lm"
    assert math.isfinite(test["bits_per_token"]) and test["bits_per_token"] > 0
    assert test["bits_per_character"] == test["bits_per_token"]
    assert test["perplexity"] == pytest.approx(2.0 ** test["bits_per_token"])
    assert test["nll"] == pytest.approx(test["bits_per_token"] * math.log(2.0))
    # Every test token but the first is predicted.
    corpus = language.load_corpus(config.dataset, "char")
    assert test["tokens"] == len(corpus.test) - 1
    saved = json.loads((pathlib.Path(config.run_dir) / training.RESULT_FILE).read_text())
    assert saved["test"] == test
    assert (pathlib.Path(config.run_dir) / training.CURVE_FILE).is_file()


def test_paper_figure_beside_result_with_note_for_other_text(resumed_run):
    _, _, result = resumed_run
    paper = result["paper"]
    assert paper["model"] == "DOT(S)-RNN"
    assert paper["bits_per_token"] == 1.386
    assert paper["imitation"] is True
    assert "not comparable" in paper["note"]


def test_resume_continues_after_the_saved_epoch(resumed_run):
    _, first, result = resumed_run
    assert first["epochs_run"] == 1
    assert result["epochs_run"] == 2
    assert len(result["config"]) and result["config"]["epochs"] == 2
    state = json.loads((pathlib.Path(result["files"]["run_dir"]) / training.STATE_FILE)
                       .read_text())
    assert len(state["history"]["val_bits_per_token"]) == 2


def test_evaluate_scores_a_run_dir_like_training_did(resumed_run):
    config, _, result = resumed_run
    scores = training.evaluate(config.run_dir, task="lm", progress=False)
    assert scores["bits_per_token"] == pytest.approx(result["test"]["bits_per_token"], rel=1e-4)


def test_other_text_is_scored_and_sampled_in_the_runs_vocabulary(resumed_run, tmp_path,
                                                                 capsys):
    config, _, _ = resumed_run
    own = language.load_corpus(config.dataset, "char")
    # Fewer characters than the run's text: rebuilt from this file, the
    # vocabulary would give its characters other ids than the model's.
    other = tmp_path / "other.txt"
    other.write_text("a dog sat on the mat.\n" * 120, encoding="utf-8")
    corpus = language.load_corpus(other, "char")
    assert corpus.vocabulary != own.vocabulary
    ids = [own.vocabulary.index(symbol) for symbol in corpus.decode(corpus.test)]
    model, _ = training.load_trained_model(config.run_dir)
    expected = language.score_tokens(model, ids)
    scores = training.evaluate(config.run_dir, dataset=str(other), progress=False)
    assert scores["bits_per_token"] == pytest.approx(expected, rel=1e-5)

    assert cli.main(["generate", config.run_dir, "--dataset", str(other), "--frames", "20",
                     "--seed", "0", "--out", str(tmp_path / "text")]) == 0
    text = (tmp_path / "text.txt").read_text(encoding="utf-8")
    assert len(text) == 20 and set(text) <= set(own.vocabulary)
    assert training.saved_task_state(config.run_dir)["vocabulary"] == own.vocabulary


def test_ids_outside_the_models_vocabulary_are_refused_before_scoring(resumed_run, tmp_path,
                                                                     capsys, monkeypatch):
    config, _, _ = resumed_run
    model, _ = training.load_trained_model(config.run_dir)
    size = model.get_config()["vocab_size"]
    tokens = language.load_corpus(config.dataset, "char").test
    for ids, low, high, found in (
            ([0, 1, size], 0, size, f"the largest, {size}, is not below vocab_size={size}"),
            ([3, -1, 0], -1, 3, "the smallest, -1, is negative"),
            # Past int32: checked before the cast, so it cannot wrap into the vocabulary.
            (np.array([0, 2**32 + 1], np.int64), 0, 2**32 + 1,
             f"the largest, {2**32 + 1}, is not below vocab_size={size}")):
        with pytest.raises(ValueError, match=re.escape(
                f"`tokens` must hold token ids from 0 to vocab_size - 1 = {size - 1}, the "
                f"model's vocabulary of vocab_size={size}. Received: ids from {low} to {high}; "
                f"{found}")):
            language.score_tokens(model, ids)
    assert math.isfinite(language.score_tokens(model, tokens))

    # A model without its run reads other text in that text's own vocabulary:
    # more symbols than the model has rows for.
    other = tmp_path / "wide.txt"
    other.write_text("".join(chr(c) for c in range(33, 127)) * 40 + "\n", encoding="utf-8")
    wider = language.load_corpus(other, "char").vocabulary_size
    assert wider > size
    for source in (model, str(pathlib.Path(config.run_dir) / "model.keras")):
        with pytest.raises(ValueError, match=(
                rf"`dataset` must hold token ids from 0 to vocab_size - 1 = {size - 1}.*"
                rf"The text of dataset='{re.escape(str(other))}' was read in a vocabulary of "
                rf"its own, not the model's: score a run dir.*Received: ids from \d+ to "
                rf"(\d+); the largest")) as raised:
            training.evaluate(source, task="lm", dataset=str(other), progress=False)
        assert size <= int(re.search(r"to (\d+);", str(raised.value))[1]) < wider
    with pytest.raises(SystemExit) as exited:
        cli.main(["evaluate", str(pathlib.Path(config.run_dir) / "model.keras"), "--task", "lm",
                  "--dataset", str(other)])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "keras-deeprnn evaluate: error: `dataset` must hold token ids" in err
    # Its own text, in the same vocabulary the run built, scores as the run did.
    # The task checks the split's ids once (the model checks the `x` of each
    # window it is called on, as at any call).
    checked = []
    monkeypatch.setattr(language._checks, "token_ids",
                        lambda name, ids, *a, **k: checked.append(name) or ids)
    own = training.evaluate(model, task="lm", dataset=config.dataset, progress=False)
    assert [name for name in checked if name != "x"] == ["dataset"]
    assert own["bits_per_token"] == pytest.approx(language.score_tokens(model, tokens),
                                                  rel=1e-5)


def test_a_vocabulary_longer_than_the_embedding_is_refused_for_sampling():
    import keras_deeprnn as kdr

    model = kdr.build_model("srnn", vocab_size=3, output_dim=5, units=4,
                            output_activation="softmax")
    with pytest.raises(ValueError, match=re.escape(
            "`vocabulary` holds 5 tokens, but the model reads token ids below vocab_size=3: "
            "ids 3 to 4 have no row in its embedding")):
        language.sample_text(model, list("abcde"), 4, seed=0)
    model = kdr.build_model("srnn", vocab_size=5, output_dim=5, units=4,
                            output_activation="softmax")
    assert len(language.sample_text(model, list("abcde"), 4, seed=0)) == 4


def test_tokens_outside_the_runs_vocabulary_become_unk_or_an_error():
    from keras_deeprnn.tasks.language import recode

    assert recode([0, 1, 2], ["a", "b", "c"], ["<unk>", "c", "a"]).tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match=r"outside the model's vocabulary of 2: \['b'\]"):
        recode([0, 1], ["a", "b"], ["a", "c"], dataset="x.txt")


def test_score_is_independent_of_the_window(resumed_run):
    config, _, _ = resumed_run
    model, _ = training.load_trained_model(config.run_dir)
    tokens = language.load_corpus(config.dataset, "char").test
    whole = language.score_tokens(model, tokens)
    windows = language.score_tokens(model, tokens, window=7)
    assert windows == pytest.approx(whole, rel=1e-4)


def test_sample_text_draws_tokens_from_the_vocabulary(resumed_run):
    config, _, _ = resumed_run
    model, _ = training.load_trained_model(config.run_dir)
    corpus = language.load_corpus(config.dataset, "char")
    text = language.sample_text(model, corpus, 30, temperature=0.8, prime="the ", seed=3)
    assert len(text) == 30
    assert set(text) <= set(corpus.vocabulary)
    again = language.sample_text(model, corpus.vocabulary, 30, temperature=0.8,
                                 prime="the ", seed=3)
    assert again == text
    with pytest.raises(ValueError, match="prime"):
        language.sample_text(model, corpus, 5, prime="QZ")
    with pytest.raises(ValueError, match="num_tokens"):
        language.sample_text(model, corpus, 0)


def test_word_level_paper_figure_is_a_perplexity():
    config = training.TrainConfig(task="lm", dataset=str(PTB), tokenization="word",
                                  architecture="dots_rnn")
    paper = language.LanguageModelTask().paper_figure(config)
    assert paper["perplexity"] == pytest.approx(107.5)
    assert language.LanguageModelTask().paper_figure(
        training.TrainConfig(task="lm", dataset=str(PTB), tokenization="word",
                             architecture="rnn")) is None


def test_too_little_text_is_a_clear_error(text_file):
    config = training.TrainConfig(task="lm", dataset=str(text_file), batch_size=64,
                                  seq_len=100)
    task = language.LanguageModelTask()
    data = task.load_data(config)
    with pytest.raises(ValueError, match="valid split .* batch_size"):
        task.batches(data["valid"], config, training=False)


def test_a_folder_without_ptb_files_is_read_as_plain_text(tmp_path):
    (tmp_path / "a.txt").write_text("abcabc\n" * 40, encoding="utf-8")
    corpus = language.load_corpus(tmp_path, "char")
    assert set(corpus.vocabulary) >= set("abc\n")
    assert not language.is_ptb_directory(tmp_path)


def test_cli_trains_and_generates_a_character_model(tmp_path, capsys):
    run_dir = tmp_path / "cli-run"
    code = cli.main(["train", "--task", "lm", "--dataset", str(PTB), "--tokenization", "char",
                     "--architecture", "rnn", "--units", "8", "--epochs", "1",
                     "--batch-size", "2", "--seq-len", "8", "--run-dir", str(run_dir),
                     "--generate-frames", "12", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "bits per character" in printed
    result = json.loads((run_dir / training.RESULT_FILE).read_text())
    assert math.isfinite(result["test"]["bits_per_character"])
    # The fixture holds PTB's files, so the paper's figure is the same data's.
    assert result["paper"]["bits_per_token"] == 1.414
    assert result["paper"]["imitation"] is False
    assert "Generated text" in printed
    # evaluate and generate read the task, level and data from the run dir.
    assert cli.main(["evaluate", str(run_dir), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["bits_per_token"] == pytest.approx(result["test"]["bits_per_token"], rel=1e-4)
    assert cli.main(["generate", str(run_dir), "--frames", "5", "--prime", "a_", "--seed", "0"]) == 0
    assert len((run_dir / "sample.txt").read_text(encoding="utf-8")) == 2 + 5


def test_text_generation_is_seeded_and_sized():
    # A model built directly, not trained: sampling needs only the weights.
    from keras_deeprnn import build_model

    vocabulary = list("abc\n")
    model = build_model("rnn", vocab_size=4, output_dim=4, output_activation="softmax",
                        units=4, seed=0)
    text = language.sample_text(model, vocabulary, 9, seed=0)
    assert len(text) == 9 and set(text) <= set(vocabulary)
    assert np.all([c in vocabulary for c in language.sample_text(model, vocabulary, 3)])


def test_a_learned_h0_is_refused_by_the_stateful_language_model(text_file, tmp_path):
    config = tiny_config(tmp_path, text_file, trainable_initial_state=True)
    with pytest.raises(ValueError, match=r"trainable_initial_state.*stateful.*Received: "
                                         r"trainable_initial_state=True"):
        config.validate()
    with pytest.raises(ValueError, match="trainable_initial_state"):
        language.LanguageModelTask().build_model_kwargs(config, {"vocabulary": ["a", "b"]})
