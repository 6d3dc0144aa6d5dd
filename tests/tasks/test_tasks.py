"""The task interface: two built-in tasks, registration from outside, no import cycles."""

import ast
import pathlib

import pytest

from keras_deeprnn import cli
from keras_deeprnn import tasks
from keras_deeprnn import training

PACKAGE = pathlib.Path(tasks.__file__).parent.parent
TASK_MODULES = sorted((PACKAGE / "tasks").glob("*.py"))


def imports_of(path):
    """`(module names imported, imports placed after the first def or class)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names, late = [], []
    seen_definition = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            seen_definition = True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            names += [module] + [f"{module}.{alias.name}" for alias in node.names]
            if seen_definition:
                late += [f"{module}.{alias.name}" for alias in node.names]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    late += [f"{inner.module}.{alias.name}" for alias in inner.names]
                elif isinstance(inner, ast.Import):
                    late += [alias.name for alias in inner.names]
    return names, late


def test_both_tasks_are_registered_with_their_measures():
    assert set(tasks.TASKS) >= {"music", "lm"}
    assert tasks.get_task("music").monitor == "val_frame_nll"
    assert tasks.get_task("lm").monitor == "val_bits_per_token"
    # Training reads the very same registry.
    assert training.TASKS is tasks.TASKS
    with pytest.raises(ValueError, match="`task` must be one of .*Received: task='poetry'"):
        tasks.get_task("poetry")


@pytest.mark.parametrize("path", TASK_MODULES, ids=lambda path: path.name)
def test_tasks_never_import_training_and_import_at_the_top(path):
    names, late = imports_of(path)
    assert not [name for name in names if name.startswith(("keras_deeprnn.training",
                                                             "keras_deeprnn.cli"))]
    assert late == [], f"{path.name} imports inside a function or after a definition"


TOP_MODULES = [*(f"cli/{path.name}" for path in sorted((PACKAGE / "cli").glob("*.py"))),
               *(f"training/{path.name}" for path in sorted((PACKAGE / "training").glob("*.py")))]


@pytest.mark.parametrize("name", TOP_MODULES)
def test_the_top_modules_import_the_package_at_the_top(name):
    _, late = imports_of(PACKAGE / name)
    # Only optional, heavy dependencies wait for the function that needs them
    # (TensorFlow's input pipeline, matplotlib, the tuner); a module of this
    # package imported late would be hiding an import cycle.
    ours = [module for module in late if module.startswith("keras_deeprnn")]
    assert ours in ([], ["keras_deeprnn.tuning"])


def test_a_task_registered_from_outside_reaches_training_and_the_cli():
    class Chorales(tasks.MusicTask):
        name = "my_chorales"

    try:
        tasks.register(Chorales())
        training.TrainConfig(task="my_chorales").validate()
        args = cli.build_parser().parse_args(["train", "--task", "my_chorales"])
        assert args.task == "my_chorales"
    finally:
        tasks.TASKS.pop("my_chorales", None)
    with pytest.raises(ValueError, match="must be a Task instance"):
        tasks.register("music")

