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

    python benchmarks/run.py            # full run (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick    # a tiny run, to check the harness

Writes `<out>/<name>.json`, `<name>.md`, `<name>_fps.png`, `<name>_scaling.png`.
"""

import argparse
from importlib import metadata
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

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


def plan(cfg, backends):
    """`(group, spec)` for every measurement, in the order a round runs them."""
    jobs = []

    def job(impl, backend, arch, units, seq_len, group, **extra):
        flops = workload.matmul_flops(arch, units, seq_len, extra=extra.get("depth"))
        steps = max(1, min(10, round(cfg["gflop"] * 1e9 / flops["train"])))
        jobs.append((group, dict(impl=impl, backend=backend, arch=arch, units=units,
                                 seq_len=seq_len, steps=steps, infer_steps=steps, **extra)))

    for units in cfg["units"]:
        for arch in cfg["archs"]:
            for backend in backends:
                job("deeprnn", backend, arch, units, cfg["seq_len"], "main")
                if arch in workload.KERAS_LAYERS:
                    job("keras_layers", backend, arch, units, cfg["seq_len"], "main")
            if "torch" in backends and arch in workload.TORCH_NN:
                job("torch_nn", "torch", arch, units, cfg["seq_len"], "main")
            if "jax" in backends and arch in workload.JAX_SCAN:
                job("jax_scan", "jax", arch, units, cfg["seq_len"], "main")
    scale_units = cfg["units"][0]
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


class Worker:
    """A `worker.py` process of one backend, answering one spec at a time."""

    def __init__(self, backend, log, omp_wait_policy=None):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        if omp_wait_policy:
            env["OMP_WAIT_POLICY"] = omp_wait_policy
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py")], cwd=HERE, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )

    def run(self, spec):
        try:
            self.process.stdin.write(json.dumps(spec) + "\n")
            self.process.stdin.flush()
        except OSError:  # the worker died earlier; its log says why
            return {"error": f"worker exited with code {self.process.wait()}"}
        for line in self.process.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[7:])
        return {"error": f"worker exited with code {self.process.wait()}"}

    def close(self):
        self.process.stdin.close()
        self.process.wait()


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
    parser.add_argument("--name", default="cpu", help="file name prefix of the results")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5, quick 1)")
    parser.add_argument("--repeats", type=int, help="timings per round (default: 1)")
    parser.add_argument("--omp-wait-policy", choices=("ACTIVE", "PASSIVE"),
                        help="OMP_WAIT_POLICY of the workers (default: the OpenMP default, spinning "
                             "for a while); PASSIVE on a machine shared with other jobs")
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    cfg.update({k: v for k, v in (("rounds", args.rounds), ("repeats", args.repeats)) if v})
    backends = [b for b in args.backends.split(",") if b]
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    info, started = machine(), time.perf_counter()
    records = {}  # one per distinct measurement; scaling points reuse the main ones
    for group, spec in plan(cfg, backends):
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

    with open(out / f"{args.name}_workers.log", "w") as log:
        workers = {b: Worker(b, log, args.omp_wait_policy) for b in backends}
        for w in workers.values() if cfg["warm_up"] else ():  # one-time initialisation
            w.run(dict(impl="deeprnn", arch="rnn", units=8, seq_len=4, steps=1, infer_steps=1,
                       repeats=1))
        matmul = dict(impl="matmul", widths=sorted({*cfg["units"], *cfg["widths"]}),
                      batch=workload.BATCH, seq_len=cfg["seq_len"], repeats=3)
        throughput = [workers["jax"].run(matmul)["gflops"]] if "jax" in backends else []
        order = list(records.values())
        for round_ in range(cfg["rounds"]):
            for n, record in enumerate(order if round_ % 2 == 0 else order[::-1]):
                measure(workers[record["backend"]], record,
                        f"round {round_ + 1}/{cfg['rounds']}, {n + 1}/{len(order)}")
        if throughput:  # again at the end; the best of the two is the floor
            throughput.append(workers["jax"].run(matmul)["gflops"])
            info["matmul_gflops"] = {k: max(t[k] for t in throughput) for k in throughput[0]}
        for w in workers.values():
            w.close()

    info["load_during"] = {"median": statistics.median(loads), "max": max(loads), "min": min(loads)}
    info["load_after"] = os.getloadavg()
    info["wall_s"] = time.perf_counter() - started
    info["settings"] = {**cfg, "batch": workload.BATCH, "notes": workload.NOTES,
                        "omp_wait_policy": args.omp_wait_policy or os.environ.get("OMP_WAIT_POLICY", "default"),
                        "quick": args.quick, "backends": backends}
    results = report.summarize(list(records.values()), info)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    (out / f"{args.name}.md").write_text(report.markdown(results))
    report.plots(results, out / f"{args.name}_fps.png", out / f"{args.name}_scaling.png")
    print(f"wrote {out}/{args.name}.json, .md, _fps.png, _scaling.png "
          f"in {info['wall_s'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
