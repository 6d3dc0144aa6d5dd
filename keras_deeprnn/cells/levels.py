"""`LevelsCell`: what the cells that step several levels at once share."""

from keras import ops

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

    With `trainable_initial_state=True` every level's `h_0` is learned: one
    weight `initial_state` of shape `(num_layers, units)`, row `l` level
    `l`'s (an LSTM level's `c_0` stays at zero, as in the other cells).

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

    def add_initial_state_weight(self):
        self.initial_state = (
            self.add_weight(shape=(self.num_layers, self.units), initializer="zeros",
                            name="initial_state")
            if self.trainable_initial_state
            else None
        )

    def get_initial_state(self, batch_size=None):
        learned = getattr(self, "initial_state", None)
        states = []
        for level, sizes in enumerate(self.state_size):
            level_states = [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]
            if learned is not None:
                # zeros + row, not broadcast_to: torch's loop writes into states
                level_states[0] = level_states[0] + ops.cast(learned[level], self.compute_dtype)
            states.append(level_states)
        return states
