"""Training and inference speed of keras-deeprnn on TensorFlow, JAX and PyTorch.

What is measured: next-frame prediction on 88-note piano rolls (batch 32,
100 frames, random sparse rolls), for every architecture in
`workload.ARCHS` built by `keras_deeprnn.build_model` (units 256 and 512):
training frames per second (one `train_on_batch` with Adam and gradient
clipping), inference frames per second (`predict_on_batch`), peak memory and
the time of the first (compiling) step. In the same run, what a user would
pick instead: Keras's own `SimpleRNN`/`LSTM` stacked to the same shape (every
backend), `torch.nn.RNN`/`torch.nn.LSTM` with `num_layers` in a plain PyTorch
loop, and a hand-written `jax.lax.scan` of the same equations under
`jax.jit` (`references.py`); and the floor: the matmul FLOPs of a step
divided by the matmul throughput measured on this machine. Then time against
sequence length (every backend), depth and width (JAX).

How: one worker process per backend (`worker.py`), all alive for the whole
run, so a backend is imported once; they take turns, one measurement at a
time, in an interleaved order (configuration by configuration, every
backend and peer in a row, then the scaling points), for five rounds whose
order alternates. A timing is the mean of
1 to 10 training steps, as many as make about 4 GFLOP of matmul work: the
"100 steps" of a GPU benchmark scaled down for 2 CPU cores, so cheap
configurations are not timed on one short step; the figures are medians
over rounds. The 1-minute load average is sampled after every measurement
and reported: PyTorch's OpenMP threads spin between ops, which is fastest on
an idle machine and many times slower when other jobs hold the cores;
`--omp-wait-policy PASSIVE` trades the first for the second (compare runs
made under similar load and with the same policy only).

The dispatch-bound table: batch 8, 100 frames, 32 units, one thread per
backend (workers of their own), every architecture on every backend beside
`torch.nn`, the hand-written `lax.scan` and a hand-written eager PyTorch
loop of the same equations. There the matrices are so small that the time
goes to launching operations, the regime a GPU's launch latency puts every
model in; it is part of the full run, and `--table dispatch` runs it alone.

The GPU mode (`--device gpu`): the GPU table (batch 128, 100 frames,
512 units, 3 rounds of 20 steps) on the JAX, PyTorch and, where its build
sees the GPU, TensorFlow backends, with `torch.nn` and the eager loop on
CUDA and the scan on the GPU. Without a GPU it stops with a message;
`--allow-cpu` runs the same plan on the CPU, to check the harness.

    python benchmarks/run.py                    # full run (about 10 minutes on 2 cores)
    python benchmarks/run.py --table dispatch   # only the dispatch-bound table
    python benchmarks/run.py --device gpu       # the GPU table (needs a CUDA GPU)
    python benchmarks/run.py --quick            # a tiny run, to check the harness
    python benchmarks/run.py --table paper      # the paper's sizes and the main job (paper.py)

Writes `<out>/<name>.json`, `<name>.md`, `<name>_fps.png` and, when the run has
scaling points, `<name>_scaling.png`.
"""

import argparse
from importlib import metadata
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import paper
import processes
import report
import workload

HERE = pathlib.Path(__file__).resolve().parent
BACKENDS = ("tensorflow", "jax", "torch")

FULL = dict(
    units=(256, 512), seq_len=100, archs=tuple(workload.ARCHS), rounds=5, repeats=1, gflop=4.0,
    # Scaling: DT(S)-RNN against length on every backend; sRNN levels and
    # DT(S)-RNN width on JAX, where the loop has no per-step Python overhead.
    scale_arch="dts_rnn", lengths=(25, 50, 100, 200, 400), levels=(1, 2, 4, 8),
    widths=(64, 128, 256, 512, 1024), warm_up=True,
)
# Every kind of measurement once, as small as it gets (for the smoke test).
QUICK = dict(
    units=(16,), seq_len=8, archs=("rnn",), rounds=1, repeats=1, gflop=0.0,
    scale_arch="rnn", lengths=(4, 8), levels=(), widths=(), warm_up=False,
)
# Dispatch-bound: small enough that per-operation overhead, not arithmetic,
# sets the time; one thread per backend. `steps` fixed: FLOPs say nothing here.
DISPATCH = dict(units=32, batch=8, seq_len=100, threads=1, steps=10)
QUICK_DISPATCH = dict(units=8, batch=2, seq_len=6, threads=1, steps=1)
# The GPU table: the sizes of the measurements the speed targets come from.
GPU = dict(
    units=(512,), seq_len=100, batch=128, archs=tuple(workload.ARCHS), rounds=3, repeats=1,
    steps=20, scale_arch="dts_rnn", lengths=(), levels=(), widths=(), warm_up=True,
)
QUICK_GPU = dict(GPU, units=(16,), seq_len=8, batch=4, archs=("rnn",), rounds=1, steps=1,
                 warm_up=False)


def plan(cfg, backends, dispatch=None):
    """`(group, spec)` for every measurement, in the order a round runs them."""
    jobs = []
    batch = cfg.get("batch", workload.BATCH)

    def job(impl, backend, arch, units, seq_len, group, **extra):
        steps = cfg.get("steps")
        if steps is None:
            flops = workload.matmul_flops(arch, units, seq_len, extra=extra.get("depth"))
            steps = max(1, min(10, round(cfg["gflop"] * 1e9 / flops["train"])))
        extra.setdefault("batch", batch)
        jobs.append((group, dict(impl=impl, backend=backend, arch=arch, units=units,
                                 seq_len=seq_len, steps=steps, infer_steps=steps, **extra)))

    def peers(arch, units, seq_len, group, **extra):
        for backend in backends:
            job("deeprnn", backend, arch, units, seq_len, group, **extra)
            if arch in workload.KERAS_LAYERS and group == "main":
                job("keras_layers", backend, arch, units, seq_len, group, **extra)
        if "torch" in backends:
            job("torch_eager", "torch", arch, units, seq_len, group, **extra)
            if arch in workload.TORCH_NN:
                job("torch_nn", "torch", arch, units, seq_len, group, **extra)
        if "jax" in backends and arch in workload.JAX_SCAN:
            job("jax_scan", "jax", arch, units, seq_len, group, **extra)

    for units in cfg["units"]:
        for arch in cfg["archs"]:
            peers(arch, units, cfg["seq_len"], "main")
    if dispatch:
        for arch in cfg["archs"]:
            peers(arch, dispatch["units"], dispatch["seq_len"], "dispatch", batch=dispatch["batch"],
                  threads=dispatch["threads"])
        for _, spec in jobs:
            if "threads" in spec:
                spec["steps"] = spec["infer_steps"] = dispatch["steps"]
    scale_units = cfg["units"][0] if cfg["units"] else None
    for seq_len in cfg["lengths"]:
        for backend in backends:
            job("deeprnn", backend, cfg["scale_arch"], scale_units, seq_len, "length")
    scaling_backend = "jax" if "jax" in backends else backends[0]
    for levels in cfg["levels"]:
        job("deeprnn", scaling_backend, "srnn2", scale_units, cfg["seq_len"], "depth",
            depth={"num_layers": levels})
    for units in cfg["widths"]:
        job("deeprnn", scaling_backend, cfg["scale_arch"], units, cfg["seq_len"], "width")
    return jobs


class Worker(processes.LineWorker):
    """A `worker.py` process of one backend, answering one spec at a time."""

    def __init__(self, backend, log, omp_wait_policy=None, threads=None, device="cpu"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
                   KDR_BENCH_DEVICE=device)
        if omp_wait_policy:
            env["OMP_WAIT_POLICY"] = omp_wait_policy
        if threads:
            # Read at import by OpenMP (PyTorch, oneDNN) and by XLA's CPU client.
            env.update(KDR_BENCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                       MKL_NUM_THREADS=str(threads))
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                f" intra_op_parallelism_threads={threads}").strip()
        super().__init__([HERE / "worker.py"], env=env, cwd=HERE, stderr=log)


def machine():
    with open("/proc/cpuinfo") as f:
        fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    cpu = (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, "
           f"model {fields.get('model', '?')}, {vector})")
    versions = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "versions": versions, "load_before": os.getloadavg()}


def key(job):
    return json.dumps({k: v for k, v in job.items() if k not in ("steps", "infer_steps")},
                      sort_keys=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run to check the harness")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", help="file name prefix of the results "
                        "(default: cpu, cpu_dispatch with --table dispatch, gpu with --device gpu)")
    parser.add_argument("--table", choices=("all", "dispatch", "paper"), default="all",
                        help="all: the main table, the dispatch-bound table and the scaling points; "
                             "dispatch: only the dispatch-bound table; paper: every registered "
                             "architecture at the paper's sizes (step and compile time) and the "
                             "main job's wall time per backend")
    parser.add_argument("--main-job-epochs", type=int,
                        help=f"with --table paper: epochs of the main job on each backend "
                             f"(default: {paper.PAPER['main_job_epochs']}, quick "
                             f"{paper.QUICK_PAPER['main_job_epochs']}; 0 leaves it out)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="gpu: the GPU table (batch 128, 512 units) on a CUDA GPU")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="with --device gpu: run the GPU plan on the CPU if there is no GPU "
                             "(checks the harness; the figures mean nothing for a GPU)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5, quick 1)")
    parser.add_argument("--repeats", type=int, help="timings per round (default: 1)")
    parser.add_argument("--omp-wait-policy", choices=("ACTIVE", "PASSIVE"),
                        help="OMP_WAIT_POLICY of the workers (default: the OpenMP default, spinning "
                             "for a while); PASSIVE on a machine shared with other jobs")
    args = parser.parse_args()
    if args.main_job_epochs is not None and args.main_job_epochs < 0:
        parser.error(f"--main-job-epochs must be 0 or more. Received: {args.main_job_epochs}")
    if args.table == "paper":
        return paper_main(args)
    if args.device == "gpu":
        cfg, dispatch = dict(QUICK_GPU if args.quick else GPU), None
        name = args.name or "gpu"
    else:
        cfg = dict(QUICK if args.quick else FULL)
        dispatch = QUICK_DISPATCH if args.quick else DISPATCH
        name = args.name or ("cpu_dispatch" if args.table == "dispatch" else "cpu")
        if args.table == "dispatch":
            cfg.update(units=(), lengths=(), levels=(), widths=())
    cfg.update({k: v for k, v in (("rounds", args.rounds), ("repeats", args.repeats)) if v})
    backends = [b for b in args.backends.split(",") if b]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    info, started = machine(), time.perf_counter()
    records = {}  # one per distinct measurement; scaling points reuse the main ones
    for group, spec in plan(cfg, backends, dispatch):
        record = records.setdefault(
            key(spec), dict(spec, groups=[], train_step_s=[], train_cpu_s=[], infer_step_s=[]))
        record["groups"].append(group)
    loads = []

    def measure(worker, record, progress):
        spec = {k: v for k, v in record.items() if not isinstance(v, list)}
        result = worker.run(dict(spec, repeats=cfg["repeats"]))
        for k, v in result.items():
            if isinstance(v, list):
                record[k] += v
            else:
                record.setdefault(k, v)
        loads.append(os.getloadavg()[0])
        print(f"[{time.perf_counter() - started:6.0f} s, {progress}] {report.label(record)}: "
              f"{report.brief(record)}", flush=True)

    with open(out / f"{name}_workers.log", "w") as log:
        pools = {}

        def worker(backend, threads=None):
            if (backend, threads) not in pools:
                pools[backend, threads] = Worker(backend, log, args.omp_wait_policy, threads, args.device)
            return pools[backend, threads]

        if args.device == "gpu":
            gpus = {b: worker(b).run(dict(impl="devices")).get("gpus", []) for b in backends}
            info["gpus"] = gpus
            if not any(gpus.values()) and not args.allow_cpu:
                for w in pools.values():
                    w.close()
                sys.exit("--device gpu: no GPU found (PyTorch: torch.cuda.is_available() is False; "
                         "JAX: jax.devices() has no gpu; TensorFlow lists no GPU). Run it on a "
                         "machine with a CUDA GPU and GPU builds of the backends, or add --allow-cpu "
                         "to run the same plan on the CPU as a check of the harness.")
            # A backend whose build does not see the GPU (TensorFlow's CPU wheel) is left out.
            backends = [b for b in backends if gpus[b]] or backends
            records = {k: r for k, r in records.items() if r["backend"] in backends}
            info["device"] = "GPU: " + ", ".join(sorted({g for v in gpus.values() for g in v})) \
                if any(gpus.values()) else "CPU (GPU mode checked on the CPU, --allow-cpu)"
        used = sorted({(r["backend"], r.get("threads") or 0) for r in records.values()})
        for b, threads in used if cfg["warm_up"] else ():  # one-time initialisation
            worker(b, threads or None).run(dict(impl="deeprnn", arch="rnn", units=8, seq_len=4, steps=1,
                                                infer_steps=1, repeats=1))
        matmul_widths = sorted({*cfg["units"], *cfg["widths"]})
        matmul = dict(impl="matmul", widths=matmul_widths, batch=cfg.get("batch", workload.BATCH),
                      seq_len=cfg["seq_len"], repeats=3)
        throughput = [worker("jax").run(matmul)["gflops"]] if "jax" in backends and matmul_widths else []
        order = list(records.values())
        for round_ in range(cfg["rounds"]):
            for n, record in enumerate(order if round_ % 2 == 0 else order[::-1]):
                measure(worker(record["backend"], record.get("threads")), record,
                        f"round {round_ + 1}/{cfg['rounds']}, {n + 1}/{len(order)}")
        if throughput:  # again at the end; the best of the two is the floor
            throughput.append(worker("jax").run(matmul)["gflops"])
            info["matmul_gflops"] = {k: max(t[k] for t in throughput) for k in throughput[0]}
        for w in pools.values():
            w.close()

    info["load_during"] = {"median": statistics.median(loads), "max": max(loads), "min": min(loads)}
    info["load_after"] = os.getloadavg()
    info["wall_s"] = time.perf_counter() - started
    info.setdefault("device", "CPU")
    info["settings"] = {**cfg, "batch": cfg.get("batch", workload.BATCH), "notes": workload.NOTES,
                        "dispatch": dispatch, "table": args.table, "device_mode": args.device,
                        "omp_wait_policy": args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY", "default"),
                        "quick": args.quick, "backends": backends}
    results = report.summarize(list(records.values()), info)
    processes.write_atomically(out / f"{name}.json", lambda p: p.write_text(json.dumps(results, indent=1)))
    processes.write_atomically(out / f"{name}.md", lambda p: p.write_text(report.markdown(results)))
    processes.write_atomically(out / f"{name}_fps.png", lambda p: report.plot_fps(results, p))
    written = [".json", ".md", "_fps.png"]
    if report.has_scaling(results):  # a dispatch-only run has no scaling points
        processes.write_atomically(out / f"{name}_scaling.png", lambda p: report.plot_scaling(results, p))
        written.append("_scaling.png")
    print(f"wrote {out}/{name}{', '.join(written)} in {info['wall_s'] / 60:.1f} min", flush=True)


def paper_main(args):
    """`--table paper`: the paper-size table and the main job (`paper.py`)."""
    if args.device != "cpu":
        sys.exit(f"--table paper runs on the CPU only. Received: --device {args.device}")
    cfg = dict(paper.QUICK_PAPER if args.quick else paper.PAPER)
    cfg.update({k: v for k, v in (("rounds", args.rounds),
                                  ("main_job_epochs", args.main_job_epochs)) if v is not None})
    backends = [b for b in args.backends.split(",") if b]
    out, name = pathlib.Path(args.out), args.name or "paper"
    out.mkdir(parents=True, exist_ok=True)
    info, started, loads = machine(), time.perf_counter(), []
    with open(out / f"{name}_workers.log", "w") as log:
        pools = {}

        def worker(backend):
            if backend not in pools:
                pools[backend] = Worker(backend, log, args.omp_wait_policy, threads=1)
            return pools[backend]

        def say(text):
            loads.append(os.getloadavg()[0])
            print(text, flush=True)

        models = paper.model_table(cfg, backends, worker, quick=args.quick, say=say)
        for w in pools.values():
            w.close()
    jobs = []
    for backend in backends if cfg["main_job_epochs"] else ():
        jobs.append(paper.main_job(backend, cfg["main_job_epochs"], quick=args.quick))
        loads.append(os.getloadavg()[0])
        say_job = jobs[-1].get("error") or f"{jobs[-1]['wall_s']:.0f} s"
        print(f"main job on {backend}: {say_job}", flush=True)
    info["load_after"] = os.getloadavg()
    info["wall_s"] = time.perf_counter() - started
    results = {"machine": info, "settings": dict(cfg, backends=backends, quick=args.quick),
               "load_during": {"median": statistics.median(loads), "max": max(loads)},
               "models": models, "main_job": jobs}
    processes.write_atomically(out / f"{name}.json", lambda p: p.write_text(json.dumps(results, indent=1)))
    processes.write_atomically(out / f"{name}.md", lambda p: p.write_text(paper.markdown(results)))
    print(f"wrote {out}/{name}.json, .md in {info['wall_s'] / 60:.1f} min", flush=True)



if __name__ == "__main__":
    main()
