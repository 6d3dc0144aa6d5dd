"""RNN cells: the transition operator ⊕ in all its depths, and its stacks."""

from keras_deeprnn.cells.base import DeepCell
from keras_deeprnn.cells.deep_output import DeepOutputCell
from keras_deeprnn.cells.deep_transition import DeepTransitionCell
from keras_deeprnn.cells.depth_gated_lstm import DepthGatedLSTMCell
from keras_deeprnn.cells.stacked import StackedCells
from keras_deeprnn.cells.highway import HighwayTransitionCell
from keras_deeprnn.cells.gated_feedback import GatedFeedbackCell
from keras_deeprnn.cells.deep_transition_lstm import DeepTransitionLSTMCell
from keras_deeprnn.cells.wrappers import StateResetCell
from keras_deeprnn.cells.wrappers import ZoneoutCell
