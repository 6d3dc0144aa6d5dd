"""Gated-feedback RNN (Chung et al. 2015): every level at t-1 feeds every
level at t, through learned global reset gates."""

import keras
from keras import ops

from keras_deeprnn import _checks
from keras_deeprnn.cells.levels import LevelsCell


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class GatedFeedbackCell(LevelsCell):
    """A stack of tanh levels with gated feedback from all levels.

    With `n = units`, `N = num_layers`, `h^0_t = x_t` and `h*_{t-1}` the
    concatenation of all levels' previous states (the weights of level `j`
    carry the index `j - 1`):

    ```python
    for j in range(1, N + 1):
        W, w_g = kernel_{j-1}[:, :n], kernel_{j-1}[:, n:]
        U, u_g = recurrent_kernel_{j-1}[:, :n], recurrent_kernel_{j-1}[:, n:]
        b, b_g = bias_{j-1}[:n], bias_{j-1}[n:]
        # one scalar gate per (source level i -> level j)
        g = sigmoid(h[j-1]_t @ w_g + h*_{t-1} @ u_g + b_g)           # (batch, N)
        fed_back = concatenate([g[:, i] * h[i]_{t-1} for i in 1..N])
        h[j]_t = activation(h[j-1]_t @ W + fed_back @ U + b)
    output = h[N]_t
    ```

    A higher level can thus reach a lower one at the next step (top-down
    feedback) and each connection is opened or closed by its own gate, so
    the levels settle on their own time scales.

    Weights (`d_j` the level's input width: the input's at the bottom, `n`
    above; levels numbered from 0 in the names), each level's input and
    gate terms fused into one product:
    - `kernel_{j}`: `[W^{j-1→j} | w_g]`, `(d_j, n + N)`.
    - `recurrent_kernel_{j}`: `[U | u_g]`, `(N n, n + N)`; `U` stacks the
      `U^{i→j}` over the source levels `i`.
    - `bias_{j}`: `[b | b_g]`, `(n + N,)`, from `bias_initializer` (zeros);
      none with `use_bias=False`.
    - `initial_state`: `(N, n)`, every level's learned `h_0`, with
      `trainable_initial_state=True`.

    Weight noise applies to every `kernel_{j}` and `recurrent_kernel_{j}`,
    DropConnect (`recurrent_weight_dropout`) to every `recurrent_kernel_{j}`;
    `dropout` drops the input and, between levels, each level's input `h^{j-1}_t`.

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
        **kwargs,
    ):
        activation = _checks.keras_object("activation", activation, keras.activations.get)
        super().__init__(units, num_layers=num_layers, **kwargs)
        self.activation = activation
        self.state_size = [[units] for _ in range(self.num_layers)]

    @property
    def output_state_index(self):
        return self.num_layers - 1  # the top level's h

    def build(self, input_shape):
        input_dim = input_shape[-1]
        n, N = self.units, self.num_layers
        self.kernels, self.recurrent_kernels, self.biases = [], [], []
        for j in range(N):
            fan_in = input_dim if j == 0 else n
            # [W | w_g] fused: one product gives the level's input and gate terms
            self.kernels.append(self.add_weight(
                shape=(fan_in, n + N), initializer=self.kernel_initializer, name=f"kernel_{j}"))
            self.recurrent_kernels.append(self.add_weight(
                shape=(N * n, n + N), initializer=self.recurrent_initializer,
                name=f"recurrent_kernel_{j}"))
            self.biases.append(self.add_weight(
                shape=(n + N,), initializer=self.bias_initializer, name=f"bias_{j}")
                if self.use_bias else None)

    def project_inputs(self, inputs, training=False):
        inputs = self.apply_input_dropout(inputs, training)
        projected = ops.matmul(inputs, self.noisy(self.kernels[0], training))
        return projected if self.biases[0] is None else projected + self.biases[0]

    def recurrent_step(self, projected, states, training=False):
        n, N = self.units, self.num_layers
        previous = [s[0] if isinstance(s, (list, tuple)) else s for s in states]
        h_star = ops.concatenate(previous, axis=-1) if N > 1 else previous[0]
        h_star = self.apply_recurrent_dropout(h_star, training)
        x_terms, new_states = projected, []
        for j in range(N):
            if j > 0:
                x = self.apply_input_dropout(h, training, start=self._input_dim + (j - 1) * n)
                x_terms = ops.matmul(x, self.noisy(self.kernels[j], training))
                if self.biases[j] is not None:
                    x_terms = x_terms + self.biases[j]
            kernel = self.noisy(self.recurrent_kernels[j], training)
            gates = ops.sigmoid(x_terms[:, n:] + ops.matmul(h_star, kernel[:, n:]))
            fed_back = ops.concatenate(
                [gates[:, i : i + 1] * h_star[:, i * n : (i + 1) * n] for i in range(N)], axis=-1
            ) if N > 1 else gates * h_star
            h = self.activation(x_terms[:, :n] + ops.matmul(fed_back, kernel[:, :n]))
            new_states.append([h])
        return h, new_states
