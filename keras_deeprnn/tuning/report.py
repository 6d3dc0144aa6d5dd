"""`report`: the trials of a tuner directory as a table and two plots."""

import csv
import glob
import io
import json
import math
import os
import pathlib
import warnings

from keras_tuner.engine.hyperparameters import Fixed
from keras_tuner.engine.trial import Trial

from keras_deeprnn import _files
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models.presets import DEPTH_DEFAULTS
from keras_deeprnn.tuning.tuners import TUNER_LOG_DIR

MARKERS = "os^Dv<>PX*h"


def depth_arguments():
    """The depth arguments a search can vary: those some row of
    `ARCHITECTURES` leaves free (rows registered later count too)."""
    return tuple(key for key in DEPTH_DEFAULTS
                 if any(key in row.defaults for row in ARCHITECTURES.values()))


def columns():
    """The report's columns, the free depth arguments among them."""
    return ("rank", "trial_id", "status", "architecture", "depth", *depth_arguments(),
            "units", "num_params", "objective", "best_epoch", "fit_seconds", "tuner_id", "note")


def report(directory, project_name, out_dir=None, objective="val_frame_nll"):
    """Tabulate and plot the trials of a search, finished or not.

    Reads every `trial_*/trial.json` of `directory/project_name` (the
    oracle's record of each trial), so it works on a search that is still
    running or was interrupted, without re-running anything. Writes to
    `out_dir` (default `directory/project_name/report`):

    * `trials.md` and `trials.csv`: one row per trial, completed trials best
      first, then running, failed and invalid ones by id. Columns: the
      architecture, its depth arguments (the trial's values, or the
      architecture's own where they are not searched), `depth`, `units`,
      `num_params`, the objective at the best epoch, the epoch (counted
      from 1, as `train` counts), the wall time of `fit`, the process that
      ran it (`tuner_id`, from the tuner logs), then every other searched
      dimension (the regularisers, the learning rate, ...; in the CSV
      every other hyperparameter, `Fixed` ones too).
    * `objective_vs_depth.png` and `objective_vs_params.png`, one marker
      per completed trial and a colour per architecture (when any trial has
      completed).

    `depth` counts the nonlinear layers between `x_t` and `y_t` within one
    step, the paper's notion of depth (`Architecture.depth`):

    ```python
    depth = num_input_layers + num_layers * num_transition_layers + num_output_layers + 1
    ```

    Args:
        directory, project_name: the search, as given to `run_search`.
        out_dir: where to write.
        objective: the metric reported (the trial's score when it is the
            tuner's objective).

    Returns:
        `{"rows": [dict, ...], "markdown": path, "csv": path,
        "plots": [path, ...]}`.

    Example:

    ```python
    written = report("tuning_runs", "jsb_chorales_random")
    print(open(written["markdown"]).read())
    ```
    """
    project = pathlib.Path(directory) / project_name
    if not project.is_dir():
        raise ValueError(
            f"No tuner directory at {str(project)!r}. Received: directory={str(directory)!r}, "
            f"project_name={project_name!r}; expected the folder a search wrote"
        )
    files = sorted(glob.glob(os.path.join(glob.escape(str(project)), "trial_*", "trial.json")))
    runners = _runners(project / TUNER_LOG_DIR)
    rows = []
    for path in files:
        try:
            trial = Trial.load(path)
        except (ValueError, KeyError) as error:
            # A running search may be rewriting the file this very moment.
            warnings.warn(f"Skipped {path}, unreadable now: {error}", stacklevel=2)
            continue
        rows.append(_row(trial, objective, runners))
    done = sorted((r for r in rows if r["status"] == "COMPLETED" and r["objective"] is not None),
                  key=lambda r: r["objective"])
    ranked = {r["trial_id"] for r in done}
    rest = sorted((r for r in rows if r["trial_id"] not in ranked), key=lambda r: r["trial_id"])
    rows = done + rest
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["trial_id"] in ranked else None

    out = pathlib.Path(out_dir) if out_dir is not None else project / "report"
    out.mkdir(parents=True, exist_ok=True)
    shown = columns()
    extra = sorted({k for r in rows for k in r["hyperparameters"]} - set(shown))
    csv_path = out / "trials.csv"
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow([*shown, *extra])
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in shown]
                        + [_cell(row["hyperparameters"].get(k)) for k in extra])
    _files.write_atomically(csv_path, lambda temporary: pathlib.Path(temporary).write_text(
        table.getvalue(), encoding="utf-8", newline=""))
    searched = [k for k in extra if any(k in r["searched"] for r in rows)]
    md_path = _files.write_text(out / "trials.md",
                                _markdown(rows, objective, project, shown, searched))
    plots = []
    if done:
        plots.append(_plot(done, "depth", "depth (nonlinear layers from x_t to y_t)",
                           objective, out / "objective_vs_depth.png", log_x=False))
        plots.append(_plot(done, "num_params", "parameters", objective,
                           out / "objective_vs_params.png", log_x=True))
    return {"rows": rows, "markdown": md_path, "csv": csv_path, "plots": plots}


def _row(trial, objective, runners):
    values = dict(trial.hyperparameters.values)
    row = {"trial_id": trial.trial_id, "status": trial.status,
           "architecture": values.get("architecture"), "hyperparameters": values}
    architecture = ARCHITECTURES.get(row["architecture"])
    if architecture is not None:
        given = {k: values.get(k) for k in architecture.defaults}
        depth = architecture.resolve(**given)
        row.update({k: depth.get(k) for k in depth_arguments()})
        row["depth"] = architecture.depth(**given)
    metrics = trial.metrics
    value = trial.score if trial.status == "COMPLETED" and metrics.exists(objective) else None
    if value is None and metrics.exists(objective):
        value = metrics.get_best_value(objective)
    row["objective"] = _number(value)
    # KerasTuner's step is the epoch's index; `train` and Keras's logs count from 1.
    row["best_epoch"] = trial.best_step + 1 if value is not None and trial.best_step is not None \
        else None
    hps = trial.hyperparameters
    row["searched"] = [hp.name for hp in hps.space
                       if not isinstance(hp, Fixed) and hps.is_active(hp)]
    for key in ("num_params", "units", "fit_seconds"):
        row[key] = _number(metrics.get_last_value(key)) if metrics.exists(key) else None
    if row["units"] is None:
        row["units"] = values.get("units")
    for key in ("num_params", "units"):
        if row[key] is not None:
            row[key] = int(row[key])
    row["tuner_id"] = runners.get(trial.trial_id)
    # A failed trial's message ends with its error, e.g. the over-budget count.
    lines = (trial.message or "").strip().splitlines()
    row["note"] = lines[-1][:160] if lines and trial.status != "COMPLETED" else None
    return row


def _runners(folder):
    """trial id -> the tuner id(s) that finished it, from the tuner logs."""
    runners = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by an interruption
            if event.get("event") == "end":
                ids = runners.setdefault(event["trial_id"], [])
                if event["tuner_id"] not in ids:
                    ids.append(event["tuner_id"])
    return {trial_id: "+".join(ids) for trial_id, ids in runners.items()}


def _number(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _markdown(rows, objective, project, columns, searched=()):
    shown = [c for c in columns if any(r.get(c) is not None for r in rows) or c == "objective"]
    at = shown.index("num_params") if "num_params" in shown else shown.index("objective")
    shown[at:at] = searched
    rows = [{**r["hyperparameters"], **r} if searched else r for r in rows]
    lines = [f"# Trials of `{project}`", "",
             f"{sum(r['rank'] is not None for r in rows)} completed of {len(rows)}; "
             f"`objective` is {objective} at the best epoch (lower is better).", "",
             "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        cells = (_cell(row.get(c)).replace("|", "/") for c in shown)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(rows, key, label, objective, path, log_x):
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    axes = figure.add_subplot()
    names = sorted({r["architecture"] for r in rows}, key=str)
    for i, name in enumerate(names):
        points = [(r[key], r["objective"]) for r in rows
                  if r["architecture"] == name and r.get(key) is not None]
        if points:
            # Eleven architectures, ten default colours: markers tell them apart.
            axes.scatter(*zip(*points), label=str(name), alpha=0.8,
                         marker=MARKERS[i % len(MARKERS)])
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel(label)
    axes.set_ylabel(f"{objective} (best epoch)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return _files.write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
