"""The benchmark harness runs end to end in its tiny configuration (no timing checks)."""

import json
import os
import pathlib
import subprocess
import sys

import keras

RUN = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_quick_run_writes_every_file(tmp_path):
    backend = keras.backend.backend()
    subprocess.run(
        [sys.executable, str(RUN), "--quick", "--backends", backend, "--out", str(tmp_path)],
        check=True, timeout=600, env=dict(os.environ, MPLBACKEND="Agg"),
    )
    results = json.loads((tmp_path / "cpu.json").read_text())
    assert set(results) == {"machine", "records", "targets"}
    assert {"cpu", "cores", "versions", "load_before", "load_after", "settings"} <= set(results["machine"])
    main = [r for r in results["records"] if "main" in r["groups"] and r["impl"] == "deeprnn"]
    assert main and all(r["backend"] == backend for r in main)
    for r in main:
        assert {"train_fps", "infer_fps", "first_step_s", "peak_rss_mb"} <= set(r), r.get("error")
    markdown = (tmp_path / "cpu.md").read_text()
    assert "Training frames per second" in markdown and "## Targets" in markdown
    assert (tmp_path / "cpu_fps.png").stat().st_size > 0
    assert (tmp_path / "cpu_scaling.png").stat().st_size > 0
