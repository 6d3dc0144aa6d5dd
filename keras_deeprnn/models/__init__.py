"""Named architectures, their options, the model builder and its presets."""

from keras_deeprnn.models import hub
from keras_deeprnn.models.deep_rnn_model import DeepRNNModel
from keras_deeprnn.models.deep_rnn_model import build_model
from keras_deeprnn.models.deep_rnn_model import check_arguments
from keras_deeprnn.models.options import OPTIONS
from keras_deeprnn.models.options import Option
from keras_deeprnn.models.options import Search
from keras_deeprnn.models.presets import ARCHITECTURES
from keras_deeprnn.models.presets import Architecture
from keras_deeprnn.models.presets import CellFactory
from keras_deeprnn.models.presets import register_architecture
