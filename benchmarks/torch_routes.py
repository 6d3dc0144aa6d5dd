"""PyTorch routes past the eager step loop, measured against JAX on one machine.

At the paper's sizes (as in `paper.py`): `train_on_batch` on a batch of
2 pieces of 64 frames, 88 notes in and out, one thread per
process (`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`), median of
`rounds * steps` single steps, for `dots_rnn` (128 units), `dts_rnn` (32),
`rnn` (128), `rhn` (128), `deep_gru` (128, two `FusedGRU` layers),
`dg_lstm` (128), `dots_lstm` (128) and `gf_rnn` (128, 3 levels). Each
route runs in a worker process of its own, started once; the rounds
alternate over the workers (reversed every other round), so load that comes
and goes falls on every route alike:

* `jax`: the JAX backend, the baseline every ratio divides by.
* `torch traced`: `DeepRNN`'s traced step replayed under autograd (the
  whole-sequence functions switched off): what the library did before.
  For `deep_gru` that is `FusedGRU` on `torch._VF.gru`; on every other
  torch route it runs its own whole-sequence function (`_gru_bptt.py`),
  which `torch.compile` does not change.
* `torch compiled`: the same traced step graph given to `torch.compile`
  (inductor, `dynamic=False`), one compile per step signature; autograd
  goes through AOTAutograd's compiled forward and backward.
* `torch sequence`: the whole sequence as one autograd function with a
  hand-written backward pass through time
  (`keras_deeprnn/layers/_transition_bptt.py`), its loops in Python: what
  the library runs for a process's first sequences.
* `torch sequence scripted`: the same with its loops compiled by
  TorchScript (`_transition_loops.py`): what the library runs after that.
  `rhn`'s function (`_highway_bptt.py`), `dg_lstm`'s
  (`_depth_gated_bptt.py`), `dots_lstm`'s (`_transition_lstm_bptt.py`)
  and `gf_rnn`'s (`_gated_feedback_bptt.py`) have Python loops only: both
  sequence routes run the same code for them.

Also per torch route: the same models over 1 frame (what `train_on_batch`
costs outside the loop: the model call, the loss, clipping and Adam), and
one wide point (`dts_rnn`, 256 units, batch 32, 100 frames) to check that
no route is slower where the arithmetic dominates; and the main job's model
(DOT(S)-RNN, 200 units, input dropout 0.2, output dropout 0.5) over the
paper-size batch, against JAX. Compile: the first
step less the median step.

```bash
python benchmarks/torch_routes.py            # writes results/torch_routes.md and .json
python benchmarks/torch_routes.py --quick    # a tiny run that checks the harness
python benchmarks/torch_routes.py --models dg_lstm --routes "jax,torch traced,torch sequence" \
    --out /tmp/dg_lstm                       # some models at the paper's sizes only, some routes
```
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import processes  # noqa: E402

ROUTES = ("jax", "torch traced", "torch compiled", "torch sequence", "torch sequence scripted")
MODELS = (("dots_rnn", 128), ("dts_rnn", 32), ("rnn", 128), ("rhn", 128), ("deep_gru", 128), ("dg_lstm", 128),
          ("dots_lstm", 128), ("gf_rnn", 128))
PAPER = dict(batch=2, seq_len=64)
WIDE = dict(arch="dts_rnn", units=256, batch=32, seq_len=100)
# The main job's model (`keras_deeprnn.training.config.MAIN_JOB_MODEL`: DOT(S)-RNN,
# 200 units, input and output dropout), in training, over the same batch.
MAIN_JOB = dict(arch="dots_rnn", units=200, **PAPER, options=dict(dropout=0.2, output_dropout=0.5))


# --- the worker: one route, one process -------------------------------------------------

def worker(route):
    import numpy as np

    if route.startswith("torch"):
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    import keras

    import keras_deeprnn as kdr
    from keras_deeprnn.layers import deep_rnn

    if route != "jax":
        from keras_deeprnn.layers import _gru_bptt
        from keras_deeprnn.layers import _transition_bptt

        deep_rnn.WHOLE_SEQUENCE = route.startswith("torch sequence")
        _gru_bptt.WHOLE_SEQUENCE = route != "torch traced"
        _transition_bptt.SCRIPT_AFTER = -1 if route.endswith("scripted") else 10**9
    if route == "torch compiled":
        traced = deep_rnn._trace

        def compiled_trace(*args):
            entry = traced(*args)
            if entry is None:
                return None
            return (torch.compile(entry[0], dynamic=False), *entry[1:])

        deep_rnn._trace = compiled_trace
    models = {}
    for line in sys.stdin:
        spec = json.loads(line)
        key = json.dumps(spec.get("options", {}), sort_keys=True), spec["arch"], spec["units"], spec["batch"], spec["seq_len"]
        answer = {}
        try:
            if key not in models:
                keras.utils.set_random_seed(0)
                model = kdr.build_model(spec["arch"], input_dim=88, output_dim=88, units=spec["units"],
                                        output_activation="sigmoid", **spec.get("options", {}))
                model.compile()  # Adam, clipnorm 1, binary cross-entropy: the package's defaults
                rng = np.random.default_rng(0)
                x = (rng.random((spec["batch"], spec["seq_len"], 88)) < 0.1).astype("float32")
                start = time.perf_counter()
                model.train_on_batch(x, x)
                answer["first_step_s"] = time.perf_counter() - start
                models[key] = (model, x)
            model, x = models[key]
            times, cpu = [], []
            for _ in range(spec["steps"]):
                start, start_cpu = time.perf_counter(), time.process_time()
                loss = float(model.train_on_batch(x, x))
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            answer.update(step_s=times, cpu_s=cpu, loss=loss)
        except Exception as error:  # noqa: BLE001 -- reported in the table, the run goes on
            answer["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        print("RESULT " + json.dumps(answer), flush=True)


# --- the driver ---------------------------------------------------------------------------

class Worker(processes.LineWorker):
    def __init__(self, route):
        backend = "jax" if route == "jax" else "torch"
        env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parent))
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        super().__init__([__file__, "--worker", route], env=env, cwd=HERE.parent)


def measure(rounds, steps, quick, models=None, routes=ROUTES):
    """Every point, or with `models` (names in `MODELS`) those at the paper's sizes only."""
    chosen = [m for m in MODELS if m[0] in models] if models else MODELS[:1] if quick else MODELS
    points = [dict(arch=a, units=(8 if quick else u), **PAPER, table="paper") for a, u in chosen]
    if not models:
        points += [dict(p, seq_len=1, table="outside the loop") for p in points]
        points.append(dict(MAIN_JOB, units=8, seq_len=6, table="main-job model") if quick
                      else dict(MAIN_JOB, table="main-job model"))
        points.append(dict(WIDE, units=8, batch=2, seq_len=6, table="wide") if quick else dict(WIDE, table="wide"))
    if quick:
        points[0]["seq_len"] = 6
    workers = {route: Worker(route) for route in routes}
    records = [dict(point, route=route, step_s=[], cpu_s=[], loads=[]) for point in points for route in routes
               if route.startswith("torch") or point["table"] in ("paper", "main-job model")]
    started = time.perf_counter()
    try:
        for round_ in range(rounds):
            for n, record in enumerate(records if round_ % 2 == 0 else records[::-1]):
                spec = {k: record[k] for k in ("arch", "units", "batch", "seq_len", "options") if k in record}
                wide = record["table"] == "wide"
                result = workers[record["route"]].run(dict(spec, steps=max(1, steps // 3) if wide else steps))
                record["loads"].append(os.getloadavg()[0])
                if "error" in result:
                    record["error"] = result["error"]
                    continue
                record["step_s"] += result["step_s"]
                record["cpu_s"] += result["cpu_s"]
                record.setdefault("first_step_s", result.get("first_step_s"))
                print(f"[{time.perf_counter() - started:5.0f} s, round {round_ + 1}/{rounds}, "
                      f"{n + 1}/{len(records)}] {record['route']} {record['table']} {record['arch']} "
                      f"{record['units']}: {1e3 * statistics.median(result['step_s']):.2f} ms", flush=True)
    finally:
        for w in workers.values():
            w.close()
    for record in records:
        if record["step_s"]:
            record["step_ms"] = 1e3 * statistics.median(record["step_s"])
            record["cpu_ms"] = 1e3 * statistics.median(record["cpu_s"])
            record["compile_s"] = record["first_step_s"] - record["step_ms"] / 1e3
        record["load"] = statistics.median(record["loads"])
    return records, time.perf_counter() - started


def markdown(results):
    records, cfg = results["records"], results["settings"]
    by = {(r["table"], r["arch"], r["route"]): r for r in records}
    torch_routes = [r for r in ROUTES if r != "jax"]
    lines = [
        "# PyTorch routes past the eager step loop, against JAX",
        "",
        f"{results['machine']}. Load average (1 min) before {results['load_before']:.2f}, median "
        f"during {statistics.median(r['load'] for r in records):.2f}: the 2 cores were shared with "
        "other jobs, so compare routes within this file (process CPU time is the steadier "
        "figure under load). One thread per process.",
        "",
        f"Medians of {cfg['rounds'] * cfg['steps']} single `train_on_batch` steps (wide: "
        f"{cfg['rounds'] * max(1, cfg['steps'] // 3)}), rounds alternating over the routes. "
        "Models with the package's defaults (`build_model`, `compile()`: Adam, clipnorm 1, "
        "binary cross-entropy). `outside the loop`: the same model over 1 frame.",
    ]
    for title, key, compile_column in (("Process CPU ms per step", "cpu_ms", False),
                                       ("Wall ms per step (compile s: the first step less the median)",
                                        "step_ms", True)):
        lines += ["", f"## {title}", "",
                  "| model | units | batch x frames | " + " | ".join(ROUTES) + " | "
                  + " | ".join(f"{r} / jax" for r in torch_routes) + " |",
                  "| --- " * (3 + len(ROUTES) + len(torch_routes)) + "|"]
        for table, arch in dict.fromkeys((r["table"], r["arch"]) for r in records):
            r = next(by[table, arch, q] for q in ROUTES if (table, arch, q) in by)
            row = [f"`{arch}`" + ("" if table == "paper" else f" ({table})"), str(r["units"]),
                   f"{r['batch']} x {r['seq_len']}"]
            for q in ROUTES:
                other = by.get((table, arch, q))
                if other is None:
                    row.append("")
                elif "error" in other:
                    row.append("error")
                else:
                    row.append(f"{other[key]:.2f}" + (f" ({other['compile_s']:.1f} s)" if compile_column else ""))
            base = by.get((table, arch, "jax"), {}).get(key)
            for q in torch_routes:
                ms = by.get((table, arch, q), {}).get(key)
                row.append(f"{ms / base:.1f}x" if ms and base else "")
            lines.append("| " + " | ".join(row) + " |")
    errors = [r for r in records if "error" in r]
    lines += [""] + [f"- {r['route']}, `{r['arch']}` ({r['table']}): {r['error']}" for r in errors]
    return "\n".join(lines).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="steps per round and model")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks the harness")
    parser.add_argument("--models", help="comma-separated names from MODELS: those at the paper's sizes only")
    parser.add_argument("--routes", help=f"comma-separated routes of {', '.join(ROUTES)} (default: all)")
    parser.add_argument("--out", default=str(HERE / "results" / "torch_routes"))
    args = parser.parse_args()
    models = args.models.split(",") if args.models else None
    unknown = sorted(set(models or ()) - {name for name, _ in MODELS})
    if unknown:
        parser.error(f"--models: got {', '.join(unknown)}; expected names from {', '.join(n for n, _ in MODELS)}")
    if args.worker:
        return worker(args.worker)
    routes = tuple(r.strip() for r in args.routes.split(",")) if args.routes else ROUTES
    if set(routes) - set(ROUTES) or "jax" not in routes:
        parser.error(f"--routes: got {args.routes!r}; expected routes from {', '.join(ROUTES)}, jax among them")
    rounds, steps = (1, 2) if args.quick else (args.rounds, args.steps)
    load_before = os.getloadavg()[0]
    records, wall = measure(rounds, steps, args.quick, models, routes)
    cpu = processes.cpu_name()
    results = dict(machine=f"{cpu}, {os.cpu_count()} cores, python {platform.python_version()}",
                   load_before=load_before, wall_s=wall, records=records,
                   settings=dict(rounds=rounds, steps=steps, quick=args.quick))
    out = pathlib.Path(args.out)
    processes.write_text_atomically(out.with_suffix(".json"), json.dumps(results, indent=1))
    processes.write_text_atomically(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
