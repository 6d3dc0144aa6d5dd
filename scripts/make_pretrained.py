"""Trains the models that ship in keras_deeprnn/pretrained and records them.

    KERAS_BACKEND=jax python scripts/make_pretrained.py [--run-dir runs/pretrained-jsb]

"jsb": a DOT(S)-RNN of 64 units (small enough to ship: well under 1 MB),
trained like the main job on the built-in jsb_chorales. The script writes
the preset folder keras_deeprnn/pretrained/jsb (`save_to_preset`: the model
without its optimizer, a record with the test NLL measured on the test split
and that split's checksum) and the split itself as packed rolls; the test
suite re-measures the NLL on every backend. Re-running resumes the run dir.
"""

import argparse
import io
import os
import sys

import numpy as np

from keras_deeprnn import pretrained
from keras_deeprnn.data.music import load_music
from keras_deeprnn.models import hub
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
    # A fresh, uncompiled twin: the shipped preset carries no optimizer state.
    model = type(trained).from_config(trained.get_config())
    model.set_weights(trained.get_weights())
    rolls = load_music(SETTINGS["dataset"])["test"]
    packed = pretrained.pack_rolls(rolls)
    test_rolls = pretrained.unpack_rolls(packed)
    nll = round(float(pretrained.score(model, test_rolls)), 6)
    npz = io.BytesIO()
    np.savez_compressed(npz, **packed)
    frames = int(sum(len(r) for r in rolls))
    folder = model.save_to_preset(
        hub.BUILT_IN / "jsb",
        description="DOT(S)-RNN, 64 units, trained on the built-in jsb_chorales "
                    "(Bach chorales from music21)",
        scores={"test_nll": nll},
        data={"name": SETTINGS["dataset"], "split": "test", "pieces": len(rolls),
              "frames": frames, "file": "test.npz", "unit": "nats per frame",
              "sha256": hub.data_checksum(test_rolls)},
        record={
            "name": "jsb",
            "settings": SETTINGS,
            "command": "KERAS_BACKEND=jax python scripts/make_pretrained.py",
            "test_nll": nll,
            "test_nll_in_training": result["test"]["nll"],
            "epochs_run": result["epochs_run"],
            "best_epoch": result["best_epoch"],
            "stopped_early": result["stopped_early"],
            "train_time_s": result["train_time_s"],
        },
        assets={"test.npz": npz.getvalue()},
    )
    size = os.path.getsize(folder / hub.WEIGHTS_FILE)
    print(f"jsb: test NLL {nll:.4f} on {frames} frames; {size / 1024:.0f} kB of weights")


if __name__ == "__main__":
    main()
