"""The tuner's search space: its dimensions, read from the options and the rows.

A model option with a `search` range is a dimension (`OPTIONS`); it exists
on a row of `ARCHITECTURES` when the row supports it (`Architecture.supports`),
with the row's own range where it narrows it. The optimiser's two dimensions
are the only ones declared here.
"""

from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import OPTIONS
from keras_deeprnn.models import options as options_lib

# The optimiser's dimensions; every other one is a model option
# (`keras_deeprnn.models.OPTIONS`, those with a `search` range).
OPTIMIZER_SEARCH = {
    "learning_rate": options_lib.Search("float", 1e-3, 1e-4, 1e-2, sampling="log"),
    "clipnorm": options_lib.Search("choice", 1.0, values=(0.5, 1.0, 2.0, 5.0)),
}
OPTIMIZER_DIMENSIONS = tuple(OPTIMIZER_SEARCH)
# In "derive" mode these follow from the budget instead of being searched:
# the options searched as widths.
WIDTH_DIMENSIONS = tuple(options_lib.widths())


def _search_space():
    """`name: (where, range in words, default)`, read from the options.

    `where` is `None` for a dimension of every architecture, else what a row
    needs for it to exist (`Option.where`: depth arguments the row leaves
    free, capabilities of its cell factory).
    """
    space = {"architecture": (None, "Choice of the `architectures` given", "the first given")}
    for name, option in options_lib.searched().items():
        space[name] = (option.where or None, option.search.describe(), option.search.default)
    for name, search in OPTIMIZER_SEARCH.items():
        space[name] = (None, search.describe(), search.default)
    return space


SEARCH_SPACE = _search_space()
"""Every dimension of the search: `name: (where, range, default)`. The model
options come from `OPTIONS` as it is on import; `DeepRNNHyperModel` reads the
options themselves, so an architecture registered later takes part too."""

def declare(hp, name, architecture=None):
    """The KerasTuner declaration of one dimension (on `architecture`'s row, if given)."""
    if name in OPTIMIZER_SEARCH:
        return OPTIMIZER_SEARCH[name].declare(hp, name)
    if name not in OPTIONS or OPTIONS[name].search is None:
        raise ValueError(f"Unknown search dimension. Received: {name!r}")
    option = OPTIONS[name]
    search = option.search if architecture is None else architecture.search_range(option)
    return search.declare(hp, name)


def exists(name, architecture):
    """Whether dimension `name` exists for `architecture` (an `Architecture` row)."""
    if name == "architecture" or name in OPTIMIZER_SEARCH:
        return True
    return architecture.supports(OPTIONS[name])


def describe_dimensions(architectures=None):
    """The search space in lines of pseudo-code: the dimensions of some rows
    under `conditional_scope`, each with the rows it exists on, then those of
    every row (the class docstring shows it for the built-in rows).

    ```python
    print(describe_dimensions(["rnn", "srnn"]))
    ```
    """
    names = list(ARCHITECTURES) if architectures is None else list(architectures)
    everywhere, conditional = [], []
    for name, (_, described, _) in SEARCH_SPACE.items():
        if name == "architecture":
            continue
        rows = [a for a in names if exists(name, ARCHITECTURES[a])]
        if len(rows) == len(names):
            everywhere.append(f"{name} {described}")
        elif rows:
            left_out = [a for a in names if a not in rows]
            where = f"all but {', '.join(left_out)}" if len(left_out) < len(rows) \
                else ", ".join(rows)
            conditional.append(f"    {name:<25} {described:<26} # {where}")
    lines = ['with conditional_scope("architecture", the rows where each exists):',
             *conditional] if conditional else []
    return "\n".join([*lines, *everywhere])
