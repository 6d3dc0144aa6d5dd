"""Recurrent Highway Network transition (Zilly et al. 2017): a deep transition
whose layers are highway layers, carrying the state by default."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells.base import DeepCell


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class HighwayTransitionCell(DeepCell):
    """Recurrent Highway Network cell: L highway layers per time step.

    The input enters the first layer only; every layer mixes its candidate
    with the layer below through a transform gate `t` (coupled carry
    `1 - t`):

    ```python
    s = h_prev
    for l in range(L):
        x_terms = x @ input_kernel + bias_0 if l == 0 else bias_l   # [H | T] halves
        a = s @ recurrent_kernel_l + x_terms
        candidate = activation(a[:, :n])
        t = sigmoid(a[:, n:])
        s = candidate * t + s * (1 - t)
    h = s
    ```

    The transform-gate biases start at `transform_bias` (negative: carry by
    default; added to `bias_initializer`), which is what lets very deep
    transitions train. With `use_bias=False` there are no `bias_{l}` (and so
    no transform bias: the gates start half open). With
    `trainable_initial_state=True` the state starts at a learned vector.

    Weights (`n = units`, `d` input features):
    - `input_kernel`: `[W_H | W_T]`, `(d, 2n)`.
    - `recurrent_kernel_{l}`: `[R_H,l | R_T,l]`, `(n, 2n)`.
    - `bias_{l}`: `[b_H,l | b_T,l]`, `(2n,)`.

    Example:

    ```python
    cell = HighwayTransitionCell(128, num_transition_layers=5)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```

    Reference: Zilly, Srivastava, Koutník, Schmidhuber, *Recurrent Highway
    Networks*, ICML 2017.
    """

    def __init__(
        self,
        units,
        num_transition_layers=3,
        activation="tanh",
        transform_bias=-2.0,
        **kwargs,
    ):
        num_transition_layers = _checks.positive_int("num_transition_layers", num_transition_layers)
        activation = _checks.keras_object("activation", activation, keras.activations.get)
        transform_bias = _checks.finite("transform_bias", transform_bias)
        super().__init__(units, **kwargs)
        self.num_transition_layers = num_transition_layers
        self.activation = activation
        self.transform_bias = transform_bias

    def _bias_initializer(self, shape, dtype=None):
        n = self.units
        bias = self.bias_initializer((2 * n,), dtype=dtype)
        return bias + ops.concatenate(
            [ops.zeros((n,), dtype=dtype), ops.full((n,), self.transform_bias, dtype=dtype)]
        )

    def build(self, input_shape):
        input_dim = input_shape[-1]
        n = self.units
        self.input_kernel = self.add_weight(
            shape=(input_dim, 2 * n), initializer=self.kernel_initializer, name="input_kernel"
        )
        self.recurrent_kernels = [
            self.add_weight(shape=(n, 2 * n), initializer=self.recurrent_initializer,
                            name=f"recurrent_kernel_{l}")
            for l in range(self.num_transition_layers)
        ]
        self.add_initial_state_weight()  # before the biases: saved files keep this order
        self.biases = [
            self.add_weight(shape=(2 * n,), initializer=self._bias_initializer, name=f"bias_{l}")
            if self.use_bias
            else None
            for l in range(self.num_transition_layers)
        ]

    def project_inputs(self, inputs, training=False):
        inputs = self.apply_input_dropout(inputs, training)
        projected = ops.matmul(inputs, self.noisy(self.input_kernel, training))
        return projected if self.biases[0] is None else projected + self.biases[0]

    def recurrent_step(self, projected, states, training=False):
        s = states[0] if isinstance(states, (list, tuple)) else states
        n = self.units
        for l, kernel in enumerate(self.recurrent_kernels):
            a = ops.matmul(self.apply_recurrent_dropout(s, training), self.noisy(kernel, training))
            if l == 0:
                a = a + projected
            elif self.biases[l] is not None:
                a = a + self.biases[l]
            t = ops.sigmoid(a[:, n:])
            s = self.activation(a[:, :n]) * t + s * (1.0 - t)
        return s, [s]
