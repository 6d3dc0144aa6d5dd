"""The notebooks run top to bottom, in their quick mode, under the current backend."""

import json
import math
import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("music21")

NOTEBOOKS = pathlib.Path(__file__).parent.parent / "notebooks"
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def _execute(name, tmp_path, monkeypatch, cache_dir, timeout=600):
    """Run a notebook in quick mode in `tmp_path`; its code-cell outputs.

    The kernel inherits the environment: KERAS_BACKEND, the quick switch,
    and a music cache shared with the other tests.
    """
    monkeypatch.setenv("KDR_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("KERAS_DEEPRNN_CACHE", str(cache_dir))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs


def _text(outputs):
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


@pytest.fixture
def music_cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "music-cache"


def test_polyphonic_music_notebook_runs(tmp_path, music_cache, monkeypatch):
    outputs = _execute("polyphonic_music.ipynb", tmp_path, monkeypatch, music_cache)
    assert f"on {BACKEND}" in _text(outputs)
    for name in ("rnn/result.json", "dots_rnn/result.json", "sample.mid", "sample.png"):
        assert (tmp_path / "runs" / "notebook-quick" / name).is_file(), name
    # The table the notebook shows holds the figures its runs computed: a
    # finite, positive test NLL per frame and a frame accuracy in [0, 1]
    # (one epoch on four chorales in quick mode: no bound on how good).
    table = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    for name in ("rnn", "dots_rnn"):
        result = json.loads((tmp_path / "runs" / "notebook-quick" / name / "result.json").read_text())
        nll, accuracy = result["test"]["nll"], result["test"]["frame_accuracy"]
        assert math.isfinite(nll) and nll > 0 and 0 <= accuracy <= 1, (name, nll, accuracy)
        row = f"| {name} | {result['parameters']:,} | {result['epochs_run']} | {nll:.3f} | {accuracy:.3f} |"
        assert row in table, (row, table)


@pytest.mark.slow
def test_language_model_notebook_runs(tmp_path, music_cache, monkeypatch):
    text = _text(_execute("language_model.ipynb", tmp_path, monkeypatch, music_cache))
    assert "bits per character" in text
    assert f"on {BACKEND}" in text
    assert (tmp_path / "runs" / "notebook-lm-quick" / "result.json").is_file()


@pytest.mark.slow
def test_tuning_notebook_runs_a_quick_search(tmp_path, music_cache, monkeypatch):
    outputs = _execute("tuning.ipynb", tmp_path, monkeypatch, music_cache, timeout=300)
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "tuning_runs" / "notebook_jsb_quick" / "report" / "trials.md").is_file()


def test_keras_workflow_notebook_runs(tmp_path, music_cache, monkeypatch):
    outputs = _execute("keras_workflow.ipynb", tmp_path, monkeypatch, music_cache)
    text = _text(outputs)
    assert f"on {BACKEND}" in text
    assert "reloaded: same predictions" in text
    run = tmp_path / "runs" / "keras-workflow-quick"
    for name in ("best.keras", "denoiser.keras", "history.csv"):
        assert (run / name).is_file(), name
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # The fine-tuned preset's record holds the score the notebook printed,
    # and reading the preset back gives that score again.
    record = json.loads((run / "bach_up_a_tone" / "record.json").read_text())
    after = record["scores"]["nll_valid_half"]
    assert math.isfinite(after) and after > 0
    assert f"{after:.3f} after" in text
    assert f"reloaded preset: {after:.3f} nats per frame" in text


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_quick_and_full_runs_keep_to_their_own_folders(path, monkeypatch, tmp_path):
    """The settings cell names a different run folder in each mode, so a full
    run never resumes (or reports) what a quick run left behind."""
    monkeypatch.chdir(tmp_path)
    settings = next(c.source for c in nbformat.read(path, as_version=4).cells
                    if c.cell_type == "code" and "QUICK =" in c.source)
    places = {}
    for quick in ("1", "0"):
        monkeypatch.setenv("KDR_NOTEBOOK_QUICK", quick)
        names = {}
        exec(settings, names)
        places[quick] = {k: v for k, v in names.items()
                         if k.endswith(("_DIR", "_ROOT", "DIRECTORY", "PROJECT"))}
    assert places["1"], f"{path.name} names no run folder"
    assert places["1"].keys() == places["0"].keys()
    folders = [os.path.join(*(str(v) for v in mode.values())) for mode in places.values()]
    assert folders[0] != folders[1], (path.name, places)
