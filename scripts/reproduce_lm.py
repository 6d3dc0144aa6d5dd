"""Reproduce the character-level Penn Treebank column of Pascanu et al. (2013), scaled to a CPU.

    python scripts/reproduce_lm.py                    # 4 models on the built-in abc_folk text
    python scripts/reproduce_lm.py --ptb data/ptb     # ... and on the Penn Treebank characters
    python scripts/reproduce_lm.py --quick            # smoke run, about a minute

Trains RNN, DT(S)-RNN, DOT(S)-RNN and a 2-level sRNN as character models and
writes `results/lm_reproduction.md` (our test bits per character beside the
paper's PTB figures, the settings, the differences) and
`results/lm_reproduction.json`. Each run lives in its own run dir; a run
whose `result.json` exists is not trained again and an interrupted one
resumes, so the script can be stopped and restarted at will.

How the paper's setup is scaled down to a 2-core CPU:

| setting | paper (section 5) | here |
| --- | --- | --- |
| data | Penn Treebank characters (Mikolov's split, 50 symbols) | the built-in `abc_folk` corpus (folk tunes in ABC notation, 122 symbols, split by whole tune), all 3.9 million training characters; PTB too with `--ptb DIR` |
| width | chosen per model | 128 units for every state and layer |
| sequence | truncated backpropagation | windows of 100 characters, state carried across windows, batches of 32 streams |
| optimiser | SGD, learning rate halved on plateaus, early stopping | Adam (2e-3, clip norm 1), the same halving and early stopping |
| length | until early stopping | 1 epoch (about 1,230 updates) on 2 shared CPU cores, learning rate halved after an epoch without progress |
| regularisers | weight noise, dropout, maxout / Lp deep outputs in the best rows | none |

`--quick` trains 8-unit models for one epoch on the first 8,000 characters:
a check that everything runs, with meaningless numbers.
"""

import argparse
import json
import pathlib
import sys
import time

import keras

from keras_deeprnn import _files
from keras_deeprnn import training
from keras_deeprnn.tasks import language

ARCHITECTURES = ("rnn", "dts_rnn", "dots_rnn", "srnn")
# One epoch: the four runs share 2 CPU cores with other work; on idle cores
# the deeper models were still improving after 8, so these are early figures.
SETTINGS = dict(units=128, batch_size=32, seq_len=100, learning_rate=2e-3, epochs=1,
                patience=2, lr_patience=1, limit=None)
QUICK = dict(units=8, batch_size=8, seq_len=25, epochs=1, limit=8_000)
TITLES = {"rnn": "RNN", "dts_rnn": "DT(S)-RNN", "dots_rnn": "DOT(S)-RNN",
          "srnn": "sRNN (2 levels)"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 epoch, 8k chars")
    parser.add_argument("--ptb", default=None, metavar="DIR",
                        help="a folder with ptb.char.{train,valid,test}.txt: train on it too")
    parser.add_argument("--runs-dir", default="runs/reproduce_lm")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--architectures", nargs="+", choices=ARCHITECTURES,
                        default=ARCHITECTURES)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.ptb is not None and not language.is_ptb_directory(args.ptb, "char"):
        parser.error(f"--ptb must be a folder holding ptb.char.train.txt; received {args.ptb!r}")

    settings = {**SETTINGS, **(QUICK if args.quick else {})}
    datasets = ["abc_folk"] + ([args.ptb] if args.ptb else [])
    started = time.time()
    results = []
    for dataset in datasets:
        name = "ptb" if dataset == args.ptb else dataset
        for architecture in args.architectures:
            config = training.TrainConfig(
                task="lm", dataset=dataset, tokenization="char", architecture=architecture,
                # PTB is the paper's data: no cap on its 5 million characters.
                **{**settings, "limit": settings["limit"] if name != "ptb" or args.quick
                   else None},
                run_dir=str(pathlib.Path(args.runs_dir)
                            / f"{architecture}-{name}{'-quick' if args.quick else ''}"),
                progress=not args.quiet,
            )
            print(f"== {architecture} on {name}", flush=True)
            result = training.train(config)
            results.append({**result, "dataset_name": name})
            print(f"   test {result['test']['bits_per_character']:.3f} bits/char "
                  f"(paper on PTB: {result['paper']['bits_per_token'] if result['paper'] else '-'})",
                  flush=True)
    report(results, settings, args.quick, time.time() - started, args.results_dir)
    return 0


def _train_bits(result):
    """Training bits per character over the best epoch (from the run's history)."""
    import csv

    path = pathlib.Path(result["files"]["run_dir"]) / "history.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[result["best_epoch"] - 1]["bits_per_token"])


def report(results, settings, quick, seconds, results_dir):
    results_dir = pathlib.Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for result in results:
        paper = result["paper"]
        rows.append({
            "architecture": result["architecture"],
            "model": TITLES[result["architecture"]],
            "dataset": result["dataset_name"],
            "bits_per_character": result["test"]["bits_per_character"],
            "train_bits_per_character": _train_bits(result),
            "valid_bits_per_character": result["best_valid"],
            "perplexity": result["test"]["perplexity"],
            "paper_ptb_bits_per_character": paper["bits_per_token"] if paper else None,
            "same_data_as_paper": bool(paper and not paper["imitation"]),
            "parameters": result["parameters"],
            "epochs_run": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "train_time_s": result["train_time_s"],
            "run_dir": result["files"]["run_dir"],
        })
    summary = {"quick": quick, "backend": keras.backend.backend(),
               "keras_version": keras.__version__, "settings": settings,
               "training_seconds": round(sum(r["train_time_s"] for r in rows), 1),
               "this_invocation_seconds": round(seconds, 1), "rows": rows}
    _files.write_text(results_dir / "lm_reproduction.json", json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Character-level language modelling: Pascanu et al. (2013), section 5",
        "",
        ("**Quick run: tiny models trained for one epoch; the numbers only show that "
         "everything runs.**\n" if quick else ""),
        f"Backend {summary['backend']}, Keras {summary['keras_version']}; "
        f"{summary['training_seconds'] / 60:.1f} minutes of training in all (the sum of the "
        "runs' epoch times, kept with each run, so a call that finds the runs done reports "
        f"the same); the call that wrote this report took {seconds / 60:.1f} minutes.",
        "",
        "| model | data | test bits/char | perplexity | paper, PTB bits/char | train / valid bits/char "
        "| parameters | epochs (best) | train time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        paper = row["paper_ptb_bits_per_character"]
        lines.append(
            f"| {row['model']} | {row['dataset']} | {row['bits_per_character']:.3f} | "
            f"{row['perplexity']:.2f} | {paper if paper is not None else '-'} | "
            f"{row['train_bits_per_character']:.2f} / {row['valid_bits_per_character']:.2f} | "
            f"{row['parameters']:,} | {row['epochs_run']} ({row['best_epoch']}) | "
            f"{row['train_time_s']:.0f} s |")
    lines += [
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ".",
        "",
        "## Differences from the paper",
        "",
        "* The `abc_folk` rows are on other text (folk tunes in ABC notation, a larger "
        "alphabet, much more repetition than newspaper English), so their bits per "
        "character are not comparable with the paper's PTB figures; only the ranking "
        "of the architectures can be set beside the paper's.",
        f"* Much smaller models and far fewer updates than the paper's ({settings['epochs']} "
        "epochs), Adam instead of SGD, and none of the paper's regularisers (weight noise, "
        "dropout, maxout or Lp deep outputs).",
        "* The `abc_folk` split is by whole tune (90 / 5 / 5 % of the 12,978 tunes in a "
        "fixed order, the SHA-1 of each tune's name), so the three parts hold tunes of "
        "the same collections and no tune is in two parts; training and validation bits "
        "show how far the models fit the training text beyond what carries over.",
        "* Keep `limit` off for `abc_folk`: each part is its tunes in corpus order, so the "
        "first characters of the training part come from the first collections only, "
        "while valid and test span all of them.",
        "* PTB rows, when present, use the paper's data and split but the same scaled-down "
        "settings.",
        "",
    ]
    _files.write_text(results_dir / "lm_reproduction.md", "\n".join(lines))
    print(f"Wrote {results_dir / 'lm_reproduction.md'} and {results_dir / 'lm_reproduction.json'}")


if __name__ == "__main__":
    sys.exit(main())
