"""Where a run dir's training goes on: its last good epoch, checked to belong
to this run (same configuration, data and backend), falling back to the epoch
before when the newest files are damaged."""


import keras

from keras_deeprnn import run_folder
from keras_deeprnn.training.config import RESUMABLE_FIELDS
from keras_deeprnn.training.config import TrainConfig
from keras_deeprnn.training.records import PREVIOUS_STATE_FILE
from keras_deeprnn.training.records import STATE_FILE
from keras_deeprnn.training.records import as_saved
from keras_deeprnn.training.records import first_line
from keras_deeprnn.training.records import read_json

_STATE_KEYS = ("epoch", "best", "best_epoch", "checkpoint", "best_weights", "history",
               "stopped_early", "train_time_s", "callbacks", "config")


def resume_point(run_dir, config, data_record=None):
    """`(state, model)` of the last good epoch in `run_dir`, `(None, None)`
    for a new run.

    The newest state and checkpoint come first; if either is damaged the
    previous epoch's are used, with a warning naming the damaged file.
    """
    problems = []
    candidates = []
    for name in (STATE_FILE, PREVIOUS_STATE_FILE):
        try:
            state = read_json(run_dir / name, missing_ok=True)
        except ValueError as err:
            problems.append(str(err))
            continue
        if state is None:
            continue
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            problems.append(f"'{run_dir / name}' lacks {', '.join(missing)}")
            continue
        try:
            run_folder.member(run_dir, state["checkpoint"], "checkpoint")
            if state["best_weights"] is not None:
                run_folder.member(run_dir, state["best_weights"], "best_weights")
        except ValueError as err:
            problems.append(f"'{run_dir / name}' is damaged: {err}")
            continue
        candidates.append((name, state))
    if not candidates:
        if problems:
            raise ValueError(
                f"The run dir '{run_dir}' cannot be resumed: " + "; ".join(problems)
                + ". No earlier good epoch is left; use another run dir, or delete "
                "this one to start again.")
        return None, None
    # Refused before any file is loaded: the configuration and backend are
    # the same in every state of one run.
    saved_data = candidates[0][1].get("data")
    check_same_data(saved_data, data_record, run_dir, "resumed")
    _check_same_run(candidates[0][1]["config"], config, run_dir,
                    same_data=bool(saved_data and saved_data.get("sha256")))
    _check_same_backend(candidates[0][1], run_dir)
    for name, state in candidates:
        model = None
        checkpoint = run_dir / str(state["checkpoint"])
        try:
            model = keras.models.load_model(checkpoint)
        except Exception as err:  # noqa: BLE001 - any failure means a damaged file
            # Keras says "File not found" for a file that is there but is no
            # Keras archive; say which of the two it is.
            why = (f"it is damaged: {type(err).__name__}" if checkpoint.is_file()
                   else "it is missing")
            problems.append(f"the checkpoint '{checkpoint}' cannot be read ({why})")
            continue
        if state["best_weights"] and not (run_dir / state["best_weights"]).is_file():
            problems.append(f"the best weights '{run_dir / state['best_weights']}' are missing")
            continue
        if problems:
            run_folder.warn_resume_fallback(run_dir, state["epoch"], name, problems,
                                            stacklevel=4)
        return state, model
    raise ValueError(f"The run dir '{run_dir}' cannot be resumed: " + "; ".join(problems)
                     + ". Use another run dir, or delete this one to start again.")


def _check_same_backend(state, run_dir):
    saved = state.get("backend")
    current = keras.backend.backend()
    if saved is not None and saved != current:
        raise ValueError(
            f"The run in '{run_dir}' was checkpointed on the {saved} backend and cannot "
            f"be resumed on {current}: a checkpoint's optimizer belongs to the backend "
            f"that saved it. Resume it with KERAS_BACKEND={saved}, or use another run dir. "
            "(A finished run's model.keras loads on every backend.)"
        )


def load_best_weights(model, run_dir, state):
    """Load the weights of the best epoch `state` names into `model`."""
    path = run_dir / state["best_weights"]
    try:
        model.load_weights(path)
    except Exception as err:  # noqa: BLE001 - any failure means a damaged file
        raise ValueError(f"The best weights '{path}' cannot be read ({type(err).__name__}: "
                         f"{first_line(err)}). Delete them and the run's state.json to "
                         "train again, or use another run dir.") from err


def _check_same_run(saved, config, run_dir, same_data=False):
    # Both sides as JSON holds them: a tuple field (per-level dropout) was
    # saved as a list.
    current = as_saved(config.to_dict())
    if same_data:
        # The same content under another path: the data moved.
        current = {**current, "dataset": saved.get("dataset", current["dataset"])}
    saved = dict(saved)
    if "level" in saved:  # the old name of `tokenization`
        saved.setdefault("tokenization", saved.pop("level"))
    # A field added to TrainConfig after the run was saved held its default.
    saved = {**as_saved(TrainConfig().to_dict()), **saved}
    changed = [
        f"{key}: saved {saved[key]!r}, now {current[key]!r}"
        for key in current
        if key not in RESUMABLE_FIELDS and saved[key] != current[key]
    ]
    if changed:
        raise ValueError(
            f"The run dir {str(run_dir)!r} holds a run with another configuration, "
            "so it cannot be resumed with this one. Changed: " + "; ".join(changed)
            + ". Use another run dir, or the saved values (only "
            + ", ".join(RESUMABLE_FIELDS) + " may change on resume)."
        )


def check_same_data(saved, current, run_dir, doing):
    """A `ValueError` unless the data `current` records is the data the run
    in `run_dir` recorded (`saved`); `doing` says what was refused."""
    if current is None or run_folder.same_data(saved, current):
        return
    where = saved.get("path") or saved.get("dataset")
    now = current.get("path") or current.get("dataset")
    raise ValueError(
        f"The run in '{run_dir}' was trained on the data at '{where}' (sha256 "
        f"{saved['sha256'][:16]}...); the data at '{now}' differs (sha256 "
        f"{current['sha256'][:16]}...), so it cannot be {doing} with it. Point it at the "
        "run's own data; to score other data on purpose, give `dataset` explicitly.")
