"""Measurements inside one process of one backend (started by `run.py`).

`python benchmarks/worker.py` reads one JSON spec per line on stdin and
answers each with one line `RESULT {...}`; the backend is the process's
`KERAS_BACKEND`. Models stay alive between specs, so a spec sent again (the
next round of `run.py`) times the same compiled model once more.

For a model spec the answer holds:

* `train_step_s`, `infer_step_s`: wall-clock seconds per training step and
  per forward pass of one batch, one value per repeat, each the mean of
  `steps` calls; `train_cpu_s`: process CPU seconds per training step.
* first time only: `first_step_s` (the first training step of a new model:
  tracing, compilation and the step itself), `first_infer_s`, and
  `peak_rss_mb`: the growth of the process's peak resident memory from just
  before the first step to the end of the second (Linux
  `VmHWM`, reset through `/proc/self/clear_refs` after freed memory has
  been handed back with `malloc_trim`): activations kept for the backward
  pass, gradients, optimizer slots, plus what compilation allocates.

`impl` picks the model: `deeprnn` (`keras_deeprnn.build_model`),
`keras_layers` (Keras's SimpleRNN/LSTM stacked), `torch_nn`, `torch_eager`,
`jax_scan` (`references.py`); `matmul` measures the machine's matmul
throughput; `devices` answers which accelerators the backend sees;
`architectures` lists the rows the package registers (a `deeprnn` spec
with `registered: true` builds such a row with its own defaults).

The environment sets the rest: `KDR_BENCH_THREADS` (threads per backend,
applied here to PyTorch and TensorFlow; `run.py` sets OpenMP's and XLA's
through their own variables before the backend is imported) and
`KDR_BENCH_DEVICE` (`gpu`: the hand-written PyTorch peers run on CUDA; the
Keras backends and JAX place work on the GPU by themselves).
"""

import ctypes
import gc
import json
import os
import sys
import time

import numpy as np

import workload


def keras_trainer(spec):
    import keras

    keras.utils.set_random_seed(0)
    name, units, jit = spec["arch"], spec["units"], spec.get("jit_compile", "auto")
    if spec["impl"] == "deeprnn":
        import keras_deeprnn as kdr

        # `registered`: a row of `keras_deeprnn.ARCHITECTURES` with its own defaults.
        arch, depth = (name, {}) if spec.get("registered") else workload.depth_of(name, spec.get("depth"))
        model = kdr.build_model(arch, input_dim=workload.NOTES, output_dim=workload.NOTES,
                                units=units, output_activation="sigmoid", **depth)
        # The package's choice (XLA on TensorFlow's CPU where it is faster) unless the spec sets one.
        # No `steps`: these time steady steps, so XLA is chosen as for a long run.
        jit = kdr.compilation.choose_jit_compile(model, jit, batch_size=spec.get("batch", workload.BATCH))
        model.compile(jit_compile=jit)  # Adam, clipnorm 1, binary cross-entropy
    else:
        layer, num_layers = workload.KERAS_LAYERS[name]
        model = keras.Sequential(
            [keras.Input((None, workload.NOTES))]
            + [getattr(keras.layers, layer)(units, return_sequences=True) for _ in range(num_layers)]
            + [keras.layers.Dense(workload.NOTES, activation="sigmoid")]
        )
        model.compile(keras.optimizers.Adam(1e-3, clipnorm=1.0), "binary_crossentropy",
                      jit_compile=jit)
    return (lambda x, y: float(model.train_on_batch(x, y))), model.predict_on_batch


DEVICE = os.environ.get("KDR_BENCH_DEVICE", "cpu")


def make_trainer(spec):
    if spec["impl"] in ("deeprnn", "keras_layers"):
        return keras_trainer(spec)
    import references

    if spec["impl"] == "torch_nn":
        return references.torch_trainer(*workload.TORCH_NN[spec["arch"]], spec["units"], device=DEVICE)
    arch, depth = workload.depth_of(spec["arch"], spec.get("depth"))
    if spec["impl"] == "torch_eager":
        return references.torch_eager_trainer(arch, spec["units"], device=DEVICE, **depth)
    return references.jax_trainer(arch, spec["units"], **depth)


def set_threads():
    """Threads per backend from `KDR_BENCH_THREADS`, before any work runs:
    idle intra-op threads of PyTorch and TensorFlow spin on a shared machine."""
    threads = os.environ.get("KDR_BENCH_THREADS")
    if not threads:
        return
    backend = os.environ.get("KERAS_BACKEND")
    if backend == "torch":
        import torch

        torch.set_num_threads(int(threads))
        torch.set_num_interop_threads(int(threads))
    elif backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def devices(spec):
    """The accelerators this worker's backend sees, as `{"gpus": [...]}`."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return {"gpus": [torch.cuda.get_device_name(i) for i in range(count)]}
    if backend == "jax":
        import jax

        return {"gpus": [str(d) for d in jax.devices() if d.platform == "gpu"]}
    import tensorflow as tf

    return {"gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def timed(fn, steps, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            fn()
        wall.append((time.perf_counter() - start) / steps)
        cpu.append((time.process_time() - start_cpu) / steps)
    return wall, cpu


def _status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _reset_peak_memory():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # peak RSS := current RSS
    except OSError:
        pass
    return _status_kb("VmRSS:")


MODELS = {}  # spec key -> (train_step, predict, x, y)


def measure_model(spec):
    key = json.dumps({k: v for k, v in spec.items() if k not in ("steps", "repeats", "round")},
                     sort_keys=True)
    result = {}
    if key not in MODELS:
        x, y = workload.piano_rolls(spec.get("batch", workload.BATCH), spec["seq_len"])
        train_step, predict = make_trainer(spec)
        rss_before = _reset_peak_memory()
        start = time.perf_counter()
        result["loss"] = train_step(x, y)
        result["first_step_s"] = time.perf_counter() - start
        train_step(x, y)  # warm-up
        result["peak_rss_mb"] = (_status_kb("VmHWM:") - rss_before) / 1024
        start = time.perf_counter()
        np.asarray(predict(x))
        result["first_infer_s"] = time.perf_counter() - start
        MODELS[key] = train_step, predict, x, y
    train_step, predict, x, y = MODELS[key]
    result["train_step_s"], result["train_cpu_s"] = timed(
        lambda: train_step(x, y), spec["steps"], spec["repeats"])
    result["infer_step_s"], _ = timed(
        lambda: np.asarray(predict(x)), spec["infer_steps"], spec["repeats"])
    return result


def measure_matmul(spec):
    """Best GFLOP/s of float32 `(rows, n) @ (n, n)` over NumPy and JAX.

    `step`: `rows = batch`, as in one recurrent step; JAX runs 100 dependent
    products in one jitted `lax.scan` (an orthogonal matrix keeps the values
    finite), so dispatch does not count. `sequence`: `rows = batch * seq_len`,
    as in a whole-sequence projection.
    """
    import jax
    import jax.numpy as jnp

    rng, out = np.random.default_rng(0), {}
    chain = jax.jit(lambda h, w: jax.lax.scan(lambda h, _: (h @ w, None), h, None, length=100)[0])
    single = jax.jit(jnp.matmul)
    for n in spec["widths"]:
        w = np.linalg.qr(rng.standard_normal((n, n)))[0].astype("float32")
        for shape, rows, calls in (("step", spec["batch"], 100),
                                   ("sequence", spec["batch"] * spec["seq_len"], 1)):
            a = rng.standard_normal((rows, n)).astype("float32")
            ja, jw = jnp.asarray(a), jnp.asarray(w)
            jax_fn = chain if shape == "step" else single
            reps = max(3, int(2e8 / (2 * rows * n * n * calls)))  # ~0.2 GFLOP per timing
            for lib, fn in (("numpy", lambda: [a @ w for _ in range(calls)]),
                            ("jax", lambda: jax_fn(ja, jw).block_until_ready())):
                fn()
                seconds = min(timed(fn, reps, spec["repeats"])[0])
                out[f"{lib}/{shape}/{n}"] = 2 * rows * n * n * calls / seconds / 1e9
    return {"gflops": out}


def architectures(spec):
    """The rows the package registers, as `{"architectures": [...]}`."""
    import keras_deeprnn as kdr

    return {"architectures": list(kdr.ARCHITECTURES)}


def main():
    set_threads()
    for line in sys.stdin:
        spec = json.loads(line)
        try:
            measure = {"matmul": measure_matmul, "devices": devices,
                       "architectures": architectures}.get(spec["impl"], measure_model)
            result = measure(spec)
        except Exception as error:  # reported per spec; the run goes on
            result = {"error": f"{type(error).__name__}: {error}"}
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
