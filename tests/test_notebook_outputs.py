"""The committed notebooks show their results, computed from the code they hold."""

import importlib.util
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _executor():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "scripts" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_notebooks():
    assert len(NOTEBOOKS) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_outputs_from_its_current_code(path):
    notebook = nbformat.read(path, as_version=4)
    recorded = notebook.metadata.get("keras_deeprnn", {})
    assert recorded.get("code_sha256") == _executor().code_digest(notebook), (
        f"{path.name}: its code changed since its outputs were made; re-run "
        "`python scripts/execute_notebooks.py` and commit the result"
    )
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name}: a code cell never ran"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure"
    assert path.stat().st_size < 1_500_000, f"{path.name} is too large to read on a code host"


def test_code_digest_sees_a_changed_cell():
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    digest = _executor().code_digest(notebook)
    next(c for c in notebook.cells if c.cell_type == "code").source += "\n# changed"
    assert _executor().code_digest(notebook) != digest
