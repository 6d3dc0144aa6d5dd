"""What the benchmark drivers share: worker processes spoken to in lines, and atomic writes.

This module imports neither Keras nor a backend, so a driver that launches
one worker per backend stays free of them itself.
"""

import json
import os
import platform
import subprocess
import sys


class LineWorker:
    """A Python process that answers one JSON spec per line with a line `RESULT {...}`.

    `argv` is the script and its arguments (run with this interpreter);
    `env`, `cwd` and `stderr` go to `subprocess.Popen`. A worker that has
    died answers `{"error": ...}` with its exit code (its log says why).
    """

    def __init__(self, argv, env, cwd, stderr=subprocess.DEVNULL):
        self.process = subprocess.Popen([sys.executable, *map(str, argv)], cwd=cwd, env=env,
                                        text=True, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=stderr)

    def run(self, spec):
        try:
            self.process.stdin.write(json.dumps(spec) + "\n")
            self.process.stdin.flush()
        except OSError:
            return {"error": f"worker exited with code {self.process.wait()}"}
        for line in self.process.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        return {"error": f"worker exited with code {self.process.wait()}"}

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def write_atomically(path, write):
    """`write(temporary)`, then the temporary renamed to `path`: a reader
    never sees half a file. The temporary sits beside `path` and keeps its
    suffix, which names the format (a plot's, for instance)."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def write_text_atomically(path, text):
    """`path` holds `text` whole or not at all (`write_atomically`)."""
    write_atomically(path, lambda tmp: tmp.write_text(text))


def cpu_name():
    """The processor's model name (Linux's `/proc/cpuinfo`, else `platform`)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()
