"""The package's floors: no module imports one above its own, and no imports close a circle.

Read from the source (every import statement, at the top or inside a
function), so nothing here depends on the order modules happen to load in.
"""

import ast
import pathlib

import pytest

pytestmark = pytest.mark.any_backend  # no backend changes what this file tests

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_deeprnn"

# Lowest first; a module may import its own floor and those below it.
FLOORS = (
    ("_backend_check", "_checks", "_console", "_files", "_keras_private", "_version",
     "initializers"),
    ("layers",),
    ("cells",),
    ("models",),
    ("data", "metrics"),
    ("tasks", "pretrained"),
    ("training", "run_folder", "compilation"),
    ("tuning",),
    ("cli",),
    ("__main__", ""),  # "": the package's own __init__, which gathers the public names
)
FLOOR_OF = {part: level for level, parts in enumerate(FLOORS) for part in parts}
# The training package's own modules, the same way: the files and the
# settings first, the loop and the scoring on top of them.
TRAINING_FLOORS = (
    ("records", "config", "random_state", "inputs", "plots"),
    ("lock", "callbacks", "resume"),
    ("scoring", "loop"),
    ("",),  # its __init__, which gathers the public names
)
TRAINING_FLOOR_OF = {part: level for level, parts in enumerate(TRAINING_FLOORS) for part in parts}


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(module):
    """The package's modules that `module` imports, anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{module}: relative import; the package imports by full name")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_deeprnn"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("keras_deeprnn")}
    return found - {module}


GRAPH = {module: _imports(module) for module in MODULES}


def _floor(module):
    part = module.split(".")[1] if "." in module else ""
    return FLOOR_OF[part]


def test_every_module_has_a_floor():
    assert {module for module in MODULES if (module.split(".") + [""])[1] not in FLOOR_OF} == set()


def _upward(graph, module):
    return sorted(other for other in graph[module] if _floor(other) > _floor(module))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_floor(module):
    upward = _upward(GRAPH, module)
    assert upward == [], f"{module} (floor {_floor(module)}) imports from above: {upward}"


def _training_floor(module):
    return TRAINING_FLOOR_OF[module.removeprefix("keras_deeprnn.training").lstrip(".")]


TRAINING = sorted(m for m in MODULES if m.split(".")[:2] == ["keras_deeprnn", "training"])


def _upward_in_training(graph, module):
    return sorted(other for other in graph[module] if other in TRAINING
                  and _training_floor(other) > _training_floor(module))


def test_every_training_module_has_a_floor():
    assert len(TRAINING) > 1
    assert [m for m in TRAINING
            if m.removeprefix("keras_deeprnn.training").lstrip(".") not in TRAINING_FLOOR_OF] == []


@pytest.mark.parametrize("module", TRAINING)
def test_no_training_module_imports_one_above_it(module):
    upward = _upward_in_training(GRAPH, module)
    assert upward == [], f"{module} imports from above it in the training package: {upward}"


def _cycles(graph):
    """Every import circle a depth-first search meets, as a path."""
    state, found = {}, []

    def visit(module, path):
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_no_imports_close_a_circle():
    assert [" -> ".join(cycle) for cycle in _cycles(GRAPH)] == []


def test_the_checks_see_a_planted_circle_and_a_planted_climb():
    # Two modules that would import each other, and a cell that would read
    # the training loop: both must be reported.
    planted = dict(GRAPH)
    planted["keras_deeprnn.layers.units"] = GRAPH["keras_deeprnn.layers.units"] | {
        "keras_deeprnn.layers.mlp"}
    planted["keras_deeprnn.layers.mlp"] = GRAPH["keras_deeprnn.layers.mlp"] | {
        "keras_deeprnn.layers.units"}
    assert any(set(cycle) == {"keras_deeprnn.layers.units", "keras_deeprnn.layers.mlp"}
               for cycle in _cycles(planted))
    planted["keras_deeprnn.cells.base"] = GRAPH["keras_deeprnn.cells.base"] | {
        "keras_deeprnn.training"}
    assert _upward(planted, "keras_deeprnn.cells.base") == ["keras_deeprnn.training"]
    # The files' module reading the loop climbs inside the training package,
    # and the loop reading the package's __init__ closes a circle.
    planted["keras_deeprnn.training.records"] = GRAPH["keras_deeprnn.training.records"] | {
        "keras_deeprnn.training.loop"}
    assert _upward_in_training(planted, "keras_deeprnn.training.records") == [
        "keras_deeprnn.training.loop"]
    planted = dict(GRAPH)
    planted["keras_deeprnn.training.loop"] = GRAPH["keras_deeprnn.training.loop"] | {
        "keras_deeprnn.training"}
    assert any(set(cycle) == {"keras_deeprnn.training", "keras_deeprnn.training.loop"}
               for cycle in _cycles(planted))
