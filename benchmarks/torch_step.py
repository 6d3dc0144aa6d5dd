"""PyTorch's training step outside the recurrent loop: its parts, and what was cut.

At the paper's sizes (as in `torch_routes.py`: 88 notes in and out, 128
units, batch 2, one thread) a PyTorch `train_on_batch` spends much of its
time outside the recurrent loop. This script measures, for `rnn` and
`dots_rnn` over 1 frame (the step with almost no loop) and 64 frames:

* the step's parts, process CPU time: the model call, the loss, the loss
  tracker, autograd's backward pass, the optimizer update (gradient
  clipping and Adam), the metrics, and what `train_on_batch` adds around
  `train_step` (entry checks, logs to Python numbers);
* whole `train_on_batch` steps of three variants, alternating in one
  process (reversed every other round), so load that comes and goes falls
  on each alike:
  - `keras step`: Keras's own `train_step` (`_torch_step.LEAN_STEP = False`)
    and the bias added as before, through `ops.pad`;
  - `lean update`: the library's step, clipping and Adam dispatched
    straight to torch (`keras_deeprnn/models/_torch_step.py`), the bias as
    before;
  - `lean update + bias`: also the bias joined to zeros by
    `ops.concatenate` (the library's default).

Every variant computes the same numbers (`tests/models/test_torch_step.py`).

```bash
python benchmarks/torch_step.py            # writes results/torch_step.md and .json
python benchmarks/torch_step.py --quick    # a tiny run that checks the harness
```
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import processes  # noqa: E402

POINTS = (("rnn", 128, 1), ("rnn", 128, 64), ("dots_rnn", 128, 1), ("dots_rnn", 128, 64))
VARIANTS = ("keras step", "lean update", "lean update + bias")
PARTS = ("call", "loss", "loss tracker", "backward", "update", "metrics", "around train_step")


def run_point(arch, units, frames, rounds, steps):
    """One model, in this process (`KERAS_BACKEND=torch`): its parts and variants."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import keras
    from keras import ops

    import keras_deeprnn as kdr
    from keras_deeprnn.cells import deep_transition
    from keras_deeprnn.models import _torch_step

    cell = deep_transition.DeepTransitionCell
    concatenated = cell.project_inputs

    def padded(self, inputs, training=False):
        # The bias as the cell added it before: `ops.pad`, an eager Operation.
        inputs = self.apply_input_dropout(inputs, training)
        projected = ops.matmul(inputs, self.noisy(self.input_kernel, training))
        if self.bias is None:
            return projected
        if self.shortcut:
            return projected + ops.pad(self.bias, [(0, self._top_width)])
        return projected + self.bias

    keras.utils.set_random_seed(0)
    model = kdr.build_model(arch, input_dim=88, output_dim=88, units=units,
                            output_activation="sigmoid")
    model.compile()  # Adam, clipnorm 1, binary cross-entropy: the package's defaults
    rng = np.random.default_rng(0)
    x = (rng.random((2, frames, 88)) < 0.1).astype("float32")
    for _ in range(60):  # past the whole-sequence route's switch to TorchScript
        model.train_on_batch(x, x)

    setups = {"keras step": (False, padded), "lean update": (True, padded),
              "lean update + bias": (True, concatenated)}
    cpu = {v: [] for v in VARIANTS}
    wall = {v: [] for v in VARIANTS}
    for round_ in range(rounds):
        for variant in (VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]):
            _torch_step.LEAN_STEP, cell.project_inputs = setups[variant]
            for _ in range(steps):
                start, start_cpu = time.perf_counter(), time.thread_time()
                model.train_on_batch(x, x)
                cpu[variant].append(time.thread_time() - start_cpu)
                wall[variant].append(time.perf_counter() - start)
    _torch_step.LEAN_STEP, cell.project_inputs = setups["lean update + bias"]
    parts = _parts(model, x, rounds * steps)
    return dict(arch=arch, units=units, frames=frames,
                cpu_ms={v: 1e3 * statistics.median(t) for v, t in cpu.items()},
                wall_ms={v: 1e3 * statistics.median(t) for v, t in wall.items()},
                parts_ms=parts, load=os.getloadavg()[0])


def _parts(model, x, steps):
    """Median CPU ms of each part of the library's step (`_torch_step._train_step`'s
    body, timed piece by piece), and of `train_on_batch` less the parts."""
    from keras_deeprnn.models import _torch_step

    times = {p: [] for p in PARTS}
    for _ in range(steps):
        clock = [time.thread_time()]

        def lap(part):
            now = time.thread_time()
            times[part].append(now - clock[0])
            clock[0] = now

        whole = time.thread_time()
        y_pred = model(x, training=True)
        lap("call")
        model.zero_grad()
        loss = model._compute_loss(x=x, y=x, y_pred=y_pred, sample_weight=None, training=True)
        lap("loss")
        model._loss_tracker.update_state(loss, sample_weight=x.shape[0])
        lap("loss tracker")
        loss.backward()
        lap("backward")
        trainable = model.trainable_weights[:]
        _torch_step.apply_gradients(model.optimizer, [v.value.grad for v in trainable], trainable)
        lap("update")
        model.compute_metrics(x, x, y_pred, sample_weight=None)
        lap("metrics")
        inside = time.thread_time() - whole
        start = time.thread_time()
        model.train_on_batch(x, x)
        times["around train_step"].append(max(0.0, time.thread_time() - start - inside))
    return {p: 1e3 * statistics.median(t) for p, t in times.items()}


def markdown(results):
    records = results["records"]
    lines = [
        "# PyTorch's training step outside the recurrent loop",
        "",
        f"{results['machine']}. Load average (1 min) before {results['load_before']:.2f}, "
        f"median during {statistics.median(r['load'] for r in records):.2f}: the 2 cores were "
        "shared with other jobs, so compare within this file; process CPU time is the steadier "
        "figure under load. One thread. `train_on_batch`, batch 2, 88 notes in and out, the "
        "package's `compile()` defaults (Adam, clipnorm 1, binary cross-entropy); medians of "
        f"{results['settings']['rounds'] * results['settings']['steps']} steps per variant, "
        "rounds alternating over the variants in one process.",
        "",
        "## Whole steps, process CPU ms (wall ms)",
        "",
        "| model | units | frames | " + " | ".join(VARIANTS) + " | saved |",
        "| --- " * (4 + len(VARIANTS)) + "|",
    ]
    for r in records:
        cells = [f"{r['cpu_ms'][v]:.2f} ({r['wall_ms'][v]:.2f})" for v in VARIANTS]
        saved = r["cpu_ms"][VARIANTS[0]] - r["cpu_ms"][VARIANTS[-1]]
        lines.append(f"| `{r['arch']}` | {r['units']} | {r['frames']} | " + " | ".join(cells)
                     + f" | {saved:.2f} ({100 * saved / r['cpu_ms'][VARIANTS[0]]:.0f} %) |")
    lines += ["", "## The library's step in parts, process CPU ms", "",
              "| model | units | frames | " + " | ".join(PARTS) + " |",
              "| --- " * (3 + len(PARTS)) + "|"]
    for r in records:
        lines.append(f"| `{r['arch']}` | {r['units']} | {r['frames']} | "
                     + " | ".join(f"{r['parts_ms'][p]:.2f}" for p in PARTS) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10, help="steps per round and variant")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: checks the harness")
    parser.add_argument("--out", default=str(HERE / "results" / "torch_step"))
    args = parser.parse_args()
    if args.point:
        arch, units, frames, rounds, steps = json.loads(args.point)
        print("RESULT " + json.dumps(run_point(arch, units, frames, rounds, steps)), flush=True)
        return
    rounds, steps = (1, 2) if args.quick else (args.rounds, args.steps)
    points = [("rnn", 8, 2), ("dots_rnn", 8, 2)] if args.quick else POINTS
    load_before = os.getloadavg()[0]
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(HERE.parent))
    records = []
    for arch, units, frames in points:
        # A process per model, so no model's allocations or caches meet another's.
        done = subprocess.run(
            [sys.executable, __file__, "--point", json.dumps([arch, units, frames, rounds, steps])],
            env=env, cwd=HERE.parent, capture_output=True, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        records.append(json.loads(line[len("RESULT "):]))
        print(f"{arch} {units} x {frames}: " + ", ".join(
            f"{v} {records[-1]['cpu_ms'][v]:.2f} ms" for v in VARIANTS), flush=True)
    cpu = processes.cpu_name()
    import torch  # noqa: F401 -- for its version only, after the measurements

    results = dict(machine=f"{cpu}, {os.cpu_count()} cores, python {platform.python_version()}, "
                           f"torch {torch.__version__}",
                   load_before=load_before, records=records,
                   settings=dict(rounds=rounds, steps=steps, quick=args.quick))
    out = pathlib.Path(args.out)
    processes.write_text_atomically(out.with_suffix(".json"), json.dumps(results, indent=1))
    processes.write_text_atomically(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
