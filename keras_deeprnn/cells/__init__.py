"""RNN cells: the transition operator ⊕ in all its depths, and its stacks.

What `out, *states = keras.layers.RNN(cell, return_state=True)(x)` returns
as `states`, cell by cell (`n = units`, `N` levels). Two cells return one
state more than their recurrent state: a copy of their last output, which
nothing in the step reads. Keras's JAX loop outputs the first state (for
nested states, the last list's first) at a masked (padded) step, so a cell
whose output is not one of its states keeps a copy there; without it a
padded step would output something else.

| cell | states | what each is |
| --- | --- | --- |
| `DeepTransitionCell`, `HighwayTransitionCell` | `[h]` | the state, `(batch, n)`; also the output |
| `DeepTransitionLSTMCell` | `[h, c]` | the output state and the memory cell |
| `GatedFeedbackCell` | `[[h_1], ..., [h_N]]` | each level's state, bottom first; the output is `h_N` |
| `DepthGatedLSTMCell` | `[[h_1, c_1], ..., [h_N, c_N]]` | each level's output state and memory cell; the output is `h_N` |
| `StackedCells` | one list per level (that level's cell's states) | with `skip_connections=True`, one more list `[y]`: a copy of the last output, the concatenation of every level's |
| `DeepOutputCell` | `[y, *inner]` | `y` a copy of the last output `▷(h)`, then the wrapped cell's states |
| `ZoneoutCell`, `StateResetCell` | the wrapped cell's | |

The copies cannot go without breaking padded sequences on JAX; to start
from, or read back, the recurrent states alone, drop them:
`states[1:]` for a `DeepOutputCell`, `states[:-1]` for a skip-connected
`StackedCells`.
"""

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
