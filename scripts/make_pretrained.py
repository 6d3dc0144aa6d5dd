"""Makes the models that ship in keras_deeprnn/pretrained, each with its record.

    KERAS_BACKEND=jax python scripts/make_pretrained.py bach [--run-dir runs/pretrained-bach]
    KERAS_BACKEND=jax python scripts/make_pretrained.py table --data-dir DIR \\
        [--runs-dir runs/music_table] [--results-dir results] [--datasets jsb nottingham ...]

`bach`: a DOT(S)-RNN of 64 units trained like the main job on the built-in
`jsb_chorales` (music21's Bach chorales): small and quick, a model to play
with. Re-running resumes its run dir.

`table`: for each of the paper's data sets, the best model of the music
table (`scripts/music_table.py`): of all its final runs, the one with the
lowest validation NLL, loaded from its run folder. Its weights ship at
float16 (half the size: the largest models of the table are about a
million float32 numbers) and every figure in its record is measured with
the weights as shipped: the test NLL over every time step (the paper's
measure) and without each first frame, on the whole test split of the
MATLAB file, whose SHA-256 the record keeps.

Every preset folder holds `config.json`, `model.weights.h5`, `record.json`
(`save_to_preset`) and the test split it was scored on as packed rolls
(`test.npz`), so the test suite re-measures the recorded NLL on every
backend without music21 or the data files.
"""

import argparse
import io
import json
import os
import pathlib
import sys

import numpy as np

from keras_deeprnn import pretrained
from keras_deeprnn import run_folder
from keras_deeprnn.data.music import load_music
from keras_deeprnn.models import hub
from keras_deeprnn.training import TrainConfig, load_trained_model, train

# Small and quick: the point is a model to play with, not the best NLL.
# 150 epochs: at the main job's 60 it is still improving.
BACH = {"architecture": "dots_rnn", "dataset": "jsb_chorales", "units": 64, "epochs": 150,
        "seed": 0}
# The music table's data sets: preset name -> (MATLAB file, name in the paper).
TABLE = {"jsb": ("JSB_Chorales.mat", "JSB Chorales"),
         "nottingham": ("Nottingham.mat", "Nottingham"),
         "musedata": ("MuseData.mat", "MuseData"),
         "piano_midi": ("Piano_midi.mat", "Piano-midi.de")}


def make_bach(args):
    config = TrainConfig(**BACH, run_dir=args.run_dir, progress=sys.stdout.isatty())
    result = train(config)
    model = _fresh_twin(load_trained_model(args.run_dir)[0])
    rolls = load_music(BACH["dataset"])["test"]
    scores = _scores(model, rolls)
    data, npz = _test_split(BACH["dataset"], rolls)
    folder = model.save_to_preset(
        hub.BUILT_IN / "bach",
        description="DOT(S)-RNN, 64 units, trained on the built-in jsb_chorales "
                    "(Bach chorales from music21)",
        scores=scores,
        data=data,
        record={
            "name": "bach",
            "settings": BACH,
            "command": "KERAS_BACKEND=jax python scripts/make_pretrained.py bach",
            "test_nll_in_training": result["test"]["nll"],
            "epochs_run": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "stopped_early": result["stopped_early"],
            "train_time_s": result["train_time_s"],
        },
        assets={"test.npz": npz},
    )
    _say("bach", folder, scores, rolls)


def make_table(args):
    made = 0
    for name in args.datasets:
        file, column = TABLE[name]
        finals = sorted((args.results_dir / "music_table" / name).glob("final-*.json"))
        records = [json.loads(path.read_text()) for path in finals]
        if not records:
            print(f"{name}: no finished final run in {args.results_dir / 'music_table' / name};"
                  " skipped")
            continue
        best = min(records, key=lambda r: r["best_valid"])
        run_dir = args.runs_dir / name / f"final-{best['key']}" / f"seed{best['seed']}"
        trained, _ = load_trained_model(run_dir)
        model = _fresh_twin(trained)
        # The shipped weights are float16: score exactly those.
        model.set_weights([w.astype(np.float16).astype(w.dtype) for w in model.get_weights()])
        source = args.data_dir / file
        rolls = load_music(source)["test"]
        scores = _scores(model, rolls)
        data, npz = _test_split(file, rolls)
        settings = best["config"]
        levels = settings.get("num_layers") or 1
        row = f"{settings['architecture']}, {levels} x {settings['units']} units"
        folder = model.save_to_preset(
            hub.BUILT_IN / name,
            description=f"{row} ({best['parameters']:,} parameters), the music table's best "
                        f"on {column} ({file}), chosen on validation",
            scores=scores,
            data={**data, "source_sha256": run_folder.fingerprint(source)},
            record={
                "name": name,
                "settings": {**settings, "dataset": file},
                "command": "KERAS_BACKEND=jax python scripts/make_pretrained.py table "
                           "--data-dir DIR",
                "study_job": f"final-{best['key']}-seed{best['seed']}",
                "best_valid": best["best_valid"],
                "test_nll_in_training": best["test"]["nll"],
                "epochs_run": best["epochs_run"],
                "best_epoch": best["best_epoch"],
                "train_time_s": best["train_time_s"],
                "paper": best.get("paper"),
            },
            assets={"test.npz": npz},
            weights_dtype="float16",
        )
        _say(name, folder, scores, rolls)
        made += 1
    return made


def _fresh_twin(trained):
    """An uncompiled copy: the shipped preset carries no optimizer state."""
    model = type(trained).from_config(trained.get_config())
    model.set_weights(trained.get_weights())
    return model


def _scores(model, rolls):
    return {"test_nll": round(float(pretrained.score(model, rolls)), 6),
            "test_nll_without_first_frame": round(
                float(pretrained.score(model, rolls, first_frame=False)), 6)}


def _test_split(name, rolls):
    """`(data record, test.npz bytes)`: the split packed once, its checksum
    taken over what `pretrained.test_rolls` will read back."""
    packed = pretrained.pack_rolls(rolls)
    stream = io.BytesIO()
    np.savez_compressed(stream, **packed)
    record = {"name": name, "split": "test", "pieces": len(rolls),
              "frames": int(sum(len(r) for r in rolls)), "file": "test.npz",
              "unit": "nats per frame, every time step",
              "sha256": hub.data_checksum(pretrained.unpack_rolls(packed))}
    return record, stream.getvalue()


def _say(name, folder, scores, rolls):
    size = os.path.getsize(folder / hub.WEIGHTS_FILE)
    print(f"{name}: test NLL {scores['test_nll']:.4f} over every time step "
          f"({scores['test_nll_without_first_frame']:.4f} without first frames) on "
          f"{sum(len(r) for r in rolls)} frames; {size / 1024:.0f} kB of weights")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="recipe", required=True)
    bach = commands.add_parser("bach", help="train the small model on the built-in chorales")
    bach.add_argument("--run-dir", default="runs/pretrained-bach")
    table = commands.add_parser("table", help="ship the music table's best per data set")
    table.add_argument("--data-dir", type=pathlib.Path, required=True, metavar="DIR",
                       help="folder of the MATLAB files the table was made from")
    table.add_argument("--runs-dir", type=pathlib.Path, default=pathlib.Path("runs/music_table"))
    table.add_argument("--results-dir", type=pathlib.Path, default=pathlib.Path("results"))
    table.add_argument("--datasets", nargs="+", choices=TABLE, default=list(TABLE))
    args = parser.parse_args(argv)
    if args.recipe == "bach":
        make_bach(args)
    else:
        missing = [TABLE[d][0] for d in args.datasets if not (args.data_dir / TABLE[d][0]).is_file()]
        if missing:
            parser.error(f"--data-dir {args.data_dir} lacks {', '.join(missing)}")
        make_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
