"""The learning curve a run draws into its run dir."""

import warnings

from keras_deeprnn import _files
from keras_deeprnn.data.rolls import MUSIC_EXTRA_HINT


def plot_learning_curve(history, task, best_epoch, paper, path):
    """Draw the train and validation measure per epoch into `path` (PNG);
    `None` without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn(f"No learning curve: matplotlib is not installed "
                      f"({MUSIC_EXTRA_HINT}).", stacklevel=3)
        return None
    key = task.monitor[len("val_"):]
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    axes = figure.add_subplot()
    for name, label in ((key, "train"), (task.monitor, "valid")):
        values = history.get(name, [])
        axes.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
    if best_epoch:
        axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    if paper:
        axes.axhline(paper["nll"], color="black", linestyle="--", linewidth=0.8,
                     label=f"paper, {paper['model']} on {paper['dataset']}")
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"{task.measure[0]} ({task.measure[1]})")
    axes.legend()
    figure.tight_layout()
    _files.write_atomically(path, lambda temporary: figure.savefig(temporary, format="png"))
    return path
