"""The paper-size table: what a user waits for with the paper's small models on a CPU.

Every architecture the package registers (`keras_deeprnn.ARCHITECTURES`,
each with its own default depth) on every backend, at the paper's sizes:
128 units, a batch of 2 pieces of 64 frames, 88 notes in and out, one
thread per backend, each backend in its own worker process. Per model:
the median of single `train_on_batch` steps (10 per round, rounds
interleaved across backends, so load that comes and goes falls on all of
them alike) and the compile time, the first step less that median (tracing
and compiling; on TensorFlow with the package's `jit_compile` choice).

Then the main job, `keras-deeprnn train` with its defaults (DOT(S)-RNN,
200 units, batch 2, the Bach chorales) for `--main-job-epochs` epochs on
each backend, one after the other, one thread each, with an empty JAX
compilation cache so the first run's compiling counts: its wall time
(process start to exit: imports, data, compiling, training, scoring) and
the training time the run itself records.

`run.py --table paper` runs it; `--quick` shrinks it to check the harness.
Imports no backend: the workers and the training runs do.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

PAPER = dict(units=128, batch=2, seq_len=64, rounds=3, steps_per_round=10, main_job_epochs=5)
QUICK_PAPER = dict(units=8, batch=2, seq_len=6, rounds=1, steps_per_round=2, main_job_epochs=1)
QUICK_ARCHS = ("rnn", "dots_rnn")


def one_thread_env(backend):
    """The environment of a one-thread process of `backend`."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1",
               TF_NUM_INTEROP_THREADS="1")
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                        " intra_op_parallelism_threads=1").strip()
    return env


def model_table(cfg, backends, worker, quick=False, say=print):
    """One record per (architecture, backend); `worker(backend)` answers specs."""
    archs = worker(backends[0]).run(dict(impl="architectures")).get("architectures", [])
    if quick:
        archs = [a for a in archs if a in QUICK_ARCHS]
    records = [dict(arch=arch, backend=backend, units=cfg["units"], batch=cfg["batch"],
                    seq_len=cfg["seq_len"], step_s=[], loads=[])
               for arch in archs for backend in backends]
    started = time.perf_counter()
    for round_ in range(cfg["rounds"]):
        order = records if round_ % 2 == 0 else records[::-1]
        for n, record in enumerate(order):
            spec = dict(impl="deeprnn", registered=True, arch=record["arch"], units=cfg["units"],
                        batch=cfg["batch"], seq_len=cfg["seq_len"], threads=1, steps=1,
                        infer_steps=1, repeats=cfg["steps_per_round"])
            result = worker(record["backend"]).run(spec)
            if "error" in result:
                record["error"] = result["error"]
            else:
                record["step_s"] += result["train_step_s"]
                if "first_step_s" in result:
                    record["first_step_s"] = result["first_step_s"]
            record["loads"].append(os.getloadavg()[0])
            say(f"[{time.perf_counter() - started:6.0f} s, paper round {round_ + 1}/{cfg['rounds']}, "
                f"{n + 1}/{len(order)}] {record['arch']} on {record['backend']}: "
                + (record.get("error") or f"{1e3 * statistics.median(record['step_s']):.1f} ms"))
    for record in records:
        if record["step_s"]:
            record["step_ms"] = 1e3 * statistics.median(record["step_s"])
            record["compile_s"] = record["first_step_s"] - record["step_ms"] / 1e3
        record["load"] = statistics.median(record["loads"])
    return records


def main_job(backend, epochs, quick=False):
    """Wall time of `keras-deeprnn train` (the main job) on `backend`, one thread."""
    with tempfile.TemporaryDirectory(prefix="kdr-main-job-") as tmp:
        env = one_thread_env(backend)
        # A first run: nothing compiled before (the data cache is kept).
        env["JAX_COMPILATION_CACHE_DIR"] = str(pathlib.Path(tmp) / "jax-cache")
        command = [sys.executable, "-m", "keras_deeprnn", "train", "--epochs", str(epochs),
                   "--run-dir", str(pathlib.Path(tmp) / "run"), "--quiet",
                   "--generate-frames", "0"]
        if quick:
            command += ["--units", "8", "--limit", "4"]
        load_before, start = os.getloadavg()[0], time.perf_counter()
        # From the repository root, so `-m keras_deeprnn` is the copy beside this file.
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              cwd=pathlib.Path(__file__).resolve().parents[1])
        wall = time.perf_counter() - start
        record = dict(backend=backend, epochs=epochs, wall_s=wall, load_before=load_before,
                      load_after=os.getloadavg()[0], command=" ".join(command[1:]))
        result_file = pathlib.Path(tmp) / "run" / "result.json"
        if done.returncode or not result_file.exists():
            record["error"] = (f"exit code {done.returncode}: "
                               + (done.stderr.strip().splitlines() or ["no output"])[-1])
            return record
        result = json.loads(result_file.read_text())
        record.update(train_time_s=result.get("train_time_s"), epochs_run=result.get("epochs_run"),
                      test=result.get("test"))
        return record


def markdown(results):
    m, cfg = results["machine"], results["settings"]
    backends = cfg["backends"]
    others = [b for b in backends if b != "jax"] if "jax" in backends else []
    columns = (["model"] + [f"{b} {what}" for b in backends for what in ("ms", "compile s")]
               + [f"{b} / jax" for b in others])
    # The benchmark's own worker holds one core; more than the cores' worth
    # of load during the run means other jobs shared them. (The 1-minute
    # figure before lags: it still counts work that has just ended.)
    loaded = results["load_during"]["median"] > m["cores"]
    lines = [
        f"# keras-deeprnn at the paper's sizes: {cfg['units']} units, batch {cfg['batch']}, "
        f"{cfg['seq_len']} frames, 1 thread per backend",
        "",
        f"{m['cpu']}, {m['cores']} cores. "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ". "
        f"Load average (1 min) before {m['load_before'][0]:.2f}, median during "
        f"{results['load_during']['median']:.2f} (max {results['load_during']['max']:.2f})"
        + (": measured while other jobs held the cores, so every figure is slower than on an "
           "idle machine and PyTorch the most; compare ratios within this file"
           if loaded else "") + ".",
        "",
        f"Median of {cfg['rounds'] * cfg['steps_per_round']} single `train_on_batch` steps (ms); "
        "compile: the first step less that median (s). TensorFlow with the package's default "
        "`jit_compile` choice (`keras_deeprnn.compilation.choose_jit_compile`).",
        "",
        "| " + " | ".join(columns) + " |",
        "| --- " * len(columns) + "|",
    ]
    by = {(r["arch"], r["backend"]): r for r in results["models"]}
    for arch in dict.fromkeys(r["arch"] for r in results["models"]):
        cells = []
        for b in backends:
            r = by.get((arch, b), {})
            cells += ([f"{r['step_ms']:.1f}", f"{r['compile_s']:.1f}"] if "step_ms" in r
                      else ["error", "error"])
        jax_ms = by.get((arch, "jax"), {}).get("step_ms")
        for b in others:
            ms = by.get((arch, b), {}).get("step_ms")
            cells.append(f"{ms / jax_ms:.1f}x" if ms and jax_ms else "")
        lines.append(f"| `{arch}` | " + " | ".join(cells) + " |")
    errors = [r for r in results["models"] if "error" in r]
    if errors:
        lines += [""] + [f"- `{r['arch']}` on {r['backend']}: {r['error']}" for r in errors]
    jobs = results.get("main_job") or []
    if jobs:
        lines += [
            "",
            f"## The main job: `keras-deeprnn train --epochs {jobs[0]['epochs']}`",
            "",
            "DOT(S)-RNN, 200 units, batch 2, the Bach chorales; one thread; an empty JAX "
            "compilation cache (a first run). Wall: process start to exit (imports, data, "
            "compiling, training, scoring); training: the epochs as the run records them.",
            "",
            "| backend | wall s | training s | epochs | test NLL | load before / after |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for j in jobs:
            if "error" in j:
                lines.append(f"| {j['backend']} | error: {j['error']} | | | | |")
                continue
            lines.append(f"| {j['backend']} | {j['wall_s']:.0f} | {j['train_time_s']:.0f} | "
                         f"{j['epochs_run']} | {_nll(j.get('test'))} | "
                         f"{j['load_before']:.1f} / {j['load_after']:.1f} |")
    return "\n".join(lines) + "\n"


def _nll(test):
    """The test score of a main-job result: a number, or the first number of a dict."""
    if isinstance(test, dict):
        test = next((v for v in test.values() if isinstance(v, (int, float))), None)
    return f"{test:.3f}" if isinstance(test, (int, float)) else ""
