"""Runs the notebooks top to bottom and commits-ready saves them with outputs.

    KERAS_BACKEND=jax python scripts/execute_notebooks.py [NAME.ipynb ...]

Each notebook runs in full mode in a scratch folder (its `runs/` stay out of
the repository). Images are shrunk to at most 800 pixels wide, stream
output is kept to its last lines, and the notebook's metadata records the
SHA-256 of its code cells, so `tests/test_notebook_outputs.py` can tell a
notebook whose outputs no longer match its code.
"""

import argparse
import base64
import hashlib
import io
import os
import pathlib
import re
import sys
import tempfile
import time

import nbclient
import nbformat
from PIL import Image

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
MAX_WIDTH = 800      # pixels: a figure stays legible on a code host, the file stays small
MAX_STREAM_LINES = 40


def code_digest(notebook):
    """SHA-256 of the code cells' sources: what the outputs were computed from."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def _shrink_png(data):
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.resize((MAX_WIDTH, height), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# Lines a reader gains nothing from: native libraries' start-up chatter and
# the notebook's missing progress widget.
NOISE = ("WARNING: All log messages before absl::InitializeLog()", "I0000 ", "W0000 ",
         "TqdmWarning", "from .autonotebook import tqdm")
PROGRESS = re.compile(r"\d+%\|")
BAR = re.compile(r"[^\]]*?\d+%\|[^\]]*\]")


def _readable(text):
    """A stream as a terminal would leave it: redraws collapsed, noise dropped."""
    lines = [line.split("\r")[-1] for line in text.split("\n")]
    kept = []
    for line in lines:
        if any(noise in line for noise in NOISE):
            continue
        bars = BAR.findall(line)
        if len(bars) > 1:  # redraws saved without their carriage returns
            line = bars[-1]
        if kept and PROGRESS.search(line) and PROGRESS.search(kept[-1]):
            kept[-1] = line  # the bar's latest state replaces the one before
        else:
            kept.append(line)
    return "\n".join(kept[-MAX_STREAM_LINES:])


def _tidy(notebook):
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                output["data"]["image/png"] = _shrink_png(png)
            if (output.output_type == "stream" and merged
                    and merged[-1].output_type == "stream" and merged[-1].name == output.name):
                merged[-1].text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = _readable(output.text)
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]


def execute(name):
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="kdr-notebook-") as scratch:
        client = nbclient.NotebookClient(
            notebook, timeout=3600, kernel_name="python3",
            resources={"metadata": {"path": scratch}},
        )
        client.execute()
    _tidy(notebook)
    import keras  # the versions the outputs were made with

    from keras_deeprnn import _files

    notebook.metadata["keras_deeprnn"] = {
        "code_sha256": code_digest(notebook),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "keras": keras.__version__,
        "seconds": round(time.time() - start, 1),
    }
    _files.write_atomically(path, lambda temporary: nbformat.write(notebook, temporary))
    print(f"{name}: executed in {time.time() - start:.0f} s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    parser.add_argument("--tidy-only", action="store_true",
                        help="only tidy the outputs already saved (no run)")
    args = parser.parse_args(argv)
    if os.environ.get("KDR_NOTEBOOK_QUICK"):
        sys.exit("Unset KDR_NOTEBOOK_QUICK: the committed notebooks show full runs.")
    names = args.names or sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    if args.tidy_only:
        for name in names:
            path = NOTEBOOKS / name
            notebook = nbformat.read(path, as_version=4)
            _tidy(notebook)
            nbformat.write(notebook, path)
        return
    for name in names:
        execute(name)


if __name__ == "__main__":
    main()
