"""A trained model scored and loaded: `evaluate`, `load_trained_model`,
`saved_task_state`."""

import dataclasses
import pathlib

import keras

from keras_deeprnn import _checks
from keras_deeprnn import compilation
from keras_deeprnn import run_folder
from keras_deeprnn.data import text as text_data
from keras_deeprnn.data.catalogue import MUSIC_DATASETS
from keras_deeprnn.data.splits import SPLITS
from keras_deeprnn.tasks import TASKS
from keras_deeprnn.tasks import Task
from keras_deeprnn.training.config import TrainConfig
from keras_deeprnn.training.records import MODEL_FILE
from keras_deeprnn.training.records import PREVIOUS_STATE_FILE
from keras_deeprnn.training.records import RESULT_FILE
from keras_deeprnn.training.records import STATE_FILE
from keras_deeprnn.training.records import first_line
from keras_deeprnn.training.records import read_json
from keras_deeprnn.training.resume import check_same_data


def evaluate(model_or_path, *, task=None, dataset=None, split="test", limit=None,
             batch_size=16, cache_dir=None, progress=True):
    """Score a trained model (a model, a `.keras` file or a run dir) on one split.

    With a run dir, `task`, `dataset` and `limit` default to the run's own
    (and a language model's `tokenization` and `seq_len` follow the run's);
    `task` is `"music"` otherwise. A language model reads any `dataset` in
    the vocabulary of its run.

    Example:

    ```python
    evaluate("runs/dots_rnn-jsb_chorales")["nll"]
    ```
    """
    if task is not None:
        _checks.one_of("task", task, TASKS)
    _checks.one_of("split", split, SPLITS)
    compilation.enable_persistent_cache(cache_dir)
    saved, task_state, saved_data = {}, None, None
    if isinstance(model_or_path, keras.Model):
        model = model_or_path
    else:
        model, saved = load_trained_model(model_or_path)
        task_state = saved_task_state(model_or_path)
        if pathlib.Path(model_or_path).expanduser().is_dir():
            saved_data = _run_record(pathlib.Path(model_or_path).expanduser()).get("data")
    if task is None:
        task = saved.get("task", TrainConfig.task)
    _check_scorable(model, task)
    own_limit = saved.get("limit")
    if dataset is None:
        dataset = saved.get("dataset", TASKS[task].default_dataset)
        if saved_data and saved_data.get("path") and pathlib.Path(saved_data["path"]).exists():
            # Where the run read its data, whatever folder this runs from.
            dataset = saved_data["path"]
        if saved_data:
            check_same_data(saved_data, run_folder.data_record(
                dataset, builtin=(*MUSIC_DATASETS, *text_data.EMBEDDED_CORPORA)),
                model_or_path, "scored")
        limit = own_limit if limit is None else limit
    config = TrainConfig(task=task, dataset=dataset, limit=limit, batch_size=batch_size,
                         tokenization=_saved_tokenization(saved),
                         seq_len=saved.get("seq_len", TrainConfig.seq_len),
                         task_settings=saved.get("task_settings") or {},
                         cache_dir=cache_dir, progress=progress).validate()
    keeps_state = type(TASKS[task]).saved_state is not Task.saved_state
    if task_state is None and keeps_state and saved and dataset != saved.get("dataset"):
        # A run saved before runs kept their task state: its own data gives it.
        own = dataclasses.replace(config, dataset=saved.get("dataset"), limit=own_limit)
        task_state = TASKS[task].saved_state(TASKS[task].load_data(own))
    data = TASKS[task].load_data(config, saved=task_state)
    return TASKS[task].evaluate(model, data[split], config)


# The output activation whose values each built-in task scores as probabilities.
_SCORED_ACTIVATIONS = {"music": "sigmoid", "lm": "softmax"}


def _check_scorable(model, task):
    """A `ValueError` unless `model` is a forward model whose outputs are the
    task's probabilities: a linear output would be scored as if it were
    one, and a bidirectional model reads the very frame it predicts."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    config = config if isinstance(config, dict) else {}
    found = {key: config.get(key) for key in ("output_activation", "bidirectional")}
    expected = _SCORED_ACTIVATIONS.get(task)
    if config.get("bidirectional"):
        raise ValueError(
            "evaluate scores forward models only: a bidirectional model reads the frame it "
            f"predicts, so its score means nothing. Received: {type(model).__name__} with "
            f"{found}")
    if "output_activation" not in config or (
            expected is not None and config["output_activation"] != expected):
        raise ValueError(
            f"evaluate scores a {task} model's outputs as probabilities, so it needs a "
            f"DeepRNNModel with output_activation={expected!r}. Received: "
            f"{type(model).__name__} with {found}")


def load_trained_model(path, *, compile=False):
    """`(model, config dict)` from a run dir (its best model) or a `.keras` file.

    The config is the run's `TrainConfig` as a dict (empty for a bare file).

    Example:

    ```python
    model, config = load_trained_model("runs/dots_rnn-jsb_chorales")
    ```
    """
    path = pathlib.Path(path).expanduser()
    config = {}
    if path.is_dir():
        config = _run_record(path).get("config", {})
        run_folder.refuse_link(path / MODEL_FILE)
        if not (path / MODEL_FILE).exists():
            raise ValueError(
                f"The run dir {str(path)!r} holds no {MODEL_FILE}: its training has not "
                "finished. Run `train` again with the same run_dir to finish it."
            )
        path = path / MODEL_FILE
    elif not (path.is_file() and path.suffix == ".keras"):
        raise ValueError(
            f"Expected a run dir or a `.keras` file. Received: path={str(path)!r}"
        )
    try:
        return keras.models.load_model(path, compile=compile), config
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"Cannot read the model file '{path}': it is damaged or not a "
                         f"Keras model ({type(err).__name__}: {first_line(err)}).") from err


def _run_record(run_dir):
    """The newest readable record of a run's settings: `state.json`, else
    `state.previous.json`, else `result.json` (each holds `config`)."""
    for name in (STATE_FILE, PREVIOUS_STATE_FILE, RESULT_FILE):
        record = read_json(pathlib.Path(run_dir) / name, missing_ok=True, damaged_ok=True)
        if record and isinstance(record.get("config"), dict):
            return record
    return {}


def saved_task_state(path):
    """What a run dir kept to read data as its model does (for a language
    model, `{"vocabulary": [...]}`), or `None` for a bare file or an old run.

    Example:

    ```python
    vocabulary = saved_task_state("runs/lm")["vocabulary"]
    ```
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_dir():
        return None
    for name in (STATE_FILE, PREVIOUS_STATE_FILE):
        state = read_json(path / name, missing_ok=True, damaged_ok=True)
        if state and state.get("task_state"):
            return state["task_state"]
    return None


def _saved_tokenization(saved):
    return saved.get("tokenization", saved.get("level", TrainConfig.tokenization))
