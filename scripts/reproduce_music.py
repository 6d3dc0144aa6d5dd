"""Reproduce the polyphonic-music table of Pascanu et al. (2013) on the real JSB Chorales.

    python scripts/reproduce_music.py --jsb PATH/JSB_Chorales.pickle        # the study
    python scripts/reproduce_music.py --jsb PATH --worker 0/2 &             # the same study
    python scripts/reproduce_music.py --jsb PATH --worker 1/2               # ... on two cores
    python scripts/reproduce_music.py --jsb PATH --quick                    # smoke run
    python scripts/reproduce_music.py --imitations                          # the music21-built sets

`--jsb` takes Boulanger-Lewandowski's JSB Chorales pickle (229 / 76 / 77
chorales, the paper's data and split). For each of the paper's four rows
(RNN, DT(S)-RNN, DOT(S)-RNN, a 2-level sRNN) the script

1. trains every configuration of a small grid (width x training aids x batch size) with
   seed 0 and keeps the one with the lowest *validation* NLL;
2. trains the chosen configuration with two more seeds and reports the test
   NLL of the three, mean ± standard deviation, beside the paper's figure.

The same validation choice, over every trial of step 1 and any candidates
beyond the paper's rows (`CANDIDATES`: other architectures and
regularisers), picks the collection's best model, which also gets three
seeds and is set beside the paper's best, 7.92 (its DOT(S)-RNN with Lp units
and dropout). The test split takes no part in any choice.

Writes `results/jsb_reproduction.md` (tables, the trials, the budget),
`results/jsb_reproduction.json` and `results/jsb_reproduction.png` (the
learning curves of the chosen configurations). Every run lives in its own
run dir: a finished run is not trained again and an interrupted one
resumes, so the study can be stopped and restarted at will. `--worker K/N`
trains every N-th run of each step and waits for the other workers between
the steps; worker 0 writes the report.

How the paper's setup is kept or scaled to a CPU:

| setting | paper (section 5) | here |
| --- | --- | --- |
| data | JSB Chorales, one frame per quarter note | the same file and split |
| width | chosen per model | 128 or 256 units, chosen on validation |
| depth | DT(S)/DOT(S): one intermediate layer; sRNN: 2 levels | the same |
| optimiser | SGD, learning rate halved on plateaus, early stopping | Adam (3e-3 on batches of 8 chorales, or 1e-3 on batches of 2, chosen on validation), the same halving and early stopping |
| gradient clipping | norm 1 | norm 1 |
| initialisation | sparse recurrent weights (20 inputs per unit, largest singular value 1) | the same (`recurrent_initializer="sparse"`) |
| weight noise | Gaussian, std 0.075 | the same |
| dropout | in the dropout rows (0.5 on the deep output) | none, or 0.2 on the inputs and 0.5 on the deep output (`AIDS`), chosen on validation where both were tried (`GRID`) |
| Lp units | in the best row | available (`output_hidden_activation="lp"`); not in this run's trials |

`--imitations` instead trains the four rows with the earlier plain
settings on the three music21-built imitations of the paper's data sets
(`results/music_reproduction.md`): other pieces, another split, numbers that
cannot be set beside the paper's.

`--quick` trains 8-unit models for one epoch on the first 6 chorales of
each split, one trial per row and two seeds: a check that everything runs,
with meaningless numbers.
"""

import argparse
import hashlib
import json
import os
import pathlib
import statistics
import sys
import time

import keras

from keras_deeprnn import training
from keras_deeprnn.data import music as music_data

ARCHITECTURES = ("rnn", "dts_rnn", "dots_rnn", "srnn")
TITLES = {"rnn": "RNN", "dts_rnn": "DT(S)-RNN", "dots_rnn": "DOT(S)-RNN",
          "srnn": "sRNN (2 levels)"}
# Section 5 of the paper, JSB Chorales column: test NLL per frame (nats).
PAPER_JSB = {"rnn": 8.338, "dts_rnn": 8.278, "dots_rnn": 8.437, "srnn": 8.367}
PAPER_BEST = ("DOT(S)-RNN with Lp units and dropout", 7.92)

# --- The JSB study ----------------------------------------------------------

# Batches of 8 chorales by default, a quarter of the steps of batches of 2;
# the learning rate rises with the batch.
# At most 200 epochs: with 100, the DT(S)- and DOT(S)-RNN runs were still
# improving when the cap ended them; early stopping ends most runs sooner.
TRAINING = dict(batch_size=8, learning_rate=3e-3, epochs=200, patience=10, lr_patience=4,
                recurrent_initializer="sparse")
# Other schedules a grid entry may name: smaller batches, closer to the
# paper's SGD on single sequences, at a lower learning rate.
SCHEDULES = {"batches of 2": dict(batch_size=2, learning_rate=1e-3)}
SEEDS = (0, 1, 2)
# The paper's aids for its plain rows (sparse initialisation, gradient
# clipping, weight noise), with and without its dropout. `output_dropout`
# acts on the deep output's intermediate layer, so only on DOT(S).
AIDS = {
    "no weight noise": dict(weight_noise=0.0, dropout=0.0, output_dropout=0.0),
    "weight noise": dict(weight_noise=0.075, dropout=0.0, output_dropout=0.0),
    "weight noise + dropout": dict(weight_noise=0.075, dropout=0.2, output_dropout=0.5),
}
# The trials of every paper row, (width, aids) or (width, aids, schedule),
# as many as 2 CPU cores allow. First 128 units with the paper's plain aids
# for every row on batches of 8, and 256 units with its dropout too as a
# probe on the RNN: the probe lost by 0.29 nats of validation NLL, and a
# DT(S)-RNN with it was still at 11.3 after 19 epochs, so it was not run for
# the other rows; the sRNN with weight noise never left the plateau of the
# note frequencies (validation NLL 11.0 when early stopping ended it), so it
# was tried without weight noise too. Batches of 2 then did better on every
# row, so each row has 128 units with and without weight noise and 256 units
# on them, and the DOT(S)-RNN the paper's dropout on its deep output.
B2 = "batches of 2"
GRID = {"rnn": ((128, "weight noise"), (256, "weight noise + dropout"),
                (128, "weight noise", B2), (128, "no weight noise", B2),
                (256, "weight noise", B2)),
        "dts_rnn": ((128, "weight noise"), (128, "weight noise", B2),
                    (128, "no weight noise", B2), (256, "weight noise", B2)),
        "dots_rnn": ((128, "weight noise"), (128, "weight noise", B2),
                     (128, "no weight noise", B2), (256, "weight noise", B2),
                     (128, "weight noise + dropout", B2)),
        "srnn": ((128, "no weight noise"), (128, "weight noise"),
                 (128, "no weight noise", B2), (128, "weight noise", B2),
                 (256, "no weight noise", B2))}
DEFAULT_GRID = ((128, "weight noise"),)
# Beyond the paper's rows, for the collection's best model, all on batches
# of 2: the paper's best recipe, a DOT(S)-RNN with Lp units and its dropout,
# with and without its weight noise (noise on the kernel feeding an Lp unit
# raises |z| on average, so the units see larger inputs in training than in
# evaluation); zoneout, which beat the paper's aids on the music21 chorales
# by 0.2 nats (results/regulariser_study.md), on a DT(S)-RNN; dropout on an
# RNN's inputs, the nearest the collection has to the paper's RNN with fast
# dropout; and a GRU with the same dropout. Every aid is given, none taken
# from `TrainConfig`'s defaults; `output_dropout` acts only on a deep
# output's intermediate layer, which only the DOT(S)-RNN has.
DROPOUT = dict(weight_noise=0.0, dropout=0.2, output_dropout=0.5)
CANDIDATES = {
    "DOT(S)-RNN, 128 units, Lp, weight noise + dropout, batches of 2": dict(
        architecture="dots_rnn", units=128, output_hidden_activation="lp",
        **AIDS["weight noise + dropout"], **SCHEDULES[B2]),
    "DOT(S)-RNN, 128 units, Lp, dropout, batches of 2": dict(
        architecture="dots_rnn", units=128, output_hidden_activation="lp", **DROPOUT,
        **SCHEDULES[B2]),
    "DT(S)-RNN, 128 units, zoneout 0.1 + dropout 0.2, batches of 2": dict(
        architecture="dts_rnn", units=128, zoneout=0.1, **DROPOUT, **SCHEDULES[B2]),
    "RNN, 256 units, dropout 0.2, batches of 2": dict(
        architecture="rnn", units=256, **DROPOUT, **SCHEDULES[B2]),
    "GRU, 128 units, dropout 0.2, batches of 2": dict(
        architecture="deep_gru", units=128, num_layers=1, **DROPOUT, **SCHEDULES[B2]),
}
QUICK_TRAINING = dict(batch_size=4, learning_rate=3e-3, epochs=1, patience=1, lr_patience=1,
                      recurrent_initializer="sparse", limit=6)
QUICK_SEEDS = (0, 1)
QUICK_GRID = ((8, "weight noise + dropout"), (8, "no weight noise", "batches of 2"))
# One candidate, so the smoke run takes the candidates' path too.
QUICK_CANDIDATES = {"GRU, 8 units, dropout 0.2": dict(architecture="deep_gru", units=8,
                                                      num_layers=1, **DROPOUT)}
WAIT_SECONDS = 20


def search_space(quick):
    """The step-1 trials: `[{"key", "row", "name", "options"}]`, rows first.

    A grid entry is `(units, aids)` or `(units, aids, schedule)`; a schedule
    other than the default adds its settings to the trial's options and its
    name to the trial's key and name.
    """
    trials = []
    for architecture in ARCHITECTURES:
        for units, aids, *schedule in (QUICK_GRID if quick else
                                       GRID.get(architecture, DEFAULT_GRID)):
            key, name = f"{architecture}/u{units}-{_slug(aids)}", f"{units} units, {aids}"
            options = dict(architecture=architecture, units=units, **AIDS[aids])
            if schedule:
                key, name = key + "-" + _slug(schedule[0]), name + ", " + schedule[0]
                options.update(SCHEDULES[schedule[0]])
            trials.append(dict(key=key, row=architecture, name=name, options=options))
    for name, options in (QUICK_CANDIDATES if quick else CANDIDATES).items():
        trials.append(dict(key=f"candidates/{_slug(name)}", row=None, name=name,
                           options=dict(options)))
    return trials


def _slug(text):
    text = "".join(c if c.isalnum() else "_" for c in text.lower())
    return "_".join(part for part in text.split("_") if part)[:60]


def reproduce_jsb(args):
    quick = args.quick
    settings = QUICK_TRAINING if quick else TRAINING
    seeds = QUICK_SEEDS if quick else SEEDS
    worker, workers = args.worker
    runs_dir = pathlib.Path(args.runs_dir + ("-quick" if quick else "")) / "jsb"
    started = time.time()
    trials = search_space(quick)

    def config(trial, seed):
        return training.TrainConfig(
            dataset=str(args.jsb), seed=seed, progress=not args.quiet,
            run_dir=str(runs_dir / trial["key"] / f"seed{seed}"),
            **{**settings, **trial["options"]})

    # Step 1: every trial once, seed 0; the choice reads validation only.
    step1 = [config(trial, seeds[0]) for trial in trials]
    if args.report_only:
        missing = [c.run_dir for c in step1 if not _finished(c)]
        if missing:
            raise SystemExit(f"--report-only needs every search trial finished; missing: "
                             f"{', '.join(missing)}")
    else:
        _run_share(step1, worker, workers, "search")
    search = [_load(c) for c in step1]
    for trial, result in zip(trials, search):
        trial["result"] = result
    chosen = {a: min((t for t in trials if t["row"] == a), key=lambda t: t["result"]["best_valid"])
              for a in ARCHITECTURES}
    best = min(trials, key=lambda t: t["result"]["best_valid"])

    # Step 2: the chosen configurations with the other seeds.
    finals = [*chosen.values()] + ([best] if best["row"] is None else [])
    step2 = [config(trial, seed) for trial in finals for seed in seeds[1:]]
    if not args.report_only:
        _run_share(step2, worker, workers, "seeds")
    if worker != 0:
        print(f"Worker {worker}/{workers} done; worker 0 writes the report.")
        return 0
    # With --report-only, the seeds finished so far (the report says which).
    for trial in finals:
        trial["seed_numbers"] = [s for s in seeds if _finished(config(trial, s))]
        trial["seeds"] = [_load(config(trial, s)) for s in trial["seed_numbers"]]

    out = pathlib.Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "jsb_reproduction_quick" if quick else "jsb_reproduction"
    baseline = note_frequency_nll(str(args.jsb), settings.get("limit"))
    summary = _jsb_summary(args, quick, settings, seeds, trials, chosen, best, baseline,
                           time.time() - started)
    _atomic_text(out / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    _atomic_text(out / f"{name}.md", jsb_report(summary))
    plot_learning_curves(summary, out / f"{name}.png")
    print(f"\nWrote {out / (name + '.md')}, .json and .png")
    return 0


def _run_share(configs, worker, workers, step):
    """Train this worker's share of `configs`, then any run no other worker
    holds, then wait until all are done.

    Every N-th run from the K-th is this worker's own; once they are done it
    takes on the others' runs that are neither finished nor being trained (a
    run dir's lock says which are), so no worker idles while runs are left.
    """
    for index in sorted(range(len(configs)), key=lambda i: i % workers != worker):
        config = configs[index]
        if _finished(config):
            continue
        print(f"\n=== [{step} {index + 1}/{len(configs)}] {config.run_dir} ===", flush=True)
        try:
            training.train(config)
        except training.RunDirBusy:
            print(f"{config.run_dir}: another worker is training it", flush=True)
            continue
        # Each run builds new models and compiled functions; drop the old.
        keras.backend.clear_session()
    waiting = [c for c in configs if not _finished(c)]
    while waiting:
        print(f"Waiting for {len(waiting)} runs of the other workers "
              f"(first: {waiting[0].run_dir})", flush=True)
        time.sleep(WAIT_SECONDS)
        waiting = [c for c in waiting if not _finished(c)]


def _finished(config):
    """Whether the run dir holds a result for `config`'s epoch cap: a run that
    stopped early, or one that trained to the cap (a run that reached a lower
    cap resumes under a higher one)."""
    path = pathlib.Path(config.run_dir) / training.RESULT_FILE
    if not path.exists():
        return False
    result = json.loads(path.read_text())
    return bool(result["stopped_early"]) or result["epochs_run"] >= config.epochs


def _load(config):
    result = json.loads((pathlib.Path(config.run_dir) / training.RESULT_FILE).read_text())
    state = json.loads((pathlib.Path(config.run_dir) / training.STATE_FILE).read_text())
    return {**result, "history": state["history"]}


def _jsb_summary(args, quick, settings, seeds, trials, chosen, best, baseline, seconds):
    def final(trial, paper_name, paper_nll):
        runs = trial["seeds"]
        test = [r["test"]["nll"] for r in runs]
        mean = statistics.fmean(test)
        return dict(
            model=paper_name, configuration=trial["name"], key=trial["key"],
            seeds=trial["seed_numbers"],
            options=trial["options"], paper_nll=paper_nll,
            test_nll=test, mean=mean, std=statistics.stdev(test) if len(test) > 1 else 0.0,
            gap=mean - paper_nll, best_seed_gap=min(test) - paper_nll,
            valid_nll=[r["best_valid"] for r in runs],
            frame_accuracy=statistics.fmean(r["test"]["frame_accuracy"] for r in runs),
            parameters=runs[0]["parameters"], epochs=[r["epochs_run"] for r in runs],
            best_epochs=[r["best_epoch"] for r in runs],
            train_time_s=[r["train_time_s"] for r in runs],
            curves=[{"valid": r["history"].get("val_frame_nll", []),
                     "train": r["history"].get("frame_nll", [])} for r in runs],
            tried=[t["name"] for t in trials if t["row"] == trial["row"]] if trial["row"]
            else [f"{TITLES.get(t['row'], 'candidate')}: {t['name']}" for t in trials],
        )

    rows = [final(chosen[a], TITLES[a], PAPER_JSB[a]) for a in ARCHITECTURES]
    if best["row"] is None:
        best_row = final(best, PAPER_BEST[0], PAPER_BEST[1])
    else:
        best_row = {**next(r for r in rows if r["key"] == best["key"]),
                    "paper_nll": PAPER_BEST[1]}
        best_row.update(gap=best_row["mean"] - PAPER_BEST[1],
                        best_seed_gap=min(best_row["test_nll"]) - PAPER_BEST[1])
    best_row["model"] = f"collection's best: {TITLES.get(best['row'], best['name'])}"
    if best["row"] is not None:
        best_row["tried"] = [f"{TITLES.get(t['row'], 'candidate')}: {t['name']}"
                             for t in trials]
    best_row["paper_model"] = PAPER_BEST[0]
    search = [dict(key=t["key"], row=TITLES.get(t["row"], "candidate"), configuration=t["name"],
                   options=t["options"], parameters=t["result"]["parameters"],
                   valid_nll=t["result"]["best_valid"], epochs=t["result"]["epochs_run"],
                   best_epoch=t["result"]["best_epoch"],
                   train_time_s=t["result"]["train_time_s"],
                   chosen=t is best or any(t is c for c in chosen.values()))
              for t in trials]
    runs = [t["result"] for t in trials] + [
        r for t in [*chosen.values(), best] for r in t.get("seeds", [])[1:]]
    unique = {r["files"]["run_dir"]: r for r in runs}
    return {
        "quick": quick, "backend": keras.backend.backend(), "keras_version": keras.__version__,
        "data": {"file": pathlib.Path(args.jsb).name, "sha256": _sha256(args.jsb),
                 "limit": settings.get("limit")},
        "settings": settings, "seeds": list(seeds),
        "search_space": {"grid": {a: [list(g) for g in (QUICK_GRID if quick else
                                                           GRID.get(a, DEFAULT_GRID))]
                                  for a in ARCHITECTURES},
                         "aids": AIDS, "schedules": SCHEDULES,
                         "candidates": QUICK_CANDIDATES if quick else CANDIDATES},
        "rows": rows, "best": best_row, "search": search,
        "note_frequency_nll": baseline,
        # The sum over runs of the epochs' time, kept in each run's state, so
        # a later call that finds the runs done does not lose it.
        "budget": {"runs": len(unique), "epochs": sum(r["epochs_run"] for r in unique.values()),
                   "training_seconds": round(sum(r["train_time_s"] for r in unique.values()), 1),
                   "this_invocation_seconds": round(seconds, 1), "cpu_count": os.cpu_count()},
    }


def jsb_report(summary):
    """The Markdown report of `reproduce_jsb`'s summary."""
    quick, settings, budget = summary["quick"], summary["settings"], summary["budget"]
    max_per_row = max(len(grid) for grid in summary["search_space"]["grid"].values())
    lines = ["# JSB Chorales: the music table of Pascanu et al. (2013) on the paper's data", ""]
    if quick:
        lines += ["**Smoke run (`--quick`): 8-unit models, one epoch, the first "
                  f"{settings['limit']} chorales of each split. The numbers mean nothing.**", ""]
    seeds = summary["seeds"]
    partial = [r for r in [*summary["rows"], summary["best"]] if len(r["seeds"]) < len(seeds)]
    short = ("" if not partial else " (**not all finished in the time: " + "; ".join(
        f"{r['model']} seeds {r['seeds']}" for r in partial) + "**)")
    lines += [
        f"Test negative log-likelihood per frame (nats, lower is better) on "
        f"`{summary['data']['file']}` (sha256 {summary['data']['sha256'][:16]}…), "
        f"Boulanger-Lewandowski's JSB Chorales with its own train / valid / test split; "
        f"mean ± standard deviation over seeds {seeds}{short}. Each row's configuration was "
        "chosen on the validation split; the test split was scored once per final run.",
        "",
        "| model | paper | ours, mean ± std | per seed | ours − paper | chosen configuration "
        "| parameters | epochs (best) | training minutes per run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in [*summary["rows"], summary["best"]]:
        paper = f"{row['paper_nll']:.3f}" if row is not summary["best"] else \
            f"{row['paper_nll']:.2f} ({row['paper_model']})"
        lines.append(
            f"| {row['model']} | {paper} | {row['mean']:.3f} ± {row['std']:.3f} "
            f"| {', '.join(f'{v:.3f}' for v in row['test_nll'])} | {row['gap']:+.3f} "
            f"| {row['configuration']} | {row['parameters']:,} "
            f"| {', '.join(f'{e} ({b})' for e, b in zip(row['epochs'], row['best_epochs']))} "
            f"| {', '.join(f'{t / 60:.1f}' for t in row['train_time_s'])} |")
    lines.append(f"| note frequencies, no model | - | {summary['note_frequency_nll']:.3f} "
                 "| - | - | each note at its training frequency | 88 | - | - |")

    lines += ["", "## Reading", ""]
    for row in [*summary["rows"], summary["best"]]:
        target = f"{row['paper_nll']:.3f}"
        if row["gap"] <= 0:
            verdict = (f"matched: mean {row['mean']:.3f} at or below the paper's {target} "
                       f"({row['gap']:+.3f})")
        else:
            verdict = (f"falls short by {row['gap']:.3f} nats (mean {row['mean']:.3f} against "
                       f"{target}; best seed {row['best_seed_gap']:+.3f})")
        tried = "; ".join(row["tried"])
        lines.append(f"- **{row['model']}**: {verdict}. Chosen: {row['configuration']}. "
                     f"Tried: {tried}.")

    lines += ["", "## Model selection", "",
              "Every trial below ran with seed 0; the lowest validation NLL (best epoch) "
              "chose each paper row's configuration among that row's trials, and the "
              "collection's best among all trials. Each run scores the test split when it "
              "ends (`training.train` always does), but the choice reads only the "
              "validation figure and the trials' test figures appear nowhere here.", "",
              "Search space: "
              + "; ".join(f"{TITLES[a]}: " + " and ".join(
                  f"{units} units with *{aids}*" + (f" on *{schedule[0]}*" if schedule else "")
                  for units, aids, *schedule in grid)
                          for a, grid in summary["search_space"]["grid"].items())
              + " (" + _named_settings(summary["search_space"]["aids"]) + ")"
              + "; depth as the paper's rows define it (DT(S)/DOT(S): one intermediate "
              "transition layer, DOT(S): one intermediate tanh output layer; sRNN: 2 "
              "levels)"
              + "; " + _named_settings(summary["search_space"]["schedules"])
              + (f"; plus {len(summary['search_space']['candidates'])} candidates beyond the "
                 "paper's rows (below)" if summary["search_space"]["candidates"] else
                 "; no candidates beyond the paper's rows")
              + f". {len(summary['search'])} trials in all.", "",
              "| row | configuration | parameters | validation NLL | epochs (best) | chosen |",
              "| --- | --- | --- | --- | --- | --- |"]
    for trial in summary["search"]:
        lines.append(f"| {trial['row']} | {trial['configuration']} | {trial['parameters']:,} "
                     f"| {trial['valid_nll']:.3f} | {trial['epochs']} ({trial['best_epoch']}) "
                     f"| {'yes' if trial['chosen'] else ''} |")

    lines += ["", "## Budget", "",
              f"{budget['runs']} runs, {budget['epochs']} epochs, "
              f"{budget['training_seconds'] / 60:.1f} minutes of training in all (the sum of "
              "every run's epoch times, kept with the run, so a later call that finds the "
              "runs done reports the same), backend "
              f"{summary['backend']}, Keras {summary['keras_version']}, one thread per "
              f"process on a machine with {budget['cpu_count']} cores. The call that wrote "
              f"this report took {budget['this_invocation_seconds'] / 60:.1f} minutes.", "",
              "## Settings", "",
              "Every run, unless its configuration names another schedule: "
              + ", ".join(f"{k}={v}" for k, v in settings.items())
              + "; Adam with gradient-norm clipping at 1; learning rate halved after "
              "`lr_patience` epochs without a better validation NLL; early stopping on it; "
              "test score with the best validation epoch's weights over every frame of the "
              "test split. `weight_noise`: Gaussian noise of that standard deviation on every "
              "kernel, drawn anew for each batch in training; `dropout`: variational dropout "
              "on the inputs of every level; `output_dropout`: dropout on the deep output's "
              "intermediate layer; `lp` units: Lp pooling of 2 pieces per unit.", "",
              "## Differences from the paper", "",
              f"- Adam with batches of {settings['batch_size']} chorales (or a schedule a "
              "configuration names) instead of SGD, and "
              f"at most {settings['epochs']} epochs: the whole study has to run on 2 CPU "
              "cores.",
              f"- A very small search (at most {max_per_row} configurations per row) instead of "
              "the paper's per-model search, sized to 2 CPU cores; the paper's rows may have "
              "used other widths.",
              "- The paper reports one run per model; here each figure is a mean over "
              f"{len(seeds)} seeds, with its spread.", ""]
    return "\n".join(lines)


def _named_settings(named):
    """`*name*: key=value, ...; ...` for a mapping of names to settings."""
    return "; ".join(f"*{name}*: " + ", ".join(f"{k}={v}" for k, v in settings.items())
                     for name, settings in named.items())


def plot_learning_curves(summary, path):
    """Validation NLL per epoch of every final run, the paper's figure beside it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # matplotlib comes with the music extra
        print("No plot: matplotlib is not installed")
        return None
    figure = Figure(figsize=(8.0, 5.0), dpi=110)
    axes = figure.add_subplot()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    finals = [*summary["rows"], summary["best"]]
    if any(row["key"] == summary["best"]["key"] for row in summary["rows"]):
        # The best is one of the rows: its curves are drawn already.
        finals = summary["rows"]
        axes.axhline(summary["best"]["paper_nll"], color="black", linestyle="--", linewidth=0.7,
                     label=f"paper's best, {summary['best']['paper_model']}")
    for colour, row in zip(colours, finals):
        for index, curve in enumerate(row["curves"]):
            axes.plot(range(1, len(curve["valid"]) + 1), curve["valid"], color=colour,
                      linewidth=1.2 if index == 0 else 0.6,
                      label=f"{row['model']} (valid)" if index == 0 else None)
        first = row["curves"][0]["train"]
        axes.plot(range(1, len(first) + 1), first, color=colour, linestyle=":", linewidth=0.8)
        axes.axhline(row["paper_nll"], color=colour, linestyle="--", linewidth=0.7)
    values = [v for row in finals for curve in row["curves"] for v in curve["valid"]]
    if values:
        axes.set_ylim(min(values + [r["paper_nll"] for r in finals]) - 0.3,
                      min(max(values), 12.0) + 0.2)
    axes.set_xlabel("epoch")
    axes.set_ylabel("NLL per frame (nats)")
    axes.set_title("JSB Chorales: validation NLL (solid, one line per seed), training "
                   "(dotted, seed 0), paper's test figure (dashed)", fontsize=8)
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    figure.savefig(temporary, format="png")
    os.replace(temporary, path)
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_text(path, text):
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# --- The music21-built imitations -------------------------------------------

DATASETS = tuple(music_data.MUSIC_DATASETS)
# The full folk set holds 5 times the chorales' frames and the classical one
# 60 times, in pieces of up to 7,000 frames: caps on files, and windows of
# 200 steps for the classical pieces, keep each run within a few JSB runs.
DATA = {
    "jsb_chorales": dict(limit=None),
    "folk_tunes": dict(limit=300),
    "classical_polyphony": dict(limit=100, max_len=200),
}
# No dropout: the paper's plain rows; its dropout rows are another experiment.
# Patient early stopping: on the folk tunes the deep models sit on the
# note-frequency plateau for tens of epochs before they leave it (with a
# patience of 8 they stopped there, at the NLL of the marginals).
SETTINGS = dict(units=128, batch_size=2, learning_rate=1e-3, epochs=150, patience=20,
                lr_patience=6, dropout=0.0, output_dropout=0.0)
QUICK = dict(units=8, batch_size=4, epochs=2, limit=6, dropout=0.0, output_dropout=0.0)


def reproduce_imitations(args):
    runs_dir = pathlib.Path(args.runs_dir + ("-quick" if args.quick else ""))
    name = "music_reproduction_quick" if args.quick else "music_reproduction"
    results, started = [], time.time()
    for dataset in args.datasets:
        for architecture in ARCHITECTURES:
            settings = dict(QUICK) if args.quick else dict(SETTINGS, **DATA[dataset])
            config = training.TrainConfig(
                architecture=architecture, dataset=dataset, seed=0, progress=not args.quiet,
                run_dir=str(runs_dir / dataset / architecture), **settings)
            done = pathlib.Path(config.run_dir) / training.RESULT_FILE
            if done.exists():
                result = json.loads(done.read_text())
                print(f"[done before] {architecture} on {dataset}: "
                      f"{result['test']['nll']:.3f}")
            else:
                print(f"\n=== {architecture} on {dataset} ===", flush=True)
                result = training.train(config)
                keras.backend.clear_session()
            results.append(result)

    # What a model that ignores the past scores: each note at its training frequency.
    baselines = {dataset: note_frequency_nll(dataset, None if args.quick else DATA[dataset]["limit"],
                                             QUICK["limit"] if args.quick else None)
                 for dataset in args.datasets}
    out = pathlib.Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = imitation_summary(results, args.quick, baselines, time.time() - started)
    _atomic_text(out / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    _atomic_text(out / f"{name}.md", report(results, args.quick, baselines))
    print(f"\nWrote {out / (name + '.md')} and {out / (name + '.json')}")
    return 0


def imitation_summary(results, quick, baselines, seconds):
    return {"quick": quick, "backend": keras.backend.backend(),
            "settings": QUICK if quick else {**SETTINGS, "data": DATA},
            # Summed from the runs: a call that finds them done keeps the real total.
            "training_seconds": round(sum(r["train_time_s"] for r in results), 1),
            "this_invocation_seconds": round(seconds, 1),
            "note_frequency_nll": baselines, "runs": results}


def note_frequency_nll(dataset, limit, quick_limit=None):
    """Test NLL of independent notes at their training-set frequencies."""
    import numpy as np

    data = music_data.load_music(dataset, limit=quick_limit or limit, progress=False)
    rate = np.clip(np.concatenate(data["train"]).mean(axis=0), 1e-6, 1 - 1e-6)
    test = np.concatenate(data["test"])
    return float(-(test * np.log(rate) + (1 - test) * np.log(1 - rate)).sum(axis=1).mean())


def report(results, quick, baselines=None):
    """The markdown report: the table, the settings, the differences."""
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    by_key = {(r["dataset"], r["architecture"]): r for r in results}
    lines = ["# Polyphonic music on music21-built imitations of the paper's data sets", ""]
    if quick:
        lines += ["**Smoke run (`--quick`): 8-unit models, 2 epochs, 6 files. The numbers "
                  "below mean nothing.**", ""]
    lines += ["Test negative log-likelihood per frame (nats, lower is better), ours on the "
              "built-in imitation of each data set, beside the paper's on the original. "
              "These sets imitate the paper's from the scores music21 ships: other pieces "
              "and another split, so the numbers cannot be set beside the paper's. The "
              "paper's own JSB Chorales are in `jsb_reproduction.md`.", ""]
    header = ["model"]
    for dataset in datasets:
        column = training.PAPER_MUSIC_COLUMNS[dataset][0]
        header += [f"{dataset} (ours)", f"{column} (paper)"]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for architecture in ARCHITECTURES:
        row = [TITLES[architecture]]
        present = False
        for dataset in datasets:
            result = by_key.get((dataset, architecture))
            present |= result is not None
            paper = result and result["paper"]
            row += [f"{result['test']['nll']:.3f}" if result else "-",
                    f"{paper['nll']:.3f}" if paper else "-"]
        if present:
            lines.append("| " + " | ".join(row) + " |")
    if baselines:
        row = ["note frequencies, no model"]
        for dataset in datasets:
            row += [f"{baselines[dataset]:.3f}", "-"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Runs", "",
              "| data set | model | parameters | epochs (best) | test frame accuracy "
              "| training time | backend |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['architecture']} | {r['parameters']:,} "
                     f"| {r['epochs_run']} ({r['best_epoch']}) "
                     f"| {r['test']['frame_accuracy']:.3f} | {r['train_time_s'] / 60:.1f} min "
                     f"| {r['backend']} |")
    settings = QUICK if quick else SETTINGS
    lines += ["", f"Training time in all: {sum(r['train_time_s'] for r in results) / 60:.1f} "
              "minutes (the sum of the runs' epoch times).", "", "## Settings", "",
              "Every run: " + ", ".join(f"{k}={v}" for k, v in settings.items())
              + "; Adam with gradient-norm clipping at 1; learning rate halved after "
              "`lr_patience` epochs without a better validation NLL; early stopping on it; "
              "test score with the best validation epoch's weights, over every frame of "
              "the test split. sRNN has 2 levels, DT(S) and DOT(S) one intermediate "
              "transition layer, DOT(S) one intermediate output layer (tanh).",
              "", "Data per set: " + "; ".join(
                  f"{d}: " + ("first 6 files" if quick else ", ".join(
                      f"{k}={v}" for k, v in DATA[d].items() if v) or "every file")
                  for d in datasets) + " (`limit`: first files read; `max_len`: training "
              "windows, test on whole pieces).", "",
              "## Differences from the paper", "",
              "- **Different data.** The built-in sets are built from the scores music21 "
              "ships, not from Boulanger-Lewandowski's piano-roll files: other pieces, "
              "another train/valid/test split (by a hash of the file name), our own "
              "transposition to C and frame sampling. `folk_tunes` adds Ryan's Mammoth "
              "Collection to the Nottingham sample; `classical_polyphony` is another "
              "repertoire than MuseData. The absolute numbers are therefore not comparable; "
              "the ranking of the models is the thing to look at. Pass a "
              "Boulanger-Lewandowski `.pickle` as `--dataset` to `keras-deeprnn train` for "
              "the paper's own data.",
              f"- **Less training.** Narrow models ({settings['units']} units), at most "
              f"{settings['epochs']} epochs, part of the larger sets, no hyper-parameter "
              "search.",
              "- **Another optimiser.** Adam instead of the paper's SGD, and none of its "
              "weight noise or sparse initialisation.",
              "- **One seed.** Each number is one run; differences of a few hundredths are "
              "within the noise between seeds.",
              "- **A plateau on the folk tunes.** A folk-tune frame holds one melody note, and "
              "every model first learns each note's frequency (the last row of the table). "
              "In the full run the RNN and DOT(S)-RNN left that plateau, while DT(S)-RNN "
              "and the sRNN were still on it (test NLL at the row's value) when early "
              "stopping ended them: validation NLL rises while a model sits there. With a "
              "fixed learning rate and no early stopping a DT(S)-RNN does leave it, slowly "
              "(training NLL 3.33 after 40 epochs, the RNN's 2.96). This is an optimisation "
              "difficulty of the deeper transitions on sparse, monophonic frames under "
              "these untuned settings, not a verdict on the architectures.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jsb", metavar="PATH", type=pathlib.Path,
                        help="Boulanger-Lewandowski's JSB Chorales pickle: the study")
    parser.add_argument("--imitations", action="store_true",
                        help="the earlier table on the music21-built imitations instead")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS,
                        help="with --imitations: which built-in sets")
    parser.add_argument("--quick", action="store_true", help="tiny models, one or two epochs")
    parser.add_argument("--worker", default="0/1", type=_worker, metavar="K/N",
                        help="train every N-th run from the K-th (0-based); worker 0 reports")
    parser.add_argument("--runs-dir", default="runs/reproduce_music")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report the finished runs (every search trial "
                             "must be done; rows may have fewer seeds, and the report says so)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.imitations == (args.jsb is not None):
        parser.error("give either --jsb PATH (the paper's data) or --imitations; received "
                     f"--jsb={args.jsb}, --imitations={args.imitations}")
    if args.jsb is not None and not args.jsb.is_file():
        parser.error(f"--jsb must be the path of a JSB Chorales .pickle file; received {args.jsb}")
    return reproduce_imitations(args) if args.imitations else reproduce_jsb(args)


def _worker(text):
    try:
        worker, workers = (int(part) for part in text.split("/"))
    except ValueError:
        worker = workers = -1
    if not 0 <= worker < workers:
        raise argparse.ArgumentTypeError(
            f"expected K/N with 0 <= K < N (e.g. 0/2); received {text!r}")
    return worker, workers


if __name__ == "__main__":
    sys.exit(main())
