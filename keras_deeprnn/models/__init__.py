"""Named architectures and the model builder."""

from keras_deeprnn.models.deep_rnn_model import DeepRNNModel
from keras_deeprnn.models.deep_rnn_model import build_model
from keras_deeprnn.models.presets import ARCHITECTURES
from keras_deeprnn.models.presets import Architecture
