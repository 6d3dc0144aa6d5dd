"""Runs a study or reproduction script as a user would: a subprocess, tiny settings."""

import os
import pathlib
import subprocess
import sys

import keras

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_quick(script, tmp_path, *args):
    """`scripts/<script> --quick` under the current backend; its results folder."""
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend(),
               KERAS_DEEPRNN_CACHE=str(tmp_path / "cache"))
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--quick", "--quiet",
         "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"), *args],
        check=True, env=env, cwd=tmp_path, timeout=900,
    )
    return tmp_path / "results"
