"""Trains the models that ship in keras_deeprnn/pretrained and records them.

    KERAS_BACKEND=jax python scripts/make_pretrained.py [--run-dir runs/pretrained-jsb]

"jsb": a DOT(S)-RNN of 64 units (small enough to ship: well under 1 MB),
trained like the main job on the built-in jsb_chorales. The script writes
the model without its optimizer, the test split as packed rolls and a JSON
record with the test NLL measured on those rolls; the test suite re-measures
it on every backend. Re-running resumes the run dir.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

from keras_deeprnn import _files
from keras_deeprnn import pretrained
from keras_deeprnn.data.music import load_music
from keras_deeprnn.training import TrainConfig, load_trained_model, train

# Small and quick: the point is a model to play with, not the best NLL.
# 150 epochs: at the main job's 60 it is still improving.
SETTINGS = {"architecture": "dots_rnn", "dataset": "jsb_chorales", "units": 64, "epochs": 150,
            "seed": 0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/pretrained-jsb")
    args = parser.parse_args(argv)
    config = TrainConfig(**SETTINGS, run_dir=args.run_dir, progress=sys.stdout.isatty())
    result = train(config)
    trained, _ = load_trained_model(args.run_dir)
    # A fresh, uncompiled twin: the shipped file carries no optimizer state.
    model = type(trained).from_config(trained.get_config())
    model.set_weights(trained.get_weights())
    entry = pretrained.get("jsb")
    rolls = load_music(SETTINGS["dataset"])["test"]
    packed = pretrained.pack_rolls(rolls)
    _files.write_atomically(entry.test_file, lambda p: np.savez_compressed(p, **packed))
    _files.write_atomically(entry.model_file, model.save)
    nll = pretrained.score(keras.models.load_model(entry.model_file, compile=False),
                           pretrained.test_rolls("jsb"))
    record = {
        "name": "jsb",
        "settings": SETTINGS,
        "command": "KERAS_BACKEND=jax python scripts/make_pretrained.py",
        "test_nll": round(float(nll), 6),
        "test_nll_in_training": result["test"]["nll"],
        "test_pieces": len(rolls),
        "test_frames": int(sum(len(r) for r in rolls)),
        "parameters": result["parameters"],
        "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"],
        "stopped_early": result["stopped_early"],
        "train_time_s": result["train_time_s"],
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
    }
    _files.write_text(entry.record_file, json.dumps(record, indent=1) + "\n")
    size = os.path.getsize(entry.model_file)
    print(f"jsb: test NLL {nll:.4f} on {record['test_frames']} frames; {size / 1024:.0f} kB")


if __name__ == "__main__":
    main()
