"""TensorFlow's training step at the paper's sizes, against JAX's, and where its time went.

At the paper's sizes (as in `paper.py`): a batch of 2 pieces of 64 frames,
88 notes in and out, 128 units, the registered rows `rnn`, `dts_rnn` and
`dots_rnn` with their own defaults, one thread per process
(`OMP_NUM_THREADS=1`, TensorFlow's intra- and inter-op pools of 1, XLA's CPU
client on one thread), TensorFlow with the package's `jit_compile` choice
(XLA at these sizes). Each route runs in a worker process of its own,
started once; the rounds alternate over the workers (reversed every other
round), so load that comes and goes falls on every route alike. Per step:
the median wall time and the median process CPU time (on a loaded machine
the CPU time is the steadier of the two: it leaves out the waits for a core).

* `jax`: the JAX backend, the baseline every ratio divides by.
* `tf reads in loop`: `DeepRNN` with `READ_WEIGHTS_ONCE = False`: the cell
  reads its weights inside TensorFlow's time loop, as Keras's own RNN does,
  and the loop's gradient keeps a copy of every kernel per frame.
* `tf read once`: the weights read once before the loop (the library's
  default under XLA).

Per route, three ways to call the same step: `train_on_batch` (what the
paper table times), `fit` with `steps_per_execution=8` (several steps per
call into the compiled function) and, on TensorFlow, the compiled step
called directly with tensors (`tf.function(model.train_step)`: no argument
conversion, no metric reset, no logs), which leaves the step's own
arithmetic. Then one wide point, `dts_rnn` at 256 units: with the package's
choice (no XLA: the weights are read in the loop on both TensorFlow routes,
the check that nothing got slower there) and with `jit_compile=True`.

```bash
python benchmarks/tf_step.py            # writes results/tf_step.md and .json (about 10 minutes)
python benchmarks/tf_step.py --quick    # a tiny run that checks the harness
```
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import paper  # noqa: E402
import processes  # noqa: E402
import workload  # noqa: E402

ROUTES = ("jax", "tf reads in loop", "tf read once")
MODELS = (("rnn", 128, "auto"), ("dts_rnn", 128, "auto"), ("dots_rnn", 128, "auto"),
          ("dts_rnn", 256, "auto"), ("dts_rnn", 256, True))
CALLS = ("train_on_batch", "fit, 8 steps per execution", "compiled step")
FULL = dict(batch=2, seq_len=64, rounds=5, steps=10, models=MODELS)
QUICK = dict(batch=2, seq_len=6, rounds=1, steps=2,
             models=(("rnn", 8, "auto"), ("dts_rnn", 8, True)))
FIT_BATCHES = 32  # per `fit` call: 4 executions of 8 steps


# --- the worker: one route, one process -------------------------------------------------

def worker(route):
    import keras
    import numpy as np

    import keras_deeprnn as kdr
    from keras_deeprnn.layers import deep_rnn

    tf = None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    # Read when a step is traced: set before any model of this process traces one.
    deep_rnn.READ_WEIGHTS_ONCE = route != "tf reads in loop"
    models = {}

    def calls(spec):
        key = json.dumps(spec, sort_keys=True)
        if key in models:
            return models[key]
        x, y = workload.piano_rolls(spec["batch"], spec["seq_len"])
        keras.utils.set_random_seed(0)
        model = kdr.build_model(spec["arch"], input_dim=workload.NOTES, output_dim=workload.NOTES,
                                units=spec["units"], output_activation="sigmoid")
        # No `steps`: these time steady steps, so XLA is chosen as for a long run.
        jit = kdr.compilation.choose_jit_compile(model, spec["jit_compile"], batch_size=spec["batch"])
        model.compile(jit_compile=jit, steps_per_execution=8)
        xs, ys = np.concatenate([x] * FIT_BATCHES), np.concatenate([y] * FIT_BATCHES)
        found = {
            "train_on_batch": lambda: model.train_on_batch(x, y),
            "fit, 8 steps per execution": lambda: model.fit(xs, ys, batch_size=spec["batch"],
                                                            epochs=1, verbose=0, shuffle=False),
        }
        if tf is not None:
            step = tf.function(model.train_step, jit_compile=model.jit_compile, reduce_retracing=True)
            xt, yt = tf.constant(x), tf.constant(y)
            found["compiled step"] = lambda: step((xt, yt))["loss"].numpy()
        first = {}
        for name, call in found.items():
            start = time.perf_counter()
            call()
            first[name] = time.perf_counter() - start
            call()
        models[key] = found, first, jit
        return models[key]

    for line in sys.stdin:
        spec = json.loads(line)
        found, first, jit = calls(spec["model"])
        result = {"jit_compile": jit, "first_s": first}
        for name, call in found.items():
            per = FIT_BATCHES if name.startswith("fit") else 1
            wall, cpu = [], []
            for _ in range(max(1, spec["steps"] // 5) if per > 1 else spec["steps"]):
                start, start_cpu = time.perf_counter(), time.process_time()
                call()
                wall.append((time.perf_counter() - start) / per)
                cpu.append((time.process_time() - start_cpu) / per)
            result[name] = {"wall_s": wall, "cpu_s": cpu}
        print("RESULT " + json.dumps(result), flush=True)


class Worker(processes.LineWorker):
    def __init__(self, route):
        env = paper.one_thread_env("jax" if route == "jax" else "tensorflow")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        super().__init__([__file__, "--worker", route], env=env, cwd=HERE.parent)


# --- the parent: interleaved rounds, the table ------------------------------------------

def measure(cfg, say=print):
    workers = {route: Worker(route) for route in ROUTES}
    records = [dict(arch=arch, units=units, jit_compile=jit, route=route, loads=[],
                    calls={name: {"wall_s": [], "cpu_s": []} for name in CALLS})
               for arch, units, jit in cfg["models"] for route in ROUTES]
    started = time.perf_counter()
    try:
        for round_ in range(cfg["rounds"]):
            order = records if round_ % 2 == 0 else records[::-1]
            for record in order:
                model = dict(arch=record["arch"], units=record["units"], batch=cfg["batch"],
                             seq_len=cfg["seq_len"], jit_compile=record["jit_compile"])
                result = workers[record["route"]].run(dict(model=model, steps=cfg["steps"]))
                record["loads"].append(os.getloadavg()[0])
                if "error" in result:
                    record["error"] = result["error"]
                    continue
                record["used_jit_compile"], record["first_s"] = result["jit_compile"], result["first_s"]
                for name in CALLS:
                    for what in ("wall_s", "cpu_s"):
                        record["calls"][name][what] += result.get(name, {}).get(what, [])
            say(f"[{time.perf_counter() - started:5.0f} s] round {round_ + 1}/{cfg['rounds']}, "
                f"load {os.getloadavg()[0]:.1f}")
    finally:
        for w in workers.values():
            w.close()
    for record in records:
        for timings in record["calls"].values():
            for what in ("wall_s", "cpu_s"):
                if timings[what]:
                    timings[what.replace("_s", "_ms")] = 1e3 * statistics.median(timings[what])
        record["load"] = statistics.median(record["loads"])
    return records


def markdown(results):
    cfg, m = results["settings"], results["machine"]
    lines = [
        f"# TensorFlow's training step at the paper's sizes: batch {cfg['batch']}, "
        f"{cfg['seq_len']} frames, 1 thread per process",
        "",
        f"{m['cores']} cores; {', '.join(f'{k} {v}' for k, v in m['versions'].items())}. Load "
        f"average (1 min) before {m['load_before']:.2f}, median during {m['load_during']:.2f}"
        + (" (other jobs held the cores: the wall times wait for a core, the CPU times do not; "
           "compare ratios within this file)" if m["load_during"] > m["cores"] else "") + ".",
        "",
        f"Median of {cfg['rounds'] * cfg['steps']} steps per cell (of `fit`: of "
        f"{cfg['rounds'] * max(1, cfg['steps'] // 5)} calls of {FIT_BATCHES} steps, per step), "
        "ms: wall / process CPU. "
        "`tf reads in loop`: the weights read at every step inside TensorFlow's loop (before); "
        "`tf read once`: read once before it (the library's default under XLA). XLA: the "
        "`jit_compile` TensorFlow ran with.",
        "",
        "| model | units | XLA | call | jax | tf reads in loop | tf read once | "
        "in loop / jax (CPU) | read once / jax (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by = {(r["arch"], r["units"], str(r["jit_compile"]), r["route"]): r for r in results["models"]}
    for arch, units, jit in dict.fromkeys((r["arch"], r["units"], str(r["jit_compile"]))
                                          for r in results["models"]):
        tf_jit = by[(arch, units, jit, "tf read once")].get("used_jit_compile")
        for name in CALLS:
            cells, cpu = [], {}
            for route in ROUTES:
                t = by[(arch, units, jit, route)]["calls"][name]
                cells.append(f"{t['wall_ms']:.2f} / {t['cpu_ms']:.2f}" if "cpu_ms" in t else "")
                cpu[route] = t.get("cpu_ms")
            ratios = [f"{cpu[r] / cpu['jax']:.2f}x" if cpu[r] and cpu["jax"] else ""
                      for r in ROUTES[1:]]
            lines.append(f"| `{arch}` | {units} | {tf_jit} | {name} | " + " | ".join(cells + ratios)
                         + " |")
    errors = [r for r in results["models"] if "error" in r]
    lines += [""] + [f"- `{r['arch']}` {r['units']} on {r['route']}: {r['error']}" for r in errors]
    return "\n".join(lines).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run, to check the harness")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="tf_step", help="file name prefix of the results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    cfg = dict(QUICK if args.quick else FULL)
    import importlib.metadata as md

    load_before = os.getloadavg()[0]
    models = measure(cfg)
    cfg["models"] = [list(m) for m in cfg["models"]]
    results = {
        "machine": dict(cores=os.cpu_count(), load_before=load_before,
                        load_during=statistics.median(load for r in models for load in r["loads"]),
                        versions={p: md.version(p) for p in ("keras", "tensorflow-cpu", "jax")}),
        "settings": cfg, "models": models,
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    processes.write_text_atomically(out / f"{args.name}.json", json.dumps(results, indent=1))
    processes.write_text_atomically(out / f"{args.name}.md", markdown(results))
    print(f"wrote {out}/{args.name}.json, .md")


if __name__ == "__main__":
    main()
