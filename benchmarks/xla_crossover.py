"""Where XLA wins on TensorFlow: `jit_compile=True` against `False` by width and batch.

What is measured: `train_on_batch` (Adam, gradient clipping, binary
cross-entropy) of `keras_deeprnn.build_model` models on random piano rolls
of 64 frames (88 notes in and out, the music task's shapes), for each
architecture, width and batch of the grid; the two settings of one
configuration are timed in the same process, interleaved in rounds (A then
B, then B then A), and the figure is the median of the rounds' per-step
means. The first step of each model (tracing and compiling) is reported
beside it. One thread (set `OMP_NUM_THREADS=1` too); the 1-minute load
average is written beside every row, since the machine may be shared.

    KERAS_BACKEND=tensorflow OMP_NUM_THREADS=1 python benchmarks/xla_crossover.py
    KERAS_BACKEND=tensorflow python benchmarks/xla_crossover.py --quick   # checks the harness

`--archs`, `--widths` and `--batches` pick part of the grid (any registered
architecture). Writes `<out>/<name>.json` and `.md` (default name
`xla_crossover`); the rule in
`keras_deeprnn.compilation.choose_jit_compile` is read from these figures.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402

FULL = dict(archs=("rnn", "dts_rnn", "dots_rnn"), widths=(32, 128, 256, 512), batches=(2, 16),
            seq_len=64, rounds=3, steps=10, warm_up=2)
QUICK = dict(archs=("rnn",), widths=(8,), batches=(2,), seq_len=6, rounds=1, steps=1, warm_up=1)


def trainer(arch, units, jit_compile):
    import keras
    import keras_deeprnn as kdr

    keras.utils.set_random_seed(0)
    # The benchmark's depths where it names them, else the registered row's defaults.
    name, depth = workload.depth_of(arch) if arch in workload.ARCHS else (arch, {})
    model = kdr.build_model(name, input_dim=workload.NOTES, output_dim=workload.NOTES,
                            units=units, output_activation="sigmoid", **depth)
    model.compile(jit_compile=jit_compile)
    return model


def measure(cfg, arch, units, batch):
    x, y = workload.piano_rolls(batch, cfg["seq_len"])
    models, first, times = {}, {}, {False: [], True: []}
    for jit in (False, True):
        models[jit] = trainer(arch, units, jit)
        start = time.perf_counter()
        models[jit].train_on_batch(x, y)
        first[jit] = time.perf_counter() - start
        for _ in range(cfg["warm_up"] - 1):
            models[jit].train_on_batch(x, y)
    for round_ in range(cfg["rounds"]):
        for jit in ((False, True) if round_ % 2 == 0 else (True, False)):
            start = time.perf_counter()
            for _ in range(cfg["steps"]):
                models[jit].train_on_batch(x, y)
            times[jit].append((time.perf_counter() - start) / cfg["steps"])
    plain, xla = (statistics.median(times[j]) * 1e3 for j in (False, True))
    return dict(arch=arch, units=units, batch=batch, seq_len=cfg["seq_len"],
                plain_ms=plain, xla_ms=xla, speedup=plain / xla,
                plain_first_s=first[False], xla_first_s=first[True],
                plain_rounds_ms=[t * 1e3 for t in times[False]],
                xla_rounds_ms=[t * 1e3 for t in times[True]], load=os.getloadavg()[0])


def markdown(results):
    m = results["machine"]
    lines = [
        "# TensorFlow: `jit_compile=True` (XLA) against `False`",
        "",
        f"`train_on_batch`, {m['seq_len']} frames, 88 notes in and out, one thread, median of "
        f"{m['rounds']} interleaved rounds of {m['steps']} steps (ms per step). Keras "
        f"{m['versions']['keras']}, TensorFlow {m['versions']['tensorflow']}; {m['cores']} cores. "
        f"Load average before {m['load_before']:.2f}, after {m['load_after']:.2f}"
        + (" (measured with other jobs on the machine)" if m["load_before"] > 1 else "") + ".",
        "",
        "| model | units | batch | plain ms | XLA ms | plain / XLA | first step plain s | "
        "first step XLA s | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["rows"]:
        lines.append(f"| `{r['arch']}` | {r['units']} | {r['batch']} | {r['plain_ms']:.1f} | "
                     f"{r['xla_ms']:.1f} | {r['speedup']:.2f} | {r['plain_first_s']:.1f} | "
                     f"{r['xla_first_s']:.1f} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run, to check the harness")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", default="xla_crossover", help="file name prefix of the results")
    parser.add_argument("--archs", help="comma-separated architectures (default: rnn,dts_rnn,dots_rnn)")
    parser.add_argument("--widths", help="comma-separated units (default: 32,128,256,512)")
    parser.add_argument("--batches", help="comma-separated batch sizes (default: 2,16)")
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    for field in ("archs", "widths", "batches"):
        given = getattr(args, field)
        if given:
            items = [x for x in given.split(",") if x]
            cfg[field] = tuple(items if field == "archs" else map(int, items))
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        sys.exit(f"KERAS_BACKEND must be tensorflow. Received: {keras.backend.backend()!r}")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    machine = dict(cores=os.cpu_count(), load_before=os.getloadavg()[0], **cfg,
                   versions={"keras": keras.__version__, "tensorflow": tf.__version__})
    rows = []
    for batch in cfg["batches"]:
        for units in cfg["widths"]:
            for arch in cfg["archs"]:
                rows.append(measure(cfg, arch, units, batch))
                r = rows[-1]
                print(f"{arch} {units} units batch {batch}: plain {r['plain_ms']:.1f} ms, "
                      f"XLA {r['xla_ms']:.1f} ms ({r['speedup']:.2f}x), load {r['load']:.1f}",
                      flush=True)
    machine["load_after"] = os.getloadavg()[0]
    results = {"machine": machine, "rows": rows}
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(results, indent=1)), (".md", markdown(results))):
        path = out / f"{args.name}{suffix}"
        tmp = path.with_name(f".{path.stem}.tmp{suffix}")
        tmp.write_text(text)
        os.replace(tmp, path)
    print(f"wrote {out}/{args.name}.json, .md")


if __name__ == "__main__":
    main()
