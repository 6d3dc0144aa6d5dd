"""An LSTM whose gates are fed by a deep transition: the paper's DT(S)
applied inside a gated cell."""

import keras
from keras import ops

from keras_deeprnn.cells.deep_transition import DeepTransitionCell


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class DeepTransitionLSTMCell(DeepTransitionCell):
    """LSTM with a deep transition (DT-LSTM; DT(S)-LSTM with shortcuts).

    One answer to "how would you make an LSTM deep: stack it, or DOT(S) it?":
    the transition MLP of `DeepTransitionCell` computes the four gate
    pre-activations instead of a new state:

    ```python
    a = top_preactivation(x, h_prev)      # DT / DT(S) layers, top width 4 * units
    i, f, g, o = split(a, 4)              # input, forget, candidate, output
    c = sigmoid(f) * c_prev + sigmoid(i) * activation(g)
    h = sigmoid(o) * activation(c)
    output, new_states = h, [h, c]
    ```

    With `num_transition_layers=1` this is the standard LSTM. The top layer's
    forget-gate bias starts at 1. Weights are those of `DeepTransitionCell`
    with the top width `4 * units` (`input_kernel`, `recurrent_kernel`,
    `bias`, `transition_kernel_{i}`, `transition_bias_{i}`), gate order
    `[i, f, g, o]`. All `DeepTransitionCell` options apply (shortcut,
    layer_norm, dropout, weight noise, trainable initial `h`).

    Example:

    ```python
    cell = DeepTransitionLSTMCell(128, num_transition_layers=2, shortcut=True)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```

    Reference: Pascanu et al. 2014 (deep transition); Hochreiter and
    Schmidhuber 1997 (LSTM).
    """

    def __init__(self, units, num_transition_layers=2, **kwargs):
        super().__init__(units, num_transition_layers=num_transition_layers, **kwargs)
        self.state_size = [self.units, self.units]

    @property
    def _top_width(self):
        return 4 * self.units

    def build(self, input_shape):
        super().build(input_shape)
        n = self.units
        if self.num_transition_layers == 1:
            top_bias = self.bias
        else:
            # Empty without biases (`use_bias=False`).
            top_bias = self.transition_biases[-1] if self.transition_biases else None
        if top_bias is not None:
            top_bias.assign(top_bias + ops.concatenate(
                [ops.zeros((n,)), ops.ones((n,)), ops.zeros((2 * n,))]
            ))

    def recurrent_step(self, projected, states, training=False):
        h_prev, c_prev = states[0], states[1]
        a = self.top_preactivation(projected, h_prev, training)
        n = self.units
        i = ops.sigmoid(a[:, :n])
        f = ops.sigmoid(a[:, n : 2 * n])
        o = ops.sigmoid(a[:, 3 * n :])
        c = f * c_prev + i * self.activation(a[:, 2 * n : 3 * n])
        h = o * self.activation(c)
        return h, [h, c]
