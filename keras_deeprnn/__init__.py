"""keras-deeprnn: every way of building a deep recurrent network, as Keras 3 layers.

Runs on TensorFlow, JAX and PyTorch (pick one with `KERAS_BACKEND`).
"""

import importlib

from keras_deeprnn import _backend_check  # noqa: F401  (first: before Keras)
from keras_deeprnn import cells
from keras_deeprnn import data
from keras_deeprnn import initializers
from keras_deeprnn import layers
from keras_deeprnn import metrics
from keras_deeprnn import models
from keras_deeprnn import pretrained
from keras_deeprnn import tasks
from keras_deeprnn import training  # registers the training loss, so checkpoints load
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import DeepRNNModel
from keras_deeprnn.models import build_model
from keras_deeprnn._version import __version__

__all__ = [
    "cells", "data", "initializers", "layers", "metrics", "models", "pretrained", "tasks",
    "training",
    "tuning",
    "ARCHITECTURES", "DeepRNNModel", "build_model", "__version__",
]


def __getattr__(name):
    # KerasTuner is optional and heavy: `kdr.tuning` imports it on first use.
    if name == "tuning":
        return importlib.import_module("keras_deeprnn.tuning")
    raise AttributeError(f"module 'keras_deeprnn' has no attribute {name!r}")
