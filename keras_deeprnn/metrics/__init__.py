"""Measures the paper reports: frame NLL for music, bits and perplexity for text."""

from keras_deeprnn.metrics.language import BitsPerToken
from keras_deeprnn.metrics.language import Perplexity
from keras_deeprnn.metrics.language import bits_per_token
from keras_deeprnn.metrics.language import perplexity
from keras_deeprnn.metrics.music import FrameAccuracy
from keras_deeprnn.metrics.music import FrameNLL
from keras_deeprnn.metrics.music import frame_accuracy
from keras_deeprnn.metrics.music import frame_nll
