"""Language modelling, the paper's second task: the next character (or word).

`LanguageModelTask` plugs into `keras_deeprnn.training` (`TrainConfig(task="lm")`)
and reuses its whole pipeline: checkpoints, resuming, early stopping, the
learning rate halved on plateaus of the validation measure, `result.json`
and the learning curve. What is particular to the task lives here:

* data: `load_ptb(directory, tokenization)` when `dataset` is a folder holding
  Penn Treebank files, `load_text(dataset, tokenization)` otherwise (the
  built-in `"abc_folk"` corpus, or any UTF-8 text file). A run keeps its
  vocabulary, and other text scored or primed later is read in it;
* batches: `lm_batches` windows of `seq_len` tokens read in order, with a
  stateful model of fixed batch size that carries its state from one window
  to the next (truncated backpropagation through time), reset at every pass;
* measure: bits per token (bits per character for characters) and
  perplexity `2 ** bits`, over every token of the split;
* `sample_text`: text drawn from a trained model, one token at a time.

Example:

```python
from keras_deeprnn.training import TrainConfig, train

result = train(TrainConfig(task="lm", dataset="abc_folk", architecture="dots_rnn",
                           units=64, batch_size=16, seq_len=50, limit=50_000,
                           epochs=3, run_dir="runs/lm-try"))
result["test"]["bits_per_token"], result["paper"]["bits_per_token"]
```
"""

import dataclasses
import math
import pathlib
import warnings

import keras
import numpy as np

from keras_deeprnn import _checks
from keras_deeprnn import _files
from keras_deeprnn.data import text as text_data
from keras_deeprnn.data import text_batches
from keras_deeprnn.data import SPLITS
from keras_deeprnn.data import PTB_FILES
from keras_deeprnn.metrics import language as language_metrics
from keras_deeprnn.tasks import base
from keras_deeprnn.tasks import paper

DEFAULT_DATASET = "abc_folk"
DEFAULT_TOKENIZATION = "char"
DEFAULT_SEQ_LEN = 100
# Windows of this many tokens score a split: long ones mean few calls, and the
# state carries across them, so the length does not change the score.
EVAL_WINDOW = 1000
# Above this share of `<unk>` a split is warned about: its score would
# mostly say how well the model predicts `<unk>` (Penn Treebank's word
# files hold about 5%).
UNKNOWN_WARNING_SHARE = 0.5


@dataclasses.dataclass
class LanguageSettings:
    """The language model's own settings (`TrainConfig` fields of the same names)."""

    tokenization: str = dataclasses.field(default=DEFAULT_TOKENIZATION, metadata={
        "choices": ("char", "word"), "help": "lm only: tokens are characters or words"})
    seq_len: int = dataclasses.field(default=DEFAULT_SEQ_LEN, metadata={
        "help": "lm only: window of truncated backpropagation, in tokens"})


class LanguageModelTask(base.Task):
    """Next-token prediction on a text stream (section 5 of the paper).

    The config's `dataset` is a Penn Treebank folder, the name of a built-in
    corpus (`"abc_folk"`) or a text file; `tokenization` is `"char"` or `"word"`;
    `seq_len` is the window length of truncated backpropagation; `limit`,
    when set, keeps the first `limit` tokens of every split (for quick runs).
    The model reads token ids through an embedding and predicts the next
    token with a softmax over the vocabulary; it is stateful with the
    config's `batch_size`.

    Example:

    ```python
    result = train(TrainConfig(task="lm", dataset="abc_folk", limit=20_000, epochs=2))
    result["test"]["bits_per_token"]     # bits per character
    ```
    """

    name = "lm"
    monitor = "val_bits_per_token"
    measure = ("bits", "per token")
    items = "tokens"
    limit_items = "tokens of each split"
    default_dataset = DEFAULT_DATASET
    datasets = tuple(text_data.EMBEDDED_CORPORA)
    settings = LanguageSettings
    tunable = False
    tuning_refusal = ("the tuner builds models whose input and output widths come from "
                      "the data's features, as music models do; a language model reads "
                      "token ids through an embedding and carries its state from batch "
                      "to batch at a fixed batch size.")

    def settings_of(self, config):
        _refuse_learned_h0(config)
        return super().settings_of(config)

    def check_settings(self, settings):
        _checks.one_of("tokenization", settings.tokenization, ("char", "word"))
        _checks.positive_int("seq_len", settings.seq_len)

    def score_line(self, scores, split):
        return (f"{split}: {scores['bits_per_token']:.3f} bits per token, perplexity "
                f"{scores['perplexity']:.2f} ({scores['tokens']:,} tokens)")

    def result_lines(self, result, config):
        test, figure = result["test"], result["paper"]
        unit = "bits per character" if config.tokenization == "char" else "bits per word"
        lines = [f"\nTest: {test['bits_per_token']:.3f} {unit}, perplexity "
                 f"{test['perplexity']:.2f} ({test['tokens']:,} tokens), best epoch "
                 f"{result['best_epoch']} of {result['epochs_run']}"
                 f"{' (stopped early)' if result['stopped_early'] else ''}."]
        if figure:
            lines.append(f"Paper, {figure['model']} on {figure['dataset']}: "
                         f"{figure['bits_per_token']:.3f} {unit}, perplexity "
                         f"{figure['perplexity']:.2f}. {figure['note']}")
        else:
            lines.append("The paper reports no figure for this architecture and level.")
        lines.append(f"Training took {result['train_time_s']:.0f} s on {result['backend']} "
                     f"({result['wall_time_s']:.0f} s in all this time). Wrote "
                     f"{pathlib.Path(result['files']['run_dir']) / 'result.json'}")
        return lines

    def sample_prime(self, args, config):
        """`--prime`, the text to continue (`--prime-from` is for music)."""
        if args.prime_from is not None:
            raise ValueError("`--prime-from` opens a piece of music; a language model "
                             "continues text given with --prime instead. Received: "
                             f"--prime-from {args.prime_from!r}")
        return args.prime

    def save_sample(self, sample, prefix, *, args, config, prime=None):
        path = pathlib.Path(prefix)
        path = path.with_name(path.name + ".txt")
        _files.write_text(path, (prime or "") + sample)
        return [f"Sampled {len(sample) if args is None else args.frames} tokens "
                f"(temperature {1.0 if args is None else args.temperature}), wrote {path}:",
                (prime or "") + sample]

    def training_sample_lines(self, sample, run_dir, config, *, length, temperature):
        return [f"Generated text ({length} tokens, temperature {temperature}):\n{sample}"]

    def load_data(self, config, *, saved=None):
        tokenization = config.tokenization
        corpus = load_corpus(config.dataset, tokenization)
        vocabulary = list(corpus.vocabulary)
        streams = {split: corpus[split] for split in SPLITS}
        if saved and saved.get("vocabulary") is not None:
            # The model's ids are the run's own: other text is read in them.
            streams = {split: recode(tokens, vocabulary, saved["vocabulary"],
                                     dataset=config.dataset)
                       for split, tokens in streams.items()}
            vocabulary = list(saved["vocabulary"])
        data = {"vocabulary": vocabulary}
        for split in SPLITS:
            tokens = streams[split]
            if config.limit is not None:
                tokens = tokens[: config.limit]
            data[split] = tokens
        warn_unknown_tokens(data, config.dataset)
        if len(data["test"]) < 2:
            raise ValueError(
                f"The test split of dataset={config.dataset!r} holds {len(data['test'])} "
                "tokens; expected at least 2 (one to read, one to predict)."
            )
        return data

    def saved_state(self, data):
        return {"vocabulary": list(data["vocabulary"])}

    def sample(self, model, length, *, temperature=1.0, prime=None, seed=None, saved=None,
               progress=False):
        """`length` new tokens of text: `sample_text` over the run's vocabulary."""
        if not saved or saved.get("vocabulary") is None:
            raise ValueError("Sampling text needs the vocabulary the model was trained on "
                             "(`saved={'vocabulary': [...]}`, as a run dir keeps it).")
        return sample_text(model, saved["vocabulary"], length, temperature=temperature,
                           prime=prime, seed=seed, progress=progress)

    def batches(self, split, config, *, training, epoch=0):
        # Never shuffled: the windows must follow each other for the state
        # to carry, whatever `training` says.
        needed = config.batch_size * (config.seq_len + 1)
        if len(split) < needed:
            raise ValueError(
                f"The {'train' if training else 'valid'} split of dataset="
                f"{config.dataset!r} (limit={config.limit!r}) holds {len(split)} tokens; "
                f"expected at least batch_size * (seq_len + 1) = {needed} for one batch. "
                "Lower `batch_size` or `seq_len`, or raise `limit`."
            )
        return text_batches.lm_batches(split, config.batch_size, config.seq_len)

    def build_model_kwargs(self, config, data):
        _refuse_learned_h0(config)
        size = len(data["vocabulary"])
        # masking=False: id 0 is a real token here, not padding.
        return {"vocab_size": size, "output_dim": size, "output_activation": "softmax",
                "stateful": True, "batch_size": config.batch_size, "masking": False}

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [language_metrics.BitsPerToken(), language_metrics.Perplexity()]

    def callbacks(self):
        return [text_batches.ResetStatesAtEpochStart()]

    def evaluate(self, model, split, config):
        # Text read without the model's vocabulary (a bare model file keeps
        # none) may hold ids its embedding has no row for.
        tokens = _checked_tokens(model, "dataset", split, hint=(
            f" The text of dataset={str(config.dataset)!r} was read in a vocabulary of its "
            "own, not the model's: score a run dir, which keeps its vocabulary and reads "
            "other text in it."))
        bits = _bits_per_token(model, tokens, EVAL_WINDOW)
        result = {"bits_per_token": bits, "perplexity": 2.0 ** bits,
                  "nll": bits * math.log(2.0), "tokens": int(len(split) - 1)}
        if config.tokenization == "char":
            result["bits_per_character"] = bits
        return result

    def paper_figure(self, config):
        level = config.tokenization
        row = _paper_row(config)
        table = paper.PAPER_PTB_BITS_PER_CHARACTER if level == "char" else paper.PAPER_PTB_WORD_PERPLEXITY
        if row is None or row not in table:
            return None
        if level == "char":
            bits = table[row]
        else:
            bits = math.log2(table[row])
        ptb = is_ptb_directory(config.dataset, level)
        unit = "characters" if level == "char" else "words"
        if ptb:
            note = f"Same data set as the paper (Penn Treebank, {unit})."
        else:
            note = (f"The paper's figure is on the Penn Treebank ({unit}); "
                    f"dataset={str(config.dataset)!r} is other text with another vocabulary, "
                    "so the numbers are not comparable, only side by side.")
        # `nll` is in the unit of the task's measure (bits per token), as the
        # learning curve plots it against the validation measure.
        return {"model": row, "dataset": f"Penn Treebank ({unit})", "nll": bits,
                "bits_per_token": bits, "perplexity": 2.0 ** bits,
                "imitation": not ptb, "note": note}


def is_ptb_directory(dataset, tokenization="char"):
    """Whether `dataset` is a folder holding the Penn Treebank train file of
    `tokenization` (`"char"` or `"word"`).

    Example:

    >>> is_ptb_directory("abc_folk")
    False
    """
    path = pathlib.Path(str(dataset)).expanduser()
    names = PTB_FILES.get(tokenization, ())
    return path.is_dir() and bool(names) and (path / names[0]).is_file()


def load_corpus(dataset=DEFAULT_DATASET, tokenization=DEFAULT_TOKENIZATION):
    """The `TextCorpus` of `dataset`: PTB from a folder holding its files,
    else `load_text` (an embedded corpus, a text file, a folder of `.txt`).

    A folder holding any Penn Treebank file is read as PTB, so one without
    the files of `tokenization` is an error naming them, never plain text.

    Example:

    ```python
    corpus = load_corpus("abc_folk", "char")
    corpus.vocabulary_size
    ```
    """
    text_data._check_tokenization(tokenization)
    path = pathlib.Path(str(dataset)).expanduser()
    ptb_names = {name for names in PTB_FILES.values() for name in names}
    if path.is_dir() and any((path / name).is_file() for name in ptb_names):
        return text_data.load_ptb(path, tokenization)
    return text_data.load_text(str(dataset), tokenization)


def recode(tokens, vocabulary, target_vocabulary, *, dataset=None):
    """Token ids over `vocabulary` as ids over `target_vocabulary`.

    A token the target lacks becomes `"<unk>"` where the target has one, and
    is an error otherwise (a character model has a closed alphabet).

    Example:

    >>> recode(np.array([0, 1]), ["a", "b"], ["b", "a"]).tolist()
    [1, 0]
    """
    target = {token: i for i, token in enumerate(target_vocabulary)}
    unknown = target.get(text_data.UNKNOWN)
    table = np.full(len(vocabulary), -1, np.int64)
    for i, token in enumerate(vocabulary):
        table[i] = target.get(token, -1 if unknown is None else unknown)
    tokens = np.asarray(tokens, np.int64)
    missing = sorted({vocabulary[i] for i in np.unique(tokens) if table[i] < 0})
    if missing:
        raise ValueError(
            f"dataset={str(dataset)!r} holds tokens outside the model's vocabulary of "
            f"{len(target_vocabulary)}: {missing[:10]!r}. Expected text in the alphabet "
            "the model was trained on."
        )
    return table[tokens].astype(np.int32)


def unknown_share(tokens, vocabulary):
    """The share of `tokens` (ids over `vocabulary`) that are `"<unk>"`; 0 without one."""
    tokens = np.asarray(tokens)
    if text_data.UNKNOWN not in vocabulary or not len(tokens):
        return 0.0
    return float(np.mean(tokens == list(vocabulary).index(text_data.UNKNOWN)))


def warn_unknown_tokens(data, dataset=None, share=UNKNOWN_WARNING_SHARE):
    """Warn, naming the split and the share, when most of a split is `"<unk>"`.

    Text in another language or alphabet than the vocabulary's (scored by
    `evaluate --dataset`, or a training part that covers little of the
    rest) is read as `<unk>`, which is easy to predict: its score would look
    good and mean little.

    Example:

    ```python
    warn_unknown_tokens({"vocabulary": ["<unk>", "a"], "train": [1, 1], "valid": [0, 0],
                         "test": [0, 1]})
    # UserWarning: 100% of the valid split's 2 tokens are '<unk>' ...
    ```
    """
    vocabulary = data["vocabulary"]
    for split in SPLITS:
        found = unknown_share(data[split], vocabulary)
        if found > share:
            warnings.warn(
                f"{found:.0%} of the {split} split's {len(data[split])} tokens of dataset="
                f"{str(dataset)!r} are '{text_data.UNKNOWN}', unknown to the vocabulary of "
                f"{len(vocabulary)} symbols: a score on them measures little more than "
                f"predicting '{text_data.UNKNOWN}'. Expected text in the language and alphabet "
                "of the training text.", UserWarning, stacklevel=2)


def score_tokens(model, tokens, *, window=EVAL_WINDOW):
    """Bits per token of a language model over every token of a stream.

    The stream is read as one sequence from a zero state, in windows of
    `window` tokens whose state carries to the next, so every token but the
    first is predicted from all the text before it.

    Example:

    ```python
    score_tokens(model, corpus.test)      # bits per character
    ```
    """
    return _bits_per_token(model, _checked_tokens(model, "tokens", tokens), window)


def _checked_tokens(model, name, tokens, *, hint=""):
    """`tokens` as int32, once refused unless a 1-D stream of at least two
    ids of `model`'s vocabulary; `name` and `hint` go into the message."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or len(tokens) < 2:
        raise ValueError(
            f"`{name}` must be a 1-D stream of at least 2 token ids. Received: shape "
            f"{tokens.shape}"
        )
    # Before the cast: an id past int32 must not wrap into the vocabulary.
    _checks.token_ids(name, tokens, _token_model_config(model)["vocab_size"], hint=hint)
    return tokens.astype(np.int32)


def _bits_per_token(model, tokens, window):
    """`score_tokens` of a stream `_checked_tokens` accepted."""
    twin = _twin(model, output_activation="softmax")
    text_batches.reset_stateful_layers(twin)
    inputs, targets = tokens[:-1], tokens[1:]
    window = min(window, len(inputs))
    probabilities = []
    for start in range(0, len(inputs), window):
        x = inputs[start : start + window]
        real = len(x)
        # The last window is padded after its real tokens, so it compiles no
        # new shape; the RNN is causal, so the padding changes nothing before it.
        x = np.pad(x, (0, window - real))[None]
        p = keras.ops.convert_to_numpy(twin.predict_on_batch(x))[0, :real]
        # Only the targets' probabilities are kept: a split's whole softmax
        # would not fit in memory.
        probabilities.append(p[np.arange(real), targets[start : start + real]])
    picked = np.concatenate(probabilities).astype(np.float64)[:, None]
    # A float32 softmax can round a tiny probability to 0: floor it at
    # Keras's epsilon rather than report an infinite score.
    picked = np.clip(picked, keras.config.epsilon(), 1.0)
    return language_metrics.bits_per_token(picked, np.zeros(len(picked), np.int64))


def sample_text(model, vocabulary, num_tokens, *, temperature=1.0, prime=None, seed=None,
                progress=False):
    """Draw `num_tokens` tokens from a language model, one at a time.

    Args:
        model: a `DeepRNNModel` with a `vocab_size` and a softmax over the
            same vocabulary (as `train` builds for `task="lm"`).
        vocabulary: the token list (`corpus.vocabulary`, or a `TextCorpus`).
        num_tokens: how many new tokens to draw.
        temperature: logits are divided by it before the softmax; below 1
            the text keeps to likelier tokens, above 1 it wanders.
        prime: text to continue: a string (characters at character level,
            space-separated words otherwise) or a list of tokens. Without
            one, the model starts after a newline (or the first token).
        seed: seed of the NumPy generator that draws the tokens.
        progress: show a Keras progress bar of the tokens drawn.

    Returns:
        The new text as a string, without the prime: characters joined
        directly (`"<unk>"` is never drawn), words joined by spaces.

    Example:

    ```python
    model, config = load_trained_model("runs/lm")
    print(sample_text(model, corpus.vocabulary, 200, temperature=0.8, prime="X:1\\n"))
    ```
    """
    if isinstance(vocabulary, text_data.TextCorpus):
        vocabulary = vocabulary.vocabulary
    vocabulary = list(vocabulary)
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) \
            or num_tokens < 1:
        raise ValueError(
            f"`num_tokens` must be a positive integer. Received: num_tokens={num_tokens!r}")
    _checks.positive_finite("temperature", temperature)
    # A character vocabulary may hold "<unk>", the stand-in for characters
    # the training text never shows; it is never drawn at that level.
    characters = all(len(token) == 1 for token in vocabulary if token != text_data.UNKNOWN)
    index = {token: i for i, token in enumerate(vocabulary)}
    if prime is None or len(prime) == 0:
        start = "\n" if "\n" in index else ("<eos>" if "<eos>" in index else vocabulary[0])
        prime = [start]
    elif isinstance(prime, str):
        prime = list(prime) if characters else prime.split()
    unknown = sorted({token for token in prime if token not in index})
    if unknown:
        raise ValueError(
            f"`prime` holds tokens outside the vocabulary: {unknown[:10]!r}. Expected "
            f"tokens of the model's vocabulary of {len(vocabulary)}."
        )
    vocab_size = _token_model_config(model)["vocab_size"]
    if vocab_size < len(vocabulary):
        raise ValueError(
            f"`vocabulary` holds {len(vocabulary)} tokens, but the model reads token ids "
            f"below vocab_size={vocab_size}: ids {vocab_size} to {len(vocabulary) - 1} have "
            "no row in its embedding. Pass the vocabulary the model was trained on."
        )
    twin = _twin(model, output_activation=None, unroll=True)
    if twin.output_shape[-1] != len(vocabulary):
        raise ValueError(
            f"The model predicts {twin.output_shape[-1]} tokens, but the vocabulary holds "
            f"{len(vocabulary)}. Pass the vocabulary the model was trained on."
        )
    text_batches.reset_stateful_layers(twin)
    rng = np.random.default_rng(_checks.seed("seed", seed))
    # The whole prime in one call: the state after it is what counts.
    feed = np.array([[index[token] for token in prime]], np.int32)
    drawn = []
    bar = base.progress_bar(num_tokens, "token", progress)
    for _ in range(num_tokens):
        logits = keras.ops.convert_to_numpy(twin(feed, training=False))[0, -1]
        logits = logits.astype(np.float64) / temperature
        if characters and text_data.UNKNOWN in index:
            logits[index[text_data.UNKNOWN]] = -np.inf
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        token = int(rng.choice(len(vocabulary), p=probabilities))
        drawn.append(vocabulary[token])
        feed = np.array([[token]], np.int32)
        if bar is not None:
            bar.update(len(drawn))
    return "".join(drawn) if characters else " ".join(drawn)


def _twin(model, **overrides):
    """A stateful, batch-of-one copy of `model` with the same weights."""
    _token_model_config(model)
    return model.stateful_copy(**overrides)


def _token_model_config(model):
    """`model`'s config, refused unless it is a `DeepRNNModel` over token ids."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    if "architecture" not in config or config.get("vocab_size") is None:
        raise ValueError(
            "Expected a DeepRNNModel over token ids (built with `vocab_size`, as `train` "
            f"builds for task='lm'). Received: {type(model).__name__} with vocab_size="
            f"{config.get('vocab_size')!r}"
        )
    return config


def _refuse_learned_h0(config):
    """The language model is stateful: its states are variables that carry
    from one window to the next, started from `h_0` only when a pass begins,
    so no gradient reaches a learned `h_0` and it would stay at its zeros."""
    if getattr(config, "trainable_initial_state", False):
        raise ValueError(
            "`trainable_initial_state` cannot be learned by task='lm': its model is "
            "stateful, carrying the state from window to window, so h_0 is read only "
            "when a pass begins and receives no gradient. Received: "
            f"trainable_initial_state={config.trainable_initial_state!r}; expected False")


def _paper_row(config):
    row = paper.paper_row(config)
    if row == "sRNN (2 levels)" or row in paper.PAPER_PTB_BITS_PER_CHARACTER:
        return row
    return None
