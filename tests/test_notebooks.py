"""The notebooks run top to bottom, in their quick mode, under the current backend."""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("music21")

NOTEBOOKS = pathlib.Path(__file__).parent.parent / "notebooks"


def test_polyphonic_music_notebook_runs(tmp_path, tmp_path_factory, monkeypatch):
    # The kernel inherits the environment: KERAS_BACKEND, the quick switch,
    # and the music cache that the other tests fill.
    monkeypatch.setenv("KDR_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KERAS_DEEPRNN_CACHE", str(tmp_path_factory.getbasetemp() / "music-cache"))
    notebook = nbformat.read(NOTEBOOKS / "polyphonic_music.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"on {os.environ.get('KERAS_BACKEND', 'tensorflow')}" in text
    for name in ("rnn/result.json", "dots_rnn/result.json", "sample.mid", "sample.png"):
        assert (tmp_path / "runs" / "notebook" / name).is_file(), name
