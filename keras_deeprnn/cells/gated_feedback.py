"""Gated-feedback RNN (Chung et al. 2015): every level at t-1 feeds every
level at t, through learned global reset gates."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells.base import SequenceDropoutMixin
from keras_deeprnn.cells.base import check_regularization


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class GatedFeedbackCell(SequenceDropoutMixin, keras.layers.Layer):
    """A stack of tanh levels with gated feedback from all levels.

    With `N = num_layers`, `h^0_t = x_t` and `h*_{t-1}` the concatenation of
    all levels' previous states:

    ```python
    for j in range(1, N + 1):
        # one scalar gate per (source level i -> level j)
        g = sigmoid(h[j-1]_t @ gate_kernel_j + h*_{t-1} @ gate_recurrent_kernel_j + gate_bias_j)
        fed_back = concatenate([g[:, i] * h[i]_{t-1} for i in 1..N])
        h[j]_t = activation(h[j-1]_t @ kernel_j + fed_back @ recurrent_kernel_j + bias_j)
    output = h[N]_t
    ```

    A higher level can thus reach a lower one at the next step (top-down
    feedback) and each connection is opened or closed by its own gate, so
    the levels settle on their own time scales.

    Weights (`n = units`, `d_j` the level's input width: the input's at the
    bottom, `n` above; levels numbered from 0 in the names):
    - `kernel_{j}`: `W^{j-1→j}`, `(d_j, n)`; `gate_kernel_{j}`: `w_g`, `(d_j, N)`.
    - `recurrent_kernel_{j}`: the `U^{i→j}` stacked over `i`, `(N n, n)`.
    - `gate_recurrent_kernel_{j}`: `u_g`, `(N n, N)`.
    - `bias_{j}` `(n,)`, `gate_bias_{j}` `(N,)`.

    Example:

    ```python
    cell = GatedFeedbackCell(64, num_layers=3)
    y = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 20, 88)))
    ```

    Reference: Chung, Gulcehre, Cho, Bengio, *Gated Feedback Recurrent Neural
    Networks*, ICML 2015 (the tanh variant).
    """

    def __init__(
        self,
        units,
        num_layers=2,
        activation="tanh",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        dropout=0.0,
        recurrent_dropout=0.0,
        weight_noise=0.0,
        recurrent_weight_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        units = _checks.positive_int("units", units)
        num_layers = _checks.positive_int("num_layers", num_layers)
        regularization = check_regularization(
            dropout, recurrent_dropout, weight_noise, recurrent_weight_dropout
        )
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.set_regularization(regularization, seed)
        self.state_size = [[units] for _ in range(num_layers)]
        self.output_size = units

    @property
    def output_state_index(self):
        return self.num_layers - 1  # the top level's h

    @property
    def recurrent_dropout_width(self):
        return self.num_layers * self.units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"GatedFeedbackCell needs a known feature size. Received: input_shape={tuple(input_shape)}"
            )
        n, N = self.units, self.num_layers
        self._input_dim = input_dim
        self.input_dropout_width = input_dim + (N - 1) * n
        self.kernels, self.recurrent_kernels, self.biases = [], [], []
        for j in range(N):
            fan_in = input_dim if j == 0 else n
            # [W | w_g] fused: one product gives the level's input and gate terms
            self.kernels.append(self.add_weight(
                shape=(fan_in, n + N), initializer=self.kernel_initializer, name=f"kernel_{j}"))
            self.recurrent_kernels.append(self.add_weight(
                shape=(N * n, n + N), initializer=self.recurrent_initializer,
                name=f"recurrent_kernel_{j}"))
            self.biases.append(self.add_weight(shape=(n + N,), initializer="zeros", name=f"bias_{j}"))

    def recurrent_weights(self):
        return list(self.recurrent_kernels)

    def noisy_weights(self):
        return [*self.kernels, *self.recurrent_kernels]

    def project_inputs(self, inputs, training=False):
        if training and self.dropout > 0:
            mask = self.get_dropout_mask(inputs)[:, : self._input_dim]
            inputs = inputs * (ops.expand_dims(mask, 1) if len(inputs.shape) == 3 else mask)
        return ops.matmul(inputs, self.noisy(self.kernels[0], training)) + self.biases[0]

    def recurrent_step(self, projected, states, training=False):
        n, N = self.units, self.num_layers
        previous = [s[0] if isinstance(s, (list, tuple)) else s for s in states]
        h_star = ops.concatenate(previous, axis=-1) if N > 1 else previous[0]
        h_star = self.apply_recurrent_dropout(h_star, training)
        x_terms, new_states = projected, []
        for j in range(N):
            if j > 0:
                x = h
                if training and self.dropout > 0:
                    start = self._input_dim + (j - 1) * n
                    x = x * self.get_dropout_mask(x)[:, start : start + n]
                x_terms = ops.matmul(x, self.noisy(self.kernels[j], training)) + self.biases[j]
            kernel = self.noisy(self.recurrent_kernels[j], training)
            gates = ops.sigmoid(x_terms[:, n:] + ops.matmul(h_star, kernel[:, n:]))
            fed_back = ops.concatenate(
                [gates[:, i : i + 1] * h_star[:, i * n : (i + 1) * n] for i in range(N)], axis=-1
            ) if N > 1 else gates * h_star
            h = self.activation(x_terms[:, :n] + ops.matmul(fed_back, kernel[:, :n]))
            new_states.append([h])
        return h, new_states

    def call(self, inputs, states, training=False):
        return self.recurrent_step(self.project_inputs(inputs, training), states, training)

    def get_initial_state(self, batch_size=None):
        return [[ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]
                for _ in range(self.num_layers)]

    def get_config(self):
        config = {
            "units": self.units,
            "num_layers": self.num_layers,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            **self.regularization_config(),
        }
        return {**super().get_config(), **config}
