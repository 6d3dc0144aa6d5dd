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
    # The dispatch-bound table: its own batch and one thread per backend, with
    # the hand-written eager PyTorch loop beside the torch backend.
    dispatch = [r for r in results["records"] if "dispatch" in r["groups"]]
    assert {r["impl"] for r in dispatch} >= {"deeprnn"}
    assert all(r["threads"] == 1 and r["batch"] != main[0].get("batch") for r in dispatch)
    assert all("train_s" in r for r in dispatch), [r.get("error") for r in dispatch]
    if backend == "torch":
        assert {"torch_eager", "torch_nn"} <= {r["impl"] for r in dispatch}
        assert any(t["target"].startswith("PyTorch, dispatch-bound") for t in results["targets"])
    markdown = (tmp_path / "cpu.md").read_text()
    assert "Training frames per second" in markdown and "## Targets" in markdown
    assert "## Dispatch-bound: batch 2, 6 frames, 8 units, 1 thread per backend" in markdown
    assert (tmp_path / "cpu_fps.png").stat().st_size > 0
    assert (tmp_path / "cpu_scaling.png").stat().st_size > 0


def test_gpu_mode_refuses_without_a_gpu_and_runs_its_plan_on_the_cpu_when_asked(tmp_path):
    backend = keras.backend.backend()
    env = dict(os.environ, MPLBACKEND="Agg")
    command = [sys.executable, str(RUN), "--device", "gpu", "--quick", "--backends", backend,
               "--out", str(tmp_path)]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    if plain.returncode == 0:  # a GPU is there: the table ran on it
        results = json.loads((tmp_path / "gpu.json").read_text())
        assert results["machine"]["device"].startswith("GPU: ")
    else:
        assert "--device gpu: no GPU found" in plain.stderr and "--allow-cpu" in plain.stderr
        assert not (tmp_path / "gpu.json").exists()
        subprocess.run(command + ["--allow-cpu"], check=True, timeout=600, env=env)
        results = json.loads((tmp_path / "gpu.json").read_text())
        assert results["machine"]["device"].startswith("CPU (GPU mode checked on the CPU")
    settings = results["machine"]["settings"]
    assert settings["device_mode"] == "gpu" and settings["batch"] == 4
    records = [r for r in results["records"] if r["impl"] == "deeprnn"]
    assert records and all(r["backend"] == backend and "train_s" in r for r in records)
    assert "keras-deeprnn on " in (tmp_path / "gpu.md").read_text()


def test_dispatch_only_run_reports_its_table_and_no_empty_sections(tmp_path):
    backend = keras.backend.backend()
    subprocess.run(
        [sys.executable, str(RUN), "--quick", "--table", "dispatch", "--backends", backend,
         "--out", str(tmp_path)],
        check=True, timeout=600, env=dict(os.environ, MPLBACKEND="Agg"),
    )
    results = json.loads((tmp_path / "cpu_dispatch.json").read_text())
    assert results["records"] and all(set(r["groups"]) == {"dispatch"} for r in results["records"])
    markdown = (tmp_path / "cpu_dispatch.md").read_text()
    assert "## Dispatch-bound: batch 2, 6 frames, 8 units, 1 thread per backend" in markdown
    # Sections fed only by the main table or the scaling points are left out,
    # not printed empty, and there is no blank scaling figure.
    for section in ("## Against the peers", "## Ratios of training time", "## Scaling",
                    "Training frames per second\n"):
        assert section not in markdown
    assert (tmp_path / "cpu_dispatch_fps.png").stat().st_size > 0
    assert not (tmp_path / "cpu_dispatch_scaling.png").exists()


def test_paper_table_has_every_registered_row_asked_for_with_compile_time_and_the_main_job(tmp_path):
    import pytest

    pytest.importorskip("music21")  # the main job trains on the Bach chorales
    backend = keras.backend.backend()
    env = dict(os.environ, MPLBACKEND="Agg", KERAS_DEEPRNN_CACHE=str(tmp_path / "cache"))
    subprocess.run(
        [sys.executable, str(RUN), "--table", "paper", "--quick", "--backends", backend,
         "--out", str(tmp_path)],
        check=True, timeout=900, env=env,
    )
    results = json.loads((tmp_path / "paper.json").read_text())
    models = results["models"]
    assert [(r["arch"], r["backend"]) for r in models] == [("rnn", backend), ("dots_rnn", backend)]
    for r in models:
        assert "error" not in r, r["error"]
        assert r["units"] == 8 and r["batch"] == 2 and len(r["step_s"]) == 2
        # The compile column is the first step less the median step.
        assert abs(r["compile_s"] - (r["first_step_s"] - r["step_ms"] / 1e3)) < 1e-9
        assert r["first_step_s"] > 0 and r["step_ms"] > 0
    [job] = results["main_job"]
    assert "error" not in job, job["error"]
    assert job["backend"] == backend and job["epochs_run"] == 1
    assert job["wall_s"] >= job["train_time_s"] > 0
    assert "--epochs 1" in job["command"]
    markdown = (tmp_path / "paper.md").read_text()
    assert f"| model | {backend} ms | {backend} compile s |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| `dots_rnn` |"))
    assert row.split(" | ")[1] == f"{models[1]['step_ms']:.1f}"
    assert "## The main job: `keras-deeprnn train --epochs 1`" in markdown
    assert f"| {backend} | {job['wall_s']:.0f} | " in markdown


def test_paper_table_refuses_a_negative_main_job_epochs(tmp_path):
    done = subprocess.run(
        [sys.executable, str(RUN), "--table", "paper", "--quick", "--main-job-epochs", "-1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "--main-job-epochs must be 0 or more. Received: -1" in done.stderr
    assert not (tmp_path / "paper.json").exists()


def test_tf_step_table_divides_each_route_by_jax_in_cpu_time():
    sys.path.insert(0, str(RUN.parent))
    import tf_step

    def timings(ms):
        return {"wall_s": [], "cpu_s": [], "wall_ms": 2 * ms, "cpu_ms": ms}

    cpu = {"jax": 2.0, "tf reads in loop": 5.0, "tf read once": 3.0}
    models = [dict(arch="rnn", units=128, jit_compile="auto", route=route, used_jit_compile=True,
                   calls={name: timings(cpu[route]) for name in tf_step.CALLS if
                          route != "jax" or name != "compiled step"} | (
                       {"compiled step": {"wall_s": [], "cpu_s": []}} if route == "jax" else {}))
              for route in tf_step.ROUTES]
    results = dict(machine=dict(cores=2, load_before=0.5, load_during=0.7, versions={"keras": "3"}),
                   settings=dict(batch=2, seq_len=64, rounds=5, steps=10), models=models)
    lines = tf_step.markdown(results).splitlines()
    assert "| `rnn` | 128 | True | train_on_batch | 4.00 / 2.00 | 10.00 / 5.00 | 6.00 / 3.00 | " \
           "2.50x | 1.50x |" in lines
    # JAX has no directly called compiled step: an empty cell, no ratio.
    assert "| `rnn` | 128 | True | compiled step |  | 10.00 / 5.00 | 6.00 / 3.00 |  |  |" in lines
    assert "other jobs held the cores" not in "\n".join(lines)
