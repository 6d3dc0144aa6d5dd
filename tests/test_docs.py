"""The reference covers the public API, and its doctest fencing does what it says."""

import importlib
import importlib.util
import inspect
import pathlib
import re
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
PACKAGES = ["cells", "layers", "models", "data", "metrics", "tasks", "training", "tuning",
            "pretrained", "initializers"]
# Left out of the reference on purpose: a deprecated alias kept for old code,
# the folder the shipped presets live in, and the task registry that training
# hands on (its entry is under tasks).
SKIPPED = {"keras_deeprnn.cells.SequenceDropoutMixin", "keras_deeprnn.pretrained.HERE",
           "keras_deeprnn.training.TASKS"}


def _documented():
    return set(re.findall(r"^::: ([\w.]+)", "\n".join(
        p.read_text() for p in REFERENCE.glob("*.md")), flags=re.M))


def _public(module_name):
    """Classes and functions a package exports (a module: defines), and a
    package's constant tables such as ARCHITECTURES or SEARCH_SPACE."""
    module = importlib.import_module(module_name)
    package = hasattr(module, "__path__")
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            home = getattr(value, "__module__", "")
            if home != module_name and not (package and home.startswith(module_name + ".")):
                continue  # imported from elsewhere (keras, another module of ours)
        elif not (package and name.isupper()):
            continue
        yield f"{module_name}.{name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_reference_entry(package):
    if package == "tuning":
        pytest.importorskip("keras_tuner")
    missing = sorted(set(_public(f"keras_deeprnn.{package}")) - _documented() - SKIPPED)
    assert not missing, f"add these to docs/reference: {missing}"


def test_every_reference_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in nav, page.name


def _fence(monkeypatch):
    try:
        import griffe  # noqa: F401  (the docs extra)
    except ImportError:  # the function under test does not need it
        monkeypatch.setitem(sys.modules, "griffe", types.SimpleNamespace(Extension=object))
    spec = importlib.util.spec_from_file_location("griffe_doctests", ROOT / "docs" / "griffe_doctests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fence_doctests


def test_doctests_become_console_blocks_and_fences_stay_as_they_are(monkeypatch):
    fence = _fence(monkeypatch)
    text = "Example:\n\n>>> f([0, 10])\n[[0, 10]]\n\nAfter.\n\n```python\n>>> kept\n```"
    assert fence(text) == (
        "Example:\n\n```pycon\n>>> f([0, 10])\n[[0, 10]]\n```\n\nAfter.\n\n```python\n>>> kept\n```")
    assert fence("    >>> x\n    1") == "    ```pycon\n    >>> x\n    1\n    ```"
