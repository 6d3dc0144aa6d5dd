"""Per-timestep layers (the deep input g, the deep output ▷) and the fast RNN layer."""

from keras_deeprnn.layers import units
from keras_deeprnn.layers.deep_rnn import DeepRNN
from keras_deeprnn.layers.mlp import DeepInput
from keras_deeprnn.layers.mlp import DeepOutput
from keras_deeprnn.layers.fused import FusedGRU
from keras_deeprnn.layers.fused import FusedLSTM
