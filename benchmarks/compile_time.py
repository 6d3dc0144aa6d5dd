"""What compiling costs a user: the first epoch against a later one, run afresh and run again.

    python benchmarks/compile_time.py                       # the main job, on this backend
    python benchmarks/compile_time.py --dataset PATH/Nottingham.mat --architecture rnn \\
        --units 128 --epochs 2                              # long pieces

Each case trains a model for a few epochs twice, in two fresh processes that
share one empty cache folder: the first run compiles every program, the
second (on JAX) finds them in the persistent compilation cache
(`keras_deeprnn.compilation`). An epoch's time is measured by a callback,
and the compile time of a run is its first epoch less its fastest later
one. With `--before-ladder`, batches are padded to multiples of 16 instead
of the geometric ladder (how the package padded before), for comparison.

Writes `<out>/compile_<backend>[_<name>].json` and `.md`, with the load
average of the machine while it ran (compare runs under similar load only).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def child(args):
    """One training run in this process; prints its epoch times as JSON."""
    import keras

    from keras_deeprnn import training
    from keras_deeprnn.tasks import music

    if args.before_ladder:
        music.MusicTask.ladder = False
        original = music.batching.piano_roll_batches

        def multiples_of_16(*a, **k):
            return original(*a, **{**k, "pad_to_multiple_of": 16})

        music.batching.piano_roll_batches = multiples_of_16

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    clock = Clock()
    config = training.TrainConfig(
        dataset=args.dataset, architecture=args.architecture, units=args.units,
        epochs=args.epochs, batch_size=args.batch_size, progress=False,
        run_dir=args.run_dir, cache_dir=args.cache_dir,
        **({} if args.architecture == "dots_rnn" else {"output_dropout": 0.0}))
    started = time.perf_counter()
    training.train(config, callbacks=[clock])
    print(json.dumps({"epochs": clock.times, "total": time.perf_counter() - started}))


def measure(args, cache_dir, run_dir):
    env = dict(os.environ, KERAS_DEEPRNN_CACHE=str(cache_dir))
    command = [sys.executable, __file__, "--child", "--dataset", args.dataset,
               "--architecture", args.architecture, "--units", str(args.units),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--run-dir", str(run_dir), "--cache-dir", str(cache_dir)]
    if args.before_ladder:
        command.append("--before-ladder")
    load = os.getloadavg()[0]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                         cwd=ROOT).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    epochs = figures["epochs"]
    return dict(epoch_seconds=[round(t, 2) for t in epochs],
                compile_seconds=round(epochs[0] - min(epochs[1:]), 2),
                first_over_later=round(epochs[0] / min(epochs[1:]), 2),
                total_seconds=round(figures["total"], 1), load_before=round(load, 2),
                load_after=round(os.getloadavg()[0], 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="jsb_chorales",
                        help="data set name or path (default: the main job's jsb_chorales)")
    parser.add_argument("--architecture", default="dots_rnn", help="default: dots_rnn")
    parser.add_argument("--units", type=int, default=200, help="default: 200 (the main job)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    parser.add_argument("--batch-size", type=int, default=2, help="default: 2 (the main job)")
    parser.add_argument("--before-ladder", action="store_true",
                        help="pad to multiples of 16, as before the geometric ladder")
    parser.add_argument("--name", default="", help="suffix of the output files")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (a first and a later epoch); received "
                     f"{args.epochs}")
    if args.child:
        return child(args)
    import keras

    backend = keras.backend.backend()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        # The data set's rolls are built once, outside the timings.
        first = measure(args, scratch / "cache", scratch / "run1")
        again = measure(args, scratch / "cache", scratch / "run2")
    result = dict(backend=backend, dataset=args.dataset, architecture=args.architecture,
                  units=args.units, batch_size=args.batch_size, epochs=args.epochs,
                  padding="multiples of 16" if args.before_ladder else "geometric ladder",
                  first_run=first, run_again=again, cpu_count=os.cpu_count(),
                  threads=os.environ.get("OMP_NUM_THREADS"))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"compile_{backend}" + (f"_{args.name}" if args.name else "")
    text = json.dumps(result, indent=2) + "\n"
    temporary = out / f".{stem}.json.tmp"
    temporary.write_text(text)
    os.replace(temporary, out / f"{stem}.json")
    lines = [f"# Compile time: {args.architecture}, {args.units} units, batch {args.batch_size}, "
             f"on {args.dataset} ({backend}, {result['padding']})", "",
             "| run | epoch seconds | first epoch less the fastest later | first / later "
             "| load average |", "| --- | --- | --- | --- | --- |"]
    for name, run in (("first run (empty cache)", first), ("same model again", again)):
        lines.append(f"| {name} | {', '.join(f'{t:.2f}' for t in run['epoch_seconds'])} "
                     f"| {run['compile_seconds']:.2f} s | {run['first_over_later']:.2f} "
                     f"| {run['load_before']} → {run['load_after']} |")
    temporary = out / f".{stem}.md.tmp"
    temporary.write_text("\n".join(lines) + "\n")
    os.replace(temporary, out / f"{stem}.md")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
