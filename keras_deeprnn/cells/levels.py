"""`LevelsCell`: what the cells that step several levels at once share."""

from keras_deeprnn import _checks
from keras_deeprnn.cells.base import DeepCell


class LevelsCell(DeepCell):
    """A `DeepCell` whose one step runs `num_layers` levels of width
    `units`, bottom first, as one cell (`GatedFeedbackCell`,
    `DepthGatedLSTMCell`).

    Its per-sequence dropout covers every level: the input mask holds the
    input's features, then one slice per level above the bottom (the
    dropout between levels: `apply_input_dropout(h_below, training,
    start=input_dim + (l - 1) * units)`), the recurrent mask one slice per
    level's state.

    Args:
        units: width of every level's state.
        num_layers: the number of levels.
        **kwargs: `DeepCell`'s arguments.
    """

    def __init__(self, units, num_layers=2, **kwargs):
        num_layers = _checks.positive_int("num_layers", num_layers)
        super().__init__(units, **kwargs)
        self.num_layers = num_layers

    @property
    def input_dropout_width(self):
        return self._input_dim + (self.num_layers - 1) * self.units  # input, then between levels

    @property
    def recurrent_dropout_width(self):
        return self.num_layers * self.units
