"""Do RHN, zoneout and layer norm beat the paper's DOT(S)-RNN on JSB chorales at equal size?

    python scripts/study_regularisers.py            # 6 variants x 3 seeds, ~20 min on JAX
    python scripts/study_regularisers.py --quick    # smoke run, a minute

Every variant is trained on the built-in `jsb_chorales` with the settings of
`reproduce_music.py --imitations` (the paper's plain rows scaled to a CPU)
and a parameter budget equal to that of the baseline DOT(S)-RNN with 128
units: where a
variant adds parameters (layer norm's gains and biases) or shapes them
differently (RHN), its width is the largest whose model fits the budget,
found by the tuner's own bisection (`DeepRNNHyperModel.derive_units`). Each
variant runs with several seeds, because the differences to look for are
about as large as the spread between seeds.

Writes `results/regulariser_study.md` (table: mean and spread of test NLL
per variant, parameters, epochs), `results/regulariser_study.json` and
`results/regulariser_study.png` (every seed's test NLL per variant). Runs
are resumable: a run whose `result.json` exists is not trained again.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

import keras

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from reproduce_music import SETTINGS  # noqa: E402  (the same training settings)

from keras_deeprnn import _files  # noqa: E402
from keras_deeprnn import training  # noqa: E402
from keras_deeprnn.tuning import DeepRNNHyperModel  # noqa: E402

# A piano roll's 88 notes in and out (the hypermodel otherwise reads them from the data).
NOTES = dict(input_dim=88, output_dim=88)

BASELINE = ("dots_rnn", {})
# name: (architecture, build_model arguments beyond the settings)
VARIANTS = {
    "DOT(S)-RNN (paper)": BASELINE,
    "DOT(S)-RNN + zoneout 0.1": ("dots_rnn", {"zoneout": 0.1}),
    "DOT(S)-RNN + layer norm": ("dots_rnn", {"layer_norm": True}),
    "DOT(S)-RNN + layer norm + zoneout 0.1": ("dots_rnn", {"layer_norm": True, "zoneout": 0.1}),
    "RHN, 2 highway layers": ("rhn", {"num_transition_layers": 2}),
    "RHN, 4 highway layers": ("rhn", {"num_transition_layers": 4}),
}
SEEDS = (0, 1, 2)
BASE_UNITS = 128
QUICK = dict(units=8, epochs=2, limit=6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 epochs, 6 files")
    parser.add_argument("--runs-dir", default="runs/regulariser_study")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    settings = {**SETTINGS, **(QUICK if args.quick else {})}
    seeds = args.seeds[:1] if args.quick else args.seeds
    runs_dir = pathlib.Path(args.runs_dir + ("-quick" if args.quick else ""))
    name = "regulariser_study_quick" if args.quick else "regulariser_study"

    # The budget: the baseline's parameter count at the reproduction width.
    counter = DeepRNNHyperModel([BASELINE[0]], **NOTES, output_activation="sigmoid")
    base_units = settings["units"]
    budget = counter.count_params(BASELINE[0], units=base_units)
    hypermodel = DeepRNNHyperModel(list(dict.fromkeys(a for a, _ in VARIANTS.values())), **NOTES,
                                   max_params=budget, budget_mode="derive")
    started, rows = time.time(), []
    for variant, (architecture, extra) in VARIANTS.items():
        units = base_units if (architecture, extra) == BASELINE else \
            hypermodel.derive_units(architecture, **extra)
        keras.backend.clear_session()
        results = []
        for seed in seeds:
            slug = variant.lower().replace("(", "").replace(")", "").replace(" + ", "-")
            slug = "".join(c if c.isalnum() else "_" for c in slug).strip("_")
            config = training.TrainConfig(
                architecture=architecture, dataset="jsb_chorales", seed=seed,
                progress=not args.quiet, run_dir=str(runs_dir / slug / f"seed{seed}"),
                **{**settings, "units": units}, **extra)
            done = pathlib.Path(config.run_dir) / training.RESULT_FILE
            if done.exists():
                result = json.loads(done.read_text())
            else:
                print(f"\n=== {variant}, seed {seed} ({units} units) ===", flush=True)
                result = training.train(config)
                keras.backend.clear_session()
            print(f"{variant}, seed {seed}: test NLL {result['test']['nll']:.3f}", flush=True)
            results.append(result)
        nlls = [r["test"]["nll"] for r in results]
        rows.append(dict(
            variant=variant, architecture=architecture, options=extra, units=units,
            parameters=results[0]["parameters"], seeds=list(seeds), test_nll=nlls,
            mean=statistics.fmean(nlls), std=statistics.stdev(nlls) if len(nlls) > 1 else 0.0,
            frame_accuracy=statistics.fmean(r["test"]["frame_accuracy"] for r in results),
            epochs=[r["epochs_run"] for r in results], best_epochs=[r["best_epoch"] for r in results],
            train_time_s=[r["train_time_s"] for r in results], backend=results[0]["backend"],
        ))

    out = pathlib.Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"quick": args.quick, "backend": keras.backend.backend(), "budget": budget,
               "settings": settings,
               # Summed from the runs, whose state keeps their epoch times: a call
               # that finds every run done still reports the real total.
               "training_seconds": training_seconds(rows),
               "this_invocation_seconds": round(time.time() - started, 1),
               "variants": rows}
    _files.write_text(out / f"{name}.json", json.dumps(summary, indent=2) + "\n")
    _files.write_text(out / f"{name}.md", report(rows, budget, settings, args.quick,
                                                 summary["training_seconds"]))
    plot(rows, out / f"{name}.png")
    print(f"\nWrote {out / (name + '.md')}, .json and .png")
    return 0


def training_seconds(rows):
    """The rows' summed epoch times, or `None` where a row did not record them."""
    if not all("train_time_s" in r for r in rows):
        return None
    return round(sum(t for r in rows for t in r["train_time_s"]), 1)


def report(rows, budget, settings, quick, seconds=None):
    base = rows[0]
    lines = ["# RHN, zoneout and layer norm against the paper's DOT(S)-RNN (JSB chorales)", ""]
    if quick:
        lines += ["**Smoke run (`--quick`): tiny models, 2 epochs, 6 files. The numbers mean "
                  "nothing.**", ""]
    lines += [
        f"Test NLL per frame (nats, lower is better) on the built-in `jsb_chorales`, every "
        f"model within the parameter budget of the baseline ({budget:,} parameters); mean "
        f"and standard deviation over seeds {base['seeds']}, and the difference to the "
        "baseline's mean.", "",
        "| variant | units | parameters | test NLL, mean ± std | per seed | vs baseline "
        "| frame accuracy | epochs (best) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        delta = r["mean"] - base["mean"]
        lines.append(
            f"| {r['variant']} | {r['units']} | {r['parameters']:,} | {r['mean']:.3f} ± "
            f"{r['std']:.3f} | {', '.join(f'{v:.3f}' for v in r['test_nll'])} | "
            f"{'—' if r is base else f'{delta:+.3f}'} | {r['frame_accuracy']:.3f} | "
            f"{', '.join(f'{e} ({b})' for e, b in zip(r['epochs'], r['best_epochs']))} |")
    best = min(rows, key=lambda r: r["mean"])
    noise = max(r["std"] for r in rows)
    lines += ["", "## Reading", ""]
    if len(base["seeds"]) < 2:
        lines.append("One seed only: no spread between seeds to set the differences against.")
    elif best is base:
        lines.append("No variant beats the baseline's mean test NLL.")
    else:
        margin = base["mean"] - best["mean"]
        lines.append(
            f"Best mean: {best['variant']}, {margin:.3f} nats below the baseline; the largest "
            f"spread between seeds of one variant is {noise:.3f} nats, so a difference "
            f"{'beyond' if margin > 2 * noise else 'within about twice'} that spread.")
    lines += ["", capped_runs(rows, settings)]
    lines += [
        "", "## Settings", "",
        "Every run: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "units")
        + "; Adam with gradient-norm clipping at 1, learning rate halved on plateaus, early "
        "stopping on validation NLL, test with the best epoch's weights. DOT(S)-RNN: one "
        "intermediate transition layer with shortcuts and one intermediate tanh output "
        "layer, as in `reproduce_music.py --imitations`. RHN: highway transition (transform-gate bias "
        "-2), sigmoid output layer directly on the state. Zoneout 0.1 on every state; "
        "layer norm on every transition layer's pre-activation. No dropout, weight noise "
        "or other regulariser anywhere, so zoneout is the only regulariser in its rows.",
        "", "Widths come from `DeepRNNHyperModel(max_params=budget, budget_mode=\"derive\")"
        ".derive_units(...)`, the tuner's bisection on the parameter count.", "",
        "Training time: " + (f"{seconds / 60:.1f} minutes in all (the sum of the runs' epoch "
                             "times)." if seconds is not None else
                             "not recorded for these runs (only the time of the last call "
                             "of the script was, and that call found every run done)."), ""]
    return "\n".join(lines)


def capped_runs(rows, settings):
    """Which runs the epoch cap ended, and whether they were still improving then.

    A run at the cap whose best epoch lies within `patience` epochs of it
    had not met the stopping rule yet: it may have had more to gain.
    """
    cap, patience = settings["epochs"], settings["patience"]
    parts = []
    for r in rows:
        hits = [(seed, best) for seed, epochs, best in
                zip(r["seeds"], r["epochs"], r["best_epochs"]) if epochs >= cap]
        if not hits:
            continue
        improving = [f"seed {seed} (best epoch {best}, {cap - best} before the cap)"
                     for seed, best in hits if cap - best < patience]
        settled = [f"seed {seed} (best epoch {best})" for seed, best in hits
                   if cap - best >= patience]
        text = f"{r['variant']}: {len(hits)} of {len(r['seeds'])} runs"
        if improving:
            text += ("; the stopping rule had not ended them yet (a better epoch within the "
                     f"last {patience}), so they may have had more to gain: "
                     + ", ".join(improving))
        if settled:
            text += (f"; no better epoch in the last {patience} before the cap, so early "
                     f"stopping would have ended them there too: {', '.join(settled)}")
        parts.append(text)
    if not parts:
        return f"Every run stopped early on its own, before the {cap}-epoch cap."
    return (f"Runs that reached the {cap}-epoch cap (patience {patience}): "
            + "; ".join(parts) + ". Every other run stopped early on its own.")


def plot(rows, path):
    try:
        from matplotlib.figure import Figure
    except ImportError:  # matplotlib comes with the music extra
        print("No plot: matplotlib is not installed")
        return
    fig = Figure(figsize=(8, 0.6 * len(rows) + 1.5))
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        ax.scatter(r["test_nll"], [i] * len(r["test_nll"]), color="tab:blue", zorder=3,
                   label="one seed" if i == 0 else None)
        ax.errorbar(r["mean"], i, xerr=r["std"], fmt="D", color="tab:red", capsize=4, zorder=4,
                    label="mean ± std" if i == 0 else None)
    ax.axvline(rows[0]["mean"], color="gray", linestyle="--", linewidth=1,
               label="baseline mean")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['variant']}\n{r['parameters']:,} params" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test NLL per frame (nats, lower is better)")
    ax.set_title("JSB chorales (music21 build), equal parameter budget")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    _files.write_atomically(path, lambda temporary: fig.savefig(temporary, dpi=120))


if __name__ == "__main__":
    sys.exit(main())
