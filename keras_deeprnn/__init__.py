"""keras-deeprnn: every way of building a deep recurrent network, as Keras 3 layers.

Runs on TensorFlow, JAX and PyTorch (pick one with `KERAS_BACKEND`).
"""

from keras_deeprnn import cells
from keras_deeprnn import layers
from keras_deeprnn import models
from keras_deeprnn.models import ARCHITECTURES
from keras_deeprnn.models import DeepRNNModel
from keras_deeprnn.models import build_model

__version__ = "0.1.0"

__all__ = ["cells", "layers", "models", "ARCHITECTURES", "DeepRNNModel", "build_model", "__version__"]
