"""The suite's own rules: a skip for a missing required package fails in CI."""

import types

import pytest

import conftest


def _skip_report(reason):
    return types.SimpleNamespace(skipped=True, outcome="skipped", longrepr=("test_x.py", 3, reason))


def _importorskip_reason(name):
    with pytest.raises(pytest.skip.Exception) as skipped:
        pytest.importorskip(name)
    return f"Skipped: {skipped.value.msg}"


def test_a_missing_required_package_fails_under_ci(monkeypatch):
    # pytest's own wording, from a real importorskip of a module that is absent
    reason = _importorskip_reason("music21.no_such_module")
    monkeypatch.setenv("CI", "true")
    report = _skip_report(reason)
    conftest._fail_required_skip(report)
    assert report.outcome == "failed"
    assert "music21.no_such_module" in report.longrepr and ".[all,test]" in report.longrepr


def test_other_skips_stay_skips(monkeypatch):
    monkeypatch.setenv("CI", "true")
    for reason in ["Skipped: belongs to the jax backend (running torch)",
                   _importorskip_reason("a_package_the_project_does_not_need")]:
        report = _skip_report(reason)
        conftest._fail_required_skip(report)
        assert report.outcome == "skipped", reason


def test_outside_ci_a_missing_package_is_a_reported_skip(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KDR_REQUIRE_ALL", raising=False)
    report = _skip_report(_importorskip_reason("keras_tuner.no_such_module"))
    conftest._fail_required_skip(report)
    assert report.outcome == "skipped"


def test_every_package_of_all_is_required():
    # Each package `pip install .[all,test]` (what CI installs) brings, by its
    # import name, is one whose absence fails CI.
    import pathlib
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    (all_of,) = extras["all"]
    import_names = {"keras-tuner": "keras_tuner", "scikit-learn": "sklearn",
                    "tensorflow-cpu": "tensorflow", "pytest-xdist": "xdist"}
    installed = set()
    for extra in [*re.search(r"\[(.*)\]", all_of).group(1).split(","), "test"]:
        for requirement in extras[extra.strip()]:
            package = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
            if package != "pytest":   # pytest runs the suite: it cannot skip for itself
                installed.add(import_names.get(package, package.replace("-", "_")))
    assert installed and installed <= conftest.REQUIRED_PACKAGES, installed - conftest.REQUIRED_PACKAGES


def test_a_users_all_holds_no_test_tools_and_the_extras_say_what_they_bring():
    import pathlib
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = pathlib.Path(__file__).parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    (all_of,) = extras["all"]
    in_all = {e.strip() for e in re.search(r"\[(.*)\]", all_of).group(1).split(",")}
    assert "test" not in in_all
    packages = {re.match(r"[A-Za-z0-9_.-]+", r).group(0) for e in in_all for r in extras[e]}
    assert not packages & {"pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel"}
    # every backend has a CPU extra and a GPU one
    for backend in ("tensorflow", "jax", "torch"):
        assert backend in extras and f"{backend}-cuda" in extras, backend
    assert extras["tensorflow"] == ["tensorflow-cpu>=2.16"]
    # CI installs the test tools beside `all`
    assert '".[all,test,docs]"' in (root / "scripts" / "setup").read_text()
    # the README's Install section names every extra it explains
    readme = (root / "README.md").read_text()
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    for extra in extras:
        assert f"`{extra}`" in install, extra
    assert "https://download.pytorch.org/whl/cpu" in install


def test_the_test_folders_mirror_the_package():
    import pathlib

    tests = pathlib.Path(__file__).resolve().parent
    package = tests.parent / "keras_deeprnn"
    parts = {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    folders = {p.name for p in tests.iterdir()
               if p.is_dir() and p.name not in ("fixtures", "__pycache__")}
    assert folders and folders <= parts, folders - parts
    # every folder holds tests, and no file name is used twice (pytest imports them by name)
    names = [p.name for p in tests.rglob("test_*.py")]
    assert all(any(tests.joinpath(f).glob("test_*.py")) for f in folders)
    assert len(names) == len(set(names))
